/*
 * nowait.h - one attempt at an operation without blocking the worker
 * (nowait.c), for the backends that run an operation themselves: the epoll
 * backend for the kinds below, and the io_uring backend for an opcode its
 * kernel lacks (and for sendfile, which has none).
 *
 * An attempt either ends the operation (a count, 0, an fd, or -errno) or
 * says which fd must become ready before the next attempt (CREW_IO_WAIT_*);
 * the backend waits for that readiness (epoll, IORING_OP_POLL_ADD) and tries
 * again. Between attempts the record keeps what it needs (op->off: the bytes
 * a MSG_WAITALL receive already has).
 */
#ifndef CREW_NOWAIT_H
#define CREW_NOWAIT_H

#include "reactor.h"
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

/* Not a final result: wait until ... is ready, then try again. */
enum {
	CREW_IO_WAIT_IN = -100000,   /* op->fd readable */
	CREW_IO_WAIT_OUT = -100001,  /* op->fd writable */
	CREW_IO_WAIT_OUT2 = -100002, /* op->fd2 writable (splice, sendfile) */
};

static inline bool crew__io_waiting(int res)
{
	return res <= CREW_IO_WAIT_IN && res >= CREW_IO_WAIT_OUT2;
}

/* A socket call that asked not to wait (MSG_DONTWAIT: recv, send, recvmsg,
 * sendmsg): its "would block" is -EAGAIN, as recv(2)'s, not a wait. */
static inline bool crew__io_no_wait(const crew__io_op *op)
{
	bool msg_call = op->kind == CREW_IO_RECV || op->kind == CREW_IO_SEND ||
			op->kind == CREW_IO_RECVMSG || op->kind == CREW_IO_SENDMSG;
	return msg_call && (op->flags & MSG_DONTWAIT);
}

/* The backends that run an attempt themselves (epoll; io_uring's emulated
 * opcodes) pass every attempt's result through this; io_uring's own
 * opcodes honour the flag in the kernel (and reactor_uring.c's uring_again
 * leaves their -EAGAIN alone). */
static inline int crew__io_dontwait(const crew__io_op *op, int res)
{
	return crew__io_no_wait(op) && crew__io_waiting(res) ? -EAGAIN : res;
}

/* The fd a wait result names. */
static inline int crew__io_wait_fd(const crew__io_op *op, int wait)
{
	return wait == CREW_IO_WAIT_OUT2 ? op->fd2 : op->fd;
}

/* The poll events a wait result waits for. */
static inline short crew__io_wait_events(int wait)
{
	return wait == CREW_IO_WAIT_IN ? POLLIN : POLLOUT;
}

/* Whether crew__io_try_nowait handles `kind`. */
static inline bool crew__io_nowait_kind(crew__io_kind kind)
{
	return kind >= CREW_IO_RECVMSG || kind == CREW_IO_FSYNC;
}

/*
 * Try op (a kind crew__io_nowait_kind accepts) once. Sockets and pipes do
 * not block: MSG_DONTWAIT and SPLICE_F_NONBLOCK, and for splice and sendfile
 * their fds are made O_NONBLOCK for the duration of the call (as the epoll
 * backend does for accept and connect). Files and metadata (fsync, statx)
 * run as the syscall does, which may wait for the disk. Returns a final
 * result, or CREW_IO_WAIT_*. Thread: the op's home worker.
 */
int crew__io_try_nowait(crew__io_op *op);

/* Make fd O_NONBLOCK for one call; *saved gets its flags for
 * crew__io_restore. 0 or -errno (fd is unchanged then). */
int crew__io_nonblock(int fd, int *saved);
/* A socket whose MSG_WAITALL receive gathers: a stream or seqpacket one (the
 * kernel's and io_uring's rule; a datagram's ends with its first message). */
bool crew__io_gathers(int fd);
void crew__io_restore(int fd, int saved);

#endif
