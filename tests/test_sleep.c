/*
 * Sleeps: never early, the right return codes, past deadlines without a
 * suspension, timers due together in deadline order, many sleepers at once.
 * Nothing here is timed against a bound: how late a sleep ends and how fast
 * 100k sleepers get through depend on the machine's load; they are logged
 * here and measured in bench/ (crew-bench sleepers, see bench/README.md).
 */
#include "helpers.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define SAMPLES 7

typedef struct accuracy {
	bool until; /* crew_sleep_until instead of crew_sleep */
	int bad_rc;
	uint64_t early; /* largest earliness seen (0: never early) */
	uint64_t late_median[3];
} accuracy;

static const uint64_t durations[3] = {1 * CREWT_MS, 5 * CREWT_MS, 20 * CREWT_MS};

static void *measure(void *p)
{
	accuracy *a = p;
	for (int d = 0; d < 3; d++) {
		uint64_t late[SAMPLES];
		for (int i = 0; i < SAMPLES; i++) {
			uint64_t start = crew_now(), deadline = start + durations[d];
			int rc = a->until ? crew_sleep_until(deadline) : crew_sleep(durations[d]);
			uint64_t end = crew_now();
			if (rc != 0)
				a->bad_rc = rc;
			if (end < deadline) {
				if (deadline - end > a->early)
					a->early = deadline - end;
				late[i] = 0;
			} else {
				late[i] = end - deadline;
			}
		}
		a->late_median[d] = crewt_median(late, SAMPLES);
	}
	return NULL;
}

static void check_accuracy(unsigned workers, bool until)
{
	accuracy a = {.until = until};
	cr_assert_eq(crewt_run(workers, measure, &a, NULL), 0);
	const char *fn = until ? "crew_sleep_until" : "crew_sleep";
	cr_expect_eq(a.bad_rc, 0, "%s returned %d", fn, a.bad_rc);
	cr_expect_eq(a.early, 0, "workers=%u: %s returned %lu ns early", workers, fn,
	             (unsigned long)a.early);
	for (int d = 0; d < 3; d++) /* lateness depends on the load: logged, not checked */
		cr_log_info("workers=%u: %s(%lu ms) late by %.3f ms (median of %d)", workers, fn,
		            (unsigned long)(durations[d] / CREWT_MS), a.late_median[d] / 1e6, SAMPLES);
}

Test(sleep, accuracy_1_worker, .timeout = CREWT_TIMEOUT(30)) { check_accuracy(1, false); }
Test(sleep, accuracy_2_workers, .timeout = CREWT_TIMEOUT(30)) { check_accuracy(2, false); }
Test(sleep, until_accuracy_1_worker, .timeout = CREWT_TIMEOUT(30)) { check_accuracy(1, true); }
Test(sleep, until_accuracy_2_workers, .timeout = CREWT_TIMEOUT(30)) { check_accuracy(2, true); }

/* ---- deadlines in the past, zero sleeps ---- */

/* "At once" means without suspending: on one worker, a task spawned just
 * before cannot run until the caller suspends, so it must not have run when
 * the calls return. (With two workers it may be stolen: return codes only.) */

typedef struct past {
	int rc[3];
	atomic_int bystander_ran, ran_before_return;
} past;

static void *bystander(void *p)
{
	past *ps = p;
	atomic_store(&ps->bystander_ran, 1);
	return NULL;
}

static void *sleep_in_past(void *p)
{
	past *ps = p;
	for (int i = 0; i < SAMPLES; i++) {
		atomic_store(&ps->bystander_ran, 0);
		crew_task *b = crew_spawn(bystander, ps);
		if (!b)
			return (void *)1;
		int rc[3];
		rc[0] = crew_sleep_until(crew_now() - CREWT_MS);
		rc[1] = crew_sleep_until(0);
		rc[2] = crew_sleep(0);
		if (atomic_load(&ps->bystander_ran))
			atomic_store(&ps->ran_before_return, 1);
		for (int k = 0; k < 3; k++)
			if (rc[k])
				ps->rc[k] = rc[k];
		if (crew_join(b, NULL) != 0)
			return (void *)2;
	}
	return NULL;
}

Test(sleep, past_deadline_returns_at_once, .timeout = CREWT_TIMEOUT(30))
{
	static const char *what[3] = {"crew_sleep_until(now - 1 ms)", "crew_sleep_until(0)",
	                              "crew_sleep(0)"};
	for (unsigned w = 1; w <= 2; w++) {
		past ps = {0};
		void *res = (void *)-1;
		cr_assert_eq(crewt_run(w, sleep_in_past, &ps, &res), 0);
		cr_assert_null(res, "workers=%u: failed at step %p", w, res);
		for (int k = 0; k < 3; k++)
			cr_expect_eq(ps.rc[k], 0, "%s returned %d", what[k], ps.rc[k]);
		if (w == 1)
			cr_expect(!atomic_load(&ps.ran_before_return),
			          "a past deadline or a zero sleep suspended the task");
	}
}

