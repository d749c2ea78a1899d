/*
 * I/O at the edges of its contract, each case found by trying to break it
 * from outside (IO_TEST, io_helpers.h): a close under a pending receive,
 * MSG_DONTWAIT, a MSG_WAITALL receive ended early after a part, lengths past
 * 4 GiB, fd numbers far past the open ones, iovec counts past IOV_MAX, and a
 * completion queue too small for what completes at once.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE; task states */
#include "io_helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* A crew_poll(b->fd, b->buf[0]) under a 10 s deadline, once b->calling is 2. */
static void *poll_blocked(void *arg)
{
	crewt_blocked *b = arg;
	while (atomic_load(&b->calling) != 2)
		crew_yield();
	crew_deadline d;
	crew_deadline_push(&d, crew_now() + 10 * CREWT_SEC);
	b->rc = crew_poll(b->fd, (short)b->buf[0]);
	crew_deadline_pop(&d);
	return NULL;
}

/* A task of this worker waits in crew_recv(fd); another closes fd: the
 * receive ends with -EBADF (on io_uring the in-flight request kept the file
 * alive: the receive waited for ever). */
static void *close_ends_recv(void *arg)
{
	(void)arg;
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	crewt_blocked b = { .fd = sv[0] };
	crew_task *t = crewt_spawn_blocked(crewt_recv_blocked, &b);
	CHECK(t, "the reader did not block");
	int rc = crew_close(sv[0]);
	CHECK(rc == 0, "close: %d", rc);
	CHECK(crew_join(t, NULL) == 0, "join");
	close(sv[1]);
	CHECK(b.rc == -EBADF, "the pending receive ended with %zd, not -EBADF", b.rc);
	return NULL;
}

IO_TEST_EMUL(close_ends_pending_recv, 1, close_ends_recv, NULL)

/* ...but not a receive on another fd of the same socket (a dup): io_uring's
 * cancel by fd matches the file, and ended it with -EBADF too. It still
 * gets its data, and the receive on the closed fd still ends. */
static void *close_spares_dup(void *arg)
{
	(void)arg;
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	int d = dup(sv[0]);
	CHECK(d >= 0, "dup");
	crewt_blocked on_dup = { .fd = d }, on_fd = { .fd = sv[0] };
	crew_task *t = crewt_spawn_blocked(crewt_recv_blocked, &on_dup);
	CHECK(t, "the reader of the dup did not block");
	crew_task *u = crewt_spawn_blocked(crewt_recv_blocked, &on_fd);
	CHECK(u, "the reader of the fd did not block");
	int rc = crew_close(sv[0]);
	CHECK(rc == 0, "close: %d", rc);
	CHECK(crew_join(u, NULL) == 0, "join");
	CHECK(on_fd.rc == -EBADF, "the receive on the closed fd ended with %zd", on_fd.rc);
	CHECK(write(sv[1], "hi", 2) == 2, "write");
	CHECK(crew_join(t, NULL) == 0, "join");
	CHECK(on_dup.rc == 2, "the receive on the dup ended with %zd, not its 2 bytes", on_dup.rc);
	close(d);
	close(sv[1]);
	return NULL;
}

IO_TEST_EMUL(close_spares_a_dup, 1, close_spares_dup, NULL)

/* MSG_DONTWAIT: -EAGAIN where the call would wait, as recv(2) and send(2)
 * (the epoll backend waited). */
