/*
 * Shutdown (asyncio.run semantics): when main returns, every task still alive
 * is cancelled -- sleeping, not yet started, awaiting a future, joining a
 * child -- each body still runs exactly once, and crew_run returns promptly.
 * crew_run can be called again afterwards. A handle neither joined nor
 * detached is reported on stderr, naming its function.
 */
#include "helpers.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define LONG_SLEEP (60 * CREWT_SEC)
#define PROMPT (CREWT_SIZE(1000, 5000) * CREWT_MS)

#define N_SLEEP 16
#define N_AWAIT 16
#define N_JOIN 8
#define N_LATE 16
#define N_STARTED (N_SLEEP + N_AWAIT + 2 * N_JOIN)

typedef struct kind {
	atomic_int runs, cancelled, done;
} kind;

typedef struct scene {
	kind sleep, await, joiner, joined, late;
	atomic_int started;
	crew_future *all_started; /* set by the last task to start */
	crew_future *never;       /* nobody sets it */
	atomic_int late_started_early;  /* a "late" task ran before main returned */
	atomic_int main_returned;
} scene;

static void mark_started(scene *s)
{
	if (atomic_fetch_add(&s->started, 1) + 1 == N_STARTED)
		crew_future_set(s->all_started, NULL);
}

static void *sleep_long(void *p)
{
	scene *s = p;
	atomic_fetch_add(&s->sleep.runs, 1);
	mark_started(s);
	if (crew_sleep(LONG_SLEEP) == -ECANCELED)
		atomic_fetch_add(&s->sleep.cancelled, 1);
	atomic_fetch_add(&s->sleep.done, 1);
	return NULL;
}

static void *await_never(void *p)
{
	scene *s = p;
	atomic_fetch_add(&s->await.runs, 1);
	mark_started(s);
	if (crew_future_await(s->never, NULL) == -ECANCELED)
		atomic_fetch_add(&s->await.cancelled, 1);
	atomic_fetch_add(&s->await.done, 1);
	return NULL;
}

static void *joined_child(void *p)
{
	scene *s = p;
	atomic_fetch_add(&s->joined.runs, 1);
	mark_started(s);
	if (crew_sleep(LONG_SLEEP) == -ECANCELED)
		atomic_fetch_add(&s->joined.cancelled, 1);
	atomic_fetch_add(&s->joined.done, 1);
	return p;
}

static void *join_sleeping_child(void *p)
{
	scene *s = p;
	atomic_fetch_add(&s->joiner.runs, 1);
	crew_task *c = crew_spawn(joined_child, s);
	mark_started(s);
	void *r = NULL;
	/* Waits although this task gets cancelled; the child is cancelled too. */
	if (c && crew_join(c, &r) == -ECANCELED && r == p)
		atomic_fetch_add(&s->joiner.cancelled, 1);
	atomic_fetch_add(&s->joiner.done, 1);
	return NULL;
}

static void *late(void *p)
{
	scene *s = p;
	atomic_fetch_add(&s->late.runs, 1);
	if (!atomic_load(&s->main_returned))
		atomic_store(&s->late_started_early, 1); /* several late tasks at once with 4 workers */
	if (crew_sleep(LONG_SLEEP) == -ECANCELED)
		atomic_fetch_add(&s->late.cancelled, 1);
	atomic_fetch_add(&s->late.done, 1);
	return NULL;
}

#define MAIN_RESULT ((void *)(uintptr_t)0x5EED)

static void *scene_main(void *p)
{
	scene *s = p;
	for (int i = 0; i < N_SLEEP; i++)
		crew_detach(crew_spawn(sleep_long, s));
	for (int i = 0; i < N_AWAIT; i++)
		crew_detach(crew_spawn(await_never, s));
	for (int i = 0; i < N_JOIN; i++)
		crew_detach(crew_spawn(join_sleeping_child, s));
	/* Wait until all of them have started (and most are suspended). */
	if (crew_future_await(s->all_started, NULL) != 0)
		return NULL;
	/* These cannot start before main returns with one worker. */
	for (int i = 0; i < N_LATE; i++)
		crew_detach(crew_spawn(late, s));
	atomic_store(&s->main_returned, 1);
	return MAIN_RESULT;
}

static void check_kind(const char *what, kind *k, int n, unsigned w)
{
	cr_expect_eq(atomic_load(&k->runs), n, "workers=%u: %d %s bodies ran, expected %d", w,
	             atomic_load(&k->runs), what, n);
	cr_expect_eq(atomic_load(&k->done), n, "workers=%u: %d %s bodies returned, expected %d", w,
	             atomic_load(&k->done), what, n);
	cr_expect_eq(atomic_load(&k->cancelled), n, "workers=%u: %d %s saw -ECANCELED, expected %d",
	             w, atomic_load(&k->cancelled), what, n);
}

