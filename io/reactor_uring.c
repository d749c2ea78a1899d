/*
 * reactor_uring.c - the io_uring backend of reactor.h (submit and reap;
 * setup is reactor_uring_setup.c).
 *
 * user_data: the address of the operation's crew__io_op, or one of the tags
 * below (never a valid record address). Timeouts are absolute
 * CLOCK_MONOTONIC (IORING_TIMEOUT_ABS), the clock of crew_now(). A new
 * timeout is submitted only when the heap's earliest deadline is earlier than
 * the one already in flight; a superseded timeout fires later and is simply
 * reaped.
 *
 * Submission: submit() fills an SQE and counts it pending; the worker's next
 * poll sends them (when it runs out of tasks, at its fairness tick, when it
 * parks; or once CREW_SUBMIT_BATCH are pending: reactor.h), so that the SQEs
 * of one scheduler round go in one syscall, with the reaping.
 * A full submission queue is flushed and retried; when the kernel takes no
 * more (e.g. -EBUSY while completions wait), the op waits on a backlog that
 * every poll retries: never dropped.
 *
 * Emulated ops: sendfile (io_uring has no opcode for it; two splices through
 * a pipe would need a pipe per call and strand bytes in it when the second
 * one fails or is cancelled), splice (io_uring's waits in its own worker
 * thread holding the pipe's lock, which can put crew's worker thread to
 * sleep in a write to that pipe: reactor_uring_setup.c), and the kinds
 * whose opcode the kernel lacks (the probe). Such an op runs as the epoll
 * backend runs it: a non-blocking
 * attempt on this thread (nowait.c), and while its fd is not ready, an
 * IORING_OP_POLL_ADD for it under the op's own user_data, whose completion
 * means "try again" (after the reap: the retry list). A cancel finds the poll
 * like any op; one that comes between two polls (the first fired, the cancel
 * found nothing) is seen by the flag it leaves: the op is not armed again.
 */
#include "reactor_uring.h"
#include "nowait.h"
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Largest single transfer (Linux caps read/write at this anyway). */
#define URING_MAX_LEN 0x7ffff000u

/* A free SQE; when the queue is full, flush it and try again. NULL when the
 * kernel takes none now: the caller must not block on what it could not
 * arm. */
static struct io_uring_sqe *uring_sqe(crew__uring *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	if (!sqe && io_uring_submit(&u->ring) >= 0)
		sqe = io_uring_get_sqe(&u->ring);
	return sqe;
}

static unsigned uring_len(size_t len)
{
	return len > URING_MAX_LEN ? URING_MAX_LEN : (unsigned)len;
}

