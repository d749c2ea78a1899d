/*
 * reactor_epoll.c - the epoll backend of reactor.h, for where io_uring is
 * unavailable (seccomp profiles of container runtimes, kernels without it).
 *
 * Readiness-based: submit() tries the operation at once without blocking
 * (MSG_DONTWAIT, RWF_NOWAIT, a non-blocking connect); on EAGAIN it parks the
 * op on its fd's list and arms the fd in the worker's epoll set
 * (EPOLLONESHOT, data = the fd); when the fd is ready, the ops whose interest
 * it meets are tried again. Regular files cannot be polled: their reads and
 * writes, open, close, fsync, fdatasync and statx run at once on the worker's
 * thread (blocking it for the duration of the syscall, as page-cache I/O
 * does anywhere). The message calls, shutdown, fsync, statx, splice and
 * sendfile are tried by nowait.c (shared with the io_uring backend's
 * emulation); a splice or sendfile waits for its input to become readable
 * or for its output (op->fd2) to become writable: it is parked on that fd
 * (EP_FD2), and moves when the other one is the next to wait for.
 * cancel() unlinks a parked op and completes it with -ECANCELED: an op is
 * only ever executed by this thread, so nothing touches its buffer later.
 * Timers: the blocking epoll_wait's timeout, rounded up to the millisecond
 * (never early). Wake-ups: the worker's eventfd is in the set.
 *
 * A blocking fd (no O_NONBLOCK): reads and writes use RWF_NOWAIT where the
 * file supports it, else readiness then a plain call, which may block the
 * worker if another thread drains the fd first; accept and connect are made
 * non-blocking for the duration of the call. Prefer O_NONBLOCK fds.
 */
#define _GNU_SOURCE
#include "nowait.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

uint64_t crew_now(void);

/* crew__io_op.be_flags; EP_FD2: parked on op->fd2 (splice, sendfile); EP_PRI:
 * a crew_poll for POLLPRI (TCP urgent data wakes EPOLLPRI, not EPOLLIN);
 * EP_RDHUP: one for POLLRDHUP; EP_POLL: a crew_poll, which waits for what it
 * asked and nothing else (for POLLRDHUP alone, or no event at all: errors
 * and hang-ups, EPOLLIN armed instead woke it for every byte unread and
 * the worker spun) */
enum {
	EP_IN = 1,
	EP_OUT = 2,
	EP_CONNECTING = 4,
	EP_NOWAIT_NO = 8,
	EP_FD2 = 16,
	EP_PRI = 32,
	EP_RDHUP = 64,
	EP_POLL = 128,
};

typedef struct ep_fd {
	crew__io_op *head; /* ops parked on this fd, FIFO */
	bool in_set;       /* added to the epoll set (may have gone with a close) */
} ep_fd;

typedef struct crew__epoll {
	int epfd;
	int wake_fd;
	ep_fd *fds;
	size_t nfds;
	size_t parked; /* ops parked on some fd */
} crew__epoll;

static int ep_init(crew__reactor *r, unsigned entries, int wake_fd, bool loud)
{
	(void)entries;
	crew__epoll *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->wake_fd = wake_fd;
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e->epfd < 0) {
		int err = -errno;
		if (loud)
			fprintf(stderr, "crew: epoll_create1 failed: %s\n", strerror(errno));
		free(e);
		return err;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)wake_fd };
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, wake_fd, &ev) != 0) {
		int err = -errno;
		close(e->epfd);
		free(e);
		return err;
	}
	r->impl = e;
	return 0;
}

static void ep_fini(crew__reactor *r)
{
	crew__epoll *e = r->impl;
	if (!e)
		return;
	close(e->epfd);
	free(e->fds);
	free(e);
	r->impl = NULL;
}

