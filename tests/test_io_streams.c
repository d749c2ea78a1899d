/*
 * I/O streams (crew/io.h) on every backend (IO_TEST, io_helpers.h): pipe and
 * socketpair round trips, vectored I/O, MSG_WAITALL, partial writes of large
 * buffers, a peer that goes away.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE; task states */
#include "io_helpers.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void *recv_waitall(void *p)
{
	crewt_blocked *b = p;
	b->rc = crew_recv(b->fd, b->buf, 5, MSG_WAITALL);
	return NULL;
}

/* ---- round trips ---- */

static void *pipe_roundtrip(void *arg)
{
	(void)arg;
	int p[2];
	CHECK(pipe(p) == 0, "pipe: %s", strerror(errno));
	char out[] = "hello, pipe", in[64] = { 0 };
	ssize_t n = crew_write(p[1], out, sizeof out);
	CHECK(n == (ssize_t)sizeof out, "crew_write: %zd", n);
	n = crew_read(p[0], in, sizeof in);
	CHECK(n == (ssize_t)sizeof out && !memcmp(in, out, sizeof out), "crew_read: %zd", n);
	/* vectored */
	char a[] = "abc", b[] = "defg", x[3], y[4];
	struct iovec wv[2] = { { a, 3 }, { b, 4 } }, rv[2] = { { x, 3 }, { y, 4 } };
	CHECK((n = crew_writev(p[1], wv, 2)) == 7, "crew_writev: %zd", n);
	CHECK((n = crew_readv(p[0], rv, 2)) == 7 && !memcmp(x, "abc", 3) && !memcmp(y, "defg", 4),
	      "crew_readv: %zd", n);
	/* a reader that waits for its writer */
	CHECK(crew_close(p[1]) == 0, "crew_close");
	CHECK((n = crew_read(p[0], in, sizeof in)) == 0, "read at EOF: %zd", n);
	CHECK(crew_close(p[0]) == 0, "crew_close");
	return NULL;
}

typedef struct pair_arg {
	int fd;
	size_t len;
	unsigned seed;
	ssize_t rc;
	uint64_t sum;
} pair_arg;

static void *pair_writer(void *p)
{
	pair_arg *a = p;
	unsigned char *buf = malloc(a->len);
	if (!buf) {
		a->rc = -ENOMEM;
		return NULL;
	}
	crewt_fill(buf, a->len, a->seed);
	a->sum = crewt_checksum(buf, a->len);
	a->rc = a->seed & 1 ? crew_send_all(a->fd, buf, a->len, MSG_NOSIGNAL) :
			      crew_write_all(a->fd, buf, a->len);
	free(buf);
	return NULL;
}

static void *socketpair_roundtrip(void *arg)
{
	(void)arg;
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	char in[16];
	ssize_t n = crew_send(sv[0], "ping", 4, MSG_NOSIGNAL);
	CHECK(n == 4, "crew_send: %zd", n);
	CHECK((n = crew_recv(sv[1], in, sizeof in, 0)) == 4 && !memcmp(in, "ping", 4), "crew_recv: %zd", n);
	/* the reader suspends first, the writer is another task */
	pair_arg w = { .fd = sv[1], .len = 5, .seed = 1 };
	crew_task *t = crew_spawn(pair_writer, &w);
	CHECK(t, "spawn");
	CHECK((n = crew_recv(sv[0], in, 5, MSG_WAITALL)) == 5, "crew_recv waitall: %zd", n);
	crew_join(t, NULL);
	CHECK(w.rc == 5 && crewt_checksum((unsigned char *)in, 5) == w.sum, "writer %zd, data differs", w.rc);
	/* MSG_WAITALL gathers a message that arrives in two parts */
	crewt_blocked rb = { .fd = sv[0] };
	crew_task *rt = crew_spawn(recv_waitall, &rb);
	CHECK(rt, "spawn");
	CHECK(crew_send(sv[1], "ab", 2, MSG_NOSIGNAL) == 2, "send ab");
	CHECK(crewt_wait_suspended(rt), "the reader did not wait");
	CHECK(crew_send(sv[1], "cde", 3, MSG_NOSIGNAL) == 3, "send cde");
	crew_join(rt, NULL);
	CHECK(rb.rc == 5 && !memcmp(rb.buf, "abcde", 5), "recv MSG_WAITALL: %zd", rb.rc);
	int r = crew_poll(sv[1], POLLOUT);
	CHECK(r > 0 && (r & POLLOUT), "crew_poll POLLOUT: %d", r);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

/* ---- partial writes of large buffers ---- */

static void *partial_writes(void *arg)
{
	(void)arg;
	for (unsigned round = 0; round < 2; round++) {
		int sv[2];
		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
		int small = 16384;
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
		pair_arg w = { .fd = sv[0], .len = CREWT_SIZE(8, 2) << 20, .seed = round };
		crew_task *t = crew_spawn(pair_writer, &w);
		CHECK(t, "spawn");
		unsigned char *buf = malloc(w.len);
		CHECK(buf, "malloc");
		size_t got = 0;
		unsigned reads = 0;
		while (got < w.len) {
			ssize_t n = crew_read(sv[1], buf + got, w.len - got);
			if (n <= 0) {
				free(buf);
				FAIL("crew_read after %zu bytes: %zd", got, n);
			}
			got += (size_t)n;
			reads++;
		}
		crew_join(t, NULL);
		uint64_t sum = crewt_checksum(buf, got);
		free(buf);
		CHECK(w.rc == (ssize_t)w.len, "write_all returned %zd", w.rc);
		CHECK(sum == w.sum, "checksum differs");
		CHECK(reads > 1, "one read took all %zu bytes: no partial transfer", w.len);
		close(sv[0]);
		close(sv[1]);
	}
	return NULL;
}

/* ---- a peer that goes away ---- */

static void *peer_disconnects(void *arg)
{
	(void)arg;
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	crewt_blocked b = { .fd = sv[0] };
	crew_task *t = crewt_spawn_blocked(crewt_recv_blocked, &b);
	CHECK(t, "reader did not block");
	CHECK(crew_close(sv[1]) == 0, "close peer");
	crew_join(t, NULL);
	CHECK(b.rc == 0, "recv from a peer that closed: %zd, expected 0", b.rc);
	ssize_t n = crew_send(sv[0], "x", 1, MSG_NOSIGNAL);
	CHECK(n == -EPIPE, "send to a closed peer: %zd, expected -EPIPE", n);
	close(sv[0]);
	return NULL;
}

IO_TEST(pipe_roundtrip, 2, pipe_roundtrip, NULL)
IO_TEST(socketpair_roundtrip, 2, socketpair_roundtrip, NULL)
IO_TEST(partial_writes, 2, partial_writes, NULL)
IO_TEST(peer_disconnects, 2, peer_disconnects, NULL)
