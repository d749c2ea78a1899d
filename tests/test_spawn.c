/*
 * crew_spawn / crew_join: many tasks, spawning from a plain thread, and the
 * identity functions (crew_self, crew_task_name, crew_workers, crew_worker_id).
 */
#define _GNU_SOURCE
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- 1,000,000 spawn + join ---- */

#define SPAWN_N CREWT_SIZE(1000000u, 100000u)
#define BATCH 1000u

static atomic_ulong bodies_run;

static void *add_one(void *arg)
{
	atomic_fetch_add_explicit(&bodies_run, 1, memory_order_relaxed);
	return (void *)((uintptr_t)arg + 1);
}

/* Spawns SPAWN_N tasks in batches; joins each batch, alternately newest first
 * (the inline fast path) and oldest first. Returns the sum of the results. */
static void *spawn_many(void *arg)
{
	(void)arg;
	crew_task **t = malloc(BATCH * sizeof *t);
	if (!t)
		return (void *)(uintptr_t)-1;
	uint64_t sum = 0;
	for (unsigned base = 0, round = 0; base < SPAWN_N; base += BATCH, round++) {
		for (unsigned i = 0; i < BATCH; i++) {
			t[i] = crew_spawn(add_one, (void *)(uintptr_t)(base + i));
			if (!t[i])
				return (void *)(uintptr_t)-2;
		}
		for (unsigned k = 0; k < BATCH; k++) {
			unsigned i = round % 2 ? k : BATCH - 1 - k;
			void *r = NULL;
			if (crew_join(t[i], &r) != 0)
				return (void *)(uintptr_t)-3;
			sum += (uintptr_t)r;
		}
	}
	free(t);
	return (void *)(uintptr_t)sum;
}

static void spawn_join_million(unsigned workers)
{
	atomic_store(&bodies_run, 0);
	void *res = NULL;
	cr_assert_eq(crewt_run(workers, spawn_many, NULL, &res), 0);
	/* sum of (i + 1) for i in 0..N-1 */
	uint64_t n = SPAWN_N, expect = n * (n + 1) / 2;
	cr_expect_eq((uint64_t)(uintptr_t)res, expect, "workers=%u: sum %lu, expected %lu", workers,
	             (unsigned long)(uintptr_t)res, (unsigned long)expect);
	cr_expect_eq(atomic_load(&bodies_run), SPAWN_N, "workers=%u: %lu bodies ran", workers,
	             atomic_load(&bodies_run));
}

/* ---- one stack, reused by task after task ---- */

/* More tasks than TSan's shadow call stack has frames (64Ki): each task ran
 * on the fiber its predecessor left, and under TSan the fiber kept a frame of
 * every task that had ended on it, until TSan crashed (fiber.c). */
#define REUSE_N 70000u

static void *yield_once(void *arg)
{
	crew_yield(); /* suspends on its own fiber: not run inline by the join */
	return arg;
}

static void *reuse_main(void *arg)
{
	(void)arg;
	for (uintptr_t i = 0; i < REUSE_N; i++) {
		crew_task *t = crew_spawn(yield_once, (void *)i);
		if (!t)
			return (void *)1;
		crew_yield(); /* t starts, on the stack the last one left */
		void *r = NULL;
		if (crew_join(t, &r) != 0 || r != (void *)i)
			return (void *)2;
	}
	return NULL;
}

Test(spawn, one_stack_reused_by_70k_tasks, .timeout = CREWT_TIMEOUT(120))
{
	void *res = (void *)3;
	cr_assert_eq(crewt_run(1, reuse_main, NULL, &res), 0);
	cr_expect_null(res, "task %p of the sequence failed", res);
}

Test(spawn, million_1_worker, .timeout = CREWT_TIMEOUT(120)) { spawn_join_million(1); }
Test(spawn, million_2_workers, .timeout = CREWT_TIMEOUT(120)) { spawn_join_million(2); }
Test(spawn, million_8_workers, .timeout = CREWT_TIMEOUT(120)) { spawn_join_million(8); }

/* ---- spawn from a plain pthread while crew_run is running ---- */

#define FOREIGN_N 200

typedef struct foreign {
	crew_task *t[FOREIGN_N];
	crew_future *spawned;    /* set by the thread when all are spawned */
	int spawn_errors;
	int worker_id, self_null, join_rc;
	unsigned workers_seen;
} foreign;

static void *square(void *arg)
{
	uintptr_t x = (uintptr_t)arg;
	return (void *)(x * x);
}

static void *foreign_thread(void *p)
{
	foreign *f = p;
	f->worker_id = crew_worker_id();
	f->self_null = crew_self() == NULL;
	f->workers_seen = crew_workers();
	for (uintptr_t i = 0; i < FOREIGN_N; i++) {
		f->t[i] = crew_spawn(square, (void *)i);
		if (!f->t[i])
			f->spawn_errors++;
	}
	/* A plain thread cannot join: -EPERM, and the handle is not consumed. */
	f->join_rc = f->t[0] ? crew_join(f->t[0], NULL) : -EPERM;
	if (f->join_rc != -EPERM)
		f->t[0] = NULL; /* consumed after all: do not join it twice */
	crew_future_set(f->spawned, NULL);
	return NULL;
}

