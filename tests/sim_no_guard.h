/*
 * sim_no_guard.h - simulate a kernel without MADV_GUARD_INSTALL (Linux < 6.13,
 * e.g. Debian 12's 6.1) on a newer one: a seccomp filter makes
 * madvise(..., MADV_GUARD_INSTALL = 102) and process_madvise fail with EINVAL,
 * as the old kernel does. Used by tests/test_stack.c and bench/crew_bench.c
 * (--guard-madvise off).
 */
#ifndef CREW_SIM_NO_GUARD_H
#define CREW_SIM_NO_GUARD_H

/* For the calling thread and the threads it creates from now on (it cannot
 * be undone). Checks that a guard install really fails afterwards.
 * Returns 0 or -errno (-EEXIST: the filter did not take). */
int crewt_block_guard_madvise(void);

#endif