static ep_fd *ep_slot(crew__epoll *e, int fd)
{
	if ((size_t)fd >= e->nfds) {
		size_t n = e->nfds ? e->nfds : 64;
		while (n <= (size_t)fd)
			n *= 2;
		ep_fd *v = realloc(e->fds, n * sizeof(*v));
		if (!v)
			return NULL;
		memset(v + e->nfds, 0, (n - e->nfds) * sizeof(*v));
		e->fds = v;
		e->nfds = n;
	}
	return &e->fds[fd];
}

static int ep_neg(ssize_t rc)
{
	return rc < 0 ? -errno : (int)(rc > 0x7fffffff ? 0x7fffffff : rc);
}

static bool ep_again(int err)
{
	return err == -EAGAIN || err == -EWOULDBLOCK;
}

/* The read/write family: positional calls run at once (files); the rest try
 * without blocking. `ready`: the fd was reported ready. */
static int ep_rw(crew__io_op *op, bool write, bool ready)
{
	struct iovec one = { op->buf, op->len }, *iov = &one;
	int cnt = 1;
	if (op->kind == CREW_IO_READV || op->kind == CREW_IO_WRITEV) {
		iov = op->buf;
		cnt = (int)op->len;
	}
	if (op->off != UINT64_MAX) {
		ssize_t rc = write ? pwritev(op->fd, iov, cnt, (off_t)op->off) :
				     preadv(op->fd, iov, cnt, (off_t)op->off);
		return ep_neg(rc);
	}
	ssize_t rc;
	if (!(op->be_flags & EP_NOWAIT_NO)) {
		rc = write ? pwritev2(op->fd, iov, cnt, -1, RWF_NOWAIT) :
			     preadv2(op->fd, iov, cnt, -1, RWF_NOWAIT);
		if (rc >= 0)
			return ep_neg(rc);
		if (errno != EOPNOTSUPP && errno != EINVAL)
			return ep_again(-errno) ? (write ? CREW_IO_WAIT_OUT : CREW_IO_WAIT_IN) : -errno;
		op->be_flags |= EP_NOWAIT_NO; /* this file has no RWF_NOWAIT */
	}
	if (!ready) { /* readiness first: a plain call could block */
		struct pollfd p = { op->fd, (short)(write ? POLLOUT : POLLIN), 0 };
		if (poll(&p, 1, 0) == 0)
			return write ? CREW_IO_WAIT_OUT : CREW_IO_WAIT_IN;
	}
	rc = write ? writev(op->fd, iov, cnt) : readv(op->fd, iov, cnt);
	int res = ep_neg(rc);
	return ep_again(res) ? (write ? CREW_IO_WAIT_OUT : CREW_IO_WAIT_IN) : res;
}

static int ep_accept(crew__io_op *op)
{
	int saved = O_NONBLOCK, rc = crew__io_nonblock(op->fd, &saved);
	if (rc)
		return rc;
	rc = accept4(op->fd, op->addr, (socklen_t *)op->addrlen, op->flags);
	rc = rc < 0 ? -errno : rc;
	crew__io_restore(op->fd, saved);
	return ep_again(rc) ? CREW_IO_WAIT_IN : rc;
}

static int ep_connect(crew__io_op *op)
{
	if (op->be_flags & EP_CONNECTING) { /* writable: the connect ended */
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			return -errno;
		return err == EINPROGRESS || err == EALREADY ? CREW_IO_WAIT_OUT : -err;
	}
	int saved = O_NONBLOCK, rc = crew__io_nonblock(op->fd, &saved);
	if (rc)
		return rc;
	rc = connect(op->fd, op->addr, (socklen_t)op->len) == 0 ? 0 : -errno;
	crew__io_restore(op->fd, saved);
	if (rc == -EINPROGRESS || rc == -EAGAIN) {
		op->be_flags |= EP_CONNECTING;
		return CREW_IO_WAIT_OUT;
	}
	return rc;
}

/* recv; with MSG_WAITALL on a stream, keep what came (op->off counts it,
 * unused by recv otherwise) and wait for the rest, as io_uring's recv does
 * (a datagram socket's receive ends with its first message). */
