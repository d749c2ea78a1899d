/*
 * calls.c - the public I/O calls of crew/io.h: each fills an operation
 * record and runs it (io.c).
 */
#include "internal.h"
#include "io.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>

#ifndef IOV_MAX
#define IOV_MAX 1024 /* Linux's UIO_MAXIOV */
#endif

static inline crew__io_op io_op(crew__io_kind kind, int fd, void *buf, size_t len, uint64_t off)
{
	return (crew__io_op){ .kind = kind, .fd = fd, .buf = buf, .len = len, .off = off };
}

ssize_t crew_read(int fd, void *buf, size_t len)
{
	crew__io_op op = io_op(CREW_IO_READ, fd, buf, len, UINT64_MAX);
	return crew__io_run(&op);
}

ssize_t crew_write(int fd, const void *buf, size_t len)
{
	crew__io_op op = io_op(CREW_IO_WRITE, fd, (void *)buf, len, UINT64_MAX);
	return crew__io_run(&op);
}

ssize_t crew_pread(int fd, void *buf, size_t len, off_t offset)
{
	if (offset < 0)
		return -EINVAL;
	crew__io_op op = io_op(CREW_IO_READ, fd, buf, len, (uint64_t)offset);
	return crew__io_run(&op);
}

ssize_t crew_pwrite(int fd, const void *buf, size_t len, off_t offset)
{
	if (offset < 0)
		return -EINVAL;
	crew__io_op op = io_op(CREW_IO_WRITE, fd, (void *)buf, len, (uint64_t)offset);
	return crew__io_run(&op);
}

ssize_t crew_readv(int fd, const struct iovec *iov, int iovcnt)
{
	if (iovcnt < 0 || iovcnt > IOV_MAX || (!iov && iovcnt))
		return -EINVAL;
	crew__io_op op = io_op(CREW_IO_READV, fd, (void *)iov, (size_t)iovcnt, UINT64_MAX);
	return crew__io_run(&op);
}

ssize_t crew_writev(int fd, const struct iovec *iov, int iovcnt)
{
	if (iovcnt < 0 || iovcnt > IOV_MAX || (!iov && iovcnt))
		return -EINVAL;
	crew__io_op op = io_op(CREW_IO_WRITEV, fd, (void *)iov, (size_t)iovcnt, UINT64_MAX);
	return crew__io_run(&op);
}

ssize_t crew_recv(int fd, void *buf, size_t len, int flags)
{
	crew__io_op op = io_op(CREW_IO_RECV, fd, buf, len, 0);
	op.flags = flags;
	return crew__io_run(&op);
}

ssize_t crew_send(int fd, const void *buf, size_t len, int flags)
{
	crew__io_op op = io_op(CREW_IO_SEND, fd, (void *)buf, len, 0);
	op.flags = flags;
	return crew__io_run(&op);
}

ssize_t crew_write_all(int fd, const void *buf, size_t len)
{
	for (size_t done = 0; done < len;) {
		ssize_t n = crew_write(fd, (const char *)buf + done, len - done);
		if (n < 0)
			return n;
		if (n == 0)
			return -EIO; /* a write that takes nothing would loop forever */
		done += (size_t)n;
	}
	return (ssize_t)len;
}

ssize_t crew_send_all(int fd, const void *buf, size_t len, int flags)
{
	for (size_t done = 0; done < len;) {
		ssize_t n = crew_send(fd, (const char *)buf + done, len - done, flags);
		if (n < 0)
			return n;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return (ssize_t)len;
}

int crew_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	if (!addr != !addrlen)
		return -EINVAL;
	crew__io_op op = io_op(CREW_IO_ACCEPT, fd, NULL, 0, 0);
	op.addr = addr;
	op.addrlen = (unsigned *)addrlen;
	op.flags = flags;
	return (int)crew__io_run(&op);
}

int crew_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
	if (!addr)
		return -EINVAL;
	crew__io_op op = io_op(CREW_IO_CONNECT, fd, NULL, addrlen, 0);
	op.addr = (struct sockaddr *)addr;
	return (int)crew__io_run(&op);
}

