/*
 * reactor_uring.c - the io_uring backend of reactor.h.
 *
 * user_data tags: CREW_UD_WAKE for the eventfd read, CREW_UD_TIMEOUT for the
 * timer timeout. Timeouts are absolute CLOCK_MONOTONIC (IORING_TIMEOUT_ABS),
 * the clock of crew_now(). A new timeout is submitted only when the heap's
 * earliest deadline is earlier than the one already in flight; a superseded
 * timeout fires later and is simply reaped.
 */
#include "reactor.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

enum { CREW_UD_WAKE = 1, CREW_UD_TIMEOUT = 2 };

const char *crew__reactor_name(void)
{
	return "io_uring";
}

int crew__reactor_init(crew__reactor *r, unsigned entries, int wake_fd)
{
	memset(r, 0, sizeof(*r));
	r->wake_fd = wake_fd;
	r->armed_deadline = UINT64_MAX;
	int rc = io_uring_queue_init(entries, &r->ring, 0);
	if (rc < 0) {
		fprintf(stderr, "crew: io_uring_queue_init(%u) failed: %s%s\n", entries, strerror(-rc),
			rc == -ENOSYS || rc == -EPERM ?
				" (io_uring is unavailable here: an old kernel, or blocked by seccomp or "
				"kernel.io_uring_disabled)" :
			rc == -ENOMEM ? " (locked-memory limit too low? see ulimit -l)" : "");
		return rc;
	}
	return 0;
}

void crew__reactor_fini(crew__reactor *r)
{
	io_uring_queue_exit(&r->ring);
}

/* A free SQE; when the queue is full, flush it and try again. NULL when the
 * kernel takes none now (the submit failed, e.g. -EBUSY while the
 * completion queue is full): the caller must not block on what it could
 * not arm. */
static struct io_uring_sqe *reactor_sqe(crew__reactor *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
	if (!sqe && io_uring_submit(&r->ring) >= 0)
		sqe = io_uring_get_sqe(&r->ring);
	return sqe;
}

/* Arm the wake-up read and the timeout. false when either could not be
 * armed: the caller then must not block in the kernel. */
static bool reactor_arm(crew__reactor *r, uint64_t deadline)
{
	struct io_uring_sqe *sqe;
	if (!r->wake_armed) {
		if (!(sqe = reactor_sqe(r)))
			return false;
		io_uring_prep_read(sqe, r->wake_fd, &r->wake_buf, sizeof(r->wake_buf), 0);
		io_uring_sqe_set_data64(sqe, CREW_UD_WAKE);
		r->wake_armed = true;
	}
	if (deadline < r->armed_deadline) {
		if (!(sqe = reactor_sqe(r)))
			return false;
		/* The kernel reads ts when the SQE is submitted, which the caller
		 * does right away (io_uring_submit_and_wait). */
		r->ts.tv_sec = (long long)(deadline / 1000000000u);
		r->ts.tv_nsec = (long long)(deadline % 1000000000u);
		io_uring_prep_timeout(sqe, &r->ts, 0, IORING_TIMEOUT_ABS);
		io_uring_sqe_set_data64(sqe, CREW_UD_TIMEOUT);
		r->armed_deadline = deadline;
	}
	return true;
}

int crew__reactor_poll(crew__reactor *r, bool block, uint64_t deadline)
{
	if (block) {
		int rc;
		if (!reactor_arm(r, deadline)) {
			/* No way to be woken: nap briefly instead of blocking, and
			 * reap below what made the ring refuse. */
			struct timespec nap = { 0, 1000000 };
			nanosleep(&nap, NULL);
		} else {
			do
				rc = io_uring_submit_and_wait(&r->ring, 1);
			while (rc == -EINTR);
			/* Other errors (-EBUSY: completions to reap first; -EAGAIN,
			 * -ENOMEM: the kernel is short) end the wait: we reap, the
			 * worker looks for work, and the next park arms again. */
			(void)rc;
		}
	} else if (io_uring_sq_ready(&r->ring)) {
		io_uring_submit(&r->ring); /* failures: retried at the next poll */
	}
	int n = 0;
	unsigned head;
	struct io_uring_cqe *cqe;
	io_uring_for_each_cqe(&r->ring, head, cqe) {
		switch (cqe->user_data) {
		case CREW_UD_WAKE:
			r->wake_armed = false; /* re-armed before the next block */
			break;
		case CREW_UD_TIMEOUT:
			/* Any timeout firing means the earliest one in flight may be
			 * gone; forget it so that the next block arms afresh (at
			 * worst one redundant timeout). */
			r->armed_deadline = UINT64_MAX;
			break;
		}
		n++;
	}
	io_uring_cq_advance(&r->ring, (unsigned)n);
	return n;
}

void crew__reactor_wake(int wake_fd)
{
	uint64_t one = 1;
	ssize_t rc;
	do
		rc = write(wake_fd, &one, sizeof(one));
	while (rc < 0 && errno == EINTR);
	/* EAGAIN: the counter is saturated, a wake-up is pending anyway */
}
