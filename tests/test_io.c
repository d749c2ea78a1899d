/*
 * I/O calls (crew/io.h) on every backend: each scenario runs three times,
 * with CREW_BACKEND=io_uring, with CREW_BACKEND=epoll, and with no
 * CREW_BACKEND in a forked child whose seccomp filter makes io_uring_setup
 * fail with ENOSYS (a container's profile): crew must pick epoll there.
 *
 * A scenario is a task body returning NULL, or a message naming what failed
 * (asserted on the test's thread after crew_run returned).
 */
#include "internal.h" /* first: it defines _GNU_SOURCE; task states */
#include "helpers.h"
#include "sim_kernel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define FAIL(...) return io_fail(__VA_ARGS__)
static char io_msg[512];

static void *io_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void *io_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(io_msg, sizeof io_msg, fmt, ap);
	va_end(ap);
	return io_msg;
}

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			FAIL(__VA_ARGS__);                                                         \
	} while (0)

static uint64_t checksum(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x = x * 1664525u + 1013904223u;
		p[i] = (unsigned char)(x >> 24);
	}
}

/* A listening TCP socket on 127.0.0.1, port chosen by the kernel. */
static int tcp_listener(struct sockaddr_in *addr, int backlog)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	*addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof *addr;
	if (bind(fd, (struct sockaddr *)addr, len) != 0 || listen(fd, backlog) != 0 ||
	    getsockname(fd, (struct sockaddr *)addr, &len) != 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

typedef struct blocked {
	int fd;
	atomic_int calling; /* set right before the blocking call */
	ssize_t rc;
	char buf[64];
} blocked;

static void *recv_waitall(void *p)
{
	blocked *b = p;
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
	fill(buf, a->len, a->seed);
	a->sum = checksum(buf, a->len);
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
	CHECK(w.rc == 5 && checksum((unsigned char *)in, 5) == w.sum, "writer %zd, data differs", w.rc);
	/* MSG_WAITALL gathers a message that arrives in two parts */
	blocked rb = { .fd = sv[0] };
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
		uint64_t sum = checksum(buf, got);
		free(buf);
		CHECK(w.rc == (ssize_t)w.len, "write_all returned %zd", w.rc);
		CHECK(sum == w.sum, "checksum differs");
		CHECK(reads > 1, "one read took all %zu bytes: no partial transfer", w.len);
		close(sv[0]);
		close(sv[1]);
	}
	return NULL;
}

/* ---- 1,000 concurrent TCP echo connections ---- */

#define ECHO_CONNS CREWT_SIZE(1000, 200)
#define ECHO_BYTES 4096

typedef struct echo {
	struct sockaddr_in addr;
	int lfd;
	atomic_int errors, served, clients_ok;
	char first[128];
} echo;

static void echo_error(echo *e, const char *what, long rc)
{
	if (atomic_fetch_add(&e->errors, 1) == 0)
		snprintf(e->first, sizeof e->first, "%s: %ld", what, rc);
}

static void *echo_conn(void *p)
{
	intptr_t fd = (intptr_t)p;
	char buf[1024];
	for (;;) {
		ssize_t n = crew_recv((int)fd, buf, sizeof buf, 0);
		if (n <= 0)
			break;
		if (crew_send_all((int)fd, buf, (size_t)n, MSG_NOSIGNAL) < 0)
			break;
	}
	crew_close((int)fd);
	return NULL;
}

static void *echo_server(void *p)
{
	echo *e = p;
	for (int i = 0; i < ECHO_CONNS; i++) {
		struct sockaddr_in peer;
		socklen_t len = sizeof peer;
		int fd = crew_accept(e->lfd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
		if (fd < 0) {
			echo_error(e, "accept", fd);
			return NULL;
		}
		if (len != sizeof peer || peer.sin_addr.s_addr != htonl(INADDR_LOOPBACK))
			echo_error(e, "accept: peer address", (long)len);
		crew_task *t = crew_spawn(echo_conn, (void *)(intptr_t)fd);
		if (!t) {
			close(fd);
			echo_error(e, "spawn", errno);
			return NULL;
		}
		crew_detach(t);
		atomic_fetch_add(&e->served, 1);
	}
	return NULL;
}

static void *echo_client(void *p)
{
	echo *e = p;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		echo_error(e, "socket", errno);
		return NULL;
	}
	int rc = crew_connect(fd, (struct sockaddr *)&e->addr, sizeof e->addr);
	if (rc != 0) {
		echo_error(e, "connect", rc);
		close(fd);
		return NULL;
	}
	unsigned char out[ECHO_BYTES], in[ECHO_BYTES];
	fill(out, sizeof out, (unsigned)fd);
	ssize_t n = crew_send_all(fd, out, sizeof out, MSG_NOSIGNAL);
	size_t got = 0;
	while (n >= 0 && got < sizeof in) {
		n = crew_recv(fd, in + got, sizeof in - got, 0);
		if (n > 0)
			got += (size_t)n;
		else
			n = n ? n : -EPIPE;
	}
	if (n < 0)
		echo_error(e, "client send/recv", (long)n);
	else if (memcmp(in, out, sizeof out) != 0)
		echo_error(e, "echoed data differs", 0);
	else
		atomic_fetch_add(&e->clients_ok, 1);
	crew_close(fd);
	return NULL;
}

