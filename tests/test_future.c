/*
 * Futures: set from tasks and plain threads, awaited by tasks (suspend) and by
 * plain threads (block); many waiters; deadlines; set twice; crew_future_done.
 */
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#define VALUE ((void *)(uintptr_t)0xC0FFEE)

/* ---- set from a plain pthread while tasks on several workers await ---- */

#define WAITERS 64

typedef struct thread_set {
	crew_future *f;
	atomic_int arrived;   /* waiters about to await */
	int set_rc;
	void *got[WAITERS];
	int rc[WAITERS];
	int worker[WAITERS];
} thread_set;

typedef struct waiter_arg {
	thread_set *ts;
	int i;
} waiter_arg;

static void *await_value(void *p)
{
	waiter_arg *w = p;
	thread_set *ts = w->ts;
	atomic_fetch_add(&ts->arrived, 1);
	ts->rc[w->i] = crew_future_await(ts->f, &ts->got[w->i]);
	ts->worker[w->i] = crew_worker_id();
	return NULL;
}

static void *setter_thread(void *p)
{
	thread_set *ts = p;
	/* Wait until every waiter is about to await (most will be suspended). */
	while (atomic_load(&ts->arrived) < WAITERS)
		sched_yield();
	ts->set_rc = crew_future_set(ts->f, VALUE);
	return NULL;
}

static void *thread_set_main(void *arg)
{
	thread_set *ts = arg;
	waiter_arg wa[WAITERS];
	crew_task *t[WAITERS];
	for (int i = 0; i < WAITERS; i++) {
		wa[i] = (waiter_arg){ts, i};
		t[i] = crew_spawn(await_value, &wa[i]);
		if (!t[i])
			return (void *)1;
	}
	pthread_t th;
	if (pthread_create(&th, NULL, setter_thread, ts) != 0)
		return (void *)2;
	for (int i = 0; i < WAITERS; i++)
		crew_join(t[i], NULL);
	pthread_join(th, NULL);
	return NULL;
}

static void set_from_thread(unsigned workers)
{
	thread_set ts = {0};
	ts.f = crew_future_new();
	cr_assert_not_null(ts.f);
	void *res = (void *)-1;
	cr_assert_eq(crewt_run(workers, thread_set_main, &ts, &res), 0);
	cr_assert_null(res, "thread_set_main failed at step %p", res);
	cr_expect_eq(ts.set_rc, 0);
	for (int i = 0; i < WAITERS; i++) {
		cr_expect_eq(ts.rc[i], 0, "waiter %d: await returned %d", i, ts.rc[i]);
		cr_expect_eq(ts.got[i], VALUE, "waiter %d got %p", i, ts.got[i]);
		cr_expect(ts.worker[i] >= 0 && ts.worker[i] < (int)workers);
	}
	cr_expect(crew_future_done(ts.f));
	crew_future_release(ts.f);
}

Test(future, set_from_thread_1_worker, .timeout = CREWT_TIMEOUT(30)) { set_from_thread(1); }
Test(future, set_from_thread_4_workers, .timeout = CREWT_TIMEOUT(30)) { set_from_thread(4); }

/* ---- a plain thread awaits (blocks), a task sets ---- */

typedef struct thread_await {
	crew_future *f, *back;
	int rc;
	void *got;
} thread_await;

static void *blocking_waiter(void *p)
{
	thread_await *ta = p;
	ta->rc = crew_future_await(ta->f, &ta->got);
	crew_future_set(ta->back, ta->got); /* and answer a task from a plain thread */
	return NULL;
}

static void *thread_await_main(void *arg)
{
	thread_await *ta = arg;
	pthread_t th;
	if (pthread_create(&th, NULL, blocking_waiter, ta) != 0)
		return (void *)1;
	/* Most likely the thread is blocked by now; either way it must get it. */
	if (crew_sleep(20 * CREWT_MS) != 0)
		return (void *)2;
	if (crew_future_set(ta->f, VALUE) != 0)
		return (void *)3;
	void *echo = NULL;
	if (crew_future_await(ta->back, &echo) != 0 || echo != VALUE)
		return (void *)4;
	pthread_join(th, NULL);
	return NULL;
}

