/*
 * Submissions are batched (reactor.h): an operation a task submits reaches
 * the kernel at its worker's next poll, not when the task suspends. These
 * tests check that nothing waits for a poll that never comes: a worker kept
 * busy by tasks that yield to each other still sends its submissions (the
 * fairness tick) and so still completes the I/O; so does a worker with more
 * than a batch of submissions pending; and the receive hint (io.c) never
 * loses data, whether it guesses right or wrong; and that tasks woken by
 * I/O, which gather on worker 0 (io.c), all arrive. Each runs with io_uring
 * (DEFER_TASKRUN where the kernel has it), with io_uring forced to the
 * COOP_TASKRUN ring of older kernels, and with epoll.
 */
#include "helpers.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct yield_ctx {
	atomic_int done;
	int fd;
	ssize_t got;
	char buf[16];
} yield_ctx;

static void *reader(void *arg)
{
	yield_ctx *c = arg;
	c->got = crew_recv(c->fd, c->buf, sizeof c->buf, 0);
	atomic_store(&c->done, 1);
	return NULL;
}

static void *yielder(void *arg)
{
	yield_ctx *c = arg;
	while (!atomic_load(&c->done))
		crew_yield();
	return NULL;
}

/* One worker: a reader's receive waits while two tasks keep yielding to each
 * other (the worker never runs dry); the data arrives from a plain thread. */
static void *busy_worker_reads(void *arg)
{
	(void)arg;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
		return (void *)"socketpair";
	yield_ctx c = { .fd = sv[0] };
	crew_task *r = crew_spawn(reader, &c);
	crew_task *y1 = crew_spawn(yielder, &c), *y2 = crew_spawn(yielder, &c);
	if (!r || !y1 || !y2)
		return (void *)"spawn";
	crew_sleep(CREWT_MS); /* the reader has suspended in its receive */
	if (write(sv[1], "ping", 4) != 4)
		return (void *)"write";
	crew_join(r, NULL);
	crew_join(y1, NULL);
	crew_join(y2, NULL);
	close(sv[0]);
	close(sv[1]);
	if (c.got != 4 || memcmp(c.buf, "ping", 4) != 0)
		return (void *)"the receive did not return the data";
	return NULL;
}

/* More than a batch (CREW_SUBMIT_BATCH, 32) of receives pending on one
 * worker, then data for each: all of them complete with their own bytes. */
#define MANY 100
typedef struct many_ctx {
	int fd[MANY][2];
	ssize_t got[MANY];
	char buf[MANY][8];
} many_ctx;

static void *one_recv(void *arg)
{
	many_ctx *m = ((void **)arg)[0];
	size_t i = (size_t)((void **)arg)[1];
	m->got[i] = crew_recv(m->fd[i][0], m->buf[i], sizeof m->buf[i], 0);
	return NULL;
}

static void *many_pending(void *arg)
{
	(void)arg;
	many_ctx *m = calloc(1, sizeof(*m));
	void *args[MANY][2];
	crew_task *t[MANY];
	const char *err = NULL;
	for (size_t i = 0; i < MANY; i++)
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, m->fd[i]) != 0)
			return (void *)"socketpair";
	for (size_t i = 0; i < MANY; i++) {
		args[i][0] = m;
		args[i][1] = (void *)i;
		if (!(t[i] = crew_spawn(one_recv, args[i])))
			return (void *)"spawn";
	}
	crew_sleep(CREWT_MS);
	for (size_t i = 0; i < MANY; i++) {
		char msg[8];
		memcpy(msg, "msg", 3);
		msg[3] = (char)('0' + i / 10);
		msg[4] = (char)('0' + i % 10);
		if (write(m->fd[i][1], msg, 5) != 5)
			return (void *)"write";
	}
	for (size_t i = 0; i < MANY; i++) {
		crew_join(t[i], NULL);
		if (m->got[i] != 5 || m->buf[i][3] != '0' + (char)(i / 10) ||
		    m->buf[i][4] != '0' + (char)(i % 10))
			err = "a receive got the wrong bytes";
		close(m->fd[i][0]);
		close(m->fd[i][1]);
	}
	free(m);
	return (void *)err;
}

/* The receive hint: a stream read with a small buffer (every receive fills
 * it: the hint says "try at once"), then a short one (the hint flips), then
 * data that comes later (the hint's guess "it would block" is right), then
 * data that is already there (the guess is wrong): every byte arrives, in
 * order. */
