/*
 * reactor.h - the interface between the scheduler and its I/O backends.
 *
 * Overview
 *   One reactor per worker, used only by that worker's thread (except
 *   crew__reactor_wake: any thread). A backend (reactor_uring.c,
 *   reactor_epoll.c) is a table of functions, Redis ae-style; its state is
 *   behind the opaque `impl` pointer, so nothing outside io/ sees liburing or
 *   epoll types.
 *
 *   Operations: a crew__io_op record lives in the waiting task's frame; its
 *   address is the backend's tag for it (io_uring's user_data, epoll's
 *   data.ptr). submit() queues it (io_uring: an SQE, sent to the kernel at
 *   the worker's next flush or poll; epoll: tried at once, else parked on its
 *   fd's readiness; io_uring runs what it has no opcode for the epoll way,
 *   with polls: nowait.h). When it completes, the backend calls
 *   crew__io_complete(op, res) on the worker's thread, which hands the result
 *   to the waiting task (io.c). submit() either accepts the op, and then
 *   completes it exactly once, or returns a negative errno and never touches
 *   it again (libuv's rule). cancel() asks for an early completion of an
 *   accepted op (-ECANCELED, or its real result when it won the race); the
 *   op is complete only once crew__io_complete ran, and only then may its
 *   buffer go.
 *
 *   Timers: poll(block, deadline) waits at most until `deadline` (the
 *   worker's earliest timer); the worker expires timers itself.
 *   Wake-ups: a write to the worker's eventfd ends a blocking poll.
 */
#ifndef CREW_REACTOR_H
#define CREW_REACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct crew_task;
struct crew__worker;
struct iovec;
struct sockaddr;

typedef enum crew__io_kind {
	CREW_IO_READ,     /* fd, buf, len, off (UINT64_MAX: current position) */
	CREW_IO_WRITE,
	CREW_IO_READV,    /* fd, iov, len = iovcnt, off */
	CREW_IO_WRITEV,
	CREW_IO_RECV,     /* fd, buf, len, flags */
	CREW_IO_SEND,
	CREW_IO_ACCEPT,   /* fd, addr, addrlen, flags */
	CREW_IO_CONNECT,  /* fd, addr, len = addrlen */
	CREW_IO_CLOSE,    /* fd */
	CREW_IO_OPENAT,   /* fd = dirfd, path, flags, mode */
	CREW_IO_FSYNC,    /* fd, flags: CREW_IO_DATASYNC (fdatasync) */
	CREW_IO_POLL,     /* fd, flags = poll events; res = revents */
	CREW_IO_RECVMSG,  /* fd, buf = msghdr, flags; off: bytes so far (MSG_WAITALL, nowait.c) */
	CREW_IO_SENDMSG,  /* fd, buf = msghdr, flags */
	CREW_IO_SHUTDOWN, /* fd, flags = how */
	CREW_IO_STATX,    /* fd = dirfd, buf = path, flags, mode = mask, out = struct statx */
	CREW_IO_SPLICE,   /* fd = in, off (UINT64_MAX: none), fd2 = out, off2, len, flags */
	CREW_IO_SENDFILE, /* fd = in, off (UINT64_MAX: the file position), fd2 = out, len */
	CREW_IO_KINDS
} crew__io_kind;

/* crew__io_op.flags of CREW_IO_FSYNC */
enum { CREW_IO_DATASYNC = 1 };