static void *foreign_main(void *arg)
{
	foreign *f = arg;
	pthread_t th;
	if (pthread_create(&th, NULL, foreign_thread, f) != 0)
		return (void *)1;
	if (crew_future_await(f->spawned, NULL) != 0)
		return (void *)2;
	pthread_join(th, NULL); /* it has set the future: about to exit */
	uint64_t bad = 0;
	for (uintptr_t i = 0; i < FOREIGN_N; i++) {
		void *r;
		if (!f->t[i])
			continue;
		if (crew_join(f->t[i], &r) != 0 || (uintptr_t)r != i * i)
			bad++;
	}
	return (void *)(uintptr_t)(bad ? 3 : 0);
}

static void spawn_from_thread(unsigned workers)
{
	foreign f = {0};
	f.spawned = crew_future_new();
	cr_assert_not_null(f.spawned);
	void *res = (void *)-1;
	cr_assert_eq(crewt_run(workers, foreign_main, &f, &res), 0);
	cr_expect_eq(f.spawn_errors, 0, "crew_spawn from a plain thread failed %d times",
	             f.spawn_errors);
	cr_expect_eq((uintptr_t)res, 0, "foreign_main failed at step %lu", (unsigned long)(uintptr_t)res);
	cr_expect_eq(f.worker_id, -1, "crew_worker_id() on a plain thread: %d", f.worker_id);
	cr_expect(f.self_null, "crew_self() on a plain thread is not NULL");
	cr_expect_eq(f.workers_seen, workers, "crew_workers() on a plain thread: %u, expected %u",
	             f.workers_seen, workers);
	cr_expect_eq(f.join_rc, -EPERM, "crew_join on a plain thread: %d, expected -EPERM", f.join_rc);
	crew_future_release(f.spawned);
}

Test(spawn, from_plain_thread_1_worker) { spawn_from_thread(1); }
Test(spawn, from_plain_thread_3_workers) { spawn_from_thread(3); }

/* ---- detach from a plain thread; join from a task other than the spawner ---- */

#define DETACHED 100

typedef struct detached {
	atomic_int ran;
	crew_future *all_ran;
	int spawn_errors;
} detached;

static void *count_and_signal(void *p)
{
	detached *d = p;
	if (atomic_fetch_add(&d->ran, 1) + 1 == DETACHED)
		crew_future_set(d->all_ran, NULL);
	return NULL;
}

static void *detaching_thread(void *p)
{
	detached *d = p;
	for (int i = 0; i < DETACHED; i++) {
		crew_task *t = crew_spawn(count_and_signal, d);
		if (!t)
			d->spawn_errors++;
		crew_detach(t);
	}
	return NULL;
}

static void *detach_main(void *p)
{
	detached *d = p;
	pthread_t th;
	if (pthread_create(&th, NULL, detaching_thread, d) != 0)
		return (void *)1;
	/* Bounded: a lost task shows as a timeout, not a hang. */
	int rc = crew_future_await_until(d->all_ran, crew_now() + 10 * CREWT_SEC, NULL);
	pthread_join(th, NULL);
	return rc == 0 ? NULL : (void *)2;
}

Test(spawn, detach_from_plain_thread, .timeout = CREWT_TIMEOUT(30))
{
	detached d = {.all_ran = crew_future_new()};
	cr_assert_not_null(d.all_ran);
	void *res = (void *)-1;
	cr_assert_eq(crewt_run(2, detach_main, &d, &res), 0);
	cr_expect_null(res, "failed at step %p", res);
	cr_expect_eq(d.spawn_errors, 0);
	cr_expect_eq(atomic_load(&d.ran), DETACHED);
	crew_future_release(d.all_ran);
}

typedef struct relay_join {
	crew_task *target;
	int rc;
	void *result;
} relay_join;

static void *slow_square(void *arg)
{
	if (crew_sleep(2 * CREWT_MS) != 0)
		return NULL;
	return square(arg);
}

static void *join_other(void *p)
{
	relay_join *r = p;
	r->rc = crew_join(r->target, &r->result);
	return NULL;
}

static void *join_elsewhere_main(void *p)
{
	relay_join *r = p;
	/* The handle goes to another task, which joins it. */
	r[0].target = crew_spawn(slow_square, (void *)(uintptr_t)7);
	r[1].target = crew_spawn(square, (void *)(uintptr_t)9);
	crew_task *j0 = crew_spawn(join_other, &r[0]);
	crew_task *j1 = crew_spawn(join_other, &r[1]);
	crew_join(j1, NULL);
	crew_join(j0, NULL);
	return NULL;
}

