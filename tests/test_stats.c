/*
 * crew_stats and CREW_STATS=1: the counters add up (every task run was
 * spawned, every fork is counted once), steals are seen, errors.
 */
#include "helpers.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXW 8

static void *ret_arg(void *arg) { return arg; }

static uint64_t forks_done; /* fib_fork calls that forked (n >= 2) */

static void *fib_fork(void *arg)
{
	uintptr_t n = (uintptr_t)arg;
	if (n < 2)
		return arg;
	crew_frame f;
	crew_fork(&f, fib_fork, (void *)(n - 1));
	uintptr_t b = (uintptr_t)fib_fork((void *)(n - 2));
	return (void *)(b + (uintptr_t)crew_sync(&f));
}

static uint64_t fib_calls_forking(unsigned n) { return n < 2 ? 0 : 1 + fib_calls_forking(n - 1) + fib_calls_forking(n - 2); }

#define NSPAWN 1000
#define FIBN 20

typedef struct during {
	int n;          /* crew_stats in the task */
	uint64_t forks; /* sum of forks it saw */
} during;

static void *mixed_main(void *arg)
{
	during *d = arg;
	crew_task *t[NSPAWN];
	for (int i = 0; i < NSPAWN; i++)
		t[i] = crew_spawn(ret_arg, NULL);
	for (int i = 0; i < NSPAWN; i++)
		if (t[i])
			crew_join(t[i], NULL);
	fib_fork((void *)(uintptr_t)FIBN);
	crew_worker_stats s[MAXW];
	d->n = crew_stats(s, MAXW);
	for (int i = 0; i < d->n && i < MAXW; i++)
		d->forks += s[i].forks;
	return NULL;
}

Test(stats, counters_add_up, .timeout = CREWT_TIMEOUT(60))
{
	for (unsigned w = 1; w <= 4; w *= 2) {
		during d = { 0 };
		cr_assert_eq(crewt_run(w, mixed_main, &d, NULL), 0);
		cr_expect_eq(d.n, (int)w, "in a task: %d workers", d.n);
		cr_expect_eq(d.forks, fib_calls_forking(FIBN), "%u workers: %lu forks seen in the task", w,
		             (unsigned long)d.forks);
		crew_worker_stats s[MAXW];
		memset(s, 0xff, sizeof(s));
		int n = crew_stats(s, MAXW);
		cr_assert_eq(n, (int)w, "after the run: %d workers", n);
		uint64_t run = 0, spawned = 0, forks = 0, steals = 0, attempts = 0, overflows = 0;
		for (int i = 0; i < n; i++) {
			run += s[i].tasks_run;
			spawned += s[i].tasks_spawned;
			forks += s[i].forks;
			steals += s[i].steals;
			attempts += s[i].steal_attempts;
			overflows += s[i].overflows;
		}
		/* + main, spawned by crew_run's thread */
		cr_expect_eq(run, spawned + 1, "%u workers: %lu run, %lu spawned", w, (unsigned long)run,
		             (unsigned long)spawned);
		cr_expect_geq(spawned, NSPAWN);
		cr_expect_eq(forks, fib_calls_forking(FIBN), "%u workers: forks %lu", w, (unsigned long)forks);
		cr_expect_eq(overflows, 0);
		/* (no bound on steals: one attempt takes up to half of a deque, and
		 * a task may be stolen again from its thief) */
		if (steals)
			cr_expect_gt(attempts, 0, "%u workers: steals without any attempt", w);
		if (w == 1)
			cr_expect_eq(steals + attempts, 0, "one worker stole");
	}
	(void)forks_done;
}

/* Force a steal: fork, then keep forking (each fork reads the split request)
 * until another worker ran the frame. */
static atomic_int started;
static void *mark(void *arg)
{
	atomic_store(&started, 1);
	return arg;
}
static void *steal_main(void *arg)
{
	(void)arg;
	atomic_store(&started, 0);
	crew_frame f;
	crew_fork(&f, mark, NULL);
	while (!atomic_load(&started)) {
		crew_frame g;
		crew_fork(&g, ret_arg, NULL);
		crew_sync(&g);
	}
	crew_sync(&f);
	return NULL;
}

Test(stats, steals_are_counted, .timeout = CREWT_TIMEOUT(60))
{
	cr_assert_eq(crewt_run(2, steal_main, NULL, NULL), 0);
	crew_worker_stats s[2];
	cr_assert_eq(crew_stats(s, 2), 2);
	cr_expect_geq(s[0].steals + s[1].steals, 1);
	cr_expect_geq(s[0].steal_attempts + s[1].steal_attempts, s[0].steals + s[1].steals);
	cr_expect_eq(s[0].tasks_run + s[1].tasks_run, s[0].tasks_spawned + s[1].tasks_spawned + 1);
	cr_expect_eq(crew_stats(NULL, 0), 2, "max 0: just the count");
	cr_expect_eq(crew_stats(NULL, 1), -EINVAL);
}

/* A task that forks, then yields straight to another task (crew_yield's
 * direct switch, not through the scheduler): its forks are in crew_stats
 * from then on, as at any switch out. */
static atomic_int yf_forked, yf_stop;
static void *yield_forker(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100; i++) {
		crew_frame f;
		crew_fork(&f, ret_arg, NULL);
		crew_sync(&f);
	}
	atomic_store(&yf_forked, 1);
	while (!atomic_load(&yf_stop))
		crew_yield();
	return NULL;
}
static void *yield_stats_main(void *arg)
{
	uint64_t *forks = arg;
	crew_task *t = crew_spawn(yield_forker, NULL);
	if (!t)
		return NULL;
	while (!atomic_load(&yf_forked))
		crew_yield();
	crew_worker_stats s[1];
	if (crew_stats(s, 1) == 1)
		*forks = s[0].forks;
	atomic_store(&yf_stop, 1);
	crew_join(t, NULL);
	return NULL;
}

Test(stats, forks_of_a_task_that_yields_to_another, .timeout = CREWT_TIMEOUT(30))
{
	uint64_t forks = 0;
	cr_assert_eq(crewt_run(1, yield_stats_main, &forks, NULL), 0);
	cr_expect_eq(forks, 100, "forks seen while the forker is yielded: %lu", (unsigned long)forks);
}

static void env_child(void *arg)
{
	(void)arg;
	setenv("CREW_STATS", "1", 1);
	crewt_run(2, steal_main, NULL, NULL);
	_exit(0);
}

Test(stats, env_prints_at_the_end, .timeout = CREWT_TIMEOUT(60))
{
	crewt_proc p;
	cr_assert_eq(crewt_fork_capture(env_child, NULL, 30 * CREWT_SEC, &p), 0);
	cr_expect(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0, "child %s",
	          crewt_status_str(p.status));
	cr_expect(strstr(p.err, "crew stats: worker") != NULL, "no header:\n%s", p.err);
	cr_expect(strstr(p.err, "crew stats: 1 ") != NULL, "no line for worker 1:\n%s", p.err);
	crewt_proc_free(&p);
}