static void uring_prep(crew__uring *u, struct io_uring_sqe *sqe, crew__io_op *op)
{
	if (CREW_UNLIKELY(op->be_flags & CREW_URING_EMULATED)) {
		int fd = op->be_flags & CREW_URING_POLL_FD2 ? op->fd2 : op->fd;
		io_uring_prep_poll_add(sqe, fd, op->be_flags & CREW_URING_POLL_OUT ? POLLOUT : POLLIN);
		io_uring_sqe_set_data(sqe, op);
		return;
	}
	switch (op->kind) {
	case CREW_IO_READ:
		io_uring_prep_read(sqe, op->fd, op->buf, uring_len(op->len), op->off);
		break;
	case CREW_IO_WRITE:
		io_uring_prep_write(sqe, op->fd, op->buf, uring_len(op->len), op->off);
		break;
	case CREW_IO_READV:
		io_uring_prep_readv(sqe, op->fd, op->buf, (unsigned)op->len, op->off);
		break;
	case CREW_IO_WRITEV:
		io_uring_prep_writev(sqe, op->fd, op->buf, (unsigned)op->len, op->off);
		break;
	case CREW_IO_RECV:
		io_uring_prep_recv(sqe, op->fd, op->buf, uring_len(op->len), op->flags);
		/* expected to block (io.c): arm the poll without trying first */
		if (op->park_first && u->poll_first)
			sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
		break;
	case CREW_IO_SEND:
		io_uring_prep_send(sqe, op->fd, op->buf, uring_len(op->len), op->flags);
		break;
	case CREW_IO_ACCEPT:
		io_uring_prep_accept(sqe, op->fd, op->addr, (socklen_t *)op->addrlen, op->flags);
		break;
	case CREW_IO_CONNECT:
		io_uring_prep_connect(sqe, op->fd, op->addr, (socklen_t)op->len);
		break;
	case CREW_IO_CLOSE:
		io_uring_prep_close(sqe, op->fd);
		break;
	case CREW_IO_OPENAT:
		io_uring_prep_openat(sqe, op->fd, op->buf, op->flags, op->mode);
		break;
	case CREW_IO_FSYNC:
		io_uring_prep_fsync(sqe, op->fd,
				    op->flags & CREW_IO_DATASYNC ? IORING_FSYNC_DATASYNC : 0);
		break;
	case CREW_IO_POLL:
		io_uring_prep_poll_add(sqe, op->fd, (unsigned)op->flags);
		break;
	case CREW_IO_RECVMSG:
		io_uring_prep_recvmsg(sqe, op->fd, op->buf, (unsigned)op->flags);
		break;
	case CREW_IO_SENDMSG:
		io_uring_prep_sendmsg(sqe, op->fd, op->buf, (unsigned)op->flags);
		break;
	case CREW_IO_SHUTDOWN:
		io_uring_prep_shutdown(sqe, op->fd, op->flags);
		break;
	case CREW_IO_STATX:
		io_uring_prep_statx(sqe, op->fd, op->buf, op->flags, op->mode, op->out);
		break;
	case CREW_IO_SPLICE:   /* never here: always emulated (u->emulated, */
	case CREW_IO_SENDFILE: /* reactor_uring_setup.c) */
	case CREW_IO_KINDS:
		io_uring_prep_nop(sqe);
		break;
	}
	io_uring_sqe_set_data(sqe, op);
}

/*
 * crew_close: a request in flight holds its own reference to the file, so
 * closing the fd neither ends it nor lets the peer see the end: the ring's
 * other requests on fd are cancelled first (IORING_ASYNC_CANCEL_FD, 5.19+,
 * in the same submission and before the close, which the kernel issues in
 * order; it looks fd up when it runs). They end with -EBADF, as on epoll
 * (uring_reap). The kernel matches the file, not the number: requests on
 * another fd of the same file (a dup) are cancelled too. The close is
 * recorded (closed_fd) so that the reap tells them apart: such a request
 * goes to the kernel again (uring_closed_since). false: no SQE for the
 * cancel now; the close waits on the backlog and comes here again.
 */
static bool uring_close_cancels(crew__reactor *r, crew__uring *u, crew__io_op *op)
{
	if (op->kind != CREW_IO_CLOSE || (op->be_flags & CREW_URING_FD_CANCELLED))
		return true;
	struct io_uring_sqe *sqe = uring_sqe(u);
	if (!sqe)
		return false;
	io_uring_prep_cancel_fd(sqe, op->fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, CREW_UD_CANCEL);
	op->be_flags |= CREW_URING_FD_CANCELLED;
	u->closed_fd[u->closes++ & (CREW_URING_CLOSES - 1)] = op->fd;
	r->pending++;
	return true;
}

static void backlog_push(crew__uring *u, crew__io_op *op)
{
	op->next = NULL;
	if (u->backlog_tail)
		u->backlog_tail->next = op;
	else
		u->backlog_head = op;
	u->backlog_tail = op;
}

/* Send what waits on the backlog: operations, then cancel requests. */
static void uring_drain_backlog(crew__reactor *r, crew__uring *u)
{
	struct io_uring_sqe *sqe;
	while (u->backlog_head && uring_close_cancels(r, u, u->backlog_head) && (sqe = uring_sqe(u))) {
		crew__io_op *op = u->backlog_head;
		u->backlog_head = op->next;
		if (!u->backlog_head)
			u->backlog_tail = NULL;
		op->be_flags &= ~CREW_URING_BACKLOG;
		uring_prep(u, sqe, op);
		r->pending++;
	}
	while (u->ncancel && (sqe = uring_sqe(u))) {
		io_uring_prep_cancel64(sqe, u->cancel_keys[--u->ncancel], 0);
		io_uring_sqe_set_data64(sqe, CREW_UD_CANCEL);
		r->pending++;
	}
}

