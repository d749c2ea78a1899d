/*
 * io.c - running one I/O operation from a task: submit, wait, complete,
 * cancel (the public calls are in calls.c).
 *
 * Overview
 *   A task fills a crew__io_op in its frame, arms a wait (wait.h) and
 *   submits the op to the reactor of the worker it runs on: that worker is
 *   the op's home, and only its thread touches the backend. The home worker
 *   reaps the completion (at a poll: when it runs dry, at the fairness tick,
 *   or when its park ends) and calls crew__io_complete: result, then `done`
 *   (release, the last access to the record), then the wait is settled DONE
 *   and the task woken.
 *
 *   Early end: when the wait is settled otherwise (the deadline's timer, or
 *   the task itself once cancelled), the task asks the home reactor to cancel
 *   the op and keeps waiting until `done`: the buffer is the kernel's until
 *   the completion arrived. The request goes straight to the backend when
 *   the task runs on its home worker; otherwise it is queued on the home
 *   worker (io_cancel_head, a spinlock) and its eventfd written, and the home
 *   worker passes it on at its next poll (crew__io_cancel_drain). The record
 *   stays alive until the home worker marked the request SEEN (release, its
 *   last access): the task waits for that too.
 *
 *   Outcome: the kernel's result when the op completed (a completion that
 *   won the race with a cancel keeps its data: a count or an fd is returned,
 *   never lost), -ETIMEDOUT when it was cancelled by the deadline, else
 *   -ECANCELED.
 */
#include "wait.h"
#include "io.h"
#include <errno.h>
#include <sys/socket.h>

/*
 * Where a task woken by an I/O completion runs: on worker 0 rather than here
 * while worker 0 keeps up (crew__worker_keeps_up), so that I/O-bound tasks
 * gather on as few workers as keep up with them (the task's next operation
 * is homed there). Every busy worker is one more thread for the OS to
 * schedule, and a descheduled worker holds its ring's completions: io_uring
 * posts them only in the thread that submitted. A parked worker 0 is woken
 * (this worker then runs dry and parks in its place). When worker 0 falls
 * behind, the others keep their tasks and steal from it, as for any work.
 * Measured (http-server, 2 workers, wrk -c64 beside it on 2 CPUs): p99 3 ms
 * -> 0.5 ms; see the README.
 */
static crew__worker *io_gather_target(crew__worker *w)
{
	if (w->id == 0)
		return w;
	crew__worker *v = &crew__rt->workers[0];
	return crew__load_32(&v->parked) || crew__worker_keeps_up(v, crew_now()) ? v : w;
}

void crew__io_complete(crew__io_op *op, int res)
{
	crew_task *t = op->task;
	uint32_t seq = op->seq;
	/* A MSG_WAITALL receive ended early (cancel, deadline, close, error)
	 * after a part came: the part, which has left the socket (op->off
	 * counts it where crew runs the attempts: epoll, emulated recvmsg;
	 * io_uring's own receives return it themselves, off stays 0). */
	if (CREW_UNLIKELY(res < 0 && op->off && (op->flags & MSG_WAITALL) &&
			  (op->kind == CREW_IO_RECV || op->kind == CREW_IO_RECVMSG)))
		res = op->off > 0x7fffffff ? 0x7fffffff : (int)op->off;
	op->res = res;
	/* release: res before done; done is our last access to op */
	crew__store_release_32(&op->done, 1);
	crew__wait_settle(t, seq, CREW_WAIT_DONE);
	/* The task itself completing its op at submit (epoll's fast path):
	 * it is running and looks at its wait before suspending. */
	crew__worker *w = crew__worker_current();
	if (w->current == t)
		return;
	/* Completions reaped together run in the order they came (a FIFO, the
	 * due queue: due.c), not newest first as the LIFO slot and the deque
	 * would run them: under load the first connections to become ready
	 * would otherwise wait behind every later one (tail latency). */
	if (crew__task_claim(t)) {
		t->next = NULL;
		crew__worker *to = io_gather_target(w);
		crew__due_push(to, t, t, 1);
		if (to != w) {
			/* store->load: the push before v's parked flag; pairs with
			 * the parker's fence before its last look (idle.c) */
			crew__fence();
			if (crew__load_32(&to->parked))
				crew__reactor_wake(to->wake_fd);
		}
	}
}

/* Ask op's home reactor to cancel it; w is the worker we run on. */
static void io_cancel(crew__worker *w, crew__io_op *op)
{
	crew__worker *home = op->home;
	if (home == w) {
		home->reactor.be->cancel(&home->reactor, op);
		return;
	}
	crew__store_32(&op->cancel_state, CREW_IO_CANCEL_QUEUED); /* published by the unlock */
	crew__spin_lock(&home->io_cancel_lock);
	op->cancel_next = home->io_cancel_head;
	/* relaxed: the owner's unlocked read is a hint; it takes the lock */
	crew__store_ptr(&home->io_cancel_head, op);
	crew__spin_unlock(&home->io_cancel_lock); /* release: the request before the wake */
	crew__reactor_wake(home->wake_fd);
}

