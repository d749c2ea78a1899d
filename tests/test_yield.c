/*
 * crew_yield (asyncio.sleep(0)): lets the other runnable tasks run.
 */
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

/* ---- two tasks on one worker interleave strictly ---- */

#define ROUNDS CREWT_SIZE(2000, 500)

typedef struct log {
	char entry[2 * ROUNDS + 8];
	int n;
	int bad_rc;
} log_t;

typedef struct player {
	log_t *log;
	char name;
} player;

static void *take_turns(void *p)
{
	player *pl = p;
	for (int i = 0; i < ROUNDS; i++) {
		pl->log->entry[pl->log->n++] = pl->name; /* one worker: no race */
		int rc = crew_yield();
		if (rc != 0)
			pl->log->bad_rc = rc;
	}
	return NULL;
}

static void *alternate_main(void *arg)
{
	log_t *log = arg;
	player a = {log, 'A'}, b = {log, 'B'};
	crew_task *ta = crew_spawn(take_turns, &a);
	crew_task *tb = crew_spawn(take_turns, &b);
	if (!ta || !tb)
		return (void *)1;
	crew_join(ta, NULL);
	crew_join(tb, NULL);
	return NULL;
}

Test(yield, two_tasks_alternate_on_one_worker, .timeout = CREWT_TIMEOUT(30))
{
	log_t *log = calloc(1, sizeof *log);
	cr_assert_not_null(log);
	void *res = (void *)-1;
	cr_assert_eq(crewt_run(1, alternate_main, log, &res), 0);
	cr_assert_null(res);
	cr_expect_eq(log->bad_rc, 0, "crew_yield returned %d", log->bad_rc);
	cr_assert_eq(log->n, 2 * ROUNDS);
	int first_bad = -1;
	for (int i = 1; i < log->n && first_bad < 0; i++)
		if (log->entry[i] == log->entry[i - 1])
			first_bad = i;
	log->entry[first_bad < 0 ? 0 : (first_bad + 20 < log->n ? first_bad + 20 : log->n)] = 0;
	cr_expect_eq(first_bad, -1, "not strictly alternating at %d: ...%s", first_bad,
	             first_bad < 0 ? "" : &log->entry[first_bad > 20 ? first_bad - 20 : 0]);
	free(log);
}

/* ---- yields make progress: tasks waiting for each other by yielding ---- */

#define PINGS CREWT_SIZE(20000, 2000)
#define PLAYERS 4

typedef struct relay {
	atomic_int turn;    /* whose turn: 0..PLAYERS-1 */
	atomic_int bad_rc;
	atomic_long yields;
} relay;

typedef struct runner {
	relay *r;
	int id;
} runner;

static void *relay_runner(void *p)
{
	runner *rn = p;
	relay *r = rn->r;
	for (int i = 0; i < PINGS; i++) {
		while (atomic_load(&r->turn) != rn->id) {
			int rc = crew_yield();
			atomic_fetch_add_explicit(&r->yields, 1, memory_order_relaxed);
			if (rc != 0) {
				atomic_store(&r->bad_rc, rc);
				return NULL;
			}
		}
		atomic_store(&r->turn, (rn->id + 1) % PLAYERS);
	}
	return NULL;
}

static void *relay_main(void *arg)
{
	relay *r = arg;
	runner rn[PLAYERS];
	crew_task *t[PLAYERS];
	for (int i = 0; i < PLAYERS; i++) {
		rn[i] = (runner){r, i};
		t[i] = crew_spawn(relay_runner, &rn[i]);
		if (!t[i])
			return (void *)1;
	}
	for (int i = 0; i < PLAYERS; i++)
		crew_join(t[i], NULL);
	return NULL;
}

static void relay_race(unsigned workers)
{
	relay r = {0};
	void *res = (void *)-1;
	cr_assert_eq(crewt_run(workers, relay_main, &r, &res), 0);
	cr_assert_null(res);
	cr_expect_eq(atomic_load(&r.bad_rc), 0, "crew_yield returned %d", atomic_load(&r.bad_rc));
	/* Every runner passed the baton PINGS times: it is back with runner 0. */
	cr_expect_eq(atomic_load(&r.turn), 0);
	cr_log_info("workers=%u: %ld yields", workers, atomic_load(&r.yields));
}

Test(yield, progress_1_worker, .timeout = CREWT_TIMEOUT(60)) { relay_race(1); }
Test(yield, progress_2_workers, .timeout = CREWT_TIMEOUT(60)) { relay_race(2); }
Test(yield, progress_4_workers, .timeout = CREWT_TIMEOUT(60)) { relay_race(4); }

/* ---- a yield loop does not starve timers or wake-ups from other threads ---- */

typedef struct starve {
	atomic_int flag;
	crew_future *f;
	int spinners;     /* tasks yielding in a loop on the one worker (0: 1) */
	bool by_spawn;    /* a plain thread spawns the task that sets the flag */
	atomic_int spun_out;
} starve;

static void *wake_by_timer(void *p)
{
	starve *s = p;
	if (crew_sleep(5 * CREWT_MS) == 0)
		atomic_store(&s->flag, 1);
	return NULL;
}

static void *wake_by_future(void *p)
{
	starve *s = p;
	if (crew_future_await(s->f, NULL) == 0)
		atomic_store(&s->flag, 1);
	return NULL;
}

static void *set_from_thread(void *p)
{
	crew_future_set(p, NULL);
	return NULL;
}

static void *raise_flag(void *p)
{
	starve *s = p;
	atomic_store(&s->flag, 1);
	return NULL;
}

