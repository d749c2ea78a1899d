/*
 * crew_offload (asyncio.to_thread): blocking functions run on pool threads
 * while the task is suspended and the worker runs others; cancellation waits
 * for the function; the pool is bounded; shutdown waits for offloads.
 */
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>

#define GIVE_UP (10 * CREWT_SEC)

/* Spin-wait (a plain thread: yield the CPU) until *flag, or give up. */
static bool wait_flag(atomic_int *flag)
{
	uint64_t end = crew_now() + GIVE_UP;
	while (!atomic_load(flag))
		if (crew_now() > end)
			return false;
		else
			sched_yield();
	return true;
}

/* ---- the worker runs other tasks while fn blocks ---- */

typedef struct blocker {
	atomic_int release, started, finished;
	long worker_tid, fn_tid;
	int all_blocked; /* fn ran with every signal blocked */
} blocker;

static void *block_until_released(void *p)
{
	blocker *b = p;
	b->fn_tid = crewt_gettid();
	sigset_t cur;
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	b->all_blocked = sigismember(&cur, SIGINT) && sigismember(&cur, SIGTERM) &&
	                 sigismember(&cur, SIGUSR1);
	atomic_store(&b->started, 1);
	bool ok = wait_flag(&b->release);
	atomic_store(&b->finished, 1);
	return ok ? (void *)42 : (void *)-1;
}

static void *offloader(void *p)
{
	blocker *b = p;
	b->worker_tid = crewt_gettid();
	void *res = NULL;
	int rc = crew_offload(block_until_released, b, &res);
	return rc == 0 ? res : (void *)(intptr_t)rc;
}

static void *releaser(void *p)
{
	blocker *b = p;
	while (!atomic_load(&b->started)) /* same worker: it can only run if the */
		crew_yield();              /* offload did not block the worker   */
	atomic_store(&b->release, 1);
	return NULL;
}

static void *one_worker_main(void *p)
{
	crew_task *a = crew_spawn(offloader, p), *r = crew_spawn(releaser, p);
	void *res = NULL;
	crew_join(a, &res);
	crew_join(r, NULL);
	return res;
}

Test(offload, worker_runs_others_while_fn_blocks, .timeout = CREWT_TIMEOUT(30))
{
	blocker b = {0};
	void *res = NULL;
	cr_assert_eq(crewt_run(1, one_worker_main, &b, &res), 0);
	cr_expect_eq(res, (void *)42, "offload returned %p", res);
	cr_expect_neq(b.fn_tid, b.worker_tid, "fn ran on the worker thread");
	cr_expect(b.all_blocked, "a pool thread must block signals");
}

/* ---- cancellation waits for fn, and the result is stored ---- */

typedef struct cancel_case {
	blocker b;
	int rc;
	void *res;
	int fn_finished_first;
} cancel_case;

static void *offload_and_report(void *p)
{
	cancel_case *c = p;
	c->res = (void *)7;
	c->rc = crew_offload(block_until_released, &c->b, &c->res);
	c->fn_finished_first = atomic_load(&c->b.finished);
	return NULL;
}

static void *cancel_main(void *p)
{
	cancel_case *c = p;
	crew_task *t = crew_spawn(offload_and_report, c);
	if (!t)
		return (void *)1;
	while (!atomic_load(&c->b.started))
		crew_yield();
	if (!crewt_wait_suspended(t)) /* certainly inside crew_offload's wait */
		return (void *)2;
	crew_cancel(t);
	/* the cancel must not end the offload while fn runs */
	for (int i = 0; i < 100; i++)
		crew_yield();
	if (c->rc != 0 || c->res != (void *)7)
		return (void *)3;
	atomic_store(&c->b.release, 1);
	crew_join(t, NULL);
	return NULL;
}

Test(offload, cancel_waits_for_fn_and_stores_result, .timeout = CREWT_TIMEOUT(30))
{
	for (unsigned w = 1; w <= 2; w++) {
		cancel_case c = {0};
		void *res = (void *)-1;
		cr_assert_eq(crewt_run(w, cancel_main, &c, &res), 0);
		cr_assert_null(res, "workers=%u: step %p", w, res);
		cr_expect_eq(c.rc, -ECANCELED);
		cr_expect_eq(c.res, (void *)42, "the result must be stored");
		cr_expect(c.fn_finished_first, "crew_offload returned before fn finished");
	}
}

/* ---- a bounded pool: many offloads, at most N at once ---- */

#define MANY 64

typedef struct crowd {
	atomic_int running, max_running, done;
} crowd;

static void *count_concurrency(void *p)
{
	crowd *c = p;
	int now = atomic_fetch_add(&c->running, 1) + 1;
	int max = atomic_load(&c->max_running);
	while (now > max && !atomic_compare_exchange_weak(&c->max_running, &max, now))
		;
	for (int i = 0; i < 1000; i++) /* overlap with the others a little */
		sched_yield();
	atomic_fetch_sub(&c->running, 1);
	return (void *)1;
}

