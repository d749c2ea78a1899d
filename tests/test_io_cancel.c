/*
 * Cancelling a task blocked in an I/O operation, from a task or a plain
 * thread, on every backend (IO_TEST, io_helpers.h; recvmsg, splice and
 * sendfile also on io_uring emulating them, IO_TEST_EMUL): the call returns
 * -ECANCELED, its buffer is never written afterwards, and data that arrives
 * later is not lost.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE; task states */
#include "io_helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- cancelling a task blocked in an operation ---- */

typedef enum { OP_ACCEPT, OP_RECV, OP_CONNECT, OP_FILE_READ, OP_RECVMSG, OP_SPLICE, OP_SENDFILE } op_kind;

typedef struct cancel_case {
	op_kind kind;
	bool from_thread;
	crewt_blocked b;
	struct sockaddr_in addr;
	int other; /* splice: the output fd; sendfile: the input file */
	off_t off; /* sendfile: the offset */
} cancel_case;

static void *blocked_op(void *p)
{
	cancel_case *c = p;
	crewt_blocked *b = &c->b;
	atomic_store(&b->calling, 1);
	switch (c->kind) {
	case OP_ACCEPT:
		b->rc = crew_accept(b->fd, NULL, NULL, 0);
		break;
	case OP_RECV:
		b->rc = crew_recv(b->fd, b->buf, sizeof b->buf, 0);
		break;
	case OP_CONNECT:
		b->rc = crew_connect(b->fd, (struct sockaddr *)&c->addr, sizeof c->addr);
		break;
	case OP_FILE_READ:
		b->rc = crew_read(b->fd, b->buf, sizeof b->buf);
		break;
	case OP_RECVMSG: {
		struct iovec iov[2] = { { b->buf, 8 }, { b->buf + 8, sizeof b->buf - 8 } };
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
		b->rc = crew_recvmsg(b->fd, &m, 0);
		break;
	}
	case OP_SPLICE:
		b->rc = crew_splice(b->fd, NULL, c->other, NULL, sizeof b->buf, 0);
		break;
	case OP_SENDFILE:
		b->rc = crew_sendfile(b->fd, c->other, &c->off, 4096);
		break;
	}
	/* the canary: nothing may write the buffer from now on */
	memset(b->buf, 'K', sizeof b->buf);
	return NULL;
}

static void *cancel_thread(void *t)
{
	return (void *)(intptr_t)crew_cancel(t);
}

