/*
 * Thread-local storage across migrations: a task that suspends may resume on
 * another worker thread. After every suspension crew_worker_id() must name the
 * thread the task really runs on now (not a value cached before the switch).
 *
 * A table maps each worker id to the kernel thread id (gettid) that first
 * reported it; the same id must always come with the same tid, and two ids
 * never with one tid.
 */
#define _GNU_SOURCE
#include "helpers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define MAX_WORKERS 16
#define TASKS 32
#define ITERS CREWT_SIZE(300, 60)
#define ROUNDS (ITERS / 4 + 1)

typedef struct table {
	pthread_mutex_t mu;
	long tid_of[MAX_WORKERS];
	atomic_int errors;
	atomic_long migrations, checks;
	char first_error[256];
	unsigned workers;
	crew_future *ping[TASKS / 2 * ROUNDS], *pong[TASKS / 2 * ROUNDS];
} table;

static void fail(table *tb, const char *fmt, int a, long b, long c)
{
	pthread_mutex_lock(&tb->mu);
	if (atomic_fetch_add(&tb->errors, 1) == 0)
		snprintf(tb->first_error, sizeof tb->first_error, fmt, a, b, c);
	pthread_mutex_unlock(&tb->mu);
}

/* Returns the worker id checked against the real thread. */
static int check_here(table *tb, crew_task *self)
{
	int id = crew_worker_id();
	long tid = crewt_gettid();
	atomic_fetch_add_explicit(&tb->checks, 1, memory_order_relaxed);
	if (crew_self() != self)
		fail(tb, "crew_self() changed after a suspension (id %d, tid %ld %ld)", id, tid, 0);
	if (id < 0 || id >= (int)tb->workers) {
		fail(tb, "crew_worker_id() = %d on tid %ld (%ld)", id, tid, 0);
		return id;
	}
	pthread_mutex_lock(&tb->mu);
	if (tb->tid_of[id] == 0) {
		for (int j = 0; j < MAX_WORKERS; j++)
			if (tb->tid_of[j] == tid) {
				pthread_mutex_unlock(&tb->mu);
				fail(tb, "worker id %d on tid %ld, which is worker %ld", id, tid, j);
				return id;
			}
		tb->tid_of[id] = tid;
	} else if (tb->tid_of[id] != tid) {
		long expect = tb->tid_of[id];
		pthread_mutex_unlock(&tb->mu);
		fail(tb, "worker id %d reported on tid %ld, but it is tid %ld", id, tid, expect);
		return id;
	}
	pthread_mutex_unlock(&tb->mu);
	return id;
}

typedef struct arg {
	table *tb;
	int i;
} arg;

static void *busy(void *p)
{
	table *tb = p;
	check_here(tb, crew_self());
	return NULL;
}

/* Sleeps, yields, joins children and passes a baton through futures,
 * checking where it is after each suspension. */
static void *wanderer(void *p)
{
	arg *a = p;
	table *tb = a->tb;
	crew_task *self = crew_self();
	int last = check_here(tb, self);
	for (int it = 0; it < ITERS; it++) {
		int rc;
		switch (it % 4) {
		case 0:
			rc = crew_sleep(50 * 1000 + (uint64_t)(a->i % 7) * 10000);
			break;
		case 1:
			rc = crew_yield();
			break;
		case 2: {
			/* Spawn a few children (work for thieves), join them. */
			crew_task *c[4];
			rc = 0;
			for (int k = 0; k < 4; k++)
				c[k] = crew_spawn(busy, tb);
			for (int k = 0; k < 4; k++)
				if (c[k] && crew_join(c[k], NULL) != 0)
					rc = -1;
			break;
		}
		default: {
			/* Pairs (2k, 2k+1) pass a baton through futures: each is
			 * woken by the other, which may run on another worker. */
			int pair = a->i / 2, round = it / 4;
			crew_future *ping = tb->ping[pair * ROUNDS + round];
			crew_future *pong = tb->pong[pair * ROUNDS + round];
			if (a->i % 2 == 0) {
				rc = crew_future_set(ping, NULL);
				if (rc == 0)
					rc = crew_future_await(pong, NULL);
			} else {
				rc = crew_future_await(ping, NULL);
				if (rc == 0)
					rc = crew_future_set(pong, NULL);
			}
			break;
		}
		}
		if (rc != 0)
			fail(tb, "suspension %d returned %ld (%ld)", it, rc, 0);
		int id = check_here(tb, self);
		if (id != last)
			atomic_fetch_add_explicit(&tb->migrations, 1, memory_order_relaxed);
		last = id;
	}
	return NULL;
}

static void *migration_main(void *p)
{
	table *tb = p;
	arg a[TASKS];
	crew_task *t[TASKS];
	for (int i = 0; i < TASKS; i++) {
		a[i] = (arg){tb, i};
		t[i] = crew_spawn(wanderer, &a[i]);
	}
	for (int i = 0; i < TASKS; i++)
		if (t[i])
			crew_join(t[i], NULL);
		else
			fail(tb, "crew_spawn failed (%d %ld %ld)", i, 0, 0);
	return NULL;
}

static void migrate(unsigned workers)
{
	table tb = {.workers = workers};
	pthread_mutex_init(&tb.mu, NULL);
	for (int i = 0; i < TASKS / 2 * ROUNDS; i++) {
		tb.ping[i] = crew_future_new();
		tb.pong[i] = crew_future_new();
		cr_assert(tb.ping[i] && tb.pong[i]);
	}
	cr_assert_eq(crewt_run(workers, migration_main, &tb, NULL), 0);
	cr_expect_eq(atomic_load(&tb.errors), 0, "workers=%u: %d errors, first: %s", workers,
	             atomic_load(&tb.errors), tb.first_error);
	cr_expect_geq(atomic_load(&tb.checks), (long)TASKS * ITERS);
	cr_log_info("workers=%u: %ld checks, %ld migrations", workers, atomic_load(&tb.checks),
	            atomic_load(&tb.migrations));
	for (int i = 0; i < TASKS / 2 * ROUNDS; i++) {
		crew_future_release(tb.ping[i]);
		crew_future_release(tb.pong[i]);
	}
	pthread_mutex_destroy(&tb.mu);
}

Test(migration, worker_id_follows_thread_2_workers, .timeout = CREWT_TIMEOUT(60)) { migrate(2); }
Test(migration, worker_id_follows_thread_4_workers, .timeout = CREWT_TIMEOUT(60)) { migrate(4); }
Test(migration, worker_id_follows_thread_8_workers, .timeout = CREWT_TIMEOUT(60)) { migrate(8); }