Test(spawn, join_from_another_task, .timeout = CREWT_TIMEOUT(30))
{
	for (unsigned w = 1; w <= 3; w += 2) {
		relay_join r[2] = {{NULL, -1, NULL}, {NULL, -1, NULL}};
		cr_assert_eq(crewt_run(w, join_elsewhere_main, r, NULL), 0);
		cr_expect_eq(r[0].rc, 0);
		cr_expect_eq((uintptr_t)r[0].result, 49u);
		cr_expect_eq(r[1].rc, 0);
		cr_expect_eq((uintptr_t)r[1].result, 81u);
	}
}

/* ---- identity: crew_self, crew_task_name, crew_workers, crew_worker_id ---- */

typedef struct ident {
	crew_task *self;
	const char *name;
	unsigned workers;
	int worker_id;
} ident;

static void *who_am_i(void *arg)
{
	ident *id = arg;
	id->self = crew_self();
	id->name = crew_task_name(id->self);
	id->workers = crew_workers();
	id->worker_id = crew_worker_id();
	return id->self;
}

#define IDENT_CHILDREN 16

typedef struct ident_test {
	unsigned workers;
	ident main_id;
	ident child[IDENT_CHILDREN];
	crew_task *handle[IDENT_CHILDREN];
	char handle_name[IDENT_CHILDREN][32];
	void *child_result[IDENT_CHILDREN];
	int join_rc[IDENT_CHILDREN];
} ident_test;

static void *ident_main(void *arg)
{
	ident_test *it = arg;
	who_am_i(&it->main_id);
	for (int i = 0; i < IDENT_CHILDREN; i++) {
		it->handle[i] = crew_spawn(who_am_i, &it->child[i]);
		if (!it->handle[i])
			return NULL;
		const char *n = crew_task_name(it->handle[i]);
		snprintf(it->handle_name[i], sizeof it->handle_name[i], "%s", n ? n : "(null)");
	}
	/* Newest first: the first joins may run inline on this stack. */
	for (int i = IDENT_CHILDREN - 1; i >= 0; i--)
		it->join_rc[i] = crew_join(it->handle[i], &it->child_result[i]);
	return NULL;
}

static void identity(unsigned workers)
{
	ident_test it = {.workers = workers};
	cr_assert_eq(crewt_run(workers, ident_main, &it, NULL), 0);
	cr_expect_not_null(it.main_id.self, "crew_self() is NULL in main");
	cr_expect_str_eq(it.main_id.name ? it.main_id.name : "(null)", "main");
	cr_expect_eq(it.main_id.workers, workers);
	cr_expect(it.main_id.worker_id >= 0 && it.main_id.worker_id < (int)workers,
	          "crew_worker_id() in main: %d", it.main_id.worker_id);
	for (int i = 0; i < IDENT_CHILDREN; i++) {
		ident *c = &it.child[i];
		cr_expect_eq(it.join_rc[i], 0);
		cr_expect_str_eq(it.handle_name[i], "who_am_i");
		cr_expect_str_eq(c->name ? c->name : "(null)", "who_am_i");
		cr_expect_eq(c->self, it.handle[i], "child %d: crew_self() %p is not its handle %p", i,
		             (void *)c->self, (void *)it.handle[i]);
		cr_expect_eq(it.child_result[i], (void *)it.handle[i]);
		cr_expect_neq(c->self, it.main_id.self);
		cr_expect_eq(c->workers, workers);
		cr_expect(c->worker_id >= 0 && c->worker_id < (int)workers,
		          "crew_worker_id() in a child: %d", c->worker_id);
	}
	/* Outside: nothing is running. */
	cr_expect_null(crew_self());
	cr_expect_eq(crew_worker_id(), -1);
	cr_expect_eq(crew_workers(), 0u);
	cr_expect_null(crew_task_name(NULL));
}

Test(spawn, identity_1_worker) { identity(1); }
Test(spawn, identity_4_workers) { identity(4); }

static void *report_workers(void *arg)
{
	(void)arg;
	return (void *)(uintptr_t)crew_workers();
}

Test(spawn, workers_from_environment)
{
	/* Criterion runs each test in its own process: setenv stays here. */
	cr_assert_eq(setenv("CREW_WORKERS", "3", 1), 0);
	void *res = NULL;
	cr_assert_eq(crewt_run(0, report_workers, NULL, &res), 0);
	cr_expect_eq((uintptr_t)res, 3u, "CREW_WORKERS=3 gave %lu workers", (unsigned long)(uintptr_t)res);
	crew_config cfg = {.workers = 2};
	cr_assert_eq(crew_run_with(&cfg, report_workers, NULL, &res), 0);
	cr_expect_eq((uintptr_t)res, 2u, "config.workers=2 (over CREW_WORKERS=3) gave %lu",
	             (unsigned long)(uintptr_t)res);
}

static void *return_arg(void *arg) { return arg; }

Test(spawn, run_returns_main_result)
{
	void *res = NULL;
	int marker;
	cr_assert_eq(crew_run(return_arg, &marker, &res), 0);
	cr_expect_eq(res, (void *)&marker);
	cr_expect_eq(crew_run(return_arg, &marker, NULL), 0, "result NULL is allowed");
}
