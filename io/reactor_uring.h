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
/* crew__io_op.be_flags */
enum { CREW_URING_BACKLOG = 1 };

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
} crew__uring;

int crew__uring_init(crew__reactor *r, unsigned entries, int wake_fd, bool loud);
void crew__uring_start(crew__reactor *r);
void crew__uring_fini(crew__reactor *r);

#endif
