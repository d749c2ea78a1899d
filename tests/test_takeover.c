/*
 * Work conservation: a worker that computes without suspending must not
 * hold up work that an idle worker could run: a task woken into its LIFO
 * slot, or a timer that comes due on it. The idle worker takes them over
 * after a short grace (about a millisecond). Before, both waited for the
 * computation to end: a setter that spins until its awaiter has run
 * deadlocked.
 *
 * Each test spins with a bound of 10 s so that a regression fails instead of
 * hanging; the bound is about liveness, not speed (the take-over comes after
 * about 1 ms).
 */
#include "helpers.h"
#include "internal.h"

#include <stdatomic.h>

#define GIVE_UP (10 * CREWT_SEC)

/* The task is suspended: neither queued nor running (its worker switched it
 * out). */
static bool is_suspended(crew_task *t)
{
	uint32_t s = crew__load_acquire_32(&t->state);
	return !(s & (CREW_T_SCHEDULED | CREW_T_RUNNING | CREW_T_DONE));
}

/* ---- a task woken into a busy worker's LIFO slot ---- */

typedef struct lifo_case {
	crew_future *f;
	atomic_int ran;
	int spun_out;
	int same_worker; /* the awaiter ran on the setter's worker */
	int setter_worker;
} lifo_case;

static void *await_then_flag(void *p)
{
	lifo_case *c = p;
	if (crew_future_await(c->f, NULL) == 0) {
		c->same_worker = crew_worker_id() == c->setter_worker;
		atomic_store(&c->ran, 1);
	}
	return NULL;
}

static void *set_then_spin(void *p)
{
	lifo_case *c = p;
	crew_task *t = crew_spawn(await_then_flag, c);
	if (!t)
		return (void *)1;
	while (!is_suspended(t)) /* certain: the wake below goes to our LIFO slot */
		crew_yield();
	c->setter_worker = crew_worker_id();
	crew_future_set(c->f, NULL);
	/* Spin without suspending: the awaiter sits in this worker's LIFO slot. */
	uint64_t give_up = crew_now() + GIVE_UP;
	while (!atomic_load(&c->ran))
		if (crew_now() > give_up) {
			c->spun_out = 1;
			break;
		}
	crew_join(t, NULL);
	return NULL;
}

Test(takeover, lifo_task_of_a_busy_worker, .timeout = CREWT_TIMEOUT(60))
{
	for (int round = 0; round < 5; round++) {
		lifo_case c = {.f = crew_future_new()};
		cr_assert_not_null(c.f);
		void *res = (void *)-1;
		cr_assert_eq(crewt_run(2, set_then_spin, &c, &res), 0);
		cr_assert_null(res);
		cr_assert_eq(c.spun_out, 0, "round %d: the woken task waited in a busy worker's "
		             "LIFO slot for 10 s while another worker idled", round);
		cr_assert_eq(atomic_load(&c.ran), 1);
		cr_expect_eq(c.same_worker, 0, "it cannot have run on the spinning worker");
		crew_future_release(c.f);
	}
}

/* The same while every worker has a far-off timer of its own: an idle worker
 * then parks with a timeout (its timer's), and must still be made to watch.
 * (It once was not: only a worker parked without any timeout was woken.) */

typedef struct far_timers {
	atomic_int started;
	crew_future *both;  /* set when both placers run, on two workers */
	int id[2];
} far_timers;

typedef struct placer {
	far_timers *ft;
	int i;
} placer;

/* Two of these run at the same time (each waits for the other without
 * suspending), so on two workers; then each sleeps there. */
static void *sleep_far(void *p)
{
	placer *pl = p;
	far_timers *ft = pl->ft;
	pl->ft->id[pl->i] = crew_worker_id();
	if (atomic_fetch_add(&ft->started, 1) == 1)
		crew_future_set(ft->both, NULL);
	uint64_t give_up = crew_now() + GIVE_UP;
	while (atomic_load(&ft->started) < 2 && crew_now() < give_up)
		;
	crew_sleep(3600 * CREWT_SEC); /* cancelled at the end */
	return NULL;
}

