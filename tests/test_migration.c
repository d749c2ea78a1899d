/*
 * Thread-local storage across migrations: a task that suspends may resume on
 * another worker thread. After every suspension crew_worker_id() must name the
 * thread the task really runs on now (not a value cached before the switch).
 *
 * A table maps each worker id to the kernel thread id (gettid) that first
 * reported it; the same id must always come with the same tid, and two ids
 * never with one tid.
 *
 * Two tests: a relay that makes a task migrate at every one of its
 * suspensions, by construction, and counts it; and a crowd of wanderers that
 * sleep, yield, join and pass batons, where migrations happen as they may.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE; the relay reads task states */
#include "helpers.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- the relay: a migration at every suspension ---- */

/*
 * A task woken through a future runs on the worker that woke it (the waker's
 * LIFO slot; another worker takes it only when the waker is stuck for about
 * a millisecond), and a task that runs without suspending keeps its worker. The runner R awaits a fresh future each round;
 * two setters take turns setting them. The setter of round k spins (without
 * suspending, so it stays where it is) until R is suspended in round k, sets
 * R's future and then awaits its own: R resumes on the setter's worker. In
 * round k+1, R wakes that setter (which lands on R's new worker and spins
 * there for round k+2) while the other setter already spins on R's old
 * worker. So R alternates between two workers: it migrates every round.
 *
 * Start: setter B is suspended in its first await; setter A spins on some
 * worker while main spins on its own (main holds its worker, so A runs on
 * another); then R starts, on a worker other than A's since A never lets go.
 */
#define RELAY_ROUNDS CREWT_SIZE(400, 60)

typedef struct relay {
	table *tb;
	crew_task *runner;      /* atomic: set before the setters look */
	atomic_int round;       /* the round R is about to wait in; -1 before */
	atomic_int a_spinning;  /* setter A runs (and holds its worker) */
	int where[RELAY_ROUNDS + 1]; /* R's worker before round k's await, and at the end */
	crew_future *go[RELAY_ROUNDS];       /* R awaits go[k] in round k */
	crew_future *wake[RELAY_ROUNDS + 1]; /* set by R in round k (and at the end) */
} relay;

/* R is suspended inside round k's await: it announced round k, and its state
 * word shows it switched out (neither RUNNING nor SCHEDULED). R's only
 * suspension point in round k is that await, and nobody else sets go[k]. */
static bool relay_runner_waits_in(relay *r, int k)
{
	if (atomic_load(&r->round) != k) /* seq_cst: before the state we read */
		return false;
	crew_task *t = __atomic_load_n(&r->runner, __ATOMIC_ACQUIRE);
	if (!t) /* R runs already, main has not stored its handle yet */
		return false;
	uint32_t s = __atomic_load_n(&t->state, __ATOMIC_ACQUIRE);
	return !(s & (CREW_T_RUNNING | CREW_T_SCHEDULED | CREW_T_DONE));
}

typedef struct setter_arg {
	relay *r;
	int first; /* A: 0 (even rounds), B: 1 (odd rounds) */
} setter_arg;

static void *relay_setter(void *p)
{
	setter_arg *sa = p;
	relay *r = sa->r;
	crew_task *self = crew_self();
	if (sa->first == 0)
		atomic_store(&r->a_spinning, 1);
	else if (crew_future_await(r->wake[0], NULL) != 0) /* B: woken by R in round 0 */
		fail(r->tb, "setter %d: await returned an error (%ld %ld)", sa->first, 0, 0);
	for (int k = sa->first; k < RELAY_ROUNDS; k += 2) {
		check_here(r->tb, self);
		/* Spin, not suspend: this task must keep its worker. sched_yield
		 * lets the OS run R's thread when the cores are short. */
		while (!relay_runner_waits_in(r, k))
			sched_yield();
		int rc = crew_future_set(r->go[k], NULL);
		if (rc == 0)
			rc = crew_future_await(r->wake[k + 1], NULL); /* R runs here meanwhile */
		if (rc != 0)
			fail(r->tb, "setter, round %d: %ld (%ld)", k, rc, 0);
	}
	check_here(r->tb, self);
	return NULL;
}

