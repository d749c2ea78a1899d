/*
 * Part of test_stack, built WITHOUT -fstack-clash-protection: a frame that
 * jumps over its own stack's guard, as code built without the protection
 * does, and lands in the guard of the stack below.
 */
#include <stddef.h>

#define KIB 1024u

/* With 16 KiB stacks (each: 64 KiB guard, 20 KiB usable) the lowest byte of
 * this frame lies about 32 KiB into the guard of the stack below. */
__attribute__((noinline)) int crewt_frame_over_neighbour(void)
{
	char big[136 * KIB];
	big[0] = 1; /* the only write: no probe touched our own guard */
	__asm__ volatile("" ::"r"(big) : "memory");
	return big[0];
}