static void *many_offloads(void *p)
{
	crowd *c = p;
	void *r = NULL;
	if (crew_offload(count_concurrency, c, &r) == 0 && r == (void *)1)
		atomic_fetch_add(&c->done, 1);
	return NULL;
}

static void *crowd_main(void *p)
{
	crew_task *t[MANY];
	for (int i = 0; i < MANY; i++)
		t[i] = crew_spawn(many_offloads, p);
	for (int i = 0; i < MANY; i++)
		if (t[i])
			crew_join(t[i], NULL);
	return NULL;
}

Test(offload, pool_is_bounded, .timeout = CREWT_TIMEOUT(60))
{
	setenv("CREW_OFFLOAD_THREADS", "3", 1);
	crowd c = {0};
	int rc = crewt_run(2, crowd_main, &c, NULL);
	unsetenv("CREW_OFFLOAD_THREADS");
	cr_assert_eq(rc, 0);
	cr_expect_eq(atomic_load(&c.done), MANY);
	cr_expect_leq(atomic_load(&c.max_running), 3, "%d ran at once", atomic_load(&c.max_running));
	cr_expect_geq(atomic_load(&c.max_running), 1);
}

/* ---- a cancelled call that still waits in the queue: fn never runs ---- */

typedef struct queued_case {
	blocker b;         /* the job that holds the only pool thread */
	atomic_int ran;    /* the queued job's fn ran */
	int rc;            /* the queued call's result */
} queued_case;

static void *mark_ran(void *p)
{
	atomic_store((atomic_int *)p, 1);
	return NULL;
}

static void *queued_offloader(void *p)
{
	queued_case *q = p;
	q->rc = crew_offload(mark_ran, &q->ran, NULL);
	return NULL;
}

static void *queued_main(void *p)
{
	queued_case *q = p;
	crew_task *a = crew_spawn(offloader, &q->b);
	while (!atomic_load(&q->b.started)) /* the pool's one thread is busy */
		crew_sleep(CREWT_MS);
	crew_task *t = crew_spawn(queued_offloader, q);
	if (!a || !t || !crewt_wait_suspended(t))
		return (void *)1;
	crew_cancel(t);
	crew_join(t, NULL); /* returns while the pool thread still blocks */
	atomic_store(&q->b.release, 1);
	crew_join(a, NULL);
	return NULL;
}

Test(offload, cancel_while_queued_skips_fn, .timeout = CREWT_TIMEOUT(30))
{
	setenv("CREW_OFFLOAD_THREADS", "1", 1);
	queued_case q = { 0 };
	void *res = (void *)-1;
	int rc = crewt_run(2, queued_main, &q, &res);
	unsetenv("CREW_OFFLOAD_THREADS");
	cr_assert_eq(rc, 0);
	cr_assert_null(res);
	cr_expect_eq(q.rc, -ECANCELED);
	cr_expect_eq(atomic_load(&q.ran), 0, "fn ran after its call was cancelled in the queue");
}

/* ---- misuse ---- */

static void *nothing(void *p)
{
	return p;
}

static void *null_fn_main(void *p)
{
	(void)p;
	return (void *)(intptr_t)crew_offload(NULL, NULL, NULL);
}

static void *cancelled_first_main(void *p)
{
	atomic_int *ran = p;
	crew_cancel(crew_self());
	(void)ran;
	return (void *)(intptr_t)crew_offload(nothing, NULL, NULL);
}

Test(offload, misuse)
{
	cr_expect_eq(crew_offload(nothing, NULL, NULL), -EPERM, "outside a task");
	void *res = NULL;
	cr_assert_eq(crewt_run(1, null_fn_main, NULL, &res), 0);
	cr_expect_eq((intptr_t)res, -EINVAL);
	cr_assert_eq(crewt_run(1, cancelled_first_main, NULL, &res), 0);
	cr_expect_eq((intptr_t)res, -ECANCELED, "a task cancelled before the call");
}

/* ---- shutdown waits for an offload in flight ---- */

static void *detached_offload(void *p)
{
	blocker *b = p;
	crew_offload(block_until_released, b, NULL);
	return NULL;
}

static void *leave_offload_behind(void *p)
{
	blocker *b = p;
	crew_task *t = crew_spawn(detached_offload, b);
	if (!t)
		return (void *)1;
	crew_detach(t);
	while (!atomic_load(&b->started))
		crew_yield();
	return NULL; /* main returns while fn still blocks */
}

static void *release_later(void *p)
{
	blocker *b = p;
	wait_flag(&b->started);
	for (int i = 0; i < 1000; i++) /* give crew_run time to reach its end */
		sched_yield();
	atomic_store(&b->release, 1);
	return NULL;
}

Test(offload, shutdown_waits_for_fn, .timeout = CREWT_TIMEOUT(30))
{
	blocker b = {0};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, release_later, &b), 0);
	void *res = (void *)-1;
	cr_assert_eq(crewt_run(2, leave_offload_behind, &b, &res), 0);
	cr_expect_null(res);
	cr_expect_eq(atomic_load(&b.finished), 1, "crew_run returned before the offload finished");
	pthread_join(th, NULL);
}