Test(future, plain_thread_awaits_task_sets, .timeout = CREWT_TIMEOUT(30))
{
	for (unsigned w = 1; w <= 2; w++) {
		thread_await ta = {crew_future_new(), crew_future_new(), -1, NULL};
		cr_assert(ta.f && ta.back);
		void *res = (void *)-1;
		cr_assert_eq(crewt_run(w, thread_await_main, &ta, &res), 0);
		cr_expect_null(res, "workers=%u: failed at step %p", w, res);
		cr_expect_eq(ta.rc, 0);
		cr_expect_eq(ta.got, VALUE);
		crew_future_release(ta.f);
		crew_future_release(ta.back);
	}
}

/* Futures work between plain threads with no runtime at all. */
static void *set_later(void *p)
{
	crew_future *f = p;
	struct timespec ts = {0, 10 * 1000 * 1000};
	nanosleep(&ts, NULL);
	crew_future_set(f, VALUE);
	return NULL;
}

Test(future, plain_threads_without_runtime, .timeout = CREWT_TIMEOUT(10))
{
	crew_future *f = crew_future_new();
	cr_assert_not_null(f);
	cr_expect(!crew_future_done(f));
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, set_later, f), 0);
	void *v = NULL;
	cr_expect_eq(crew_future_await(f, &v), 0);
	cr_expect_eq(v, VALUE);
	cr_expect(crew_future_done(f));
	pthread_join(th, NULL);
	/* Already set: returns at once, with the value, again and again. */
	v = NULL;
	cr_expect_eq(crew_future_await(f, &v), 0);
	cr_expect_eq(v, VALUE);
	cr_expect_eq(crew_future_await(f, NULL), 0, "value may be NULL");
	crew_future_release(f);
}

/* ---- many waiters: tasks and plain threads on one future ---- */

#define MANY CREWT_SIZE(10000, 2000)
#define MANY_THREADS 4

typedef struct many {
	crew_future *f;
	atomic_int ok, bad;
} many;

static void *many_waiter(void *p)
{
	many *m = p;
	void *v = NULL;
	if (crew_future_await(m->f, &v) == 0 && v == VALUE)
		atomic_fetch_add(&m->ok, 1);
	else
		atomic_fetch_add(&m->bad, 1);
	return NULL;
}

static void *many_main(void *arg)
{
	many *m = arg;
	crew_task **t = calloc(MANY, sizeof *t);
	pthread_t th[MANY_THREADS];
	if (!t)
		return (void *)1;
	for (int i = 0; i < MANY_THREADS; i++)
		if (pthread_create(&th[i], NULL, many_waiter, m) != 0)
			return (void *)2;
	for (int i = 0; i < MANY; i++)
		if (!(t[i] = crew_spawn(many_waiter, m)))
			return (void *)3;
	crew_yield(); /* let some of them start waiting */
	if (crew_future_set(m->f, VALUE) != 0)
		return (void *)4;
	for (int i = 0; i < MANY; i++)
		crew_join(t[i], NULL);
	for (int i = 0; i < MANY_THREADS; i++)
		pthread_join(th[i], NULL);
	free(t);
	return NULL;
}

Test(future, many_waiters, .timeout = CREWT_TIMEOUT(60))
{
	for (unsigned w = 1; w <= 4; w += 3) {
		many m = {.f = crew_future_new()};
		cr_assert_not_null(m.f);
		void *res = (void *)-1;
		cr_assert_eq(crewt_run(w, many_main, &m, &res), 0);
		cr_expect_null(res, "workers=%u: failed at step %p", w, res);
		cr_expect_eq(atomic_load(&m.ok), MANY + MANY_THREADS, "workers=%u: %d got the value", w,
		             atomic_load(&m.ok));
		cr_expect_eq(atomic_load(&m.bad), 0);
		crew_future_release(m.f);
	}
}

/* ---- deadlines ---- */

typedef struct timed {
	crew_future *f;
	int rc_timeout, rc_past, rc_set_before, rc_set_in_time;
	uint64_t deadline, woke;
	void *got_before, *got_in_time;
} timed;

static void *set_after_5ms(void *p)
{
	if (crew_sleep(5 * CREWT_MS) != 0)
		return NULL;
	crew_future_set(p, VALUE);
	return NULL;
}

