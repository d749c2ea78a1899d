/* io.h - running one I/O operation from a task (io.c), for calls.c. */
#ifndef CREW_IO_H
#define CREW_IO_H

#include "reactor.h"

/* From a task: submit op (its request fields set) on the current worker and
 * wait for its result: a count or fd, or a negative errno (-EPERM outside a
 * task, -ECANCELED, -ETIMEDOUT from a deadline scope). op may go when it
 * returns. */
long crew__io_run(crew__io_op *op);

#endif