static void *dontwait(void *arg)
{
	(void)arg;
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	char buf[4096];
	struct iovec iov = { buf, sizeof buf };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t rc = crew_recv(sv[0], buf, sizeof buf, MSG_DONTWAIT);
	CHECK(rc == -EAGAIN, "recv of an empty socket: %zd", rc);
	rc = crew_recvmsg(sv[0], &m, MSG_DONTWAIT);
	CHECK(rc == -EAGAIN, "recvmsg of an empty socket: %zd", rc);
	memset(buf, 'x', sizeof buf);
	while (send(sv[1], buf, sizeof buf, MSG_DONTWAIT) > 0) /* fill it */
		;
	rc = crew_send(sv[1], buf, sizeof buf, MSG_DONTWAIT);
	CHECK(rc == -EAGAIN, "send to a full socket: %zd", rc);
	rc = crew_sendmsg(sv[1], &m, MSG_DONTWAIT);
	CHECK(rc == -EAGAIN, "sendmsg to a full socket: %zd", rc);
	/* and with data there, the data */
	rc = crew_recv(sv[0], buf, 10, MSG_DONTWAIT);
	CHECK(rc == 10, "recv with data: %zd", rc);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

IO_TEST_EMUL(dontwait, 1, dontwait, NULL)

/* The bytes still unread in fd. */
static int unread(int fd)
{
	int n = -1;
	return ioctl(fd, FIONREAD, &n) == 0 ? n : -1;
}

static void *waitall_blocked(void *arg)
{
	crewt_blocked *b = arg;
	atomic_store(&b->calling, 1);
	b->rc = crew_recv(b->fd, b->buf, 20, MSG_WAITALL);
	return NULL;
}

static void *waitall_msg_blocked(void *arg)
{
	crewt_blocked *b = arg;
	struct iovec iov = { b->buf, 20 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	atomic_store(&b->calling, 1);
	b->rc = crew_recvmsg(b->fd, &m, MSG_WAITALL);
	return NULL;
}

/* A MSG_WAITALL receive of 20 bytes that got 10 and is then cancelled, or
 * hits its deadline: it returns the 10 it took from the socket (the epoll
 * backend returned -ECANCELED / -ETIMEDOUT, and the 10 bytes were lost). */
static void *waitall_ended_early(void *arg)
{
	(void)arg;
	for (int msg = 0; msg < 2; msg++) {
		int sv[2];
		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
		/* the cancel */
		CHECK(write(sv[1], "0123456789", 10) == 10, "write");
		crewt_blocked b = { .fd = sv[0] };
		crew_task *t = crewt_spawn_blocked(msg ? waitall_msg_blocked : waitall_blocked, &b);
		CHECK(t, "the receive did not block");
		crew_cancel(t);
		CHECK(crew_join(t, NULL) == -ECANCELED, "join of the cancelled reader");
		CHECK(b.rc == 10 && memcmp(b.buf, "0123456789", 10) == 0,
		      "%s, cancelled after 10 of 20 bytes: %zd", msg ? "recvmsg" : "recv", b.rc);
		CHECK(unread(sv[0]) == 0, "%d bytes left", unread(sv[0]));
		/* the deadline */
		CHECK(write(sv[1], "abcdefghij", 10) == 10, "write");
		char buf[20];
		struct iovec iov = { buf, sizeof buf };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
		crew_deadline d;
		CHECK(crew_deadline_push(&d, crew_now() + 20 * 1000 * 1000) == 0, "deadline");
		ssize_t rc = msg ? crew_recvmsg(sv[0], &m, MSG_WAITALL) :
				   crew_recv(sv[0], buf, sizeof buf, MSG_WAITALL);
		crew_deadline_pop(&d);
		CHECK(rc == 10 && memcmp(buf, "abcdefghij", 10) == 0,
		      "%s, deadline after 10 of 20 bytes: %zd", msg ? "recvmsg" : "recv", rc);
		close(sv[0]);
		close(sv[1]);
	}
	return NULL;
}

IO_TEST_EMUL(waitall_ended_early, 1, waitall_ended_early, NULL)

/* Lengths past what one call moves: cut to it, as read(2) cuts them (the
 * io_uring backend cut a receive's length to 32 bits: 4 GiB read as 0, an
 * end of file). The buffer is reserved, not touched beyond its first page. */
static void *huge_lengths(void *arg)
{
	(void)arg;
	size_t span = ((size_t)1 << 32) + 4096;
	char *buf = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			 -1, 0);
	CHECK(buf != MAP_FAILED, "mmap: %s", strerror(errno));
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	const size_t lens[] = { (size_t)1 << 31, (size_t)1 << 32, ((size_t)1 << 32) + 3 };
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		CHECK(write(sv[1], "hello", 5) == 5, "write");
		ssize_t rc = crew_recv(sv[0], buf, lens[i], 0);
		CHECK(rc == 5 && memcmp(buf, "hello", 5) == 0, "recv of 5 bytes, len %zu: %zd", lens[i], rc);
		CHECK(write(sv[1], "hello", 5) == 5, "write");
		rc = crew_read(sv[0], buf, lens[i]);
		CHECK(rc == 5, "read of 5 bytes, len %zu: %zd", lens[i], rc);
	}
	close(sv[0]);
	close(sv[1]);
	munmap(buf, span);
	return NULL;
}

IO_TEST(huge_lengths, 1, huge_lengths, NULL)

/* An fd number far past the open ones: -EBADF at once (the epoll backend
 * grew its per-fd table up to it first: gigabytes, or -ENOMEM). */
static void *far_fds(void *arg)
{
	(void)arg;
	const int fds[] = { 1 << 26, INT_MAX };
	char buf[8];
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
		ssize_t rc = crew_recv(fds[i], buf, sizeof buf, 0);
		CHECK(rc == -EBADF, "recv(%d): %zd", fds[i], rc);
		rc = crew_poll(fds[i], POLLIN);
		CHECK(rc == -EBADF, "poll(%d): %zd", fds[i], rc);
	}
	return NULL;
}

IO_TEST_EMUL(far_fds, 1, far_fds, NULL)

/* More iovecs than a call takes: -EINVAL at once (epoll read that EINVAL as
 * "no RWF_NOWAIT here" and waited for data). */
