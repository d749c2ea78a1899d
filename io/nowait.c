/*
 * nowait.c - one attempt at an operation without blocking the worker (see
 * nowait.h): message sends and receives, shutdown, fsync and fdatasync,
 * statx, splice and sendfile.
 */
#define _GNU_SOURCE
#include "nowait.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

int crew__io_nonblock(int fd, int *saved)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	*saved = fl;
	if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
		return -errno;
	return 0;
}

void crew__io_restore(int fd, int saved)
{
	if (!(saved & O_NONBLOCK))
		(void)fcntl(fd, F_SETFL, saved);
}

/* A syscall's return as a result: -errno, or the count (int-sized). */
static int nw_res(ssize_t rc)
{
	return rc < 0 ? -errno : (int)(rc > 0x7fffffff ? 0x7fffffff : rc);
}

/* ---- messages ---- */

/* Bytes the message's iovecs can hold. */
static size_t nw_iov_total(const struct msghdr *msg)
{
	size_t total = 0;
	for (size_t i = 0; i < msg->msg_iovlen; i++)
		total += msg->msg_iov[i].iov_len;
	return total;
}

bool crew__io_gathers(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
		return false;
	return type == SOCK_STREAM || type == SOCK_SEQPACKET;
}

#define NW_REST_IOV 64

/* The rest of a MSG_WAITALL receive: into msg's iovecs past the `have` bytes
 * already there, through a copy (the caller's msghdr and iovecs are not
 * changed; at most NW_REST_IOV of them per attempt). Ancillary data comes
 * with the first part only: a later part's is cut (MSG_CTRUNC, as a
 * receive with no room for it). */
static ssize_t nw_recv_rest(int fd, struct msghdr *msg, size_t have, int flags)
{
	struct iovec rest[NW_REST_IOV];
	size_t n = 0;
	for (size_t i = 0; i < msg->msg_iovlen && n < NW_REST_IOV; i++) {
		const struct iovec *v = &msg->msg_iov[i];
		if (have >= v->iov_len) {
			have -= v->iov_len;
			continue;
		}
		rest[n++] = (struct iovec){ (char *)v->iov_base + have, v->iov_len - have };
		have = 0;
	}
	struct msghdr m = { .msg_iov = rest, .msg_iovlen = n };
	ssize_t r = recvmsg(fd, &m, flags | MSG_DONTWAIT);
	if (r > 0)
		msg->msg_flags |= m.msg_flags;
	return r;
}

/* recvmsg; with MSG_WAITALL on a stream, what came is counted in op->off and
 * the rest is waited for, as io_uring's recvmsg does. */
static int nw_recvmsg(crew__io_op *op)
{
	struct msghdr *msg = op->buf;
	bool all = op->flags & MSG_WAITALL;
	size_t have = all ? (size_t)op->off : 0;
	int res = nw_res(have ? nw_recv_rest(op->fd, msg, have, op->flags) :
				recvmsg(op->fd, msg, op->flags | MSG_DONTWAIT));
	if (res == -EAGAIN)
		return CREW_IO_WAIT_IN;
	if (!all)
		return res;
	if (res > 0) {
		op->off = have += (size_t)res;
		if (have < nw_iov_total(msg) && crew__io_gathers(op->fd))
			return CREW_IO_WAIT_IN;
	}
	return have ? (int)have : res; /* all, or EOF/error after a part: the part */
}

/* ---- splice, sendfile ---- */

/* An attempt found no room or no data: wait for the input when it has
 * nothing to read, else for the output. */
static int nw_blocked_side(const crew__io_op *op)
{
	struct pollfd p = { op->fd, POLLIN, 0 };
	return poll(&p, 1, 0) == 0 ? CREW_IO_WAIT_IN : CREW_IO_WAIT_OUT2;
}

/* Both fds O_NONBLOCK for a call (SPLICE_F_NONBLOCK covers only the pipe
 * side; a blocking socket on the other would block the worker). */
static int nw_nonblock2(const crew__io_op *op, int saved[2])
{
	int rc = crew__io_nonblock(op->fd, &saved[0]);
	if (rc)
		return rc;
	if ((rc = crew__io_nonblock(op->fd2, &saved[1])) != 0)
		crew__io_restore(op->fd, saved[0]);
	return rc;
}

static void nw_restore2(const crew__io_op *op, const int saved[2])
{
	crew__io_restore(op->fd2, saved[1]); /* reverse order: fd == fd2 ends as it was */
	crew__io_restore(op->fd, saved[0]);
}

static int nw_splice(crew__io_op *op)
{
	int saved[2] = { O_NONBLOCK, O_NONBLOCK }, rc = nw_nonblock2(op, saved);
	if (rc)
		return rc;
	loff_t in = (loff_t)op->off, out = (loff_t)op->off2;
	int res = nw_res(splice(op->fd, op->off == UINT64_MAX ? NULL : &in, op->fd2,
				op->off2 == UINT64_MAX ? NULL : &out, op->len,
				(unsigned)op->flags | SPLICE_F_NONBLOCK));
	nw_restore2(op, saved);
	return res == -EAGAIN ? nw_blocked_side(op) : res;
}

static int nw_sendfile(crew__io_op *op)
{
	int saved[2] = { O_NONBLOCK, O_NONBLOCK }, rc = nw_nonblock2(op, saved);
	if (rc)
		return rc;
	off_t off = (off_t)op->off;
	int res = nw_res(sendfile(op->fd2, op->fd, op->off == UINT64_MAX ? NULL : &off, op->len));
	nw_restore2(op, saved);
	return res == -EAGAIN ? nw_blocked_side(op) : res;
}

int crew__io_try_nowait(crew__io_op *op)
{
	int res;
	switch (op->kind) {
	case CREW_IO_RECVMSG:
		return nw_recvmsg(op);
	case CREW_IO_SENDMSG:
		res = nw_res(sendmsg(op->fd, op->buf, op->flags | MSG_DONTWAIT));
		return res == -EAGAIN ? CREW_IO_WAIT_OUT : res;
	case CREW_IO_SHUTDOWN:
		return shutdown(op->fd, op->flags) == 0 ? 0 : -errno;
	case CREW_IO_FSYNC:
		res = op->flags & CREW_IO_DATASYNC ? fdatasync(op->fd) : fsync(op->fd);
		return res == 0 ? 0 : -errno;
	case CREW_IO_STATX:
		res = statx(op->fd, op->buf, op->flags, op->mode, op->out);
		return res == 0 ? 0 : -errno;
	case CREW_IO_SPLICE:
		return nw_splice(op);
	case CREW_IO_SENDFILE:
		return nw_sendfile(op);
	default:
		return -EINVAL; /* not a kind of ours (crew__io_nowait_kind) */
	}
}
