/*
 * crew_fork / crew_sync: results against the serial answer at 1, 2, 4
 * workers; nested forks synced in reverse order; frames that suspend, stolen
 * and not; cancellation does not skip a sync and reaches stolen frames;
 * frames off the stack and tasks that move; outside a task; order
 * violations abort in debug builds.
 */
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static uintptr_t fib_serial(uintptr_t n) { return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2); }

static void *fib_fork(void *arg)
{
	uintptr_t n = (uintptr_t)arg;
	if (n < 2)
		return arg;
	crew_frame f;
	crew_fork(&f, fib_fork, (void *)(n - 1));
	uintptr_t b = (uintptr_t)fib_fork((void *)(n - 2));
	uintptr_t a = (uintptr_t)crew_sync(&f);
	return (void *)(a + b);
}

#define FIB_N CREWT_SIZE(27, 20)

Test(fork, fib_matches_serial, .timeout = CREWT_TIMEOUT(120))
{
	uintptr_t want = fib_serial(FIB_N);
	static const unsigned workers[] = { 1, 2, 4 };
	for (unsigned i = 0; i < 3; i++) {
		for (int rep = 0; rep < 3; rep++) {
			void *res = NULL;
			cr_assert_eq(crewt_run(workers[i], fib_fork, (void *)(uintptr_t)FIB_N, &res), 0);
			cr_expect_eq((uintptr_t)res, want, "fib(%d) at %u workers: %lu, want %lu", FIB_N,
			             workers[i], (unsigned long)(uintptr_t)res, (unsigned long)want);
		}
	}
}

/* Three forks per level, synced newest first; each level checks its own. */
static void *tree3(void *arg)
{
	uintptr_t d = (uintptr_t)arg;
	if (d == 0)
		return (void *)1;
	crew_frame f[3];
	for (int i = 0; i < 3; i++)
		crew_fork(&f[i], tree3, (void *)(d - 1));
	uintptr_t sum = 1;
	for (int i = 2; i >= 0; i--)
		sum += (uintptr_t)crew_sync(&f[i]);
	return (void *)sum;
}

Test(fork, nested_reverse_order, .timeout = CREWT_TIMEOUT(120))
{
	/* nodes of a complete ternary tree of depth d: (3^(d+1) - 1) / 2 */
	uintptr_t d = CREWT_SIZE(9, 6), want = 1;
	for (uintptr_t i = 0; i <= d; i++)
		want *= 3;
	want = (want - 1) / 2;
	for (unsigned w = 1; w <= 4; w *= 2) {
		void *res = NULL;
		cr_assert_eq(crewt_run(w, tree3, (void *)d, &res), 0);
		cr_expect_eq((uintptr_t)res, want, "%u workers: %lu nodes, want %lu", w,
		             (unsigned long)(uintptr_t)res, (unsigned long)want);
	}
}

/* ---- frames that suspend ---- */

typedef struct susp {
	int mode;             /* 0: sleep, 1: await `fut` */
	crew_future *fut;
	crew_task *owner;     /* the forking task */
	atomic_int started;
	atomic_int stolen;    /* fn ran as another task than the owner */
	atomic_int finished;
	crew_task *victim;    /* cancel tests: the task to cancel */
} susp;

static void *susp_fn(void *arg)
{
	susp *s = arg;
	atomic_store(&s->stolen, crew_self() != s->owner);
	atomic_store(&s->started, 1);
	int rc = s->mode == 0 ? crew_sleep(2 * CREWT_MS) : crew_future_await(s->fut, NULL);
	atomic_store(&s->finished, 1);
	return (void *)(intptr_t)(rc == 0 ? 42 : 1000 + rc);
}

static void *noop(void *arg) { return arg; }

/* Fork s's frame, then keep forking (each fork reads the split request) until
 * a thief took it and started it; then release it and sync. */
static void *steal_then_sync(void *arg)
{
	susp *s = arg;
	s->owner = crew_self();
	crew_frame f;
	crew_fork(&f, susp_fn, s);
	while (!atomic_load(&s->started)) {
		crew_frame g;
		crew_fork(&g, noop, NULL);
		crew_sync(&g);
	}
	if (s->mode == 1)
		crew_future_set(s->fut, NULL);
	return crew_sync(&f);
}

static void run_stolen(int mode)
{
	susp s = { .mode = mode };
	s.fut = crew_future_new();
	cr_assert_not_null(s.fut);
	void *res = NULL;
	cr_assert_eq(crewt_run(2, steal_then_sync, &s, &res), 0);
	cr_expect(atomic_load(&s.stolen), "the frame was not stolen");
	cr_expect(atomic_load(&s.finished));
	cr_expect_eq((intptr_t)res, 42, "sync returned %ld", (long)(intptr_t)res);
	crew_future_release(s.fut);
}

Test(fork, stolen_frame_sleeps, .timeout = CREWT_TIMEOUT(60)) { run_stolen(0); }
Test(fork, stolen_frame_awaits_future, .timeout = CREWT_TIMEOUT(60)) { run_stolen(1); }

