/*
 * reactor_uring.h - the io_uring backend's private state (io/ only: the
 * runtime sees a crew__reactor whose impl points to this).
 */
#ifndef CREW_REACTOR_URING_H
#define CREW_REACTOR_URING_H

#include "reactor.h"
#include <liburing.h>

#ifndef CREW_UNLIKELY
#define CREW_UNLIKELY(x) __builtin_expect(!!(x), 0)
#endif

/* user_data tags (never the address of a record) */
enum { CREW_UD_WAKE = 1, CREW_UD_TIMEOUT = 2, CREW_UD_CANCEL = 3 };
/* crew__io_op.be_flags. EMULATED: the op runs as non-blocking attempts
 * (nowait.c) between polls of its fd (reactor_uring.c); POLL_*: what the
 * next poll waits for; CANCELLING: a cancel was asked for (an emulated op
 * is not armed again); FD_CANCELLED: a close whose cancel of the ring's
 * other requests on its fd has been queued (reactor_uring.c, uring_close);
 * AGAIN: its -EAGAIN was not an answer, it goes to the kernel again. */
enum {
	CREW_URING_BACKLOG = 1,
	CREW_URING_EMULATED = 2,
	CREW_URING_POLL_OUT = 4, /* else POLLIN */
	CREW_URING_POLL_FD2 = 8, /* on op->fd2, else op->fd */
	CREW_URING_CANCELLING = 16,
	CREW_URING_FD_CANCELLED = 32,
	CREW_URING_AGAIN = 64, /* to the kernel again after its -EAGAIN (reap) */
};

#define CREW_URING_CLOSES 64 /* power of two */

typedef struct crew__uring {
	struct io_uring ring;
	int wake_fd;
	unsigned entries;
	uint64_t wake_buf;          /* target of the armed eventfd read */
	bool wake_armed;
	bool defer;                 /* DEFER_TASKRUN: completions need GETEVENTS */
	bool poll_first;            /* the kernel knows IORING_RECVSEND_POLL_FIRST */
	uint64_t armed_deadline;    /* earliest timeout in flight, UINT64_MAX: none */
	struct __kernel_timespec ts;
	crew__io_op *backlog_head, *backlog_tail; /* ops that found no SQE yet */
	uint64_t *cancel_keys;      /* cancel requests that found no SQE yet */
	size_t ncancel, cancel_cap;
	uint32_t emulated;          /* 1 << kind: kinds run as emulated ops */
	crew__io_op *retry;         /* emulated ops to try again after a reap */
	/* the fds of the last CREW_URING_CLOSES crew_closes, and their numbers
	 * in the count of closes: which ops a close's cancel was for (see
	 * uring_close_cancels) */
	uint32_t closes;
	int closed_fd[CREW_URING_CLOSES];
} crew__uring;

/* Tests: kinds to run as emulated ops as if the kernel lacked their opcode
 * (set before crew_run; only kinds nowait.c handles take effect). */
extern uint32_t crew__uring_force_emulate;

int crew__uring_init(crew__reactor *r, unsigned entries, int wake_fd, bool loud);
void crew__uring_start(crew__reactor *r);
void crew__uring_fini(crew__reactor *r);

#endif