/* A cancel request that found no SQE waits here as its key (the op's
 * address; the op itself may complete meanwhile and go: then its key is
 * dropped, uring_forget_cancel). */
static void uring_defer_cancel(crew__uring *u, crew__io_op *op)
{
	while (u->ncancel == u->cancel_cap) {
		size_t cap = u->cancel_cap ? 2 * u->cancel_cap : 16;
		uint64_t *k = realloc(u->cancel_keys, cap * sizeof(*k));
		if (k) {
			u->cancel_keys = k;
			u->cancel_cap = cap;
			break;
		}
		/* no memory: wait for a free SQE instead (never drop it) */
		struct io_uring_sqe *sqe = uring_sqe(u);
		if (sqe) {
			io_uring_prep_cancel(sqe, op, 0);
			io_uring_sqe_set_data64(sqe, CREW_UD_CANCEL);
			return;
		}
		struct timespec nap = { 0, 100000 };
		nanosleep(&nap, NULL);
	}
	u->cancel_keys[u->ncancel++] = (uint64_t)(uintptr_t)op;
}

static void uring_forget_cancel(crew__uring *u, uint64_t key)
{
	for (size_t i = 0; i < u->ncancel; i++)
		if (u->cancel_keys[i] == key)
			u->cancel_keys[i--] = u->cancel_keys[--u->ncancel];
}

/* Give op an SQE, or put it on the backlog. */
static void uring_queue(crew__reactor *r, crew__uring *u, crew__io_op *op)
{
	struct io_uring_sqe *sqe =
		u->backlog_head || !uring_close_cancels(r, u, op) ? NULL : uring_sqe(u);
	if (!sqe) {
		op->be_flags |= CREW_URING_BACKLOG;
		backlog_push(u, op);
		return;
	}
	uring_prep(u, sqe, op);
	r->pending++;
}

/* An emulated op's next attempt: it ends (completed), or waits for its fd
 * again (a poll). */
static void uring_emul_step(crew__reactor *r, crew__uring *u, crew__io_op *op)
{
	int res = crew__io_dontwait(op, crew__io_try_nowait(op));
	if (!crew__io_waiting(res)) {
		crew__io_complete(op, res);
		return;
	}
	op->be_flags = CREW_URING_EMULATED | (res == CREW_IO_WAIT_IN ? 0 : CREW_URING_POLL_OUT) |
		       (res == CREW_IO_WAIT_OUT2 ? CREW_URING_POLL_FD2 : 0);
	uring_queue(r, u, op);
}

/* A completion that is a step of op, not its end: its poll found the fd
 * ready (an emulated op). */
static bool uring_step(const crew__io_op *op, int res)
{
	/* revents; an error (-ECANCELED, -EBADF) ends it */
	return (op->be_flags & CREW_URING_EMULATED) && res >= 0;
}

/*
 * -EAGAIN that is not an answer: io_uring waits for an O_NONBLOCK pipe or
 * socket to be ready (a poll, then the attempt again), yet when several
 * readers share the fd it sometimes passes on the file's -EAGAIN (likely:
 * after polls that lost their data to another reader it hands the attempt
 * to a worker thread of its own, where the O_NONBLOCK file says so): 100-700
 * per run of 8 tasks reading one pipe a byte at a time, never with blocking
 * fds or one reader. Nothing was transferred, so the op goes to the kernel
 * again. Not for a MSG_DONTWAIT call (its -EAGAIN is the answer) nor a
 * connect (-EAGAIN there means no local port).
 */
static bool uring_again(const crew__io_op *op, int res)
{
	/* (a cancelled one goes through the retry list too: it ends
	 * -ECANCELED there) */
	if (res != -EAGAIN || (op->be_flags & CREW_URING_EMULATED) || crew__io_no_wait(op))
		return false;
	switch (op->kind) {
	case CREW_IO_READ:
	case CREW_IO_WRITE:
	case CREW_IO_READV:
	case CREW_IO_WRITEV:
	case CREW_IO_ACCEPT:
	case CREW_IO_RECV:
	case CREW_IO_SEND:
	case CREW_IO_RECVMSG:
	case CREW_IO_SENDMSG:
		return true;
	default:
		return false;
	}
}

