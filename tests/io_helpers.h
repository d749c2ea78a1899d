/*
 * io_helpers.h - what the I/O tests (tests/test_io_*.c) share.
 *
 * A scenario is a task body returning NULL, or a message naming what failed
 * (FAIL, CHECK), asserted on the test's thread after crew_run returned.
 * IO_TEST runs it three times: with CREW_BACKEND=io_uring, with
 * CREW_BACKEND=epoll, and with no CREW_BACKEND in a forked child whose
 * seccomp filter makes io_uring_setup fail with ENOSYS (a container's
 * profile): crew must pick epoll there. IO_TEST_EMUL adds a fourth run, on
 * io_uring with every kind of operation that can be emulated run as on a
 * kernel that lacks its opcode (non-blocking attempts between readiness
 * polls, io/reactor_uring.c).
 */
#ifndef CREW_TEST_IO_HELPERS_H
#define CREW_TEST_IO_HELPERS_H

#include "helpers.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/types.h>

/* A scenario's failure: a message in a static buffer (a test is a process). */
void *crewt_io_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define FAIL(...) return crewt_io_fail(__VA_ARGS__)
#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			FAIL(__VA_ARGS__);                                                         \
	} while (0)

/* FNV-1a of n bytes. */
uint64_t crewt_checksum(const unsigned char *p, size_t n);
/* n pseudo-random bytes, the same for the same seed. */
void crewt_fill(unsigned char *p, size_t n, unsigned seed);

/* A listening TCP socket on 127.0.0.1, port chosen by the kernel (in *addr);
 * the fd or -errno. */
int crewt_tcp_listener(struct sockaddr_in *addr, int backlog);

/* A task blocked in one call: it sets `calling` right before the call. */
typedef struct crewt_blocked {
	int fd;
	atomic_int calling;
	ssize_t rc;
	char buf[64];
} crewt_blocked;

/* Spawn fn(b) and return once it is suspended in its blocking call; NULL when
 * it could not be spawned or finished instead (then it was joined). */
crew_task *crewt_spawn_blocked(crew_fn fn, crewt_blocked *b);
/* A crewt_spawn_blocked body: b->rc = crew_recv(b->fd, b->buf, 64, 0). */
void *crewt_recv_blocked(void *b);

typedef enum crewt_backend {
	BE_URING,
	BE_EPOLL,
	BE_NO_URING,       /* a child where seccomp blocks io_uring: epoll */
	BE_URING_EMULATED, /* io_uring, emulating every kind it can */
} crewt_backend;

/* A task body checking that crew_backend_name() is `want` (a string). */
void *crewt_check_backend(void *want);

/* Run fn(arg) as crew_run's main on `workers` workers of backend `be`
 * (`ring`: ring entries, 0 the default); assert that it returned NULL. */
void crewt_run_backend_ring(crewt_backend be, unsigned workers, unsigned ring, crew_fn fn,
			    void *arg);
void crewt_run_backend(crewt_backend be, unsigned workers, crew_fn fn, void *arg);

#define IO_TEST(name, workers, fn, arg)                                                            \
	Test(io_uring, name, .timeout = CREWT_TIMEOUT(60)) { crewt_run_backend(BE_URING, workers, fn, arg); } \
	Test(epoll, name, .timeout = CREWT_TIMEOUT(60)) { crewt_run_backend(BE_EPOLL, workers, fn, arg); }   \
	Test(no_uring, name, .timeout = CREWT_TIMEOUT(60)) { crewt_run_backend(BE_NO_URING, workers, fn, arg); }

#define IO_TEST_EMUL(name, workers, fn, arg)                                                       \
	IO_TEST(name, workers, fn, arg)                                                            \
	Test(uring_emulated, name, .timeout = CREWT_TIMEOUT(60))                                   \
	{                                                                                          \
		crewt_run_backend(BE_URING_EMULATED, workers, fn, arg);                            \
	}

#endif
