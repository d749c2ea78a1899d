/*
 * TCP on every backend (IO_TEST, io_helpers.h): 1,000 concurrent echo
 * connections (also through a 4-entry ring), accepts pending at shutdown.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE; task states */
#include "io_helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
	crewt_fill(out, sizeof out, (unsigned)fd);
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
	e.lfd = crewt_tcp_listener(&e.addr, 4096);
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
	*lfd = crewt_tcp_listener(&addr, 16);
	CHECK(*lfd >= 0, "listener");
	for (int i = 0; i < 4; i++) {
		atomic_store(&shutdown_rcs[i], 1);
		crew_task *t = crew_spawn(acceptor, (void *)(intptr_t)*lfd);
		CHECK(t, "spawn");
		crew_detach(t);
	}
	return NULL; /* main returns: the accepts are cancelled */
}

IO_TEST(echo_1000, 2, echo_1000, NULL)
/* A 4-entry ring for 2,000 sockets' operations: full submission queues are
 * flushed, and what the kernel refuses waits on the backlog, never dropped. */
Test(io_uring, echo_1000_tiny_ring, .timeout = CREWT_TIMEOUT(60))
{
	crewt_run_backend_ring(BE_URING, 2, 4, echo_1000, NULL);
}

/* Accepts pending when main returns are cancelled; crew_run returns. */
static void shutdown_case(crewt_backend be)
{
	int lfd = -1;
	crewt_run_backend(be, 2, shutdown_accepts, &lfd);
	for (int i = 0; i < 4; i++)
		cr_expect_eq(atomic_load(&shutdown_rcs[i]), -ECANCELED, "acceptor %d: %d", i,
			     atomic_load(&shutdown_rcs[i]));
	close(lfd);
}
Test(io_uring, shutdown_cancels_accepts, .timeout = CREWT_TIMEOUT(60)) { shutdown_case(BE_URING); }
Test(epoll, shutdown_cancels_accepts, .timeout = CREWT_TIMEOUT(60)) { shutdown_case(BE_EPOLL); }