static void *setter(void *arg)
{
	crew_future_set(arg, NULL);
	return NULL;
}

/* Not stolen (one worker): fn runs inline in sync, as the owner, and suspends. */
static void *fork_inline_suspend(void *arg)
{
	susp *s = arg;
	s->owner = crew_self();
	crew_frame f;
	crew_fork(&f, susp_fn, s);
	crew_task *t = s->mode == 1 ? crew_spawn(setter, s->fut) : NULL;
	void *r = crew_sync(&f);
	if (t)
		crew_join(t, NULL);
	return r;
}

Test(fork, unstolen_frame_suspends, .timeout = CREWT_TIMEOUT(60))
{
	for (int mode = 0; mode < 2; mode++) {
		susp s = { .mode = mode };
		s.fut = crew_future_new();
		void *res = NULL;
		cr_assert_eq(crewt_run(1, fork_inline_suspend, &s, &res), 0);
		cr_expect(!atomic_load(&s.stolen), "mode %d: ran as another task", mode);
		cr_expect_eq((intptr_t)res, 42, "mode %d: sync returned %ld", mode, (long)(intptr_t)res);
		crew_future_release(s.fut);
	}
}

/* ---- cancellation does not skip a sync ---- */

/* The task that gets cancelled: forks, tells main, sleeps (cancelled: returns
 * at once), then syncs; the frame still runs and is waited for. */
static void *cancelled_forker(void *arg)
{
	susp *s = arg;
	s->owner = crew_self();
	crew_frame f;
	crew_fork(&f, susp_fn, s);
	if (crew_workers() > 1) {
		while (!atomic_load(&s->started)) { /* get it stolen first */
			crew_frame g;
			crew_fork(&g, noop, NULL);
			crew_sync(&g);
		}
	}
	while (crew_sleep(CREWT_SEC) != -ECANCELED)
		;
	void *r = crew_sync(&f); /* must wait for the frame */
	if (!atomic_load(&s->finished))
		return (void *)(intptr_t)-1;
	return r;
}

static void *cancel_main(void *arg)
{
	susp *s = arg;
	crew_task *t = crew_spawn(cancelled_forker, s);
	if (!t)
		return (void *)(intptr_t)-2;
	/* cancel once it started its frame (2 workers) or sleeps (1 worker) */
	if (crew_workers() > 1)
		while (!atomic_load(&s->started))
			crew_yield();
	else
		crewt_wait_suspended(t);
	crew_cancel(t);
	/* the frame waits on the future: set it after the cancel */
	crew_sleep(CREWT_MS);
	crew_future_set(s->fut, NULL);
	void *r = NULL;
	int rc = crew_join(t, &r);
	return rc == -ECANCELED ? r : (void *)(intptr_t)(2000 + rc);
}

Test(fork, cancel_does_not_skip_sync, .timeout = CREWT_TIMEOUT(60))
{
	for (unsigned w = 1; w <= 2; w++) {
		susp s = { .mode = 1 };
		s.fut = crew_future_new();
		void *res = NULL;
		cr_assert_eq(crewt_run(w, cancel_main, &s, &res), 0);
		cr_expect(atomic_load(&s.finished), "%u workers: the frame never finished", w);
		/* inline (1 worker) fn runs as the cancelled task, stolen (2
		 * workers) as its kid: either way its await says so */
		intptr_t want = 1000 - ECANCELED;
		cr_expect_eq((intptr_t)res, want, "%u workers: got %ld", w, (long)(intptr_t)res);
		if (w > 1)
			cr_expect(atomic_load(&s.stolen), "2 workers: the frame was not stolen");
		crew_future_release(s.fut);
	}
}

/* ---- a stolen frame sees its forker's cancellation ---- */

/* A forker whose frame (kid) forks a frame of its own (grandkid); both are
 * stolen, then main cancels the forker: the grandkid's long sleep and the
 * kid's next suspending call end with -ECANCELED, as they would if the
 * frames had run inline in the forker. */
typedef struct nest {
	_Atomic(crew_task *) forker; /* stored by the forker itself, before its fork */
	atomic_int kid_started, grandkid_started, kid_stolen, grandkid_stolen;
	atomic_int kid_rc, grandkid_rc;
} nest;

static void *grandkid(void *arg)
{
	nest *n = arg;
	atomic_store(&n->grandkid_stolen, crew_self() != atomic_load(&n->forker));
	atomic_store(&n->grandkid_started, 1);
	atomic_store(&n->grandkid_rc, crew_sleep(30 * CREWT_SEC));
	return NULL;
}

/* Fork fn(arg) and keep forking (each fork answers a thief's request) until
 * *started; then sync it. */
static void fork_until_started(crew_fn fn, void *arg, atomic_int *started)
{
	crew_frame f;
	crew_fork(&f, fn, arg);
	while (!atomic_load(started)) {
		crew_frame g;
		crew_fork(&g, noop, NULL);
		crew_sync(&g);
	}
	crew_sync(&f);
}