static void *echo_1000(void *arg)
{
	(void)arg;
	static echo e; /* big enough not to live on a fiber stack */
	memset(&e, 0, sizeof e);
	e.lfd = tcp_listener(&e.addr, 4096);
	CHECK(e.lfd >= 0, "listener: %s", strerror(-e.lfd));
	crew_task *srv = crew_spawn(echo_server, &e);
	CHECK(srv, "spawn");
	crew_task **c = calloc(ECHO_CONNS, sizeof *c);
	CHECK(c, "calloc");
	for (int i = 0; i < ECHO_CONNS; i++)
		if (!(c[i] = crew_spawn(echo_client, &e)))
			FAIL("spawn client %d", i);
	for (int i = 0; i < ECHO_CONNS; i++)
		crew_join(c[i], NULL);
	free(c);
	crew_join(srv, NULL);
	close(e.lfd);
	CHECK(atomic_load(&e.errors) == 0, "%d errors, first: %s", atomic_load(&e.errors), e.first);
	CHECK(atomic_load(&e.clients_ok) == ECHO_CONNS && atomic_load(&e.served) == ECHO_CONNS,
	      "%d clients ok, %d served", atomic_load(&e.clients_ok), atomic_load(&e.served));
	return NULL;
}

/* ---- a peer that goes away ---- */

static void *recv_blocked(void *p)
{
	blocked *b = p;
	atomic_store(&b->calling, 1);
	b->rc = crew_recv(b->fd, b->buf, sizeof b->buf, 0);
	return NULL;
}

/* Spawn fn(b) and return once it is suspended in its blocking call. */
static crew_task *spawn_blocked(crew_fn fn, blocked *b)
{
	crew_task *t = crew_spawn(fn, b);
	if (!t)
		return NULL;
	while (!atomic_load(&b->calling))
		if (crew_yield() != 0)
			break;
	if (!crewt_wait_suspended(t)) {
		crew_join(t, NULL);
		return NULL;
	}
	return t;
}

static void *peer_disconnects(void *arg)
{
	(void)arg;
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	blocked b = { .fd = sv[0] };
	crew_task *t = spawn_blocked(recv_blocked, &b);
	CHECK(t, "reader did not block");
	CHECK(crew_close(sv[1]) == 0, "close peer");
	crew_join(t, NULL);
	CHECK(b.rc == 0, "recv from a peer that closed: %zd, expected 0", b.rc);
	ssize_t n = crew_send(sv[0], "x", 1, MSG_NOSIGNAL);
	CHECK(n == -EPIPE, "send to a closed peer: %zd, expected -EPIPE", n);
	close(sv[0]);
	return NULL;
}

/* ---- deadline scopes ---- */

static void *sleep_child(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)(crew_sleep(CREWT_MS) == 0);
}