static void *hint_paths(void *arg)
{
	(void)arg;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
		return (void *)"socketpair";
	char big[4096], in[4096];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (char)(i * 7 + 3);
	if (write(sv[1], big, sizeof big) != (ssize_t)sizeof big)
		return (void *)"write";
	size_t got = 0;
	while (got < sizeof big) { /* 100-byte receives: all full but the last */
		size_t want = sizeof big - got < 100 ? sizeof big - got : 100;
		ssize_t n = crew_recv(sv[0], in + got, want, 0);
		if (n <= 0)
			return (void *)"stream receive failed";
		got += (size_t)n;
	}
	if (memcmp(big, in, sizeof big) != 0)
		return (void *)"stream bytes differ";
	for (int round = 0; round < 2; round++) {
		if (round == 1 && write(sv[1], "later", 5) != 5) /* already there */
			return (void *)"write";
		char buf[64];
		if (round == 0) {
			/* nothing there: the receive waits (until the deadline) */
			crew_deadline d;
			crew_deadline_push(&d, crew_now() + 5 * CREWT_MS);
			ssize_t n = crew_recv(sv[0], buf, sizeof buf, 0);
			crew_deadline_pop(&d);
			if (n != -ETIMEDOUT)
				return (void *)"an empty socket's receive did not wait";
		} else {
			ssize_t n = crew_recv(sv[0], buf, sizeof buf, 0);
			if (n != 5 || memcmp(buf, "later", 5) != 0)
				return (void *)"the receive after a wrong guess lost data";
		}
	}
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

/* Tasks woken by I/O gather on worker 0 while it keeps up (io.c): a parked
 * worker 0 is woken for them, and nothing is lost on the way. 32 pairs of
 * tasks on 4 workers ping-pong 64-byte messages 500 times over socketpairs;
 * every message arrives intact, every task ends. */
#define PAIRS 32
#define ROUNDS 500
static void *pinger(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char out[64], in[64];
	for (int r = 0; r < ROUNDS; r++) {
		memset(out, 'a' + r % 26, sizeof out);
		if (crew_send_all(fd, out, sizeof out, 0) != (ssize_t)sizeof out)
			return (void *)"send";
		for (size_t got = 0; got < sizeof in;) {
			ssize_t n = crew_recv(fd, in + got, sizeof in - got, 0);
			if (n <= 0)
				return (void *)"recv";
			got += (size_t)n;
		}
		if (memcmp(in, out, sizeof in) != 0)
			return (void *)"the echo differs";
	}
	return NULL;
}

static void *ponger(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[64];
	for (int r = 0; r < ROUNDS; r++) {
		for (size_t got = 0; got < sizeof buf;) {
			ssize_t n = crew_recv(fd, buf + got, sizeof buf - got, 0);
			if (n <= 0)
				return (void *)"recv";
			got += (size_t)n;
		}
		if (crew_send_all(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf)
			return (void *)"send";
	}
	return NULL;
}

static void *gather_pingpong(void *arg)
{
	(void)arg;
	int sv[PAIRS][2];
	crew_task *t[2 * PAIRS];
	for (int i = 0; i < PAIRS; i++)
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv[i]) != 0)
			return (void *)"socketpair";
	for (int i = 0; i < PAIRS; i++) {
		t[2 * i] = crew_spawn(pinger, (void *)(intptr_t)sv[i][0]);
		t[2 * i + 1] = crew_spawn(ponger, (void *)(intptr_t)sv[i][1]);
		if (!t[2 * i] || !t[2 * i + 1])
			return (void *)"spawn";
	}
	const char *err = NULL;
	for (int i = 0; i < 2 * PAIRS; i++) {
		void *r = NULL;
		crew_join(t[i], &r);
		if (r && !err)
			err = r;
	}
	for (int i = 0; i < PAIRS; i++) {
		close(sv[i][0]);
		close(sv[i][1]);
	}
	return (void *)err;
}

static void run_mode_workers(const char *backend, const char *setup, unsigned workers, crew_fn fn)
{
	setenv("CREW_BACKEND", backend, 1);
	if (setup)
		setenv("CREW_URING_SETUP", setup, 1);
	else
		unsetenv("CREW_URING_SETUP");
	void *res = NULL;
	int rc = crewt_run(workers, fn, NULL, &res);
	unsetenv("CREW_BACKEND");
	unsetenv("CREW_URING_SETUP");
	cr_assert_eq(rc, 0, "crew_run (%s%s%s): %s", backend, setup ? ", " : "", setup ? setup : "",
		     strerror(-rc));
	cr_assert_null(res, "%s%s%s: %s", backend, setup ? ", " : "", setup ? setup : "",
		       (const char *)res);
}

static void run_mode(const char *backend, const char *setup, crew_fn fn)
{
	run_mode_workers(backend, setup, 1, fn);
}

#define MODES(name, fn)                                                                        \
	Test(io_uring, name, .timeout = CREWT_TIMEOUT(30)) { run_mode("io_uring", NULL, fn); } \
	Test(io_uring_coop, name, .timeout = CREWT_TIMEOUT(30)) { run_mode("io_uring", "coop", fn); } \
	Test(epoll, name, .timeout = CREWT_TIMEOUT(30)) { run_mode("epoll", NULL, fn); }

MODES(busy_worker_still_submits, busy_worker_reads)
MODES(more_than_a_batch_pending, many_pending)
MODES(receive_hint_never_loses_data, hint_paths)

Test(io_uring, gathered_pingpong_4_workers, .timeout = CREWT_TIMEOUT(60))
{
	run_mode_workers("io_uring", NULL, 4, gather_pingpong);
}
Test(epoll, gathered_pingpong_4_workers, .timeout = CREWT_TIMEOUT(60))
{
	run_mode_workers("epoll", NULL, 4, gather_pingpong);
}
