/*
 * test_fork.c again, with crew.h's portable read of the running fiber's
 * frame deque (a plain thread-local read checked against the frame's
 * address, as on every target but x86-64, where an asm read is used).
 */
#define CREW__FQ_TLS_PORTABLE 1
#include "test_fork.c"