/* A plain thread spawns a task (it goes through the inject queue). */
static void *spawn_from_thread(void *p)
{
	crew_task *t = crew_spawn(raise_flag, p);
	if (t)
		crew_detach(t);
	return NULL;
}

static void *spin_until_flag(void *p)
{
	starve *s = p;
	/* Bounded: give up after 10 s rather than hang the test. */
	uint64_t give_up = crew_now() + 10 * CREWT_SEC;
	while (!atomic_load(&s->flag)) {
		if (crew_now() > give_up) {
			atomic_store(&s->spun_out, 1);
			break;
		}
		crew_yield();
	}
	return NULL;
}

static void *starve_main(void *arg)
{
	starve *s = arg;
	int n = s->spinners ? s->spinners : 1;
	crew_task *spinner[8];
	for (int i = 0; i < n; i++)
		spinner[i] = crew_spawn(spin_until_flag, s);
	crew_task *waker = s->by_spawn ? NULL : crew_spawn(s->f ? wake_by_future : wake_by_timer, s);
	pthread_t th;
	bool thread = false;
	if ((s->f || s->by_spawn) && crew_yield() == 0) /* let the waker start awaiting */
		thread = pthread_create(&th, NULL, s->by_spawn ? spawn_from_thread : set_from_thread,
					s->by_spawn ? (void *)s : (void *)s->f) == 0;
	for (int i = 0; i < n; i++)
		crew_join(spinner[i], NULL);
	if (waker)
		crew_join(waker, NULL);
	if (thread)
		pthread_join(th, NULL);
	return NULL;
}

Test(yield, yield_loop_lets_timers_fire, .timeout = CREWT_TIMEOUT(30))
{
	starve s = {0};
	cr_assert_eq(crewt_run(1, starve_main, &s, NULL), 0);
	cr_expect_eq(atomic_load(&s.spun_out), 0, "a task yielding in a loop starved a 5 ms sleep for 10 s");
	cr_expect_eq(atomic_load(&s.flag), 1);
}

Test(yield, yield_loop_lets_thread_wakeups_in, .timeout = CREWT_TIMEOUT(30))
{
	starve s = {.f = crew_future_new()};
	cr_assert_not_null(s.f);
	cr_assert_eq(crewt_run(1, starve_main, &s, NULL), 0);
	cr_expect_eq(atomic_load(&s.spun_out), 0, "a task yielding in a loop starved a future set by a thread");
	cr_expect_eq(atomic_load(&s.flag), 1);
	crew_future_release(s.f);
}

/* Several tasks yielding to each other on one worker: the yield fast path
 * switches between them directly, and must still let the scheduler serve
 * timers, the reactor and the inject queue (it once never did: the fast path
 * and the scheduler both advanced the tick, so the fairness pick never came). */
Test(yield, yielders_let_timers_fire, .timeout = CREWT_TIMEOUT(30))
{
	starve s = {.spinners = 3};
	cr_assert_eq(crewt_run(1, starve_main, &s, NULL), 0);
	cr_expect_eq(atomic_load(&s.spun_out), 0, "3 yielding tasks starved a 5 ms sleep for 10 s");
	cr_expect_eq(atomic_load(&s.flag), 1);
}

Test(yield, yielders_let_thread_wakeups_in, .timeout = CREWT_TIMEOUT(30))
{
	starve s = {.f = crew_future_new(), .spinners = 3};
	cr_assert_not_null(s.f);
	cr_assert_eq(crewt_run(1, starve_main, &s, NULL), 0);
	cr_expect_eq(atomic_load(&s.spun_out), 0, "3 yielding tasks starved a future set by a thread");
	cr_expect_eq(atomic_load(&s.flag), 1);
	crew_future_release(s.f);
}

Test(yield, yielders_let_thread_spawns_run, .timeout = CREWT_TIMEOUT(30))
{
	starve s = {.by_spawn = true, .spinners = 3};
	cr_assert_eq(crewt_run(1, starve_main, &s, NULL), 0);
	cr_expect_eq(atomic_load(&s.spun_out), 0, "3 yielding tasks starved a task spawned by a thread");
	cr_expect_eq(atomic_load(&s.flag), 1);
}

/* ---- shutdown while tasks do nothing but yield ---- */

static atomic_int yield_loops_ended;

static void *yield_until_cancelled(void *p)
{
	(void)p;
	while (crew_yield() == 0)
		;
	atomic_fetch_add(&yield_loops_ended, 1);
	return NULL;
}

static void *leave_yielders_behind(void *p)
{
	int n = *(int *)p;
	for (int i = 0; i < n; i++) {
		crew_task *t = crew_spawn(yield_until_cancelled, NULL);
		if (!t)
			return (void *)1;
		crew_detach(t);
	}
	/* they start and yield to each other; main's own timer must still fire
	 * for the shutdown to begin */
	return crew_sleep(CREWT_MS) == 0 ? NULL : (void *)2;
}

/* main returns while its detached tasks yield in a loop: shutdown must reach
 * them (crew_yield returns -ECANCELED) and crew_run must return. */
static void shutdown_with_yielders(unsigned workers, int n)
{
	atomic_store(&yield_loops_ended, 0);
	void *res = (void *)-1;
	cr_assert_eq(crewt_run(workers, leave_yielders_behind, &n, &res), 0);
	cr_assert_null(res);
	cr_expect_eq(atomic_load(&yield_loops_ended), n);
}

Test(yield, shutdown_with_yield_loops_1_worker, .timeout = CREWT_TIMEOUT(30))
{
	shutdown_with_yielders(1, 3);
}

Test(yield, shutdown_with_yield_loops_2_workers, .timeout = CREWT_TIMEOUT(30))
{
	shutdown_with_yielders(2, 5);
}
