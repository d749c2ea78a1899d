/*
 * The example servers as a client sees them: build/examples/echo-server is
 * started with --port 0 on each backend, serves many connections at once,
 * and stops gracefully on SIGTERM (exit 0) while connections are idle.
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
#include <sys/wait.h>
#include <unistd.h>

#define CLIENTS 200

/* Start the server; returns its pid and the port it printed, or -1. */
static pid_t start_server(const char *backend, int *port)
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
		execl(EXAMPLES_DIR "/echo-server", "echo-server", "--port", "0", "--workers", "2",
		      (char *)NULL);
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
	pid_t pid = start_server(backend, &port);
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