/* op ended -ECANCELED without its task asking: was that the cancel of a
 * crew_close of its own fd (one after op was submitted), or of another fd
 * of the same file? When more closes came since than are recorded, it
 * cannot tell: the close's (-EBADF, as before). */
static bool uring_closed_since(const crew__uring *u, const crew__io_op *op)
{
	uint32_t since = u->closes - op->be_seq;
	if (since > CREW_URING_CLOSES)
		return true;
	for (uint32_t i = 0; i < since; i++) {
		int fd = u->closed_fd[(op->be_seq + i) & (CREW_URING_CLOSES - 1)];
		if (fd == op->fd || (fd == op->fd2 && (op->kind == CREW_IO_SPLICE ||
						       op->kind == CREW_IO_SENDFILE)))
			return true;
	}
	return false;
}

static int uring_submit(crew__reactor *r, crew__io_op *op)
{
	crew__uring *u = r->impl;
	op->be_flags = 0;
	op->be_seq = u->closes;
	if (CREW_UNLIKELY(u->emulated & (1u << op->kind)))
		uring_emul_step(r, u, op); /* tried at once, as the epoll backend does */
	else
		uring_queue(r, u, op);
	return 0;
}

static void uring_cancel(crew__reactor *r, crew__io_op *op)
{
	crew__uring *u = r->impl;
	op->be_flags |= CREW_URING_CANCELLING; /* not armed again (uring_reap's retries) */
	if (op->be_flags & CREW_URING_BACKLOG) {
		/* never reached the kernel: unlink it and complete it here */
		crew__io_op **pp = &u->backlog_head, *prev = NULL;
		while (*pp && *pp != op) {
			prev = *pp;
			pp = &(*pp)->next;
		}
		if (*pp) {
			*pp = op->next;
			if (u->backlog_tail == op)
				u->backlog_tail = prev;
			crew__io_complete(op, -ECANCELED);
			return;
		}
	}
	struct io_uring_sqe *sqe = uring_sqe(u);
	if (!sqe) { /* retried with the backlog; the op stays in flight */
		uring_defer_cancel(u, op);
		return;
	}
	io_uring_prep_cancel(sqe, op, 0);
	io_uring_sqe_set_data64(sqe, CREW_UD_CANCEL);
	r->pending++;
}

static void uring_flush(crew__reactor *r)
{
	crew__uring *u = r->impl;
	if (io_uring_submit(&u->ring) < 0)
		r->pending = 1; /* retried at the next flush or poll */
}

/* Arm the wake-up read and the timeout. false when either could not be
 * armed: the caller then must not block in the kernel. */
static bool uring_arm(crew__uring *u, uint64_t deadline)
{
	struct io_uring_sqe *sqe;
	if (!u->wake_armed) {
		if (!(sqe = uring_sqe(u)))
			return false;
		io_uring_prep_read(sqe, u->wake_fd, &u->wake_buf, sizeof(u->wake_buf), 0);
		io_uring_sqe_set_data64(sqe, CREW_UD_WAKE);
		u->wake_armed = true;
	}
	if (deadline < u->armed_deadline) {
		if (!(sqe = uring_sqe(u)))
			return false;
		/* The kernel reads ts when the SQE is submitted, which the caller
		 * does right away (io_uring_submit_and_wait). */
		u->ts.tv_sec = (long long)(deadline / 1000000000u);
		u->ts.tv_nsec = (long long)(deadline % 1000000000u);
		io_uring_prep_timeout(sqe, &u->ts, 0, IORING_TIMEOUT_ABS);
		io_uring_sqe_set_data64(sqe, CREW_UD_TIMEOUT);
		u->armed_deadline = deadline;
	}
	return true;
}

/* -ERESTARTSYS, a kernel-internal errno: a splice that io_uring's worker
 * thread ran leaks it when our cancel interrupts it. It is an -EINTR. */
#define URING_ERESTARTSYS 512