static void *relay_runner(void *p)
{
	relay *r = p;
	crew_task *self = crew_self();
	for (int k = 0; k < RELAY_ROUNDS; k++) {
		r->where[k] = check_here(r->tb, self); /* after round k-1's await */
		/* Wake the setter of round k-1 (B at first): it lands here. */
		int rc = crew_future_set(r->wake[k], NULL);
		atomic_store(&r->round, k);
		if (rc == 0)
			rc = crew_future_await(r->go[k], NULL);
		if (rc != 0)
			fail(r->tb, "runner, round %d: %ld (%ld)", k, rc, 0);
	}
	r->where[RELAY_ROUNDS] = check_here(r->tb, self);
	if (crew_future_set(r->wake[RELAY_ROUNDS], NULL) != 0) /* the last setter */
		fail(r->tb, "runner: last wake failed (%d %ld %ld)", 0, 0, 0);
	return NULL;
}

static void *relay_main(void *p)
{
	relay *r = p;
	setter_arg a = {r, 0}, b = {r, 1};
	crew_task *setter_b = crew_spawn(relay_setter, &b);
	if (!setter_b || !crewt_wait_suspended(setter_b)) /* B waits in its first await */
		return (void *)1;
	crew_task *setter_a = crew_spawn(relay_setter, &a);
	if (!setter_a)
		return (void *)2;
	/* Hold this worker until A runs: then A runs on another one. */
	while (!atomic_load(&r->a_spinning))
		sched_yield();
	crew_task *runner = crew_spawn(relay_runner, r);
	if (!runner)
		return (void *)3;
	__atomic_store_n(&r->runner, runner, __ATOMIC_RELEASE);
	crew_join(setter_a, NULL);
	crew_join(setter_b, NULL);
	crew_join(runner, NULL);
	return NULL;
}

static void relay_test(unsigned workers)
{
	table tb = {.workers = workers};
	pthread_mutex_init(&tb.mu, NULL);
	relay *r = calloc(1, sizeof *r);
	cr_assert_not_null(r);
	r->tb = &tb;
	atomic_store(&r->round, -1);
	for (int k = 0; k < RELAY_ROUNDS; k++)
		cr_assert_not_null(r->go[k] = crew_future_new());
	for (int k = 0; k <= RELAY_ROUNDS; k++)
		cr_assert_not_null(r->wake[k] = crew_future_new());
	void *res = (void *)-1;
	cr_assert_eq(crewt_run(workers, relay_main, r, &res), 0);
	cr_assert_null(res, "workers=%u: failed at step %p", workers, res);
	cr_expect_eq(atomic_load(&tb.errors), 0, "workers=%u: %d errors, first: %s", workers,
	             atomic_load(&tb.errors), tb.first_error);
	/* Every await moved the runner: where[k] != where[k+1]. (Not always
	 * between the same two workers: with more workers than cores, a worker
	 * the OS descheduled for a millisecond has its LIFO task taken over by
	 * an idle one, which is what work conservation is for.) */
	int moved = 0;
	for (int k = 0; k < RELAY_ROUNDS; k++)
		moved += r->where[k] != r->where[k + 1];
	/* A round may stay put only when the waker's worker stalled for a whole
	 * take-over grace (about 1 ms) between its set and its own await, and the
	 * runner's previous worker took it over: rare (the OS descheduled the
	 * waker; more workers than cores), never most of the rounds. */
	cr_log_info("workers=%u: the runner migrated at %d of %d awaits", workers, moved,
	            RELAY_ROUNDS);
	cr_expect_geq(moved, RELAY_ROUNDS * 3 / 4, "workers=%u: the runner migrated at %d of %d awaits",
	              workers, moved, RELAY_ROUNDS);
	for (int k = 0; k < RELAY_ROUNDS; k++)
		crew_future_release(r->go[k]);
	for (int k = 0; k <= RELAY_ROUNDS; k++)
		crew_future_release(r->wake[k]);
	free(r);
	pthread_mutex_destroy(&tb.mu);
}

Test(migration, relay_migrates_at_every_await_2_workers, .timeout = CREWT_TIMEOUT(60)) { relay_test(2); }
Test(migration, relay_migrates_at_every_await_4_workers, .timeout = CREWT_TIMEOUT(60)) { relay_test(4); }

/* ---- wanderers: migrations as they come ---- */

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
	/* Migrations happen here as the scheduler likes (the relay above makes
	 * them certain): counted for the log only. */
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