static void *cancel_blocked(void *arg)
{
	cancel_case *c = arg;
	int extra[2] = { -1, -1 }, lfd = -1, feed = -1;
	char fifo[64] = "";
	switch (c->kind) {
	case OP_ACCEPT:
		lfd = c->b.fd = crewt_tcp_listener(&c->addr, 16);
		CHECK(lfd >= 0, "listener");
		break;
	case OP_RECV:
	case OP_RECVMSG: {
		int sv[2];
		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
		c->b.fd = sv[0];
		feed = sv[1];
		break;
	}
	case OP_SPLICE: {
		/* from an empty pipe: what is written after the cancel stays there */
		int p[2];
		CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe");
		c->b.fd = p[0];
		feed = p[1];
		c->other = open("/dev/null", O_WRONLY | O_CLOEXEC);
		CHECK(c->other >= 0, "open /dev/null");
		break;
	}
	case OP_SENDFILE: {
		/* to a socket that takes nothing more */
		int sv[2];
		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
		c->b.fd = sv[0];
		extra[0] = sv[1];
		char junk[1024] = { 0 };
		while (send(sv[0], junk, sizeof junk, MSG_DONTWAIT) > 0)
			;
		char path[] = "/tmp/crew-test-cancel-XXXXXX";
		c->other = mkostemp(path, O_CLOEXEC);
		CHECK(c->other >= 0, "mkstemp");
		unlink(path);
		CHECK(write(c->other, junk, sizeof junk) == (ssize_t)sizeof junk, "write");
		c->off = 0;
		break;
	}
	case OP_CONNECT: {
		/* A full accept queue: Linux drops the SYN, the connect waits. */
		lfd = crewt_tcp_listener(&c->addr, 0);
		CHECK(lfd >= 0, "listener");
		for (int i = 0; i < 2; i++) {
			extra[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			(void)connect(extra[i], (struct sockaddr *)&c->addr, sizeof c->addr);
		}
		/* the queue is full once the first connect completed */
		CHECK(crew_poll(extra[0], POLLOUT) > 0, "first connect");
		c->b.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		break;
	}
	case OP_FILE_READ:
		/* a named pipe: a file read that blocks until a writer writes */
		snprintf(fifo, sizeof fifo, "/tmp/crew-test-fifo-%d", (int)getpid());
		unlink(fifo);
		CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
		c->b.fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		feed = open(fifo, O_WRONLY | O_CLOEXEC);
		CHECK(c->b.fd >= 0 && feed >= 0, "open fifo");
		/* blocking reads from now on, as with a regular file */
		fcntl(c->b.fd, F_SETFL, fcntl(c->b.fd, F_GETFL) & ~O_NONBLOCK);
		break;
	}
	memset(c->b.buf, 'B', sizeof c->b.buf);
	crew_task *t = crew_spawn(blocked_op, c);
	CHECK(t, "spawn");
	while (!atomic_load(&c->b.calling))
		crew_yield();
	CHECK(crewt_wait_suspended(t), "the op did not block");
	if (c->from_thread) {
		pthread_t th;
		void *r;
		CHECK(pthread_create(&th, NULL, cancel_thread, t) == 0, "pthread_create");
		pthread_join(th, &r);
		CHECK(r == NULL, "crew_cancel from a thread: %ld", (long)(intptr_t)r);
	} else {
		CHECK(crew_cancel(t) == 0, "crew_cancel");
	}
	int jr = crew_join(t, NULL);
	CHECK(jr == -ECANCELED, "join: %d", jr);
	CHECK(c->b.rc == -ECANCELED, "the blocked call returned %zd, expected -ECANCELED", c->b.rc);
	/* data arriving now must not reach the cancelled call's buffer */
	if (feed >= 0) {
		CHECK(write(feed, "data", 4) == 4, "write");
		char in[8];
		ssize_t n = crew_read(c->b.fd, in, sizeof in);
		CHECK(n == 4 && !memcmp(in, "data", 4), "read after the cancel: %zd", n);
	}
	for (size_t i = 0; i < sizeof c->b.buf; i++)
		CHECK(c->b.buf[i] == 'K', "the buffer was written after the call returned");
	if (c->kind == OP_SENDFILE)
		CHECK(c->off == 0, "the cancelled sendfile moved its offset to %lld", (long long)c->off);
	if (c->kind == OP_SPLICE || c->kind == OP_SENDFILE)
		close(c->other);
	if (c->b.fd >= 0)
		close(c->b.fd);
	if (feed >= 0)
		close(feed);
	if (lfd >= 0)
		close(lfd);
	for (int i = 0; i < 2; i++)
		if (extra[i] >= 0)
			close(extra[i]);
	if (*fifo)
		unlink(fifo);
	return NULL;
}

static cancel_case cc_accept = { .kind = OP_ACCEPT }, cc_recv = { .kind = OP_RECV },
		   cc_connect = { .kind = OP_CONNECT }, cc_file = { .kind = OP_FILE_READ },
		   cc_accept_t = { .kind = OP_ACCEPT, .from_thread = true },
		   cc_recv_t = { .kind = OP_RECV, .from_thread = true },
		   cc_connect_t = { .kind = OP_CONNECT, .from_thread = true },
		   cc_file_t = { .kind = OP_FILE_READ, .from_thread = true };
IO_TEST(cancel_accept, 2, cancel_blocked, &cc_accept)
IO_TEST(cancel_recv, 2, cancel_blocked, &cc_recv)
IO_TEST(cancel_connect, 2, cancel_blocked, &cc_connect)
IO_TEST(cancel_file_read, 2, cancel_blocked, &cc_file)
IO_TEST(cancel_accept_from_thread, 2, cancel_blocked, &cc_accept_t)
IO_TEST(cancel_recv_from_thread, 2, cancel_blocked, &cc_recv_t)
IO_TEST(cancel_connect_from_thread, 2, cancel_blocked, &cc_connect_t)
IO_TEST(cancel_file_read_from_thread, 2, cancel_blocked, &cc_file_t)

static cancel_case cc_recvmsg = { .kind = OP_RECVMSG }, cc_splice = { .kind = OP_SPLICE },
		   cc_sendfile = { .kind = OP_SENDFILE },
		   cc_recvmsg_t = { .kind = OP_RECVMSG, .from_thread = true };
IO_TEST_EMUL(cancel_recvmsg, 2, cancel_blocked, &cc_recvmsg)
IO_TEST_EMUL(cancel_recvmsg_from_thread, 2, cancel_blocked, &cc_recvmsg_t)
IO_TEST_EMUL(cancel_splice, 2, cancel_blocked, &cc_splice)
IO_TEST_EMUL(cancel_sendfile, 2, cancel_blocked, &cc_sendfile)