static int uring_reap(crew__reactor *r, crew__uring *u)
{
	int n = 0;
	unsigned head;
	struct io_uring_cqe *cqe;
	io_uring_for_each_cqe(&u->ring, head, cqe) {
		switch (cqe->user_data) {
		case CREW_UD_WAKE:
			u->wake_armed = false; /* re-armed before the next block */
			break;
		case CREW_UD_TIMEOUT:
			/* Any timeout firing means the earliest one in flight may be
			 * gone; forget it so that the next block arms afresh (at
			 * worst one redundant timeout). */
			u->armed_deadline = UINT64_MAX;
			break;
		case CREW_UD_CANCEL:
			break; /* the cancelled op completes with its own CQE */
		default: {
			crew__io_op *op = (crew__io_op *)(uintptr_t)cqe->user_data;
			int res = cqe->res == -URING_ERESTARTSYS ? -EINTR : cqe->res;
			/* cancelled, but not by its task: a crew_close of its fd,
			 * or of another fd of the same file (then, nothing done,
			 * it goes to the kernel again) */
			bool other_fd = false;
			if (CREW_UNLIKELY(res == -ECANCELED) && !(op->be_flags & CREW_URING_CANCELLING)) {
				other_fd = !uring_closed_since(u, op);
				res = -EBADF;
			}
			if (CREW_UNLIKELY(u->ncancel))
				uring_forget_cancel(u, cqe->user_data);
			if (CREW_UNLIKELY(uring_step(op, res))) {
				op->next = u->retry; /* tried once the CQ is consumed */
				u->retry = op;
			} else if (CREW_UNLIKELY(other_fd || uring_again(op, res))) {
				op->be_flags |= CREW_URING_AGAIN;
				op->next = u->retry; /* queued once the CQ is consumed */
				u->retry = op;
			} else {
				crew__io_complete(op, res);
			}
			break;
		}
		}
		n++;
	}
	io_uring_cq_advance(&u->ring, (unsigned)n);
	while (CREW_UNLIKELY(u->retry != NULL)) {
		crew__io_op *op = u->retry;
		u->retry = op->next;
		if (op->be_flags & CREW_URING_CANCELLING) {
			crew__io_complete(op, -ECANCELED);
		} else if (op->be_flags & CREW_URING_AGAIN) {
			op->be_flags &= ~(uint32_t)CREW_URING_AGAIN;
			uring_queue(r, u, op);
		} else {
			uring_emul_step(r, u, op);
		}
	}
	return n;
}

static int uring_poll(crew__reactor *r, bool block, uint64_t deadline)
{
	crew__uring *u = r->impl;
	r->pending = 0;
	if (block) {
		int rc;
		if (!uring_arm(u, deadline)) {
			/* No way to be woken: nap briefly instead of blocking, and
			 * reap below what made the ring refuse. */
			struct timespec nap = { 0, 1000000 };
			nanosleep(&nap, NULL);
		} else {
			do
				rc = io_uring_submit_and_wait(&u->ring, 1);
			while (rc == -EINTR);
			/* Other errors (-EBUSY: completions to reap first; -EAGAIN,
			 * -ENOMEM: the kernel is short) end the wait: we reap, the
			 * worker looks for work, and the next park arms again. */
			(void)rc;
		}
	} else if (io_uring_sq_ready(&u->ring)) {
		/* DEFER_TASKRUN: only GETEVENTS runs the completions' task work */
		if ((u->defer ? io_uring_submit_and_get_events(&u->ring) : io_uring_submit(&u->ring)) < 0)
			r->pending = 1; /* retried at the next poll */
	} else if (IO_URING_READ_ONCE(*u->ring.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) {
		/* completions wait for us to enter the kernel: their task work
		 * (COOP_TASKRUN), or a CQ that overflowed into the kernel's list,
		 * which only an enter flushes (a worker kept busy never parks) */
		(void)io_uring_get_events(&u->ring); /* errors: the next poll retries */
	}
	int n = uring_reap(r, u);
	if (u->backlog_head || u->ncancel)
		uring_drain_backlog(r, u);
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

const crew__backend crew__backend_uring = {
	.name = "io_uring",
	.tries_at_submit = false,
	.init = crew__uring_init,
	.start = crew__uring_start,
	.fini = crew__uring_fini,
	.poll = uring_poll,
	.submit = uring_submit,
	.cancel = uring_cancel,
	.flush = uring_flush,
};
