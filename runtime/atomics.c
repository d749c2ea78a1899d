/* atomics.c - the slow half of the spinlocks in atomics.h. */
#include "atomics.h"
#include <sched.h>

/* Spin a little (the holder is running on another CPU), then give the CPU
 * away: a holder that was preempted needs it more than we do. */
void crew__spin_wait(unsigned *spins)
{
	if (++*spins < 128)
		crew__cpu_relax();
	else
		sched_yield();
}