/* ---- timers due together wake in deadline order ---- */

#define ORDERED 200

typedef struct ordered {
	uint64_t base;
	atomic_int started, next;
	int order[ORDERED]; /* order[k]: the k-th task to wake */
} ordered;

typedef struct ordered_arg {
	ordered *o;
	int i;
} ordered_arg;

static void *sleep_to_slot(void *p)
{
	ordered_arg *a = p;
	/* Deadlines 1 us apart; the worker sees them when all have passed. */
	atomic_fetch_add(&a->o->started, 1);
	if (crew_sleep_until(a->o->base + (uint64_t)a->i * 1000) != 0)
		return NULL;
	a->o->order[atomic_fetch_add(&a->o->next, 1)] = a->i;
	return NULL;
}

/* One attempt: 1 when the setup took longer than `margin` (the deadlines
 * passed before all timers were set: not a valid try), else 0. */
static int ordered_try(ordered *o, uint64_t margin)
{
	ordered_arg args[ORDERED];
	crew_task *t[ORDERED];
	atomic_store(&o->started, 0);
	atomic_store(&o->next, 0);
	o->base = crew_now() + margin;
	/* Spawned latest deadline first: the order must come from the deadlines. */
	for (int k = 0; k < ORDERED; k++) {
		args[k] = (ordered_arg){o, ORDERED - 1 - k};
		t[k] = crew_spawn(sleep_to_slot, &args[k]);
	}
	/* Let them all start sleeping (one worker: a task that counted itself
	 * has reached its sleep), then hold the worker (no suspension) until
	 * every deadline has passed: they all come due together. */
	while (atomic_load(&o->started) < ORDERED)
		crew_yield();
	int too_slow = crew_now() >= o->base;
	while (crew_now() < o->base + ORDERED * 1000 + CREWT_MS)
		;
	for (int k = 0; k < ORDERED; k++)
		if (t[k])
			crew_join(t[k], NULL);
	return too_slow;
}

static void *ordered_main(void *p)
{
	/* Sanitizers and loaded machines make the setup slow: widen the margin. */
	for (uint64_t margin = 10 * CREWT_MS; margin <= 2560 * CREWT_MS; margin *= 4)
		if (!ordered_try(p, margin))
			return NULL;
	return (void *)1;
}

Test(sleep, timers_due_together_run_in_deadline_order, .timeout = CREWT_TIMEOUT(30))
{
	ordered o = {0};
	void *res = (void *)-1;
	cr_assert_eq(crewt_run(1, ordered_main, &o, &res), 0);
	cr_assert_null(res, "could not set 64 timers within 2.5 s");
	cr_assert_eq(atomic_load(&o.next), ORDERED);
	char seq[ORDERED * 4 + 1];
	int bad = -1, len = 0;
	for (int k = 0; k < ORDERED; k++) {
		if (o.order[k] != k && bad < 0)
			bad = k;
		len += snprintf(seq + len, sizeof seq - (size_t)len, " %d", o.order[k]);
	}
	cr_expect_eq(bad, -1, "wake-up #%d had deadline #%d; the order:%s", bad,
	             bad < 0 ? 0 : o.order[bad], seq);
}

/* The blog's last program in small: two timers come due together (main's
 * 5 s sleep and the child's fifth 1 s sleep); the earlier deadline must run
 * first. Tried at every phase of the scheduler's periodic fairness pick. */

#define PHASES 130

typedef struct pair {
	uint64_t base;
	atomic_int started, next;
	int order[2];
} pair;

typedef struct pair_arg {
	pair *p;
	int i;
} pair_arg;

static void *pair_sleeper(void *p)
{
	pair_arg *a = p;
	atomic_fetch_add(&a->p->started, 1);
	if (crew_sleep_until(a->p->base + (uint64_t)a->i * 1000) != 0)
		return NULL;
	a->p->order[atomic_fetch_add(&a->p->next, 1)] = a->i;
	return NULL;
}

typedef struct pair_run {
	int phase;
	bool later_first;
} pair_run;

static void *pair_main(void *arg)
{
	pair_run *r = arg;
	for (uint64_t margin = 2 * CREWT_MS; margin <= 2048 * CREWT_MS; margin *= 4) {
		pair p = {.base = crew_now() + margin};
		pair_arg a1 = {&p, 1}, a0 = {&p, 0};
		crew_task *t1 = crew_spawn(pair_sleeper, &a1); /* later deadline first */
		crew_task *t0 = crew_spawn(pair_sleeper, &a0);
		if (!t0 || !t1)
			return (void *)1;
		while (atomic_load(&p.started) < 2)
			crew_yield();
		for (int k = 0; k < r->phase; k++) /* shift the scheduler's phase */
			crew_yield();
		/* Too slow (sanitizers, load): a deadline passed already; again. */
		bool valid = crew_now() < p.base;
		while (crew_now() < p.base + CREWT_MS)
			;
		crew_join(t0, NULL);
		crew_join(t1, NULL);
		if (p.next != 2)
			return (void *)2;
		if (valid) {
			r->later_first = p.order[0] != 0;
			return NULL;
		}
	}
	return (void *)3;
}