static void *deadline_slow_peer(void *arg)
{
	(void)arg;
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	char buf[8];
	memset(buf, 'C', sizeof buf);
	crew_deadline outer, inner;
	uint64_t t0 = crew_now();
	CHECK(crew_deadline_push(&outer, t0 + 60 * CREWT_SEC) == 0, "push outer");
	CHECK(crew_deadline_push(&inner, t0 + 20 * CREWT_MS) == 0, "push inner");
	ssize_t n = crew_recv(sv[0], buf, sizeof buf, 0);
	uint64_t waited = crew_now() - t0;
	CHECK(n == -ETIMEDOUT, "recv past the scope's deadline: %zd", n);
	CHECK(waited >= 20 * CREWT_MS, "returned before the deadline (%llu ns)",
	      (unsigned long long)waited);
	CHECK(crew_deadline_expired(&inner) && !crew_deadline_expired(&outer), "expired()");
	/* the scope applies to sleeps and awaits too, and stays expired */
	CHECK(crew_sleep(30 * CREWT_SEC) == -ETIMEDOUT, "sleep in an expired scope");
	crew_future *f = crew_future_new();
	CHECK(f, "future");
	CHECK(crew_future_await(f, NULL) == -ETIMEDOUT, "await in an expired scope");
	/* crew_join is not a cancellation point: the scope does not end it, and
	 * the child does not inherit it */
	crew_task *child = crew_spawn(sleep_child, NULL);
	CHECK(child, "spawn");
	void *cr = NULL;
	CHECK(crew_join(child, &cr) == 0 && cr == (void *)1, "join in an expired scope: child %p", cr);
	CHECK(crew_deadline_pop(&outer) == -EINVAL, "pop of the outer scope first");
	CHECK(crew_deadline_pop(&inner) == 0, "pop inner");
	/* the outer, far deadline applies again: a short sleep ends normally */
	CHECK(crew_sleep(CREWT_MS) == 0, "sleep under the outer scope");
	/* the cancelled recv did not take the data now sent, nor touch buf */
	CHECK(write(sv[1], "late", 4) == 4, "write");
	char again[8] = { 0 };
	CHECK((n = crew_recv(sv[0], again, sizeof again, 0)) == 4 && !memcmp(again, "late", 4),
	      "recv after the timed-out one: %zd", n);
	for (size_t i = 0; i < sizeof buf; i++)
		CHECK(buf[i] == 'C', "the timed-out recv wrote into its buffer");
	CHECK(crew_deadline_pop(&outer) == 0, "pop outer");
	crew_future_set(f, NULL);
	crew_future_release(f);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

/* ---- cancelling a task blocked in an operation ---- */

typedef enum { OP_ACCEPT, OP_RECV, OP_CONNECT, OP_FILE_READ } op_kind;

typedef struct cancel_case {
	op_kind kind;
	bool from_thread;
	blocked b;
	struct sockaddr_in addr;
} cancel_case;

static void *blocked_op(void *p)
{
	cancel_case *c = p;
	blocked *b = &c->b;
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
		lfd = c->b.fd = tcp_listener(&c->addr, 16);
		CHECK(lfd >= 0, "listener");
		break;
	case OP_RECV: {
		int sv[2];
		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
		c->b.fd = sv[0];
		feed = sv[1];
		break;
	}
	case OP_CONNECT: {
		/* A full accept queue: Linux drops the SYN, the connect waits. */
		lfd = tcp_listener(&c->addr, 0);
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

/* ---- errors ---- */

static void *errors(void *arg)
{
	(void)arg;
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	close(p[0]);
	close(p[1]);
	char buf[4];
	ssize_t n = crew_read(p[0], buf, sizeof buf);
	CHECK(n == -EBADF, "read of a closed fd: %zd", n);
	int fd = crew_openat(AT_FDCWD, "/nonexistent-crew-dir/missing", O_RDONLY, 0);
	CHECK(fd == -ENOENT, "open of a missing file: %d", fd);
	return NULL;
}

/* ---- write, fsync, read back ---- */

static void *file_checksum(void *arg)
{
	(void)arg;
	char path[] = "/tmp/crew-test-io-XXXXXX";
	int tmp = mkstemp(path);
	CHECK(tmp >= 0, "mkstemp");
	close(tmp);
	int fd = crew_openat(AT_FDCWD, path, O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
	unlink(path);
	CHECK(fd >= 0, "crew_openat: %d", fd);
	size_t len = 1 << 20;
	unsigned char *out = malloc(len), *in = malloc(len);
	CHECK(out && in, "malloc");
	fill(out, len, 7);
	ssize_t n = crew_write_all(fd, out, len / 2);
	CHECK(n == (ssize_t)(len / 2), "crew_write_all: %zd", n);
	n = crew_pwrite(fd, out + len / 2, len / 2, (off_t)(len / 2));
	CHECK(n == (ssize_t)(len / 2), "crew_pwrite: %zd", n);
	CHECK(crew_fsync(fd) == 0, "crew_fsync");
	size_t got = 0;
	while (got < len) {
		n = crew_pread(fd, in + got, len - got, (off_t)got);
		CHECK(n > 0, "crew_pread at %zu: %zd", got, n);
		got += (size_t)n;
	}
	uint64_t a = checksum(out, len), b = checksum(in, len);
	free(out);
	free(in);
	CHECK(a == b, "read back differs");
	CHECK(crew_close(fd) == 0, "crew_close");
	return NULL;
}

/* ---- pending accepts at shutdown ---- */

static atomic_int shutdown_rcs[4];

static void *acceptor(void *p)
{
	int rc = crew_accept((int)(intptr_t)p, NULL, NULL, 0);
	for (int i = 0; i < 4; i++) {
		int expected = 1;
		if (atomic_compare_exchange_strong(&shutdown_rcs[i], &expected, rc))
			break;
	}
	return NULL;
}

static void *shutdown_accepts(void *arg)
{
	int *lfd = arg;
	struct sockaddr_in addr;
	*lfd = tcp_listener(&addr, 16);
	CHECK(*lfd >= 0, "listener");
	for (int i = 0; i < 4; i++) {
		atomic_store(&shutdown_rcs[i], 1);
		crew_task *t = crew_spawn(acceptor, (void *)(intptr_t)*lfd);
		CHECK(t, "spawn");
		crew_detach(t);
	}
	return NULL; /* main returns: the accepts are cancelled */
}

/* ---- a task that moves between workers between operations ---- */

/*
 * Each round, the mover M spawns a holder H and holds its own worker until
 * the other worker took H; H holds that one until M waits on a future, then
 * sets it: M lands in H's LIFO slot and runs there once H returns. So M
 * does I/O on one worker, moves, and does I/O on the other. (An idle worker
 * may take M over from H's LIFO slot if it saw H's worker stuck for the
 * grace period, keeping M where it was in that round: migrations are
 * counted over the rounds, not asserted for each.)
 */
#define MOVE_ROUNDS 8

typedef struct mover {
	int sv[2];
	crew_future *go;
	atomic_int holder_runs, mover_waits;
	crew_task *mover;
	int migrations;
	const char *err;
} mover;

static void *mover_holder(void *p)
{
	mover *m = p;
	atomic_store(&m->holder_runs, 1);
	/* hold this worker (no suspension) until the mover waits */
	while (!atomic_load(&m->mover_waits))
		sched_yield();
	for (;;) { /* until M is switched out in its await */
		uint32_t st = crew__load_acquire_32(&m->mover->state);
		if (!(st & (CREW_T_RUNNING | CREW_T_SCHEDULED)))
			break;
		sched_yield();
	}
	crew_future_set(m->go, NULL); /* the mover lands in our LIFO slot */
	return NULL;
}

static bool mover_io(mover *m)
{
	char buf[8];
	return crew_send(m->sv[0], "abcd", 4, MSG_NOSIGNAL) == 4 &&
	       crew_recv(m->sv[1], buf, sizeof buf, 0) == 4 && !memcmp(buf, "abcd", 4);
}

static void *mover_task(void *p)
{
	mover *m = p;
	m->mover = crew_self();
	for (int k = 0; k < MOVE_ROUNDS && !m->err; k++) {
		atomic_store(&m->holder_runs, 0);
		atomic_store(&m->mover_waits, 0);
		if (!(m->go = crew_future_new())) {
			m->err = "future";
			break;
		}
		crew_task *h = crew_spawn(mover_holder, m);
		if (!h) {
			m->err = "spawn";
			break;
		}
		while (!atomic_load(&m->holder_runs)) /* the other worker takes h */
			sched_yield();
		if (!mover_io(m))
			m->err = "I/O before the move failed";
		int before = crew_worker_id();
		atomic_store(&m->mover_waits, 1);
		crew_future_await(m->go, NULL);
		int after = crew_worker_id();
		if (!mover_io(m))
			m->err = "I/O after the move failed";
		m->migrations += after != before;
		crew_join(h, NULL);
		crew_future_release(m->go);
	}
	return NULL;
}

static void *moves(void *arg)
{
	mover *m = arg;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, m->sv) == 0, "socketpair");
	crew_task *t = crew_spawn(mover_task, m);
	CHECK(t, "spawn");
	crew_join(t, NULL);
	close(m->sv[0]);
	close(m->sv[1]);
	CHECK(!m->err, "%s", m->err);
	CHECK(m->migrations > 0, "the mover never moved in %d rounds", MOVE_ROUNDS);
	return NULL;
}

/* ---- a cancel that must travel to the op's home worker ---- */

/*
 * R blocks in a recv on worker X (its home). The canceller C runs on the
 * other worker Y, which it holds (no suspension) until R waits: the cancel's
 * wake puts R in Y's LIFO slot, and when C finishes R runs on Y, from where
 * its cancel request goes through X's queue and eventfd (io.c).
 */
typedef struct remote {
	int sv[2];
	atomic_int c_runs;
	crew_task *r;         /* atomic */
	blocked b;
	int home, canceller, cancel_rc;
} remote;

static void *remote_reader(void *p)
{
	remote *m = p;
	m->home = crew_worker_id();
	atomic_store(&m->b.calling, 1);
	m->b.rc = crew_recv(m->b.fd, m->b.buf, sizeof m->b.buf, 0);
	memset(m->b.buf, 'K', sizeof m->b.buf); /* the canary */
	return NULL;
}

static void *remote_canceller(void *p)
{
	remote *m = p;
	m->canceller = crew_worker_id();
	atomic_store(&m->c_runs, 1);
	crew_task *r;
	while (!(r = __atomic_load_n(&m->r, __ATOMIC_ACQUIRE)) || !atomic_load(&m->b.calling))
		sched_yield(); /* hold this worker */
	for (;;) { /* until R is switched out in its recv (its only suspension) */
		uint32_t st = crew__load_acquire_32(&r->state);
		if (!(st & (CREW_T_RUNNING | CREW_T_SCHEDULED)))
			break;
		sched_yield();
	}
	m->cancel_rc = crew_cancel(r);
	return NULL;
}

static void *cancel_remote(void *arg)
{
	remote *m = arg;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, m->sv) == 0, "socketpair");
	m->b.fd = m->sv[0];
	crew_task *c = crew_spawn(remote_canceller, m);
	CHECK(c, "spawn");
	while (!atomic_load(&m->c_runs)) /* hold our worker: the other one takes c */
		sched_yield();
	crew_task *r = crew_spawn(remote_reader, m);
	CHECK(r, "spawn");
	__atomic_store_n(&m->r, r, __ATOMIC_RELEASE);
	int jr = crew_join(r, NULL); /* r runs here, on our worker */
	crew_join(c, NULL);
	CHECK(m->home != m->canceller, "reader and canceller both on worker %d", m->home);
	CHECK(m->cancel_rc == 0 && jr == -ECANCELED, "cancel %d, join %d", m->cancel_rc, jr);
	CHECK(m->b.rc == -ECANCELED, "recv returned %zd, expected -ECANCELED", m->b.rc);
	CHECK(write(m->sv[1], "data", 4) == 4, "write");
	char in[8];
	ssize_t n = crew_read(m->sv[0], in, sizeof in);
	CHECK(n == 4 && !memcmp(in, "data", 4), "read after the cancel: %zd", n);
	for (size_t i = 0; i < sizeof m->b.buf; i++)
		CHECK(m->b.buf[i] == 'K', "the buffer was written after the call returned");
	close(m->sv[0]);
	close(m->sv[1]);
	return NULL;
}

