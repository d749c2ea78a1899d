/* io_helpers.c - see io_helpers.h. */
#define _GNU_SOURCE
#include "io_helpers.h"
#include "reactor_uring.h" /* crew__uring_force_emulate */
#include "sim_kernel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static char io_msg[512];

void *crewt_io_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(io_msg, sizeof io_msg, fmt, ap);
	va_end(ap);
	return io_msg;
}

uint64_t crewt_checksum(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

void crewt_fill(unsigned char *p, size_t n, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x = x * 1664525u + 1013904223u;
		p[i] = (unsigned char)(x >> 24);
	}
}

int crewt_tcp_listener(struct sockaddr_in *addr, int backlog)
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

void *crewt_recv_blocked(void *p)
{
	crewt_blocked *b = p;
	atomic_store(&b->calling, 1);
	b->rc = crew_recv(b->fd, b->buf, sizeof b->buf, 0);
	return NULL;
}

crew_task *crewt_spawn_blocked(crew_fn fn, crewt_blocked *b)
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

/* ---- the backends ---- */

static const char *be_env(crewt_backend be)
{
	return be == BE_URING || be == BE_URING_EMULATED ? "io_uring" : be == BE_EPOLL ? "epoll" : NULL;
}

void *crewt_check_backend(void *want)
{
	const char *name = crew_backend_name();
	if (!name || strcmp(name, want) != 0)
		return crewt_io_fail("backend %s, expected %s", name ? name : "(none)", (const char *)want);
	return NULL;
}

typedef struct run_case {
	crewt_backend be;
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
	const char *want = env && strcmp(env, "io_uring") == 0 ? "io_uring" : "epoll";
	rc->rc = crewt_run(rc->workers, crewt_check_backend, (void *)want, &r);
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

void crewt_run_backend_ring(crewt_backend be, unsigned workers, unsigned ring, crew_fn fn, void *arg)
{
	run_case rc = { be, workers, ring, fn, arg, NULL, 0 };
	if (be != BE_NO_URING) {
		/* read by each ring's setup; the worker threads start after this */
		crew__uring_force_emulate = be == BE_URING_EMULATED ? ~0u : 0;
		run_in(&rc);
		crew__uring_force_emulate = 0;
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

void crewt_run_backend(crewt_backend be, unsigned workers, crew_fn fn, void *arg)
{
	crewt_run_backend_ring(be, workers, 0, fn, arg);
}