void crew__io_cancel_drain(crew__worker *w)
{
	/* the lock's acquire pairs with the requester's unlock: the request and
	 * the op's fields are visible */
	crew__spin_lock(&w->io_cancel_lock);
	crew__io_op *op = w->io_cancel_head;
	crew__store_ptr(&w->io_cancel_head, NULL); /* relaxed: under the lock */
	crew__spin_unlock(&w->io_cancel_lock);
	while (op) {
		crew__io_op *next = op->cancel_next;
		crew_task *t = op->task;
		/* acquire: pairs with crew__io_complete's release (done) */
		if (!crew__load_acquire_32(&op->done))
			w->reactor.be->cancel(&w->reactor, op);
		/* release: our last access to op; the task may return after it */
		crew__store_release_32(&op->cancel_state, CREW_IO_CANCEL_SEEN);
		crew__task_wake(t);
		op = next;
	}
	crew__reactor_flush(&w->reactor);
}

/* The op is ours again: complete, and no cancel request refers to it. */
static bool io_settled(crew__io_op *op)
{
	/* acquire: pairs with the releases of done and cancel_state */
	return crew__load_acquire_32(&op->done) &&
	       crew__load_acquire_32(&op->cancel_state) != CREW_IO_CANCEL_QUEUED;
}

/* A socket's send buffer usually has room, so a send (or sendmsg) is first
 * tried without blocking, as a readiness-based runtime does, and goes
 * through the reactor (suspending) only when it would block.
 *
 * A receive is different: in request/response traffic the next request
 * comes only after our answer, so a receive tried at once almost always
 * fails (measured on http-server under wrk: 99% EAGAIN), a wasted syscall
 * before the reactor's. It is tried at once only when the previous receive
 * on the fd (on this worker) filled its whole buffer: more data was likely
 * waiting (a stream). The hint is per worker, a small table indexed by fd;
 * a wrong guess costs one syscall or one trip through the reactor, never a
 * result. Not a receive with MSG_WAITALL (it wants the whole length), nor a
 * recvmsg (no hint for it: it goes to the reactor, and io_uring's recvmsg
 * tries the socket in the kernel first). */
static bool recv_likely_ready(const crew__worker *w, const crew__io_op *op)
{
	return w->recv_full[op->fd & (CREW_RECV_HINTS - 1)] == op->fd + 1;
}

static void recv_note(crew__worker *w, const crew__io_op *op, long res)
{
	if (op->fd >= 0)
		w->recv_full[op->fd & (CREW_RECV_HINTS - 1)] =
			res > 0 && (size_t)res == op->len ? op->fd + 1 : 0;
}

/* Try a send, or a likely-ready receive, without blocking (not when the
 * backend tries every op at submit anyway). Returns the result, or -EAGAIN:
 * take the reactor's way. */
static long io_try_now(crew__worker *w, crew__io_op *op)
{
	ssize_t n;
	bool recv_once = op->kind == CREW_IO_RECV && !(op->flags & MSG_WAITALL);
	if (recv_once) /* MSG_DONTWAIT: tried, never parked first (it would not wait) */
		op->park_first = !(op->flags & MSG_DONTWAIT) && !recv_likely_ready(w, op);
	if (w->reactor.be->tries_at_submit)
		return -EAGAIN;
	if (op->kind == CREW_IO_SEND)
		n = send(op->fd, op->buf, op->len, op->flags | MSG_DONTWAIT);
	else if (recv_once && !op->park_first)
		n = recv(op->fd, op->buf, op->len, op->flags | MSG_DONTWAIT);
	else if (op->kind == CREW_IO_SENDMSG)
		n = sendmsg(op->fd, op->buf, op->flags | MSG_DONTWAIT);
	else
		return -EAGAIN;
	if (n >= 0)
		return n;
	if (errno == EWOULDBLOCK || errno == EINTR || errno == ENOTSOCK)
		return -EAGAIN;
	return -errno;
}

long crew__io_run(crew__io_op *op)
{
	crew__worker *w;
	crew_task *t;
	int rc = crew__suspend_begin(&w, &t);
	if (rc)
		return rc;
	if (CREW_UNLIKELY(t->scope != NULL) && crew_now() >= t->scope->effective)
		return -ETIMEDOUT; /* the scope is over: nothing is submitted */
	long now = io_try_now(w, op);
	if (now != -EAGAIN) {
		if (op->kind == CREW_IO_RECV)
			recv_note(w, op, now);
		return now;
	}
	crew__wait wt;
	if ((rc = crew__wait_begin(&wt, w, t, UINT64_MAX)) != 0)
		return rc;
	op->task = t;
	op->seq = wt.seq;
	op->home = w;
	op->done = 0;         /* plain: op is ours until submit publishes it */
	op->cancel_state = 0;
	rc = w->reactor.be->submit(&w->reactor, op);
	if (rc) {
		crew__wait_end(&wt);
		return rc; /* not accepted: the backend never touches op again */
	}
	uint32_t how = crew__wait_block(&wt);
	if (how != CREW_WAIT_DONE) {
		w = crew__worker_current(); /* we may have moved */
		/* acquire: pairs with crew__io_complete's release of done */
		if (!crew__load_acquire_32(&op->done))
			io_cancel(w, op);
		while (!io_settled(op))
			crew__task_suspend(t);
	}
	crew__wait_end(&wt);
	int res = op->res;
	/* An op our cancel interrupted rather than cancelled (a splice blocked
	 * in io_uring's worker thread is woken by a signal) was cancelled too. */
	if (res == -EINTR && how != CREW_WAIT_DONE)
		res = -ECANCELED;
	if (res == -ECANCELED && how == CREW_WAIT_TIMEDOUT)
		res = -ETIMEDOUT;
	if (op->kind == CREW_IO_RECV)
		recv_note(crew__worker_current(), op, res);
	return res;
}