Test(sleep, two_timers_due_together_any_phase, .timeout = CREWT_TIMEOUT(60))
{
	/* A fresh runtime each time: the phase depends on this loop only. */
	for (int phase = 0; phase < PHASES; phase++) {
		pair_run r = {.phase = phase};
		void *res = (void *)-1;
		cr_assert_eq(crewt_run(1, pair_main, &r, &res), 0);
		cr_assert_null(res, "phase %d: failed at step %p", phase, res);
		cr_assert(!r.later_first,
		          "after %d extra yields, the later of two timers due together ran first",
		          phase);
	}
}

/* ---- many sleepers ---- */

/* Correctness only: every sleeper runs once, none wakes early, every sleep
 * returns 0. How fast the crowd gets through is a benchmark, not a test (a
 * loaded machine misses any bound): `crew-bench sleepers --workers 2`, see
 * bench/README.md. Two rounds in one runtime: the first on fresh fiber stacks,
 * the second on reused ones. Half the sleepers use crew_sleep_until. */
#define SLEEPERS CREWT_SIZE(100000, 10000)
#define NAP (10 * CREWT_MS)
#define CROWD_ROUNDS 2

typedef struct crowd {
	atomic_int early, bad_rc, done;
	atomic_uchar ran[CROWD_ROUNDS][SLEEPERS]; /* times each sleeper ran */
	int spawn_failed, join_failed;
	uint64_t wall[CROWD_ROUNDS]; /* logged only */
} crowd;

typedef struct napper_arg {
	crowd *c;
	int round, i;
} napper_arg;

static void *napper(void *p)
{
	napper_arg *a = p;
	crowd *c = a->c;
	atomic_fetch_add_explicit(&c->ran[a->round][a->i], 1, memory_order_relaxed);
	uint64_t t0 = crew_now();
	int rc = a->i % 2 ? crew_sleep_until(t0 + NAP) : crew_sleep(NAP);
	/* t0 is read before the call, so t0 + NAP is no later than the deadline
	 * the runtime set: ending before it is early by any account. */
	if (crew_now() < t0 + NAP)
		atomic_fetch_add_explicit(&c->early, 1, memory_order_relaxed);
	if (rc != 0)
		atomic_fetch_add_explicit(&c->bad_rc, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->done, 1, memory_order_relaxed);
	return a;
}

static void *crowd_main(void *p)
{
	crowd *c = p;
	crew_task **t = malloc(SLEEPERS * sizeof *t);
	napper_arg *args = malloc(SLEEPERS * sizeof *args);
	if (!t || !args) {
		free(t);
		free(args);
		return (void *)1;
	}
	for (int round = 0; round < CROWD_ROUNDS; round++) {
		uint64_t t0 = crew_now();
		for (int i = 0; i < SLEEPERS; i++) {
			args[i] = (napper_arg){c, round, i};
			if (!(t[i] = crew_spawn(napper, &args[i])))
				c->spawn_failed++;
		}
		for (int i = 0; i < SLEEPERS; i++) {
			void *r = NULL;
			if (t[i] && (crew_join(t[i], &r) != 0 || r != &args[i]))
				c->join_failed++;
		}
		c->wall[round] = crew_now() - t0;
	}
	free(t);
	free(args);
	return NULL;
}

Test(sleep, many_sleepers_2_workers, .timeout = CREWT_TIMEOUT(60))
{
	crowd *c = calloc(1, sizeof *c);
	cr_assert_not_null(c);
	void *res = (void *)-1;
	cr_assert_eq(crewt_run(2, crowd_main, c, &res), 0);
	cr_assert_null(res);
	cr_expect_eq(c->spawn_failed, 0, "crew_spawn failed %d times", c->spawn_failed);
	cr_expect_eq(c->join_failed, 0, "%d joins failed or returned a wrong result",
	             c->join_failed);
	cr_expect_eq(atomic_load(&c->done), CROWD_ROUNDS * SLEEPERS);
	int not_once = 0, first = -1;
	for (int round = 0; round < CROWD_ROUNDS; round++)
		for (int i = 0; i < SLEEPERS; i++)
			if (atomic_load(&c->ran[round][i]) != 1 && not_once++ == 0)
				first = round * SLEEPERS + i;
	cr_expect_eq(not_once, 0, "%d sleepers did not run exactly once (first: #%d)", not_once,
	             first);
	cr_expect_eq(atomic_load(&c->early), 0, "%d sleeps ended early", atomic_load(&c->early));
	cr_expect_eq(atomic_load(&c->bad_rc), 0, "%d sleeps failed", atomic_load(&c->bad_rc));
	for (int round = 0; round < CROWD_ROUNDS; round++)
		cr_log_info("%d sleepers of 10 ms, round %d: %.1f ms (not checked: see crew-bench)",
		            SLEEPERS, round + 1, c->wall[round] / 1e6);
	free(c);
}