static void *kid(void *arg)
{
	nest *n = arg;
	atomic_store(&n->kid_stolen, crew_self() != atomic_load(&n->forker));
	atomic_store(&n->kid_started, 1);
	fork_until_started(grandkid, n, &n->grandkid_started);
	atomic_store(&n->kid_rc, crew_sleep(30 * CREWT_SEC));
	return NULL;
}

static void *nest_forker(void *arg)
{
	nest *n = arg;
	/* here, not by main after crew_spawn returns: the kid may run before */
	atomic_store(&n->forker, crew_self());
	fork_until_started(kid, n, &n->kid_started);
	return NULL;
}

static void *nest_main(void *arg)
{
	nest *n = arg;
	uint64_t t0 = crew_now();
	crew_task *t = crew_spawn(nest_forker, n);
	if (!t)
		return (void *)(intptr_t)-1;
	while (!atomic_load(&n->grandkid_started))
		crew_sleep(CREWT_MS);
	crew_sleep(CREWT_MS); /* the grandkid is asleep by now, most likely */
	crew_cancel(t);
	int rc = crew_join(t, NULL);
	return (void *)(intptr_t)(rc == -ECANCELED && crew_now() - t0 < 10 * CREWT_SEC);
}

Test(fork, stolen_frames_see_the_cancel, .timeout = CREWT_TIMEOUT(60))
{
	nest n = { .forker = NULL };
	void *res = NULL;
	cr_assert_eq(crewt_run(2, nest_main, &n, &res), 0);
	cr_expect(atomic_load(&n.kid_stolen) && atomic_load(&n.grandkid_stolen),
	          "kid stolen %d, grandkid stolen %d", atomic_load(&n.kid_stolen),
	          atomic_load(&n.grandkid_stolen));
	cr_expect_eq(atomic_load(&n.grandkid_rc), -ECANCELED, "the grandkid's sleep: %d",
	             atomic_load(&n.grandkid_rc));
	cr_expect_eq(atomic_load(&n.kid_rc), -ECANCELED, "the kid's sleep: %d", atomic_load(&n.kid_rc));
	cr_expect_eq((intptr_t)res, 1, "the forker was not cancelled at once");
}

/* ---- the forker of a frame pending across an inline join ---- */

/* P forks A, then joins C, which runs inline on P's fiber and forks until a
 * thief took A. A is P's frame: cancelling C must not reach A's kid,
 * cancelling P must. (A slot records its forker when the frame is shared: a
 * task about to run another inline shares its frames first, or C's share
 * would record C as A's forker.) For A to be private when C starts, main
 * keeps the other worker busy meanwhile: nobody asks P for a share. */
typedef struct inl {
	crew_future *first;
	_Atomic(crew_task *) c;
	char *p_local;
	atomic_int a_started, c_started, c_inline, c_ready;
	atomic_long a_first, a_second;
} inl;

/* A: 7 once `first` is set, if not cancelled by then (the yield says so: a
 * cancel of C that reached A came before the set); then sleeps until
 * cancelled (by P's cancel). */
static void *inl_a(void *arg)
{
	inl *x = arg;
	atomic_store(&x->a_started, 1);
	void *v = NULL;
	int rc = crew_future_await(x->first, &v);
	if (!rc)
		rc = crew_yield();
	atomic_store(&x->a_first, rc ? rc : (long)(intptr_t)v);
	atomic_store(&x->a_second, crew_sleep(30 * CREWT_SEC));
	return NULL;
}

static void *inl_c(void *arg)
{
	inl *x = arg;
	char here;
	/* inline: on P's fiber, a little below P's frame */
	bool inl = x->p_local > &here && x->p_local - &here < 64 * 1024;
	atomic_store(&x->c_inline, inl);
	atomic_store(&x->c_started, 1); /* main lets its worker go idle: it asks */
	while (inl && !atomic_load(&x->a_started)) { /* a fork answers the ask */
		crew_frame g;
		crew_fork(&g, noop, NULL);
		crew_sync(&g);
	}
	atomic_store(&x->c_ready, 1);
	while (inl && crew_sleep(CREWT_SEC) != -ECANCELED)
		;
	return NULL;
}

static void *inl_p(void *arg)
{
	inl *x = arg;
	char here;
	x->p_local = &here;
	/* a fork answers a request left standing on this worker (if any) */
	crew_frame d;
	crew_fork(&d, noop, NULL);
	crew_sync(&d);
	crew_frame a;
	crew_fork(&a, inl_a, x);
	crew_task *c = crew_spawn(inl_c, x);
	if (!c)
		return (void *)(intptr_t)-1;
	atomic_store(&x->c, c);
	crew_join(c, NULL); /* inline: nobody else takes c from our deque */
	crew_sync(&a);
	return NULL;
}