/* ---- the three backends ---- */

typedef enum { BE_URING, BE_EPOLL, BE_NO_URING } backend;

static const char *be_env(backend be)
{
	return be == BE_URING ? "io_uring" : be == BE_EPOLL ? "epoll" : NULL;
}

static void *check_backend(void *want)
{
	const char *name = crew_backend_name();
	if (!name || strcmp(name, want) != 0)
		return io_fail("backend %s, expected %s", name ? name : "(none)", (const char *)want);
	return NULL;
}

typedef struct run_case {
	backend be;
	unsigned workers;
	unsigned ring_entries; /* 0: the default */
	crew_fn fn;
	void *arg;
	void *res;
	int rc;
} run_case;

static void run_in(run_case *rc)
{
	const char *env = be_env(rc->be);
	if (env)
		setenv("CREW_BACKEND", env, 1);
	else
		unsetenv("CREW_BACKEND");
	void *r = NULL;
	const char *want = rc->be == BE_URING ? "io_uring" : "epoll";
	rc->rc = crewt_run(rc->workers, check_backend, (void *)want, &r);
	if (rc->rc == 0 && r) {
		rc->res = r;
		return;
	}
	crew_config cfg = { .workers = rc->workers, .ring_entries = rc->ring_entries };
	if (rc->rc == 0)
		rc->rc = crew_run_with(&cfg, rc->fn, rc->arg, &rc->res);
}