static int ep_recv(crew__io_op *op)
{
	size_t have = op->flags & MSG_WAITALL ? (size_t)op->off : 0;
	int rc = ep_neg(recv(op->fd, (char *)op->buf + have, op->len - have,
			     op->flags | MSG_DONTWAIT));
	if (!(op->flags & MSG_WAITALL))
		return ep_again(rc) ? CREW_IO_WAIT_IN : rc;
	if (rc > 0)
		op->off = have += (size_t)rc;
	if (rc > 0 && have < op->len && crew__io_gathers(op->fd))
		return CREW_IO_WAIT_IN;
	if (ep_again(rc))
		return CREW_IO_WAIT_IN;
	return have ? (int)have : rc; /* all, or EOF/error after a part: the part */
}

/* Try op once. A final result (>= 0 or -errno), or CREW_IO_WAIT_IN/OUT. */
static int ep_try(crew__epoll *e, crew__io_op *op, bool ready)
{
	switch (op->kind) {
	case CREW_IO_READ:
	case CREW_IO_READV:
		return ep_rw(op, false, ready);
	case CREW_IO_WRITE:
	case CREW_IO_WRITEV:
		return ep_rw(op, true, ready);
	case CREW_IO_RECV:
		return ep_recv(op);
	case CREW_IO_SEND: {
		int rc = ep_neg(send(op->fd, op->buf, op->len, op->flags | MSG_DONTWAIT));
		return ep_again(rc) ? CREW_IO_WAIT_OUT : rc;
	}
	case CREW_IO_ACCEPT:
		return ep_accept(op);
	case CREW_IO_CONNECT:
		return ep_connect(op);
	case CREW_IO_CLOSE: {
		/* ops of this worker parked on fd would never hear of it again */
		if ((size_t)op->fd < e->nfds) {
			ep_fd *s = &e->fds[op->fd];
			crew__io_op *p = s->head;
			s->head = NULL;
			s->in_set = false;
			while (p) {
				crew__io_op *next = p->next;
				e->parked--;
				crew__io_complete(p, -EBADF);
				p = next;
			}
		}
		return close(op->fd) == 0 ? 0 : -errno;
	}
	case CREW_IO_OPENAT: {
		int fd = openat(op->fd, op->buf, op->flags, (mode_t)op->mode);
		return fd < 0 ? -errno : fd;
	}
	case CREW_IO_POLL: {
		struct pollfd p = { op->fd, (short)op->flags, 0 };
		int n = poll(&p, 1, 0);
		if (n < 0)
			return -errno;
		if (p.revents & POLLNVAL)
			return -EBADF;
		return n ? p.revents : (op->flags & POLLOUT) && !(op->flags & POLLIN) ? CREW_IO_WAIT_OUT :
								      CREW_IO_WAIT_IN;
	}
	case CREW_IO_FSYNC:
	case CREW_IO_RECVMSG:
	case CREW_IO_SENDMSG:
	case CREW_IO_SHUTDOWN:
	case CREW_IO_STATX:
	case CREW_IO_SPLICE:
	case CREW_IO_SENDFILE:
		return crew__io_try_nowait(op);
	case CREW_IO_KINDS:
		break;
	}
	return -EINVAL;
}

/* The fd op is parked on. */
static int ep_op_fd(const crew__io_op *op)
{
	return op->be_flags & EP_FD2 ? op->fd2 : op->fd;
}

/* Record what op waits for: the wait result `res` of a try. */
static void ep_set_wait(crew__io_op *op, int res)
{
	op->be_flags &= ~(uint32_t)(EP_IN | EP_OUT | EP_FD2);
	op->be_flags |= (res == CREW_IO_WAIT_IN ? EP_IN : EP_OUT) |
			(res == CREW_IO_WAIT_OUT2 ? EP_FD2 : 0);
}