static void *timed_main(void *arg)
{
	timed *t = arg;
	crew_future *never = crew_future_new();
	if (!never)
		return (void *)1;
	/* Not set: times out, never before the deadline. */
	t->deadline = crew_now() + 30 * CREWT_MS;
	t->rc_timeout = crew_future_await_until(never, t->deadline, NULL);
	t->woke = crew_now();
	/* A deadline already past: at once. */
	t->rc_past = crew_future_await_until(never, crew_now() - CREWT_MS, NULL);
	/* Set before the call: 0 even with a past deadline. */
	crew_future *set = crew_future_new();
	crew_future_set(set, VALUE);
	t->rc_set_before = crew_future_await_until(set, 0, &t->got_before);
	/* Set by another task while waiting, well before the deadline. */
	crew_task *s = crew_spawn(set_after_5ms, t->f);
	t->rc_set_in_time = crew_future_await_until(t->f, crew_now() + 10 * CREWT_SEC, &t->got_in_time);
	crew_join(s, NULL);
	crew_future_release(never);
	crew_future_release(set);
	return NULL;
}

Test(future, await_until_in_task, .timeout = CREWT_TIMEOUT(30))
{
	for (unsigned w = 1; w <= 2; w++) {
		timed t = {.f = crew_future_new()};
		cr_assert_not_null(t.f);
		void *res = (void *)-1;
		cr_assert_eq(crewt_run(w, timed_main, &t, &res), 0);
		cr_assert_null(res);
		cr_expect_eq(t.rc_timeout, -ETIMEDOUT, "workers=%u: %d", w, t.rc_timeout);
		cr_expect_geq(t.woke, t.deadline, "await_until returned %lu ns early",
		              (unsigned long)(t.deadline - t.woke));
		cr_expect_eq(t.rc_past, -ETIMEDOUT);
		cr_expect_eq(t.rc_set_before, 0);
		cr_expect_eq(t.got_before, VALUE);
		cr_expect_eq(t.rc_set_in_time, 0);
		cr_expect_eq(t.got_in_time, VALUE);
		crew_future_release(t.f);
	}
}

Test(future, await_until_on_plain_thread, .timeout = CREWT_TIMEOUT(10))
{
	crew_future *f = crew_future_new();
	cr_assert_not_null(f);
	uint64_t deadline = crew_now() + 30 * CREWT_MS;
	cr_expect_eq(crew_future_await_until(f, deadline, NULL), -ETIMEDOUT);
	uint64_t woke = crew_now();
	cr_expect_geq(woke, deadline, "returned %lu ns early", (unsigned long)(deadline - woke));
	cr_expect_eq(crew_future_await_until(f, 0, NULL), -ETIMEDOUT);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, set_later, f), 0);
	void *v = NULL;
	cr_expect_eq(crew_future_await_until(f, crew_now() + 10 * CREWT_SEC, &v), 0);
	cr_expect_eq(v, VALUE);
	pthread_join(th, NULL);
	crew_future_release(f);
}

/* ---- set twice, crew_future_done ---- */

static void *set_twice_main(void *arg)
{
	crew_future *f = arg;
	int *rc = malloc(4 * sizeof *rc);
	rc[0] = crew_future_done(f);
	rc[1] = crew_future_set(f, VALUE);
	rc[2] = crew_future_set(f, (void *)1);
	rc[3] = crew_future_done(f);
	return rc;
}

Test(future, set_twice)
{
	/* From a plain thread... */
	crew_future *f = crew_future_new();
	cr_assert_not_null(f);
	cr_expect(!crew_future_done(f));
	cr_expect_eq(crew_future_set(f, NULL), 0, "NULL is a value like any other");
	cr_expect(crew_future_done(f));
	cr_expect_eq(crew_future_set(f, VALUE), -EALREADY);
	void *v = VALUE;
	cr_expect_eq(crew_future_await(f, &v), 0);
	cr_expect_null(v, "the second set changed the value");
	crew_future_release(f);

	/* ...and from a task. */
	f = crew_future_new();
	cr_assert_not_null(f);
	int *rc = NULL;
	cr_assert_eq(crewt_run(2, set_twice_main, f, (void **)&rc), 0);
	cr_assert_not_null(rc);
	cr_expect_eq(rc[0], 0, "done before set");
	cr_expect_eq(rc[1], 0);
	cr_expect_eq(rc[2], -EALREADY);
	cr_expect_eq(rc[3], 1, "not done after set");
	cr_expect_eq(crew_future_await(f, &v), 0);
	cr_expect_eq(v, VALUE, "the second set changed the value");
	free(rc);
	crew_future_release(f);
}