int crew_close(int fd)
{
	crew__io_op op = io_op(CREW_IO_CLOSE, fd, NULL, 0, 0);
	return (int)crew__io_run(&op);
}

int crew_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	if (!path)
		return -EINVAL;
	crew__io_op op = io_op(CREW_IO_OPENAT, dirfd, (void *)path, 0, 0);
	op.flags = flags;
	op.mode = mode;
	return (int)crew__io_run(&op);
}

int crew_fsync(int fd)
{
	crew__io_op op = io_op(CREW_IO_FSYNC, fd, NULL, 0, 0);
	return (int)crew__io_run(&op);
}

int crew_fdatasync(int fd)
{
	crew__io_op op = io_op(CREW_IO_FSYNC, fd, NULL, 0, 0);
	op.flags = CREW_IO_DATASYNC;
	return (int)crew__io_run(&op);
}

ssize_t crew_recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (!msg || (!msg->msg_iov && msg->msg_iovlen))
		return -EINVAL;
	crew__io_op op = io_op(CREW_IO_RECVMSG, fd, msg, 0, 0);
	op.flags = flags;
	return crew__io_run(&op);
}

ssize_t crew_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (!msg || (!msg->msg_iov && msg->msg_iovlen))
		return -EINVAL;
	crew__io_op op = io_op(CREW_IO_SENDMSG, fd, (void *)msg, 0, 0);
	op.flags = flags;
	return crew__io_run(&op);
}

int crew_shutdown(int fd, int how)
{
	crew__io_op op = io_op(CREW_IO_SHUTDOWN, fd, NULL, 0, 0);
	op.flags = how;
	return (int)crew__io_run(&op);
}

int crew_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *out)
{
	if (!path || !out)
		return -EINVAL;
	crew__io_op op = io_op(CREW_IO_STATX, dirfd, (void *)path, 0, 0);
	op.flags = flags;
	op.mode = mask;
	op.out = out;
	return (int)crew__io_run(&op);
}

/* The flags splice(2) knows. SPLICE_F_NONBLOCK changes nothing here: the
 * task suspends instead of blocking either way, so it is dropped. */
#define CALLS_SPLICE_FLAGS (SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT)

ssize_t crew_splice(int fd_in, off_t *off_in, int fd_out, off_t *off_out, size_t len,
		    unsigned flags)
{
	if ((off_in && *off_in < 0) || (off_out && *off_out < 0) || (flags & ~CALLS_SPLICE_FLAGS))
		return -EINVAL;
	crew__io_op op = io_op(CREW_IO_SPLICE, fd_in, NULL, len, off_in ? (uint64_t)*off_in : UINT64_MAX);
	op.fd2 = fd_out;
	op.off2 = off_out ? (uint64_t)*off_out : UINT64_MAX;
	op.flags = (int)(flags & ~(unsigned)SPLICE_F_NONBLOCK);
	ssize_t n = crew__io_run(&op);
	/* the backends take offsets by value: advance the caller's as splice(2) does */
	if (n > 0 && off_in)
		*off_in += n;
	if (n > 0 && off_out)
		*off_out += n;
	return n;
}

ssize_t crew_sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	if (offset && *offset < 0)
		return -EINVAL;
	crew__io_op op = io_op(CREW_IO_SENDFILE, in_fd, NULL, count, offset ? (uint64_t)*offset : UINT64_MAX);
	op.fd2 = out_fd;
	ssize_t n = crew__io_run(&op);
	if (n > 0 && offset)
		*offset += n;
	return n;
}

int crew_poll(int fd, short events)
{
	crew__io_op op = io_op(CREW_IO_POLL, fd, NULL, 0, 0);
	op.flags = (unsigned short)events;
	return (int)crew__io_run(&op);
}

const char *crew_backend_name(void)
{
	crew__worker *w = crew__worker_current();
	if (w)
		return crew__rt->backend->name;
	crew__runtime *rt = crew__ext_enter();
	if (!rt)
		return NULL;
	const char *name = rt->backend->name;
	crew__ext_leave();
	return name;
}