/* One try: 1 when C ran inline (then checked), 0 when not, < 0 on error. */
static intptr_t inl_try(void)
{
	inl x = { .first = crew_future_new() };
	if (!x.first)
		return -1;
	crew_task *p = crew_spawn(inl_p, &x); /* the other worker takes it */
	if (!p)
		return -2;
	while (!atomic_load(&x.c_started)) /* busy: this worker asks nobody */
		;
	while (!atomic_load(&x.c_ready) || !atomic_load(&x.c))
		crew_sleep(CREWT_MS / 10);
	intptr_t r = atomic_load(&x.c_inline);
	if (r)
		crew_cancel(atomic_load(&x.c)); /* C's: must not reach A */
	crew_future_set(x.first, (void *)7);
	while (atomic_load(&x.a_first) == 0)
		crew_sleep(CREWT_MS / 10);
	crew_cancel(p); /* P's: must reach A (and ends its sleep) */
	crew_join(p, NULL);
	if (r == 1 && (atomic_load(&x.a_first) != 7 || atomic_load(&x.a_second) != -ECANCELED))
		r = -100 - (atomic_load(&x.a_first) == 7);
	crew_future_release(x.first);
	return r;
}

static void *inl_main(void *arg)
{
	(void)arg;
	intptr_t inlined = 0;
	for (int i = 0; i < 50 && inlined < 5; i++) {
		intptr_t r = inl_try();
		if (r < 0)
			return (void *)r;
		inlined += r;
	}
	return (void *)inlined;
}

Test(fork, a_frame_pending_across_an_inline_join_is_its_forkers, .timeout = CREWT_TIMEOUT(60))
{
	void *res = NULL;
	cr_assert_eq(crewt_run(2, inl_main, NULL, &res), 0);
	intptr_t r = (intptr_t)res;
	cr_expect_neq(r, -100, "cancelling the task joined inline reached its joiner's frame");
	cr_expect_neq(r, -101, "cancelling the forker did not reach its stolen frame");
	cr_expect_gt(r, 0, "no inline join in 50 tries, or an error (%ld)", (long)r);
}

/* Cancelled before it forks: the frame starts cancelled, stolen or inline. */
static void *sleep_rc(void *arg)
{
	susp *s = arg;
	atomic_store(&s->stolen, crew_self() != s->owner);
	atomic_store(&s->started, 1);
	return (void *)(intptr_t)crew_sleep(30 * CREWT_SEC);
}

static void *cancelled_then_forks(void *arg)
{
	susp *s = arg;
	s->owner = crew_self();
	crew_cancel(s->owner);
	crew_frame f;
	crew_fork(&f, sleep_rc, s);
	if (crew_workers() > 1)
		while (!atomic_load(&s->started)) {
			crew_frame g;
			crew_fork(&g, noop, NULL);
			crew_sync(&g);
		}
	return crew_sync(&f);
}

Test(fork, frame_of_a_cancelled_task_starts_cancelled, .timeout = CREWT_TIMEOUT(60))
{
	for (unsigned w = 1; w <= 2; w++) {
		susp s = { 0 };
		void *res = NULL;
		cr_assert_eq(crewt_run(w, cancelled_then_forks, &s, &res), 0);
		cr_expect_eq((intptr_t)res, -ECANCELED, "%u workers: %ld", w, (long)(intptr_t)res);
		cr_expect_eq(atomic_load(&s.stolen), w > 1, "%u workers: stolen %d", w,
		             atomic_load(&s.stolen));
	}
}

/*
 * A frame past the deque's capacity (kept for crew_sync to run) that is
 * synced while the stack is low runs as a task on a fiber of its own: it
 * still sees the forker's cancellation (it ran unlinked and slept through
 * it). 1 worker, 64 KiB stacks: the frames are static, and the sync comes
 * from 52 KiB down.
 */
static crew_frame overflow_frames[CREW__FQ_CAP + 1];

static __attribute__((noinline)) void *sync_deep(int levels)
{
	volatile char pad[4096];
	memset((char *)pad, levels, sizeof pad);
	if (levels > 0)
		return sync_deep(levels - 1);
	return crew_sync(&overflow_frames[CREW__FQ_CAP]);
}

static void *sleep_long(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)crew_sleep(30 * CREWT_SEC);
}

static void *overflow_low_stack(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < CREW__FQ_CAP; i++)
		crew_fork(&overflow_frames[i], noop, NULL);
	crew_fork(&overflow_frames[CREW__FQ_CAP], sleep_long, NULL); /* the deque is full */
	crew_cancel(crew_self());
	void *rc = sync_deep(13);
	for (int i = (int)CREW__FQ_CAP - 1; i >= 0; i--)
		crew_sync(&overflow_frames[i]);
	return rc;
}

Test(fork, overflowed_frame_on_a_low_stack_sees_the_cancel, .timeout = CREWT_TIMEOUT(60))
{
	void *res = NULL;
	cr_assert_eq(crewt_run_stack(1, 64 * 1024, overflow_low_stack, NULL, &res), 0);
	cr_expect_eq((intptr_t)res, -ECANCELED, "the frame's sleep: %ld", (long)(intptr_t)res);
}

/*
 * A cancel reaches every frame of a wide tree: a forker with more stolen
 * frames than the cancel's walk keeps on its list of kids to visit (64),
 * each with stolen frames of its own. When the list filled while the walk
 * visited a kid, that kid's remaining frames were never cancelled and slept
 * on. The forker forks its kids one at a time and waits until each kid's
 * own frames have all started (each kid answers thieves by forking until
 * then); 16 workers, whatever the CPUs, so that there are thieves.
 */