/* (Re-)arm fd for the union of its parked ops' interests. 0 or -errno. */
static int ep_arm(crew__epoll *e, int fd, ep_fd *s)
{
	uint32_t want = 0;
	for (crew__io_op *p = s->head; p; p = p->next)
		want |= (p->be_flags & EP_IN ? EPOLLIN : 0) | (p->be_flags & EP_OUT ? EPOLLOUT : 0) |
			(p->be_flags & EP_PRI ? EPOLLPRI : 0) | (p->be_flags & EP_RDHUP ? EPOLLRDHUP : 0);
	/* none wanted: a crew_poll for errors and hang-ups only (epoll always
	 * reports them) */
	if (!s->head)
		return 0;
	struct epoll_event ev = { .events = want | EPOLLONESHOT, .data.u64 = (uint64_t)fd };
	int rc = epoll_ctl(e->epfd, s->in_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
	if (rc != 0 && errno == ENOENT) /* closed and reopened since: add afresh */
		rc = epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev);
	else if (rc != 0 && errno == EEXIST)
		rc = epoll_ctl(e->epfd, EPOLL_CTL_MOD, fd, &ev);
	if (rc != 0)
		return -errno;
	s->in_set = true;
	return 0;
}

/* Park op, whose try said `res` (a wait), on the fd it waits for (unless
 * its wait is recorded already). 0: parked, or completed (a regular file
 * cannot be polled: it ran at once); else -errno, and it is neither. */
static int ep_park(crew__epoll *e, crew__io_op *op, int res)
{
	if (op->kind == CREW_IO_POLL) /* whatever the caller asked for */
		op->be_flags |= EP_POLL | (op->flags & (POLLIN | POLLRDNORM) ? EP_IN : 0) |
				(op->flags & (POLLOUT | POLLWRNORM) ? EP_OUT : 0) |
				(op->flags & POLLPRI ? EP_PRI : 0) | (op->flags & POLLRDHUP ? EP_RDHUP : 0);
	if (!(op->be_flags & (EP_IN | EP_OUT | EP_PRI | EP_POLL)))
		ep_set_wait(op, res);
	int fd = ep_op_fd(op);
	/* past the table: an fd that is not open must not grow it (zeroed
	 * memory up to its number, 16 bytes per fd) */
	if (fd < 0 || ((size_t)fd >= e->nfds && fcntl(fd, F_GETFD) < 0))
		return -EBADF;
	ep_fd *s = ep_slot(e, fd);
	if (!s)
		return -ENOMEM;
	op->next = NULL;
	crew__io_op **pp = &s->head;
	while (*pp)
		pp = &(*pp)->next;
	*pp = op;
	int rc = ep_arm(e, fd, s);
	if (rc) {
		*pp = NULL; /* not parked: the caller gets the error */
		if (rc == -EPERM) { /* a regular file: cannot be polled, run it */
			op->be_flags |= EP_NOWAIT_NO;
			res = ep_try(e, op, true);
			crew__io_complete(op, crew__io_waiting(res) ? -EAGAIN : res);
			return 0;
		}
		return rc;
	}
	e->parked++;
	return 0;
}

static int ep_submit(crew__reactor *r, crew__io_op *op)
{
	crew__epoll *e = r->impl;
	op->be_flags = 0;
	/* a receive that would likely block: wait for readiness (a oneshot
	 * arm reports data already there at once) instead of a futile try */
	int res = op->park_first && op->kind == CREW_IO_RECV && !(op->flags & MSG_WAITALL) ?
			  CREW_IO_WAIT_IN :
			  crew__io_dontwait(op, ep_try(e, op, false));
	if (!crew__io_waiting(res)) {
		crew__io_complete(op, res);
		return 0;
	}
	return ep_park(e, op, res);
}