static void child_no_uring(void *p)
{
	run_case *rc = p;
	int e = crewt_block_io_uring();
	if (e) {
		fprintf(stderr, "seccomp filter: %s\n", strerror(-e));
		exit(3);
	}
	run_in(rc);
	if (rc->rc != 0 || rc->res) {
		fprintf(stderr, "crew_run %d: %s\n", rc->rc, rc->res ? (char *)rc->res : "");
		exit(1);
	}
}

static void run_backend_ring(backend be, unsigned workers, unsigned ring, crew_fn fn, void *arg)
{
	run_case rc = { be, workers, ring, fn, arg, NULL, 0 };
	if (be != BE_NO_URING) {
		run_in(&rc);
		cr_assert_eq(rc.rc, 0, "crew_run: %d", rc.rc);
		cr_assert_null(rc.res, "%s: %s", be_env(be), (char *)rc.res);
		return;
	}
	crewt_proc p;
	cr_assert_eq(crewt_fork_capture(child_no_uring, &rc, 60 * CREWT_SEC * (CREWT_SANITIZER ? 6 : 1), &p), 0);
	cr_assert(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0, "child: %s; stderr: %s",
		  crewt_status_str(p.status), p.err);
	cr_assert(strstr(p.err, "io_uring unavailable") && strstr(p.err, "using epoll"),
		  "no notice on stderr: %s", p.err);
	crewt_proc_free(&p);
}