#define WIDE_KIDS 66
#define WIDE_SUB 4
#define WIDE_ROUNDS 400000 /* a bound on each wait for thieves (forks) */
typedef struct wide {
	_Atomic(crew_task *) top; /* stored by the top task itself, before its forks */
	atomic_int kids_ready, sleeps, cancelled, stolen;
} wide;
static wide wide_tree;

static void wide_sleep(void)
{
	int rc = crew_sleep(30 * CREWT_SEC);
	atomic_fetch_add(&wide_tree.sleeps, 1);
	if (rc == -ECANCELED)
		atomic_fetch_add(&wide_tree.cancelled, 1);
}

/* Answer thieves (a fork answers a standing request) until *n >= want. */
static void wide_answer_until(atomic_int *n, int want)
{
	for (long round = 0; atomic_load(n) < want && round < WIDE_ROUNDS; round++) {
		crew_frame g;
		crew_fork(&g, noop, NULL);
		crew_sync(&g);
		if (round % 64 == 63)
			crew_yield(); /* the CPUs are fewer than the workers */
	}
}

static void *wide_grandkid(void *arg)
{
	atomic_fetch_add(&wide_tree.stolen, 1);
	atomic_fetch_add((atomic_int *)arg, 1);
	wide_sleep();
	return NULL;
}

static void *wide_kid(void *arg)
{
	(void)arg;
	atomic_fetch_add(&wide_tree.stolen, crew_self() != atomic_load(&wide_tree.top));
	atomic_int started = 0;
	crew_frame f[WIDE_SUB];
	for (int i = 0; i < WIDE_SUB; i++)
		crew_fork(&f[i], wide_grandkid, &started);
	wide_answer_until(&started, WIDE_SUB);
	atomic_fetch_add(&wide_tree.kids_ready, 1);
	wide_sleep();
	for (int i = WIDE_SUB - 1; i >= 0; i--)
		crew_sync(&f[i]);
	return NULL;
}

static void *wide_top(void *arg)
{
	(void)arg;
	/* here, not by main after crew_spawn returns: a kid may run before */
	atomic_store(&wide_tree.top, crew_self());
	crew_frame f[WIDE_KIDS];
	for (int i = 0; i < WIDE_KIDS; i++) {
		crew_fork(&f[i], wide_kid, NULL);
		wide_answer_until(&wide_tree.kids_ready, i + 1);
	}
	wide_sleep();
	for (int i = WIDE_KIDS - 1; i >= 0; i--)
		crew_sync(&f[i]);
	return NULL;
}

static void *wide_main(void *arg)
{
	(void)arg;
	crew_task *top = crew_spawn(wide_top, NULL);
	if (!top)
		return (void *)(intptr_t)-1;
	/* the whole tree asleep, or as much of it as got going (bounded) */
	for (int i = 0; i < 5000 && atomic_load(&wide_tree.stolen) < WIDE_KIDS * (1 + WIDE_SUB); i++)
		crew_sleep(CREWT_MS);
	crew_sleep(10 * CREWT_MS); /* the last ones are asleep by now, most likely */
	crew_cancel(top);
	return (void *)(intptr_t)crew_join(top, NULL);
}

Test(fork, cancel_reaches_a_wide_tree_of_stolen_frames, .timeout = CREWT_TIMEOUT(120))
{
	void *res = NULL;
	cr_assert_eq(crewt_run(16, wide_main, NULL, &res), 0);
	cr_expect_eq((intptr_t)res, -ECANCELED);
	int sleeps = atomic_load(&wide_tree.sleeps), cancelled = atomic_load(&wide_tree.cancelled);
	cr_expect_eq(sleeps, 1 + WIDE_KIDS * (1 + WIDE_SUB), "%d sleeps", sleeps);
	cr_expect_eq(cancelled, sleeps, "%d of %d sleeps cancelled (%d frames stolen)", cancelled, sleeps,
		     atomic_load(&wide_tree.stolen));
}

/*
 * A frame forked right before its forker suspends is shared when the forker
 * switches out, so an idle worker runs it during the wait. (Frames were
 * shared only at a fork answering a thief: this one waited for the sync.)
 * The forker's wait is a future that only the frame sets, so the test
 * hangs (and times out) unless the frame is stolen.
 */
static void *set_from_frame(void *arg)
{
	crew_future_set((crew_future *)arg, (void *)1);
	return NULL;
}

static void *fork_then_wait(void *arg)
{
	(void)arg;
	crew_future *fut = crew_future_new();
	if (!fut)
		return (void *)-1;
	crew_frame f;
	crew_fork(&f, set_from_frame, fut);
	void *v = NULL;
	int rc = crew_future_await(fut, &v); /* only the frame sets it */
	crew_sync(&f);
	crew_future_release(fut);
	return (void *)(intptr_t)(rc == 0 && v == (void *)1);
}

Test(fork, frames_are_shared_when_the_forker_suspends, .timeout = CREWT_TIMEOUT(30))
{
	void *res = NULL;
	cr_assert_eq(crewt_run(2, fork_then_wait, NULL, &res), 0);
	cr_expect_eq((intptr_t)res, 1);
}