static void ep_unlink(crew__epoll *e, crew__io_op *op)
{
	int fd = ep_op_fd(op);
	if (fd < 0 || (size_t)fd >= e->nfds)
		return;
	for (crew__io_op **pp = &e->fds[fd].head; *pp; pp = &(*pp)->next) {
		if (*pp == op) {
			*pp = op->next;
			e->parked--;
			crew__io_complete(op, -ECANCELED);
			return;
		}
	}
}

static void ep_cancel(crew__reactor *r, crew__io_op *op)
{
	ep_unlink(r->impl, op); /* not parked: it completed already */
}

static void ep_flush(crew__reactor *r)
{
	(void)r;
}

/* fd is ready for `events`: retry the ops that wanted it, re-arm. */
static void ep_dispatch(crew__epoll *e, int fd, uint32_t events)
{
	if ((size_t)fd >= e->nfds)
		return;
	ep_fd *s = &e->fds[fd];
	bool all = events & (EPOLLERR | EPOLLHUP);
	crew__io_op **pp = &s->head, *movers = NULL;
	while (*pp) {
		crew__io_op *op = *pp;
		bool want = all || ((op->be_flags & EP_IN) && (events & EPOLLIN)) ||
			    ((op->be_flags & EP_PRI) && (events & EPOLLPRI)) ||
			    ((op->be_flags & EP_OUT) && (events & EPOLLOUT)) ||
			    ((op->be_flags & EP_RDHUP) && (events & EPOLLRDHUP));
		int res = want ? ep_try(e, op, true) : CREW_IO_WAIT_IN;
		if (crew__io_waiting(res)) {
			if (want && op->kind != CREW_IO_POLL) {
				ep_set_wait(op, res);
				if (ep_op_fd(op) != fd) { /* now waits for its other fd */
					*pp = op->next;
					e->parked--;
					op->next = movers;
					movers = op;
					continue;
				}
			}
			pp = &op->next;
			continue;
		}
		*pp = op->next;
		e->parked--;
		crew__io_complete(op, res);
	}
	int rc = ep_arm(e, fd, s);
	if (rc) { /* cannot wait any more: fail what is left */
		crew__io_op *p = s->head;
		s->head = NULL;
		while (p) {
			crew__io_op *next = p->next;
			e->parked--;
			crew__io_complete(p, rc);
			p = next;
		}
	}
	/* parked on their other fd last: ep_slot may move e->fds (and s) */
	while (movers) {
		crew__io_op *op = movers;
		movers = op->next;
		if ((rc = ep_park(e, op, 0)) != 0)
			crew__io_complete(op, rc);
	}
}

static int ep_poll(crew__reactor *r, bool block, uint64_t deadline)
{
	crew__epoll *e = r->impl;
	int timeout = 0;
	if (block) {
		if (deadline == UINT64_MAX) {
			timeout = -1;
		} else {
			uint64_t now = crew_now();
			uint64_t ms = deadline > now ? (deadline - now + 999999) / 1000000 : 0;
			timeout = ms > 3600000 ? 3600000 : (int)ms;
		}
	} else if (!e->parked) {
		return 0; /* nothing to reap: no syscall on the scheduler's path */
	}
	struct epoll_event ev[64];
	int n;
	/* EINTR: nothing reaped; the worker looks for work and parks again */
	n = epoll_wait(e->epfd, ev, 64, timeout);
	for (int i = 0; i < n; i++) {
		int fd = (int)ev[i].data.u64;
		if (fd == e->wake_fd) {
			uint64_t v;
			while (read(fd, &v, sizeof(v)) > 0) /* non-blocking: drain it */
				;
			continue;
		}
		ep_dispatch(e, fd, ev[i].events);
	}
	return n > 0 ? n : 0;
}

const crew__backend crew__backend_epoll = {
	.name = "epoll",
	.tries_at_submit = true,
	.init = ep_init,
	.fini = ep_fini,
	.poll = ep_poll,
	.submit = ep_submit,
	.cancel = ep_cancel,
	.flush = ep_flush,
};