static void *far_timers_main(void *p)
{
	lifo_case *c = p;
	far_timers ft = {.both = crew_future_new()};
	placer pl[2] = {{&ft, 0}, {&ft, 1}};
	crew_task *t[2] = {crew_spawn(sleep_far, &pl[0]), crew_spawn(sleep_far, &pl[1])};
	if (!ft.both || !t[0] || !t[1])
		return (void *)1;
	crew_future_await(ft.both, NULL); /* frees this worker for a placer */
	crewt_wait_suspended(t[0]);
	crewt_wait_suspended(t[1]);
	void *rc = ft.id[0] != ft.id[1] ? set_then_spin(c) : (void *)2;
	for (int i = 0; i < 2; i++) {
		crew_cancel(t[i]);
		crew_join(t[i], NULL);
	}
	crew_future_release(ft.both);
	return rc;
}

Test(takeover, lifo_task_of_a_busy_worker_beside_far_timers, .timeout = CREWT_TIMEOUT(60))
{
	for (int round = 0; round < 3; round++) {
		lifo_case c = {.f = crew_future_new()};
		cr_assert_not_null(c.f);
		void *res = (void *)-1;
		cr_assert_eq(crewt_run(2, far_timers_main, &c, &res), 0);
		cr_assert_null(res, "setup failed (%p)", res);
		cr_assert_eq(c.spun_out, 0, "round %d: the woken task waited 10 s in a busy worker's "
		             "LIFO slot while the other worker idled with a timer of its own", round);
		crew_future_release(c.f);
	}
}

/* ---- a timer due on a busy worker ---- */

typedef struct timer_case {
	crew_future *go;
	crew_task *hog;
	atomic_int slept;
	int sleeper_worker;
	int hog_worker;
	int spun_out;
} timer_case;

/* Woken into the sleeper's LIFO slot, it runs on the sleeper's worker once
 * the sleeper suspends, and computes until the sleep has returned. */
static void *hog(void *p)
{
	timer_case *c = p;
	if (crew_future_await(c->go, NULL) != 0)
		return NULL;
	c->hog_worker = crew_worker_id();
	uint64_t give_up = crew_now() + GIVE_UP;
	while (!atomic_load(&c->slept))
		if (crew_now() > give_up) {
			c->spun_out = 1;
			break;
		}
	return NULL;
}

static void *sleep_beside_hog(void *p)
{
	timer_case *c = p;
	while (!is_suspended(c->hog))
		crew_yield();
	c->sleeper_worker = crew_worker_id();
	crew_future_set(c->go, NULL); /* the hog goes to this worker's LIFO slot */
	int rc = crew_sleep(CREWT_MS); /* the timer is on this worker's set */
	atomic_store(&c->slept, 1);
	return (void *)(intptr_t)rc;
}

static void *timer_main(void *p)
{
	timer_case *c = p;
	c->hog = crew_spawn(hog, c);
	crew_task *s = c->hog ? crew_spawn(sleep_beside_hog, c) : NULL;
	if (!s)
		return (void *)1;
	void *rc = (void *)1;
	crew_join(s, &rc);
	crew_join(c->hog, NULL);
	return rc;
}

Test(takeover, timer_of_a_busy_worker, .timeout = CREWT_TIMEOUT(60))
{
	int valid = 0;
	for (int round = 0; round < 20 && valid < 5; round++) {
		timer_case c = {.go = crew_future_new()};
		cr_assert_not_null(c.go);
		void *res = (void *)-1;
		cr_assert_eq(crewt_run(2, timer_main, &c, &res), 0);
		cr_assert_null(res, "the sleep failed");
		crew_future_release(c.go);
		if (c.hog_worker != c.sleeper_worker)
			continue; /* the hog was taken over before it ran: try again */
		valid++;
		cr_assert_eq(c.spun_out, 0, "round %d: a 1 ms sleep waited 10 s for its busy worker "
		             "while another worker idled", round);
	}
	cr_assert_gt(valid, 0, "the hog never ran on the sleeper's worker");
}
