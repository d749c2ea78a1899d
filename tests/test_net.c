/*
 * crew_signal_wait and the TCP helpers (crew_tcp_listen, crew_tcp_connect,
 * crew_tcp_port), on both I/O backends (CREW_BACKEND=io_uring and =epoll).
 * Only loopback addresses; bounded; no sleeps to dodge races.
 */
#include "helpers.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const backends[] = {"io_uring", "epoll"};

/* Run fn on 2 workers with CREW_BACKEND=be; its result is a message or NULL. */
static void run_on(const char *be, crew_fn fn, void *arg)
{
	setenv("CREW_BACKEND", be, 1);
	void *res = (void *)"crew_run failed";
	int rc = crewt_run(2, fn, arg, &res);
	unsetenv("CREW_BACKEND");
	cr_assert_eq(rc, 0, "%s: crew_run: %d", be, rc);
	cr_expect_null(res, "%s: %s", be, res ? (const char *)res : "");
}

/* ---- signals ---- */

typedef struct sigcase {
	crew_task *waiter;
	atomic_int got;
} sigcase;

static void *wait_usr1(void *p)
{
	sigcase *c = p;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	atomic_store(&c->got, crew_signal_wait(&set));
	return NULL;
}

/* A plain thread sends the signal once the waiter is suspended in its wait. */
static void *send_when_waiting(void *p)
{
	sigcase *c = p;
	while (!crewt_wait_suspended(c->waiter))
		;
	kill(getpid(), SIGUSR1);
	return NULL;
}

static void *signal_main(void *p)
{
	sigcase *c = p;
	c->waiter = crew_spawn(wait_usr1, c);
	if (!c->waiter)
		return "spawn failed";
	pthread_t th;
	if (pthread_create(&th, NULL, send_when_waiting, c) != 0)
		return "pthread_create failed";
	crew_join(c->waiter, NULL);
	pthread_join(th, NULL);
	return atomic_load(&c->got) == SIGUSR1 ? NULL : "crew_signal_wait did not return SIGUSR1";
}

static void block_usr1(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

Test(net, signal_wait_gets_a_signal, .timeout = CREWT_TIMEOUT(30))
{
	block_usr1(); /* before crew_run: the workers inherit it */
	for (int b = 0; b < 2; b++) {
		sigcase c = {0};
		run_on(backends[b], signal_main, &c);
	}
}

static void *cancel_signal_wait(void *p)
{
	(void)p;
	sigcase c = {0};
	crew_task *t = crew_spawn(wait_usr1, &c);
	if (!t)
		return "spawn failed";
	crewt_wait_suspended(t);
	crew_cancel(t);
	crew_join(t, NULL);
	return atomic_load(&c.got) == -ECANCELED ? NULL : "a cancelled wait did not return -ECANCELED";
}

Test(net, signal_wait_cancelled, .timeout = CREWT_TIMEOUT(30))
{
	block_usr1();
	for (int b = 0; b < 2; b++)
		run_on(backends[b], cancel_signal_wait, NULL);
}

static void *unblocked_signal(void *p)
{
	(void)p;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2); /* not blocked: its default action would win */
	if (crew_signal_wait(&set) != -EINVAL)
		return "an unblocked signal was accepted";
	if (crew_signal_wait(NULL) != -EINVAL)
		return "NULL was accepted";
	return NULL;
}

Test(net, signal_wait_misuse, .timeout = CREWT_TIMEOUT(30))
{
	sigset_t set;
	sigemptyset(&set);
	cr_expect_eq(crew_signal_wait(&set), -EPERM, "outside a task");
	run_on("io_uring", unblocked_signal, NULL);
}

/* ---- TCP helpers ---- */

typedef struct echo_case {
	const char *listen_host, *connect_host;
	int port;
} echo_case;

static void *echo_once(void *p)
{
	int fd = (int)(intptr_t)p;
	char buf[64];
	ssize_t n = crew_recv(fd, buf, sizeof buf, 0);
	if (n > 0)
		crew_send_all(fd, buf, (size_t)n, MSG_NOSIGNAL);
	crew_close(fd);
	return NULL;
}