static void *too_many_iovecs(void *arg)
{
	(void)arg;
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	static char byte;
	static struct iovec iov[IOV_MAX + 1];
	for (int i = 0; i <= IOV_MAX; i++)
		iov[i] = (struct iovec){ &byte, 1 };
	ssize_t rc = crew_readv(sv[0], iov, IOV_MAX + 1);
	CHECK(rc == -EINVAL, "readv of IOV_MAX + 1: %zd", rc);
	rc = crew_writev(sv[1], iov, IOV_MAX + 1);
	CHECK(rc == -EINVAL, "writev of IOV_MAX + 1: %zd", rc);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

IO_TEST(too_many_iovecs, 1, too_many_iovecs, NULL)

/* TCP urgent data arriving while crew_poll waits for it. On epoll a POLLPRI
 * wait armed EPOLLIN, which urgent data does not raise: it waited for ever.
 * io_uring's poll is not woken for POLLPRI alone (io.h): POLLIN | POLLPRI
 * there. */
static void *urgent_data(void *arg)
{
	(void)arg;
	int l = crew_tcp_listen("127.0.0.1", 0, 4);
	CHECK(l >= 0, "listen: %d", l);
	int c = crew_tcp_connect("127.0.0.1", (uint16_t)crew_tcp_port(l));
	CHECK(c >= 0, "connect: %d", c);
	int s = crew_accept(l, NULL, NULL, SOCK_CLOEXEC);
	CHECK(s >= 0, "accept: %d", s);
	short events = strcmp(crew_backend_name(), "io_uring") == 0 ? POLLIN | POLLPRI : POLLPRI;
	crewt_blocked b = { .fd = s };
	crew_task *t = crew_spawn(poll_blocked, &b);
	CHECK(t, "spawn");
	b.buf[0] = (char)events; /* poll_blocked's events */
	atomic_store(&b.calling, 2);
	CHECK(crewt_wait_suspended(t), "the poll did not block");
	CHECK(send(c, "!", 1, MSG_OOB) == 1, "send: %s", strerror(errno));
	CHECK(crew_join(t, NULL) == 0, "join");
	CHECK(b.rc > 0 && (b.rc & POLLPRI), "poll(%#x) with urgent data: %#zx", events, b.rc);
	close(c);
	close(s);
	close(l);
	return NULL;
}

IO_TEST(urgent_data_wakes_poll, 1, urgent_data, NULL)

/* crew_poll for POLLRDHUP, and for no event (errors and hang-ups only),
 * while a byte sits unread on the fd: each waits quietly for its event. On
 * epoll they armed EPOLLIN, which the unread byte raised again and again:
 * the worker spun for the whole wait (0.5 s of CPU in a 0.5 s wait). */
static int quiet_sv[2];

static void *poll_for(void *arg)
{
	return (void *)(intptr_t)crew_poll(quiet_sv[0], (short)(intptr_t)arg);
}

static double cpu_seconds(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
	       (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static void *poll_waits_quietly(void *arg)
{
	(void)arg;
	static const short events[] = { POLLRDHUP, 0 };
	for (int k = 0; k < 2; k++) {
		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, quiet_sv) == 0, "socketpair");
		CHECK(write(quiet_sv[1], "x", 1) == 1, "write");
		crew_task *t = crew_spawn(poll_for, (void *)(intptr_t)events[k]);
		CHECK(t, "spawn");
		CHECK(crewt_wait_suspended(t), "poll(%#x) did not wait", events[k]);
		double c0 = cpu_seconds();
		CHECK(crew_sleep(200 * CREWT_MS) == 0, "sleep");
		double used = cpu_seconds() - c0;
		/* RDHUP: the peer shuts its side; no event: it closes (a hang-up) */
		if (events[k] == POLLRDHUP)
			CHECK(shutdown(quiet_sv[1], SHUT_WR) == 0, "shutdown");
		else
			CHECK(close(quiet_sv[1]) == 0, "close");
		void *r = NULL;
		CHECK(crew_join(t, &r) == 0, "join");
		intptr_t rc = (intptr_t)r;
		CHECK(rc > 0 && (rc & (events[k] ? events[k] : POLLHUP)), "poll(%#x): %#lx", events[k],
		      (long)rc);
		/* the process's CPU time, not a speed: a spinning worker uses most
		 * of the 200 ms whatever the machine's load, a waiting one none */
		CHECK(used < 0.1, "poll(%#x) used %.3f s of CPU in a 0.2 s wait", events[k], used);
		close(quiet_sv[0]);
		if (events[k] == POLLRDHUP)
			close(quiet_sv[1]);
	}
	return NULL;
}

IO_TEST(poll_without_pollin_waits_quietly, 1, poll_waits_quietly, NULL)

/* Eight tasks read an O_NONBLOCK pipe a byte at a time while main trickles
 * bytes in: every read waits for its byte. On io_uring, polls that lost
 * their byte to another reader ended in io_uring's own worker thread, where
 * the O_NONBLOCK pipe said -EAGAIN, and crew_read returned it (100-600 times
 * in 100,000 bytes). */
#define NB_READERS 8
#define NB_BYTES 30000
static int nb_pipe[2];
static atomic_long nb_got, nb_eagain, nb_other;

static void *nb_reader(void *arg)
{
	(void)arg;
	for (;;) {
		char c;
		ssize_t n = crew_read(nb_pipe[0], &c, 1);
		if (n == 1)
			atomic_fetch_add(&nb_got, 1);
		else if (n == -EAGAIN)
			atomic_fetch_add(&nb_eagain, 1);
		else if (n == 0)
			return NULL;
		else {
			atomic_fetch_add(&nb_other, 1);
			return NULL;
		}
	}
}

static void *nonblocking_readers(void *arg)
{
	(void)arg;
	atomic_store(&nb_got, 0);
	atomic_store(&nb_eagain, 0);
	atomic_store(&nb_other, 0);
	CHECK(pipe2(nb_pipe, O_NONBLOCK | O_CLOEXEC) == 0, "pipe2");
	crew_task *t[NB_READERS];
	for (int i = 0; i < NB_READERS; i++)
		CHECK((t[i] = crew_spawn(nb_reader, NULL)), "spawn");
	for (int i = 0; i < NB_BYTES; i++) {
		while (write(nb_pipe[1], "x", 1) != 1)
			CHECK(crew_yield() == 0, "yield");
		if (i % 4 == 0)
			CHECK(crew_yield() == 0, "yield");
	}
	close(nb_pipe[1]);
	for (int i = 0; i < NB_READERS; i++)
		CHECK(crew_join(t[i], NULL) == 0, "join");
	close(nb_pipe[0]);
	CHECK(atomic_load(&nb_eagain) == 0, "%ld reads returned -EAGAIN", atomic_load(&nb_eagain));
	CHECK(atomic_load(&nb_other) == 0 && atomic_load(&nb_got) == NB_BYTES,
	      "%ld other errors, %ld of %d bytes", atomic_load(&nb_other), atomic_load(&nb_got), NB_BYTES);
	return NULL;
}

IO_TEST(readers_of_a_nonblocking_pipe_wait, 1, nonblocking_readers, NULL)

/*
 * 300 receives complete at once on a ring of 8 entries (a CQ of 16), while
 * the only other task of the worker yields in a loop and so the worker never
 * parks: completions that overflowed the CQ into the kernel's list must
 * still come (crew.h: a yielding worker serves its completions every 61
 * switches). It stopped at 16 per flush before the overflow was flushed.
 */
#define OVERFLOW_N 300
static int overflow_fds[OVERFLOW_N][2];
static atomic_int overflow_done;

static void *overflow_reader(void *arg)
{
	int *sv = arg;
	char c;
	if (crew_recv(sv[0], &c, 1, 0) == 1)
		atomic_fetch_add(&overflow_done, 1);
	return NULL;
}

static void *cq_overflow(void *arg)
{
	(void)arg;
	crew_task *t[OVERFLOW_N];
	atomic_store(&overflow_done, 0);
	for (int i = 0; i < OVERFLOW_N; i++) {
		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, overflow_fds[i]) == 0,
		      "socketpair");
		CHECK((t[i] = crew_spawn(overflow_reader, overflow_fds[i])), "spawn");
	}
	for (int i = 0; i < OVERFLOW_N; i++)
		CHECK(crewt_wait_suspended(t[i]), "reader %d did not block", i);
	for (int i = 0; i < OVERFLOW_N; i++) /* all at once */
		CHECK(write(overflow_fds[i][1], "x", 1) == 1, "write");
	/* bounded in switches, not time: each poll of the ring is one flush */
	for (long yields = 0; atomic_load(&overflow_done) < OVERFLOW_N; yields++) {
		CHECK(yields < 2000000, "%d of %d receives done after %ld yields",
		      atomic_load(&overflow_done), OVERFLOW_N, yields);
		crew_yield();
	}
	for (int i = 0; i < OVERFLOW_N; i++) {
		crew_join(t[i], NULL);
		close(overflow_fds[i][0]);
		close(overflow_fds[i][1]);
	}
	return NULL;
}

Test(io_uring, cq_overflow_while_yielding, .timeout = CREWT_TIMEOUT(60))
{
	crewt_run_backend_ring(BE_URING, 1, 8, cq_overflow, NULL);
}

Test(epoll, cq_overflow_while_yielding, .timeout = CREWT_TIMEOUT(60))
{
	crewt_run_backend_ring(BE_EPOLL, 1, 8, cq_overflow, NULL);
}