/* ---- a future outlives crew_run, and crosses two runs ---- */

static void *set_it(void *arg)
{
	return (void *)(intptr_t)crew_future_set(arg, VALUE);
}

static void *await_it(void *arg)
{
	void *v = NULL;
	int rc = crew_future_await(arg, &v);
	return rc == 0 ? v : NULL;
}

Test(future, outlives_run)
{
	crew_future *f = crew_future_new();
	cr_assert_not_null(f);
	void *res = (void *)-1;
	cr_assert_eq(crewt_run(2, set_it, f, &res), 0);
	cr_expect_null(res);
	cr_assert_eq(crewt_run(2, await_it, f, &res), 0);
	cr_expect_eq(res, VALUE);
	crew_future_release(f);
}

/* ---- ping-pong: many round trips, no wake-up may be lost ---- */

#define ROUND_TRIPS CREWT_SIZE(100000, 10000)
#define THREAD_TRIPS CREWT_SIZE(10000, 2000)

typedef struct pingpong {
	crew_future **ping, **pong;
	int n;
	atomic_int errors;
} pingpong;

static void *pinger(void *p)
{
	pingpong *pp = p;
	for (int i = 0; i < pp->n; i++) {
		void *v = NULL;
		if (crew_future_set(pp->ping[i], (void *)(uintptr_t)(i + 1)) != 0 ||
		    crew_future_await(pp->pong[i], &v) != 0 || v != (void *)(uintptr_t)(i + 2))
			atomic_fetch_add(&pp->errors, 1);
	}
	return NULL;
}

static void *ponger(void *p)
{
	pingpong *pp = p;
	for (int i = 0; i < pp->n; i++) {
		void *v = NULL;
		if (crew_future_await(pp->ping[i], &v) != 0 || v != (void *)(uintptr_t)(i + 1) ||
		    crew_future_set(pp->pong[i], (void *)(uintptr_t)(i + 2)) != 0)
			atomic_fetch_add(&pp->errors, 1);
	}
	return NULL;
}

static void pingpong_init(pingpong *pp, int n)
{
	pp->n = n;
	pp->ping = calloc((size_t)n, sizeof *pp->ping);
	pp->pong = calloc((size_t)n, sizeof *pp->pong);
	cr_assert(pp->ping && pp->pong);
	for (int i = 0; i < n; i++) {
		pp->ping[i] = crew_future_new();
		pp->pong[i] = crew_future_new();
		cr_assert(pp->ping[i] && pp->pong[i]);
	}
}

static void pingpong_fini(pingpong *pp)
{
	for (int i = 0; i < pp->n; i++) {
		crew_future_release(pp->ping[i]);
		crew_future_release(pp->pong[i]);
	}
	free(pp->ping);
	free(pp->pong);
}

/* Two tasks. */
static void *tasks_pingpong_main(void *arg)
{
	crew_task *a = crew_spawn(pinger, arg), *b = crew_spawn(ponger, arg);
	if (!a || !b)
		return (void *)1;
	crew_join(a, NULL);
	crew_join(b, NULL);
	return NULL;
}

/* A task pings, a plain thread (blocking awaits) pongs. */
static void *thread_pingpong_main(void *arg)
{
	pthread_t th;
	if (pthread_create(&th, NULL, ponger, arg) != 0)
		return (void *)1;
	pinger(arg);
	pthread_join(th, NULL);
	return NULL;
}

Test(future, pingpong_between_tasks, .timeout = CREWT_TIMEOUT(60))
{
	for (unsigned w = 1; w <= 4; w *= 2) {
		pingpong pp = {0};
		pingpong_init(&pp, ROUND_TRIPS);
		void *res = (void *)-1;
		cr_assert_eq(crewt_run(w, tasks_pingpong_main, &pp, &res), 0);
		cr_expect_null(res);
		cr_expect_eq(atomic_load(&pp.errors), 0, "workers=%u: %d errors", w,
		             atomic_load(&pp.errors));
		pingpong_fini(&pp);
	}
}