static void run_backend(backend be, unsigned workers, crew_fn fn, void *arg)
{
	run_backend_ring(be, workers, 0, fn, arg);
}

#define IO_TEST(name, workers, fn, arg)                                                            \
	Test(io_uring, name, .timeout = CREWT_TIMEOUT(60)) { run_backend(BE_URING, workers, fn, arg); } \
	Test(epoll, name, .timeout = CREWT_TIMEOUT(60)) { run_backend(BE_EPOLL, workers, fn, arg); }   \
	Test(no_uring, name, .timeout = CREWT_TIMEOUT(60)) { run_backend(BE_NO_URING, workers, fn, arg); }

IO_TEST(pipe_roundtrip, 2, pipe_roundtrip, NULL)
IO_TEST(socketpair_roundtrip, 2, socketpair_roundtrip, NULL)
IO_TEST(partial_writes, 2, partial_writes, NULL)
IO_TEST(echo_1000, 2, echo_1000, NULL)
/* A 4-entry ring for 2,000 sockets' operations: full submission queues are
 * flushed, and what the kernel refuses waits on the backlog, never dropped. */
Test(io_uring, echo_1000_tiny_ring, .timeout = CREWT_TIMEOUT(60))
{
	run_backend_ring(BE_URING, 2, 4, echo_1000, NULL);
}
IO_TEST(peer_disconnects, 2, peer_disconnects, NULL)
IO_TEST(deadline_slow_peer, 2, deadline_slow_peer, NULL)
IO_TEST(errors, 1, errors, NULL)
IO_TEST(file_checksum, 2, file_checksum, NULL)

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

static remote the_remote;
IO_TEST(cancel_reaches_home_worker, 2, cancel_remote, &the_remote)

static mover the_mover;
IO_TEST(moves_between_workers, 2, moves, &the_mover)

/* Accepts pending when main returns are cancelled; crew_run returns. */
static void shutdown_case(backend be)
{
	int lfd = -1;
	run_backend(be, 2, shutdown_accepts, &lfd);
	for (int i = 0; i < 4; i++)
		cr_expect_eq(atomic_load(&shutdown_rcs[i]), -ECANCELED, "acceptor %d: %d", i,
			     atomic_load(&shutdown_rcs[i]));
	close(lfd);
}
Test(io_uring, shutdown_cancels_accepts, .timeout = CREWT_TIMEOUT(60)) { shutdown_case(BE_URING); }
Test(epoll, shutdown_cancels_accepts, .timeout = CREWT_TIMEOUT(60)) { shutdown_case(BE_EPOLL); }

/* Outside a task: -EPERM, nothing done. A bad CREW_BACKEND: -EINVAL. */
Test(io, outside_a_task)
{
	char buf[4];
	cr_expect_eq(crew_read(0, buf, sizeof buf), -EPERM);
	cr_expect_eq(crew_write(1, buf, 0), -EPERM);
	cr_expect_eq(crew_accept(0, NULL, NULL, 0), -EPERM);
	cr_expect_eq(crew_close(12345), -EPERM);
	cr_expect_eq(crew_poll(0, POLLIN), -EPERM);
	crew_deadline d;
	cr_expect_eq(crew_deadline_push(&d, 0), -EPERM);
	cr_expect_null(crew_backend_name());
}

Test(io, bad_backend_name)
{
	setenv("CREW_BACKEND", "kqueue", 1);
	cr_expect_eq(crewt_run(1, check_backend, "epoll", NULL), -EINVAL);
}
