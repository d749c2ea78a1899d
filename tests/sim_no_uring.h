/*
 * sim_no_uring.h - simulate a container whose seccomp profile blocks
 * io_uring (Docker's default since 2023, many Kubernetes runtimes): a seccomp
 * filter makes io_uring_setup, io_uring_enter and io_uring_register fail
 * with ENOSYS. Used by tests/test_io.c.
 */
#ifndef CREW_SIM_NO_URING_H
#define CREW_SIM_NO_URING_H

/* For the calling thread and the threads it creates from now on (it cannot
 * be undone: call it in a forked child). Checks that io_uring_setup really
 * fails afterwards. Returns 0 or -errno (-EEXIST: the filter did not take). */
int crewt_block_io_uring(void);

#endif