Test(future, pingpong_task_and_thread, .timeout = CREWT_TIMEOUT(60))
{
	for (unsigned w = 1; w <= 2; w++) {
		pingpong pp = {0};
		pingpong_init(&pp, THREAD_TRIPS);
		void *res = (void *)-1;
		cr_assert_eq(crewt_run(w, thread_pingpong_main, &pp, &res), 0);
		cr_expect_null(res);
		cr_expect_eq(atomic_load(&pp.errors), 0, "workers=%u: %d errors", w,
		             atomic_load(&pp.errors));
		pingpong_fini(&pp);
	}
}

/* ---- the receiver releases a future as soon as its await returns ---- */

/*
 * The contract (crew.h): once an await returned, or crew_future_done() was
 * true, the owner may release the future, whatever the setter's thread still
 * does. Each round the receiver makes a future, hands it to the sender
 * through a slot, awaits it and releases it at once; the sender sets it. A
 * setter that touched the future after publishing SET (unlocking a mutex,
 * a futex wake on its state word) wrote freed memory: ASan and valgrind see
 * it, and so does the heap, which hands the block out again at once.
 */
#define RELAY_ROUNDS CREWT_SIZE(50000, 10000)

typedef struct relay {
	_Atomic(crew_future *) slot;
	bool receiver_thread, sender_thread, poll_done;
	atomic_int errors;
} relay;

/* Wait for the slot's next future: tasks yield, threads give the CPU up. */
static crew_future *relay_take(relay *r)
{
	crew_future *f;
	while (!(f = atomic_exchange(&r->slot, NULL))) {
		if (crew_self())
			crew_yield();
		else
			sched_yield();
	}
	return f;
}

static void *relay_send(void *p)
{
	relay *r = p;
	for (int i = 0; i < RELAY_ROUNDS; i++)
		if (crew_future_set(relay_take(r), (void *)(uintptr_t)(i + 1)) != 0)
			atomic_fetch_add(&r->errors, 1);
	return NULL;
}

static void *relay_receive(void *p)
{
	relay *r = p;
	for (int i = 0; i < RELAY_ROUNDS; i++) {
		crew_future *f = crew_future_new();
		if (!f) {
			atomic_fetch_add(&r->errors, 1);
			return NULL;
		}
		atomic_store(&r->slot, f);
		void *v = NULL;
		if (r->poll_done) {
			while (!crew_future_done(f))
				sched_yield();
		} else if (crew_future_await(f, &v) != 0 || v != (void *)(uintptr_t)(i + 1)) {
			atomic_fetch_add(&r->errors, 1);
		}
		crew_future_release(f); /* at once: the setter may still be in set */
	}
	return NULL;
}

static void *relay_main(void *p)
{
	relay *r = p;
	pthread_t th;
	crew_task *t = NULL;
	crew_fn thread_side = r->receiver_thread ? relay_receive : r->sender_thread ? relay_send : NULL;
	crew_fn task_side = r->receiver_thread ? relay_send : relay_receive;
	if (thread_side) {
		if (pthread_create(&th, NULL, thread_side, r) != 0)
			return (void *)1;
		task_side(r);
		pthread_join(th, NULL);
		return NULL;
	}
	if (!(t = crew_spawn(relay_send, r)))
		return (void *)1;
	relay_receive(r);
	crew_join(t, NULL);
	return NULL;
}

static void relay_run(relay *r, unsigned workers)
{
	void *res = (void *)-1;
	cr_assert_eq(crewt_run(workers, relay_main, r, &res), 0);
	cr_expect_null(res);
	cr_expect_eq(atomic_load(&r->errors), 0, "%d errors", atomic_load(&r->errors));
}

Test(future, stress_release_after_await_task_sets, .timeout = CREWT_TIMEOUT(60))
{
	relay r = {.sender_thread = false}; /* clang: {0} cannot start an _Atomic pointer */
	relay_run(&r, 2);
}

Test(future, stress_release_after_await_thread_sets, .timeout = CREWT_TIMEOUT(60))
{
	relay r = {.sender_thread = true};
	relay_run(&r, 2);
}

Test(future, stress_release_after_thread_await, .timeout = CREWT_TIMEOUT(60))
{
	relay r = {.receiver_thread = true};
	relay_run(&r, 2);
}

Test(future, stress_release_after_done, .timeout = CREWT_TIMEOUT(60))
{
	relay r = {.receiver_thread = true, .poll_done = true};
	relay_run(&r, 2);
}