typedef struct crew__io_op {
	/* the request (set by the caller before submit) */
	crew__io_kind kind;
	int fd;
	int flags;
	unsigned mode;
	void *buf;                 /* buf, iov, or the path */
	size_t len;
	uint64_t off;
	struct sockaddr *addr;
	unsigned *addrlen;         /* socklen_t */
	int fd2;                   /* splice, sendfile: the output fd */
	uint64_t off2;             /* splice: the output offset (UINT64_MAX: none) */
	void *out;                 /* statx: the struct statx to fill */
	bool park_first;           /* a receive that would likely block: arm the
				    * readiness wait without trying it first (epoll) */
	/* the waiter (io.c) */
	struct crew_task *task;
	uint32_t seq;              /* the task's wait (wait.h) */
	uint32_t done;             /* atomic: 1 once complete; the record may go */
	int32_t res;               /* the result; valid once done */
	uint32_t be_seq;           /* backend's: io_uring, its ring's count of closes
				    * when the op was submitted */
	struct crew__worker *home; /* the worker whose reactor owns it */
	/* owned by the home worker's backend */
	struct crew__io_op *next;
	uint32_t be_flags;         /* backend's private bits */
	/* a cancel request from another worker (io.c) */
	uint32_t cancel_state;     /* atomic: 0, CREW_IO_CANCEL_QUEUED, _SEEN */
	struct crew__io_op *cancel_next;
} crew__io_op;

enum { CREW_IO_CANCEL_QUEUED = 1, CREW_IO_CANCEL_SEEN = 2 };

typedef struct crew__reactor crew__reactor;

typedef struct crew__backend {
	const char *name;
	bool tries_at_submit; /* submit() tries the op at once (readiness-based) */
	/* 0, or a negative errno (a message on stderr only when `loud`). */
	int (*init)(crew__reactor *r, unsigned entries, int wake_fd, bool loud);
	void (*fini)(crew__reactor *r);
	/* On the worker's thread, before its first poll or submit: the thread
	 * that will use the reactor (init ran on crew_run's thread). */
	void (*start)(crew__reactor *r);
	/* Reap completions (dispatching them); when `block`, first wait until
	 * one arrives, a wake-up, or `deadline` (UINT64_MAX: none). */
	int (*poll)(crew__reactor *r, bool block, uint64_t deadline);
	int (*submit)(crew__reactor *r, crew__io_op *op);
	void (*cancel)(crew__reactor *r, crew__io_op *op);
	/* Send queued submissions to the kernel (nothing for epoll). */
	void (*flush)(crew__reactor *r);
} crew__backend;

struct crew__reactor {
	const crew__backend *be;
	void *impl;        /* the backend's state */
	unsigned pending;  /* submissions not yet flushed (a count; 0: none) */
};

extern const crew__backend crew__backend_uring;
extern const crew__backend crew__backend_epoll;

static inline int crew__reactor_init(crew__reactor *r, const crew__backend *be, unsigned entries,
				     int wake_fd, bool loud)
{
	r->be = be;
	r->impl = NULL;
	r->pending = 0;
	return be->init(r, entries, wake_fd, loud);
}
static inline void crew__reactor_start(crew__reactor *r)
{
	if (r->be->start)
		r->be->start(r);
}
static inline void crew__reactor_fini(crew__reactor *r)
{
	if (r->be)
		r->be->fini(r);
	r->be = NULL;
}
static inline int crew__reactor_poll(crew__reactor *r, bool block, uint64_t deadline)
{
	return r->be->poll(r, block, deadline);
}
static inline void crew__reactor_flush(crew__reactor *r)
{
	if (r->pending) {
		r->pending = 0;
		r->be->flush(r);
	}
}
/* Submissions wait for the worker's next poll (when it runs out of tasks,
 * at its fairness tick, before it parks), so that one syscall carries those
 * of many tasks; past this many they go at once (bounds their delay while
 * the worker keeps finding tasks to run). */
#define CREW_SUBMIT_BATCH 32u
static inline void crew__reactor_flush_batch(crew__reactor *r)
{
	if (r->pending >= CREW_SUBMIT_BATCH)
		crew__reactor_flush(r);
}
/* Any thread: make the reactor's next (or current) blocking poll return. */
void crew__reactor_wake(int wake_fd);

/* io.c, called by a backend on its worker's thread: `op` completed with
 * `res`. The backend does not touch op afterwards. */
void crew__io_complete(crew__io_op *op, int res);

#endif