/* The same after the forker's worker has moved on to another fiber: a
 * second task, run there next, waits on the same future, so the worker's
 * current deque is that task's and the frame is found only among the
 * deques that shared at a switch-out (parked_fq). */
static void *await_too(void *arg)
{
	crew_frame g;
	crew_fork(&g, noop, NULL); /* a deque of its own on this fiber */
	crew_sync(&g);
	void *v = NULL;
	return (void *)(intptr_t)(crew_future_await((crew_future *)arg, &v) == 0 && v == (void *)1);
}

static void *fork_then_switch_away(void *arg)
{
	(void)arg;
	crew_future *fut = crew_future_new();
	if (!fut)
		return (void *)-1;
	crew_frame f;
	crew_fork(&f, set_from_frame, fut);
	crew_task *other = crew_spawn(await_too, fut); /* runs here once we wait */
	void *v = NULL, *ok = NULL;
	int rc = crew_future_await(fut, &v);
	crew_sync(&f);
	if (other)
		crew_join(other, &ok);
	crew_future_release(fut);
	return (void *)(intptr_t)(rc == 0 && v == (void *)1 && ok == (void *)1);
}

Test(fork, shared_frames_stay_in_sight_after_the_worker_moves_on, .timeout = CREWT_TIMEOUT(30))
{
	for (int i = 0; i < 20; i++) {
		void *res = NULL;
		cr_assert_eq(crewt_run(2, fork_then_switch_away, NULL, &res), 0);
		cr_assert_eq((intptr_t)res, 1, "run %d", i);
	}
}

/* More forkers park with frames shared on one worker than its ring of
 * parked deques holds (CREW_PARKED_FQ, 4), while the other worker is busy:
 * once it is free it must find every one of those frames. Before, the
 * deques pushed out of the ring were out of sight, and their frames waited
 * for their forkers to come back (here: until the await's deadline). */
#define PARKERS 10

typedef struct parkers {
	crew_future *all_stolen; /* set by the frame that makes the count */
	atomic_int parked, stolen;
	crew_task *forker[PARKERS]; /* each stored by the forker itself */
} parkers;

typedef struct parker_arg {
	parkers *p;
	int k;
} parker_arg;

static void *parked_frame(void *arg)
{
	parker_arg *a = arg;
	/* a frame run at its sync runs as its forker */
	if (crew_self() != atomic_load((_Atomic(crew_task *) *)&a->p->forker[a->k]) &&
	    atomic_fetch_add(&a->p->stolen, 1) + 1 == PARKERS)
		crew_future_set(a->p->all_stolen, (void *)1);
	return NULL;
}

static void *parker(void *arg)
{
	parker_arg *a = arg;
	atomic_store((_Atomic(crew_task *) *)&a->p->forker[a->k], crew_self());
	crew_frame f;
	crew_fork(&f, parked_frame, a);
	atomic_fetch_add(&a->p->parked, 1);
	/* suspends (sharing f) until every frame was stolen, or 10 s */
	crew_future_await_until(a->p->all_stolen, crew_now() + 10000000000ull, NULL);
	crew_sync(&f);
	return NULL;
}

/* keeps its worker until every parker parked */
static void *hog(void *arg)
{
	parkers *p = arg;
	while (atomic_load(&p->parked) < PARKERS)
		;
	return NULL;
}

static void *many_parkers_main(void *arg)
{
	parkers *p = arg;
	parker_arg a[PARKERS];
	crew_task *h = crew_spawn(hog, p), *t[PARKERS];
	for (int k = 0; k < PARKERS; k++) {
		a[k] = (parker_arg){ p, k };
		t[k] = crew_spawn(parker, &a[k]);
	}
	crew_join(h, NULL);
	for (int k = 0; k < PARKERS; k++)
		crew_join(t[k], NULL);
	return NULL;
}

Test(fork, frames_of_many_parked_forkers_are_all_found, .timeout = CREWT_TIMEOUT(60))
{
	parkers *p = calloc(1, sizeof(*p));
	cr_assert(p);
	p->all_stolen = crew_future_new();
	cr_assert(p->all_stolen);
	cr_assert_eq(crewt_run(2, many_parkers_main, p, NULL), 0);
	cr_expect_eq(atomic_load(&p->stolen), PARKERS,
		     "%d of %d frames of parked forkers were stolen (the rest waited for their "
		     "forkers)",
		     atomic_load(&p->stolen), PARKERS);
	crew_future_release(p->all_stolen);
	free(p);
}

/* ---- the inline fast path's edges ---- */

/* Frames in heap memory (not on the forking fiber's stack) and a fork loop
 * whose task moves between workers (sleeps) while frames are outstanding. */
