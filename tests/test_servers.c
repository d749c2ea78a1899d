/*
 * The example servers as a client sees them: build/examples/echo-server and
 * http-server are started with --port 0 on each backend, serve many
 * connections at once (and HTTP as a client expects), and stop gracefully on
 * SIGTERM (exit 0).
 */
#include "helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLIENTS 200

/* Start build/examples/<prog>; returns its pid and the port it printed. */
static pid_t start_server(const char *prog, const char *backend, int *port)
{
	int out[2];
	if (pipe(out) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(out[1], STDOUT_FILENO);
		close(out[0]);
		close(out[1]);
		setenv("CREW_BACKEND", backend, 1);
		char path[512];
		snprintf(path, sizeof path, "%s/%s", EXAMPLES_DIR, prog);
		execl(path, prog, "--port", "0", "--workers", "2", (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	FILE *f = fdopen(out[0], "r");
	char line[256] = {0};
	*port = 0;
	if (f && fgets(line, sizeof line, f)) {
		char *p = strstr(line, "port ");
		if (p)
			*port = atoi(p + 5);
	}
	if (f)
		fclose(f);
	return pid;
}

static int connect_to(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void echo_server_case(const char *backend)
{
	int port;
	pid_t pid = start_server("echo-server", backend, &port);
	cr_assert_gt(pid, 0);
	cr_assert_gt(port, 0, "%s: no port line", backend);
	int fds[CLIENTS];
	for (int i = 0; i < CLIENTS; i++) {
		fds[i] = connect_to(port);
		cr_assert_geq(fds[i], 0, "%s: connect %d: %s", backend, i, strerror(errno));
	}
	for (int i = 0; i < CLIENTS; i++) {
		char msg[32];
		int n = snprintf(msg, sizeof msg, "hello %d\n", i);
		cr_assert_eq(write(fds[i], msg, (size_t)n), n);
	}
	int ok = 0;
	for (int i = 0; i < CLIENTS; i++) {
		char want[32], got[32] = {0};
		int n = snprintf(want, sizeof want, "hello %d\n", i), have = 0;
		while (have < n) {
			ssize_t r = read(fds[i], got + have, (size_t)(n - have));
			if (r <= 0)
				break;
			have += (int)r;
		}
		ok += have == n && memcmp(got, want, (size_t)n) == 0;
	}
	cr_expect_eq(ok, CLIENTS, "%s: %d of %d echoed", backend, ok, CLIENTS);
	/* graceful stop while every connection is idle */
	kill(pid, SIGTERM);
	int status = 0;
	waitpid(pid, &status, 0);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: %s", backend,
	          crewt_status_str(status));
	for (int i = 0; i < CLIENTS; i++) { /* each saw end of file */
		char c;
		cr_expect_eq(read(fds[i], &c, 1), 0, "%s: connection %d not closed", backend, i);
		close(fds[i]);
	}
}

Test(servers, echo_server_io_uring, .timeout = CREWT_TIMEOUT(60)) { echo_server_case("io_uring"); }
Test(servers, echo_server_epoll, .timeout = CREWT_TIMEOUT(60)) { echo_server_case("epoll"); }

/* ---- http-server ---- */

/* Send `req`, read until the server closes (or `wait_ns`), return what came. */
static size_t http_talk(int port, const char *req, size_t len, char *out, size_t cap,
                        uint64_t wait_ns)
{
	int fd = connect_to(port);
	if (fd < 0)
		return 0;
	struct timeval tv = {.tv_sec = (time_t)(wait_ns / CREWT_SEC),
	                     .tv_usec = (suseconds_t)(wait_ns % CREWT_SEC / 1000)};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	size_t sent = 0;
	while (sent < len) {
		ssize_t n = write(fd, req + sent, len - sent);
		if (n <= 0)
			break;
		sent += (size_t)n;
	}
	size_t have = 0;
	for (;;) {
		ssize_t n = read(fd, out + have, cap - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	out[have] = 0;
	close(fd);
	return have;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void http_case(const char *backend)
{
	int port;
	pid_t pid = start_server("http-server", backend, &port);
	cr_assert_gt(pid, 0);
	cr_assert_gt(port, 0, "%s: no port line", backend);
	static char out[65536];
	/* keep-alive + pipelining: three requests in one write, in order; the
	 * HTTP/1.0 one closes the connection */
	const char *pipe3 = "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\n"
	                    "GET / HTTP/1.0\r\n\r\n";
	http_talk(port, pipe3, strlen(pipe3), out, sizeof out, 10 * CREWT_SEC);
	char *first = strstr(out, "HTTP/1.1 200 OK"), *second = strstr(out, "HTTP/1.1 404");
	cr_expect(first && second && first < second && count(out, "HTTP/1.1 200 OK") == 2,
	          "%s: pipelined answers:\n%s", backend, out);
	cr_expect(strstr(out, "Content-Length: 13\r\n") && strstr(out, "Hello, World!"), "%s", backend);
	cr_expect_eq(count(out, "Connection: close"), 1, "%s: only the HTTP/1.0 answer closes", backend);
	/* Connection: close is honoured */
	const char *cl = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
	http_talk(port, cl, strlen(cl), out, sizeof out, 10 * CREWT_SEC);
	cr_expect(strstr(out, "HTTP/1.1 200 OK") && strstr(out, "Connection: close"), "%s:\n%s", backend, out);
	/* malformed, too large, with a body, another method */
	const char *bad = "garbage\r\n\r\n";
	http_talk(port, bad, strlen(bad), out, sizeof out, 10 * CREWT_SEC);
	cr_expect(!strncmp(out, "HTTP/1.1 400 ", 13), "%s: garbage: %.40s", backend, out);
	static char big[16384];
	int n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nX: ");
	memset(big + n, 'a', 9000);
	memcpy(big + n + 9000, "\r\n\r\n", 4);
	http_talk(port, big, (size_t)n + 9004, out, sizeof out, 10 * CREWT_SEC);
	cr_expect(!strncmp(out, "HTTP/1.1 431 ", 13), "%s: 9 KB header: %.40s", backend, out);
	const char *post = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi";
	http_talk(port, post, strlen(post), out, sizeof out, 10 * CREWT_SEC);
	cr_expect(!strncmp(out, "HTTP/1.1 413 ", 13), "%s: body: %.40s", backend, out);
	const char *del = "DELETE / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
	http_talk(port, del, strlen(del), out, sizeof out, 10 * CREWT_SEC);
	cr_expect(!strncmp(out, "HTTP/1.1 405 ", 13) && strstr(out, "Allow: GET, HEAD"), "%s: %.60s",
	          backend, out);
	/* what a proxy would read differently is a 400 (RFC 9112 5.1, 3.2):
	 * whitespace before a colon, a folded line, no Host, two Hosts, a NUL;
	 * a body behind such a header is never taken for the next request */
	const char *ambiguous[] = {
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 29\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n Content-Length: 5\r\n\r\nhello",
		"GET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof ambiguous / sizeof ambiguous[0]; i++) {
		http_talk(port, ambiguous[i], strlen(ambiguous[i]), out, sizeof out, 10 * CREWT_SEC);
		cr_expect(!strncmp(out, "HTTP/1.1 400 ", 13) && count(out, "HTTP/1.1") == 1,
		          "%s: %.30s...: %.60s", backend, ambiguous[i], out);
	}
	static const char nul[] = "GET /\0x HTTP/1.1\r\nHost: a\r\n\r\n";
	http_talk(port, nul, sizeof nul - 1, out, sizeof out, 10 * CREWT_SEC);
	cr_expect(!strncmp(out, "HTTP/1.1 400 ", 13), "%s: a NUL: %.40s", backend, out);
	/* "close" in any Connection header closes; absolute-form targets */
	const char *two = "GET http://a/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
	                  "Connection: keep-alive\r\n\r\n";
	http_talk(port, two, strlen(two), out, sizeof out, 10 * CREWT_SEC);
	cr_expect(!strncmp(out, "HTTP/1.1 200 ", 13) && strstr(out, "Connection: close"), "%s: %.80s",
	          backend, out);
	/* a response goes out at once when what follows it is not a whole
	 * request (a stray CRLF, the start of the next one): it waited for the
	 * idle timeout (10 s); the client here gives up after 3 s */
	const char *stray = "GET / HTTP/1.1\r\nHost: a\r\n\r\n\r\nGE";
	http_talk(port, stray, strlen(stray), out, sizeof out, 3 * CREWT_SEC);
	cr_expect(!strncmp(out, "HTTP/1.1 200 ", 13), "%s: withheld: %.40s", backend, out);
	/* slow headers: a request line, then nothing: closed after 5 s, unanswered */
	const char *slow = "GET / HTTP/1.1\r\nHost: a\r\n";
	uint64_t t0 = crew_now();
	size_t got = http_talk(port, slow, strlen(slow), out, sizeof out, 30 * CREWT_SEC);
	uint64_t took = crew_now() - t0;
	cr_expect_eq(got, 0, "%s: a slow head got an answer", backend);
	cr_expect(took >= 5 * CREWT_SEC && took < 30 * CREWT_SEC, "%s: closed after %.1f s",
	          backend, took / 1e9);
	kill(pid, SIGTERM);
	int status = 0;
	waitpid(pid, &status, 0);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: %s", backend,
	          crewt_status_str(status));
}

Test(servers, http_server_io_uring, .timeout = CREWT_TIMEOUT(90)) { http_case("io_uring"); }
Test(servers, http_server_epoll, .timeout = CREWT_TIMEOUT(90)) { http_case("epoll"); }

/* A client that pipelines requests and never reads the answers, then a
 * stop: SIGTERM, and SIGINT as a second signal (both pending at once, so no
 * timing is involved). The server closes what is left and exits 0; its
 * send waited for ever and so did the stop. */
static void stuck_client_case(const char *prog, const char *backend)
{
	int port;
	pid_t pid = start_server(prog, backend, &port);
	cr_assert_gt(pid, 0);
	cr_assert_gt(port, 0, "%s: no port line", backend);
	int fd = connect_to(port);
	cr_assert_geq(fd, 0);
	int small = 4096;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	struct timeval tv = {.tv_sec = 0, .tv_usec = 500000};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	static char req[28000];
	size_t len = 0;
	while (len + 27 < sizeof req) {
		memcpy(req + len, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27);
		len += 27;
	}
	size_t sent = 0; /* until the server stops reading (its sends block) */
	for (;;) {
		ssize_t n = write(fd, req, len);
		if (n <= 0)
			break;
		sent += (size_t)n;
		cr_assert_lt(sent, (size_t)1 << 30, "%s: the server never stopped reading", backend);
	}
	kill(pid, SIGTERM);
	kill(pid, SIGINT);
	int status = 0;
	waitpid(pid, &status, 0);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s %s: %s", prog, backend,
	          crewt_status_str(status));
	close(fd);
}

Test(servers, http_stop_with_a_client_that_does_not_read, .timeout = CREWT_TIMEOUT(60))
{
	stuck_client_case("http-server", "io_uring");
	stuck_client_case("http-server", "epoll");
}

Test(servers, echo_stop_with_a_client_that_does_not_read, .timeout = CREWT_TIMEOUT(60))
{
	stuck_client_case("echo-server", "io_uring");
	stuck_client_case("echo-server", "epoll");
}