static void run_scene(unsigned workers)
{
	scene s = {0};
	s.all_started = crew_future_new();
	s.never = crew_future_new();
	cr_assert(s.all_started && s.never);
	void *res = NULL;
	uint64_t t0 = crew_now();
	cr_assert_eq(crewt_run(workers, scene_main, &s, &res), 0);
	uint64_t took = crew_now() - t0;
	cr_expect_eq(res, MAIN_RESULT);
	cr_expect_lt(took, PROMPT, "workers=%u: crew_run took %.3f s with tasks sleeping 60 s",
	             workers, took / 1e9);
	check_kind("sleeping", &s.sleep, N_SLEEP, workers);
	check_kind("awaiting", &s.await, N_AWAIT, workers);
	check_kind("joining", &s.joiner, N_JOIN, workers);
	check_kind("joined", &s.joined, N_JOIN, workers);
	check_kind("not-started", &s.late, N_LATE, workers);
	if (workers == 1)
		cr_expect_eq(atomic_load(&s.late_started_early), 0, "a task started before main returned with 1 worker");
	cr_expect(!crew_future_done(s.never));
	crew_future_release(s.all_started);
	crew_future_release(s.never);
}

static void *add(void *arg) { return (void *)((uintptr_t)arg + 1); }

static void *simple_main(void *arg)
{
	crew_task *t = crew_spawn(add, arg);
	void *r = NULL;
	if (!t || crew_join(t, &r) != 0 || crew_sleep(CREWT_MS) != 0)
		return NULL;
	return r;
}

Test(shutdown, pending_tasks_1_worker, .timeout = CREWT_TIMEOUT(30)) { run_scene(1); }
Test(shutdown, pending_tasks_4_workers, .timeout = CREWT_TIMEOUT(30)) { run_scene(4); }

Test(shutdown, run_again, .timeout = CREWT_TIMEOUT(60))
{
	for (int round = 0; round < 3; round++) {
		run_scene(round % 2 ? 3 : 1);
		void *r = NULL;
		cr_assert_eq(crewt_run(2, simple_main, (void *)41, &r), 0, "round %d", round);
		cr_expect_eq(r, (void *)42, "round %d: crew_run after a shutdown", round);
	}
}

/* ---- handles never joined nor detached ---- */

static void *forgotten_sleeper(void *arg)
{
	(void)arg;
	crew_sleep(LONG_SLEEP);
	return NULL;
}

static void *forgotten_finished(void *arg)
{
	return arg;
}

static void *forgetful_main(void *arg)
{
	(void)arg;
	crew_spawn(forgotten_sleeper, NULL);
	crew_spawn(forgotten_finished, NULL);
	crew_sleep(5 * CREWT_MS); /* forgotten_finished finishes meanwhile */
	return NULL;
}

static void run_forgetful(void *arg)
{
	(void)arg;
	int rc = crewt_run(1, forgetful_main, NULL, NULL);
	fflush(NULL); /* the report is due when crew_run returns */
	_exit(rc == 0 ? 0 : 10);
}

Test(shutdown, never_joined_is_reported, .timeout = CREWT_TIMEOUT(30))
{
	crewt_proc p;
	cr_assert_eq(crewt_fork_capture(run_forgetful, NULL, 20 * CREWT_SEC, &p), 0);
	cr_expect(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0, "child: %s; stderr:\n%s",
	          crewt_status_str(p.status), p.err);
	cr_expect_not_null(strstr(p.err, "forgotten_sleeper"),
	                   "stderr does not name forgotten_sleeper:\n%s", p.err);
	cr_expect_not_null(strstr(p.err, "forgotten_finished"),
	                   "stderr does not name forgotten_finished:\n%s", p.err);
	crewt_proc_free(&p);
}

static void *tidy_main(void *arg)
{
	(void)arg;
	crew_detach(crew_spawn(forgotten_sleeper, NULL));
	crew_task *t = crew_spawn(forgotten_finished, NULL);
	crew_join(t, NULL);
	return NULL;
}

static void run_tidy(void *arg)
{
	(void)arg;
	int rc = crewt_run(2, tidy_main, NULL, NULL);
	fflush(NULL); /* the report is due when crew_run returns */
	_exit(rc == 0 ? 0 : 10);
}

Test(shutdown, joined_or_detached_is_not_reported, .timeout = CREWT_TIMEOUT(30))
{
	crewt_proc p;
	cr_assert_eq(crewt_fork_capture(run_tidy, NULL, 20 * CREWT_SEC, &p), 0);
	cr_expect(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0, "child: %s; stderr:\n%s",
	          crewt_status_str(p.status), p.err);
	cr_expect_str_empty(p.err, "stderr of a tidy program:\n%s", p.err);
	crewt_proc_free(&p);
}