static void *heap_and_moving(void *arg)
{
	(void)arg;
	enum { N = 64 };
	crew_frame *f = malloc(N * sizeof(*f));
	if (!f)
		return NULL;
	uintptr_t sum = 0;
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < N; i++)
			crew_fork(&f[i], fib_fork, (void *)(uintptr_t)(i % 12));
		crew_sleep(100000); /* may resume on another worker */
		crew_frame g;
		crew_fork(&g, fib_fork, (void *)15); /* on the stack, after the move */
		sum += (uintptr_t)crew_sync(&g);
		for (int i = N; i-- > 0;)
			sum += (uintptr_t)crew_sync(&f[i]);
	}
	free(f);
	return (void *)sum;
}

Test(fork, heap_frames_and_migration, .timeout = CREWT_TIMEOUT(60))
{
	uintptr_t want = 0;
	for (int i = 0; i < 64; i++)
		want += fib_serial((uintptr_t)(i % 12));
	want = 20 * (want + fib_serial(15));
	for (unsigned w = 1; w <= 4; w *= 2) {
		void *res = NULL;
		cr_assert_eq(crewt_run(w, heap_and_moving, NULL, &res), 0);
		cr_expect_eq((uintptr_t)res, want, "%u workers: %lu, want %lu", w,
		             (unsigned long)(uintptr_t)res, (unsigned long)want);
	}
}

/* ---- outside a task ---- */

Test(fork, outside_a_task)
{
	crew_frame f, g;
	crew_fork(&f, noop, (void *)7);
	crew_fork(&g, fib_fork, (void *)10);
	cr_expect_eq((uintptr_t)crew_sync(&g), 55);
	cr_expect_eq((uintptr_t)crew_sync(&f), 7);
}

/* A zeroed frame (never forked) synced: a message, not a call of NULL. */
static void *zeroed_sync_main(void *arg)
{
	(void)arg;
	crew_frame z;
	memset(&z, 0, sizeof z);
	return crew_sync(&z);
}

Test(fork, sync_of_a_zeroed_frame_aborts, .timeout = CREWT_TIMEOUT(30))
{
	crewt_expect_abort(zeroed_sync_main, "sync of a zeroed frame", "has no function");
}

/* ---- order violations (debug builds only) ---- */

#ifdef CREWT_DEBUG_BUILD
static void *wrong_order_main(void *arg)
{
	(void)arg;
	crew_frame a, b;
	crew_fork(&a, noop, NULL);
	crew_fork(&b, noop, NULL);
	crew_sync(&a); /* b first: must abort */
	crew_sync(&b);
	return NULL;
}

static void *unsynced_main(void *arg)
{
	(void)arg;
	crew_frame a;
	crew_fork(&a, noop, NULL);
	return NULL; /* returns with a frame outstanding: must abort */
}

/* A task joined inline runs on its joiner's fiber, where the per-fiber count
 * alone saw nothing wrong with it syncing its joiner's frame: the abort came
 * at its return, blaming "4294967295 forked frame(s) not synced". */
static crew_frame joiners_frame;

static void *sync_joiners_frame(void *arg)
{
	(void)arg;
	return crew_sync(&joiners_frame); /* not its frame: must abort */
}

static void *foreign_sync_main(void *arg)
{
	(void)arg;
	crew_fork(&joiners_frame, noop, NULL);
	crew_task *t = crew_spawn(sync_joiners_frame, NULL);
	crew_join(t, NULL); /* on 1 worker: runs t inline, on this fiber */
	crew_sync(&joiners_frame);
	return NULL;
}

/* Past the deque's 512 slots a frame gets none, and its sync once ran it
 * unchecked: out of order, or twice, went unreported. OVER frames past the
 * slots, then the given misuse. */
#define OVER (600 + 8)

static crew_frame over_f[OVER];

static void fork_over(void)
{
	for (int i = 0; i < OVER; i++)
		crew_fork(&over_f[i], noop, NULL);
}

static void sync_over(int from)
{
	for (int i = from; i >= 0; i--)
		crew_sync(&over_f[i]);
}

static void *over_in_order_main(void *arg)
{
	(void)arg;
	fork_over();
	sync_over(OVER - 1);
	return (void *)1;
}

static void *over_wrong_order_main(void *arg)
{
	(void)arg;
	fork_over();
	crew_sync(&over_f[OVER - 2]); /* OVER - 1 first: must abort */
	sync_over(OVER - 1);
	return NULL;
}

static void *over_twice_main(void *arg)
{
	(void)arg;
	fork_over();
	crew_sync(&over_f[OVER - 1]);
	crew_sync(&over_f[OVER - 1]); /* again: must abort */
	sync_over(OVER - 2);
	return NULL;
}

/* the newest slotted frame synced while frames past the slots, newer, are
 * outstanding: the slot index is right, the order is not */
static void *over_slot_first_main(void *arg)
{
	(void)arg;
	fork_over();
	crew_sync(&over_f[511]);
	sync_over(OVER - 1);
	return NULL;
}

/* a slot synced twice, after a newer frame took it again */
static void *slot_reused_twice_main(void *arg)
{
	(void)arg;
	crew_frame a, b;
	crew_fork(&a, noop, &a);
	crew_sync(&a);
	crew_fork(&b, noop, &b); /* the same slot as a */
	crew_sync(&a);           /* a again: must abort */
	crew_sync(&b);
	return NULL;
}

