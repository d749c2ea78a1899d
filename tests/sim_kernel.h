/*
 * sim_kernel.h - simulate, with seccomp filters, kernels and containers that
 * crew must work on although this machine's kernel differs:
 *  - a kernel without MADV_GUARD_INSTALL (Linux < 6.13, e.g. Debian 12's 6.1):
 *    madvise(..., MADV_GUARD_INSTALL = 102) and process_madvise fail with
 *    EINVAL, as the old kernel does (tests/test_stack.c, crew-bench
 *    --guard-madvise off);
 *  - a container whose seccomp profile blocks io_uring (Docker's default since
 *    2023, many Kubernetes runtimes): io_uring_setup, io_uring_enter and
 *    io_uring_register fail with ENOSYS (tests/test_io.c).
 * A filter cannot be undone: install it in a forked child.
 */
#ifndef CREW_SIM_KERNEL_H
#define CREW_SIM_KERNEL_H

/* Each applies to the calling thread and the threads it creates from now on,
 * checks that the blocked call really fails afterwards, and returns 0 or
 * -errno (-EEXIST: the filter did not take). */
int crewt_block_guard_madvise(void); /* MADV_GUARD_INSTALL, process_madvise: EINVAL */
int crewt_block_io_uring(void);      /* io_uring_*: ENOSYS */

#endif