static void *accept_one(void *p)
{
	int lfd = (int)(intptr_t)p;
	int fd = crew_accept(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return (void *)(intptr_t)fd;
	echo_once((void *)(intptr_t)fd);
	return NULL;
}

static void *tcp_echo(void *p)
{
	echo_case *e = p;
	int lfd = crew_tcp_listen(e->listen_host, 0, 16);
	if (lfd < 0)
		return "crew_tcp_listen failed";
	e->port = crew_tcp_port(lfd);
	if (e->port <= 0)
		return "crew_tcp_port failed";
	crew_task *srv = crew_spawn(accept_one, (void *)(intptr_t)lfd);
	int fd = crew_tcp_connect(e->connect_host, (uint16_t)e->port);
	const char *msg = NULL;
	char buf[16] = {0};
	if (fd < 0)
		msg = "crew_tcp_connect failed";
	else if (crew_send_all(fd, "ping", 4, MSG_NOSIGNAL) != 4 || crew_recv(fd, buf, 4, MSG_WAITALL) != 4 ||
	         memcmp(buf, "ping", 4) != 0)
		msg = "no echo";
	if (fd >= 0)
		crew_close(fd);
	if (msg)
		crew_cancel(srv);
	crew_join(srv, NULL);
	crew_close(lfd);
	return (void *)msg;
}

Test(net, tcp_listen_connect_ipv4, .timeout = CREWT_TIMEOUT(30))
{
	for (int b = 0; b < 2; b++) {
		echo_case e = {"127.0.0.1", "127.0.0.1", 0};
		run_on(backends[b], tcp_echo, &e);
		cr_expect_gt(e.port, 0);
	}
}

Test(net, tcp_any_interface_takes_ipv4_and_ipv6, .timeout = CREWT_TIMEOUT(30))
{
	echo_case v4 = {NULL, "127.0.0.1", 0}, v6 = {NULL, "::1", 0};
	run_on("io_uring", tcp_echo, &v4);
	if (access("/proc/net/if_inet6", F_OK) == 0) /* the kernel has IPv6 */
		run_on("epoll", tcp_echo, &v6);
}

/* "localhost" resolves to 127.0.0.1 here (a minimal root may have no
 * /etc/hosts, and no DNS either: nothing to test then). */
static bool localhost_is_127(void)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
	if (getaddrinfo("localhost", "80", &hints, &res) != 0)
		return false;
	bool ok = res && ((struct sockaddr_in *)res->ai_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
	freeaddrinfo(res);
	return ok;
}

Test(net, tcp_localhost_by_name, .timeout = CREWT_TIMEOUT(30))
{
	if (!localhost_is_127()) {
		cr_log_info("\"localhost\" does not resolve to 127.0.0.1 here: nothing to test");
		return;
	}
	echo_case e = {"127.0.0.1", "localhost", 0};
	run_on("epoll", tcp_echo, &e);
}

static void *tcp_misuse(void *p)
{
	(void)p;
	if (crew_tcp_connect(NULL, 80) != -EINVAL || crew_tcp_connect("", 80) != -EINVAL ||
	    crew_tcp_connect("127.0.0.1", 0) != -EINVAL)
		return "bad arguments accepted";
	int lfd = crew_tcp_listen("127.0.0.1", 0, 4);
	if (lfd < 0)
		return "listen failed";
	int port = crew_tcp_port(lfd);
	/* the port is taken: a second listener (SO_REUSEADDR does not share a listening port) */
	int again = crew_tcp_listen("127.0.0.1", (uint16_t)port, 4);
	crew_close(lfd);
	if (again >= 0) {
		crew_close(again);
		return "a second listener on the same port";
	}
	if (again != -EADDRINUSE)
		return "expected -EADDRINUSE";
	/* nobody listens there now */
	int fd = crew_tcp_connect("127.0.0.1", (uint16_t)port);
	if (fd >= 0) {
		crew_close(fd);
		return "connected to a closed port";
	}
	return fd == -ECONNREFUSED ? NULL : "expected -ECONNREFUSED";
}

Test(net, tcp_errors, .timeout = CREWT_TIMEOUT(30))
{
	cr_expect_eq(crew_tcp_listen("127.0.0.1", 0, 1), -EPERM, "outside a task");
	cr_expect_eq(crew_tcp_port(-1), -EBADF);
	for (int b = 0; b < 2; b++)
		run_on(backends[b], tcp_misuse, NULL);
}

/* ---- crew_reader ---- */

static void *write_in_pieces(void *p)
{
	int fd = (int)(intptr_t)p;
	const char *text = "a\nbb\n\nccc";
	for (size_t i = 0; text[i]; i++) { /* a byte at a time: many short reads */
		if (crew_write(fd, text + i, 1) != 1)
			return (void *)1;
		crew_yield();
	}
	crew_close(fd);
	return NULL;
}

static bool frame_is(crew_reader *r, const char *want)
{
	char *line = NULL;
	ssize_t n = crew_reader_read_until(r, '\n', &line);
	return n == (ssize_t)strlen(want) && (n == 0 || memcmp(line, want, (size_t)n) == 0);
}

static void *reader_lines(void *p)
{
	(void)p;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		return "socketpair failed";
	crew_task *w = crew_spawn(write_in_pieces, (void *)(intptr_t)sv[1]);
	crew_reader r;
	if (!w || crew_reader_init(&r, sv[0], 64) != 0)
		return "setup failed";
	const char *msg = NULL;
	if (!frame_is(&r, "a\n") || !frame_is(&r, "bb\n") || !frame_is(&r, "\n"))
		msg = "wrong lines";
	else if (!frame_is(&r, "ccc")) /* end of file: the rest, no delimiter */
		msg = "wrong tail";
	else if (!frame_is(&r, ""))
		msg = "no end of file";
	crew_reader_fini(&r);
	crew_join(w, NULL);
	crew_close(sv[0]);
	return (void *)msg;
}

static void *reader_too_long(void *p)
{
	(void)p;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		return "socketpair failed";
	if (write(sv[1], "abcdefgh\n", 9) != 9)
		return "write failed";
	crew_reader r;
	if (crew_reader_init(&r, sv[0], 4) != 0)
		return "init failed";
	char *line;
	char rest[16] = {0};
	const char *msg = NULL, *seen = NULL;
	if (crew_reader_read_until(&r, '\n', &line) != -EMSGSIZE)
		msg = "expected -EMSGSIZE";
	else if (crew_reader_peek(&r, &seen) != 4 || memcmp(seen, "abcd", 4) != 0 ||
		 crew_reader_peek(NULL, &seen) != 0 || crew_reader_peek(&r, NULL) != 0)
		msg = "crew_reader_peek does not show the buffered bytes";
	else if (crew_reader_buffered(&r) != 4 || crew_reader_read(&r, rest, sizeof rest) != 4 ||
	         memcmp(rest, "abcd", 4) != 0)
		msg = "the buffered bytes were not kept";
	else if (crew_reader_read(&r, rest, 5) != 5 || memcmp(rest, "efgh\n", 5) != 0)
		msg = "the rest was not read";
	else {
		/* nothing buffered, nothing sent, the peer open: a read of 0
		 * bytes returns 0 at once, as read(2) (it waited for data) */
		crew_deadline d;
		crew_deadline_push(&d, crew_now() + 5 * CREWT_SEC);
		ssize_t z = crew_reader_read(&r, rest, 0);
		crew_deadline_pop(&d);
		if (z != 0)
			msg = "a read of 0 bytes waited for data";
	}
	crew_reader_fini(&r);
	close(sv[0]);
	close(sv[1]);
	return (void *)msg;
}

Test(net, reader_frames_lines, .timeout = CREWT_TIMEOUT(30))
{
	crew_reader r;
	cr_expect_eq(crew_reader_init(&r, -1, 16), -EINVAL);
	cr_expect_eq(crew_reader_init(&r, 0, 0), -EINVAL);
	for (int b = 0; b < 2; b++) {
		run_on(backends[b], reader_lines, NULL);
		run_on(backends[b], reader_too_long, NULL);
	}
}