Test(fork, debug_wrong_order_aborts, .timeout = CREWT_TIMEOUT(30))
{
	crewt_expect_abort(wrong_order_main, "sync out of order", "reverse order");
	crewt_expect_abort(unsynced_main, "return with a frame", "not synced");
	crewt_expect_abort(foreign_sync_main, "sync of another task's frame", "forked by another task");
}

Test(fork, debug_checks_frames_past_the_deque, .timeout = CREWT_TIMEOUT(30))
{
	void *res = NULL;
	cr_assert_eq(crewt_run(1, over_in_order_main, NULL, &res), 0);
	cr_assert_eq(res, (void *)1, "a correct run past the slots was refused");
	crewt_expect_abort(over_wrong_order_main, "sync out of order past the slots", "reverse order");
	crewt_expect_abort(over_twice_main, "sync twice past the slots", "once each");
	crewt_expect_abort(over_slot_first_main, "slotted frame before newer unslotted ones",
			   "reverse order");
	crewt_expect_abort(slot_reused_twice_main, "sync of a slot twice", "once each");
}
#endif

/* ---- stress: random trees ---- */

/* A node's shape comes from its seed alone: how many children it forks (0-3),
 * whether it yields or sleeps before syncing. Its value is a hash over its
 * subtree, the same however the frames were run, stolen or not. */
typedef struct node {
	uint64_t seed;
	unsigned depth;
} node;

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ull;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dull;
	return x ^ (x >> 33);
}

static atomic_ulong nodes_run; /* every node runs exactly once */

static void *rnode(void *arg)
{
	node *n = arg;
	atomic_fetch_add_explicit(&nodes_run, 1, memory_order_relaxed);
	uint64_t r = mix(n->seed);
	unsigned kids = n->depth ? (unsigned)(r % 4) : 0;
	node child[3];
	crew_frame f[3];
	for (unsigned i = 0; i < kids; i++) {
		child[i] = (node){ mix(n->seed + i + 1), n->depth - 1 };
		crew_fork(&f[i], rnode, &child[i]);
	}
	if ((r >> 8) % 13 == 0)
		crew_yield();
	else if ((r >> 8) % 29 == 0)
		crew_sleep(10000);
	uint64_t v = r;
	for (unsigned i = kids; i-- > 0;)
		v = mix(v + (uint64_t)(uintptr_t)crew_sync(&f[i]) * (i + 1));
	return (void *)(uintptr_t)v;
}

Test(fork, stress_random_trees, .timeout = CREWT_TIMEOUT(120))
{
	for (unsigned round = 0; round < 10; round++) {
		node root = { mix(42 + round), CREWT_SIZE(22, 16) };
		/* serial value: outside a task crew_fork does nothing and crew_sync
		 * calls inline (crew_yield and crew_sleep return -EPERM there) */
		atomic_store(&nodes_run, 0);
		uintptr_t want = (uintptr_t)rnode(&root);
		unsigned long nodes = atomic_load(&nodes_run);
		for (unsigned w = 1; w <= 4; w *= 2) {
			void *res = NULL;
			atomic_store(&nodes_run, 0);
			cr_assert_eq(crewt_run(w, rnode, &root, &res), 0);
			cr_expect_eq((uintptr_t)res, want, "round %u, %u workers", round, w);
			cr_expect_eq(atomic_load(&nodes_run), nodes, "round %u, %u workers: %lu nodes ran, want %lu",
			             round, w, atomic_load(&nodes_run), nodes);
		}
	}
}

/* ---- deep chains: syncs run inline only while stack is left ---- */

/* Each level forks its child and syncs it at once: unless stolen it runs
 * inline, one level deeper on the same stack. `wide`: each level also keeps
 * a trivial frame pending while the deep one runs, so pending frames pile up
 * past the frame deque's capacity (the overflow path runs frames inline too). */
typedef struct chain {
	long depth;
	bool wide;
} chain;

typedef struct chain_link {
	const chain *c;
	long level;
} chain_link;

static void *chain_level(void *arg)
{
	chain_link *l = arg;
	if (l->level == l->c->depth)
		return (void *)(intptr_t)l->level;
	chain_link next = {l->c, l->level + 1};
	crew_frame side, deep;
	if (l->c->wide)
		crew_fork(&side, noop, NULL);
	crew_fork(&deep, chain_level, &next);
	void *r = crew_sync(&deep);
	if (l->c->wide)
		crew_sync(&side);
	return r;
}

static void *chain_main(void *arg)
{
	chain_link root = {arg, 0};
	return chain_level(&root);
}

Test(fork, deep_chains_do_not_overflow, .timeout = CREWT_TIMEOUT(120))
{
	for (unsigned w = 1; w <= 2; w++)
		for (int wide = 0; wide < 2; wide++) {
			chain c = {CREWT_SIZE(100000, 20000), wide};
			void *res = NULL;
			cr_assert_eq(crewt_run(w, chain_main, &c, &res), 0);
			cr_expect_eq((intptr_t)res, c.depth, "workers=%u wide=%d: %ld", w, wide,
			             (long)(intptr_t)res);
		}
}
