/*
 * Cancellation rules (crew.h):
 *  1. a body always runs exactly once, even when cancelled before it started;
 *  2. crew_cancel is sticky: every later suspending call returns -ECANCELED;
 *  3. crew_join still waits, returns -ECANCELED when the task was cancelled
 *     before it finished, and stores the result in both cases;
 *  4. crew_cancel returns 0, or -EALREADY once the task has finished.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE; crew_task fields */
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define MARK ((void *)(uintptr_t)0xCA11)
#define LONG_SLEEP (60 * CREWT_SEC)
/* "Promptly" is not a speed bound (a loaded machine misses those): a cancelled
 * wait ended long before its deadline, i.e. the cancel, not the timer, ended
 * it. (The test timeouts are shorter than LONG_SLEEP anyway.) */
#define PROMPT (LONG_SLEEP / 2)

/* ---- cancel a sleeping task ---- */

typedef struct sleeper {
	crew_future *started;
	atomic_int runs;
	int sleep_rc;
	uint64_t slept;
} sleeper;

static void *long_sleeper(void *p)
{
	sleeper *s = p;
	atomic_fetch_add(&s->runs, 1);
	crew_future_set(s->started, NULL);
	uint64_t t0 = crew_now();
	s->sleep_rc = crew_sleep(LONG_SLEEP);
	s->slept = crew_now() - t0;
	return MARK;
}

typedef struct cancel_sleeping {
	sleeper s;
	bool wait_before_cancel; /* cancel only once it is suspended in its sleep */
	int cancel_rc, join_rc;
	void *result;
	uint64_t join_took;
} cancel_sleeping;

static void *cancel_sleeping_main(void *arg)
{
	cancel_sleeping *c = arg;
	crew_task *t = crew_spawn(long_sleeper, &c->s);
	if (!t)
		return (void *)1;
	if (crew_future_await(c->s.started, NULL) != 0)
		return (void *)2;
	/* After `started` the sleep is the only suspension point it reaches. */
	if (c->wait_before_cancel && !crewt_wait_suspended(t))
		return (void *)3;
	c->cancel_rc = crew_cancel(t);
	uint64_t t0 = crew_now();
	c->join_rc = crew_join(t, &c->result);
	c->join_took = crew_now() - t0;
	return NULL;
}

static void cancel_sleeping_task(unsigned workers, bool wait)
{
	cancel_sleeping c = {.wait_before_cancel = wait};
	c.s.started = crew_future_new();
	cr_assert_not_null(c.s.started);
	void *res = (void *)-1;
	cr_assert_eq(crewt_run(workers, cancel_sleeping_main, &c, &res), 0);
	cr_assert_null(res, "failed at step %p", res);
	cr_expect_eq(atomic_load(&c.s.runs), 1);
	cr_expect_eq(c.cancel_rc, 0);
	cr_expect_eq(c.s.sleep_rc, -ECANCELED, "crew_sleep in a cancelled task returned %d",
	             c.s.sleep_rc);
	cr_expect_lt(c.s.slept, PROMPT, "the cancelled sleep lasted %.3f s", c.s.slept / 1e9);
	cr_expect_eq(c.join_rc, -ECANCELED);
	cr_expect_eq(c.result, MARK, "join did not store the body's result");
	cr_expect_lt(c.join_took, PROMPT);
	crew_future_release(c.s.started);
}

Test(cancel, sleeping_task_1_worker, .timeout = CREWT_TIMEOUT(30)) { cancel_sleeping_task(1, true); }
Test(cancel, sleeping_task_2_workers, .timeout = CREWT_TIMEOUT(30)) { cancel_sleeping_task(2, true); }
Test(cancel, just_started_task_2_workers, .timeout = CREWT_TIMEOUT(30)) { cancel_sleeping_task(2, false); }

/* ---- cancel from a plain thread ---- */

typedef struct from_thread {
	sleeper s;
	crew_task *t;
	int cancel_rc;
} from_thread;

static void *canceller(void *p)
{
	from_thread *ft = p;
	crew_future_await(ft->s.started, NULL); /* blocks */
	ft->cancel_rc = crew_cancel(ft->t);
	return NULL;
}

static void *from_thread_main(void *arg)
{
	from_thread *ft = arg;
	ft->t = crew_spawn(long_sleeper, &ft->s);
	if (!ft->t)
		return (void *)1;
	pthread_t th;
	if (pthread_create(&th, NULL, canceller, ft) != 0)
		return (void *)2;
	void *r = NULL;
	int rc = crew_join(ft->t, &r);
	pthread_join(th, NULL);
	return rc == -ECANCELED && r == MARK ? NULL : (void *)3;
}

Test(cancel, from_plain_thread, .timeout = CREWT_TIMEOUT(30))
{
	from_thread ft = {0};
	ft.s.started = crew_future_new();
	cr_assert_not_null(ft.s.started);
	void *res = (void *)-1;
	cr_assert_eq(crewt_run(2, from_thread_main, &ft, &res), 0);
	cr_expect_null(res, "join: wrong result or return code (step %p)", res);
	cr_expect_eq(ft.cancel_rc, 0);
	cr_expect_eq(ft.s.sleep_rc, -ECANCELED);
	cr_expect_lt(ft.s.slept, PROMPT);
	crew_future_release(ft.s.started);
}

/* ---- cancel a task that has not started ---- */

typedef struct not_started {
	atomic_int runs;
	atomic_int cancelled_before_start; /* set by the parent after crew_cancel */
	int saw_cancel_flag;
	int first_rc, second_rc;
	int cancel_rc[2];
	int join_rc;
	void *result;
	bool yield_first;
} not_started;

static void *late_starter(void *p)
{
	not_started *n = p;
	atomic_fetch_add(&n->runs, 1);
	n->saw_cancel_flag = atomic_load(&n->cancelled_before_start);
	n->first_rc = crew_sleep(LONG_SLEEP);
	n->second_rc = crew_yield();
	return MARK;
}

static void *not_started_main(void *arg)
{
	not_started *n = arg;
	crew_task *t = crew_spawn(late_starter, n);
	if (!t)
		return (void *)1;
	/* One worker, and this task has not suspended: t cannot have started. */
	n->cancel_rc[0] = crew_cancel(t);
	n->cancel_rc[1] = crew_cancel(t); /* twice: still not finished */
	atomic_store(&n->cancelled_before_start, 1);
	if (n->yield_first) {
		/* Run it on the worker rather than inline in crew_join. */
		if (crew_sleep(10 * CREWT_MS) != 0)
			return (void *)2;
	}
	n->join_rc = crew_join(t, &n->result);
	return NULL;
}

static void cancel_not_started(bool yield_first)
{
	not_started n = {.yield_first = yield_first};
	void *res = (void *)-1;
	cr_assert_eq(crewt_run(1, not_started_main, &n, &res), 0);
	cr_assert_null(res, "failed at step %p", res);
	cr_expect_eq(n.cancel_rc[0], 0);
	cr_expect_eq(n.cancel_rc[1], 0, "second crew_cancel before it finished: %d", n.cancel_rc[1]);
	cr_expect_eq(atomic_load(&n.runs), 1, "the body ran %d times", atomic_load(&n.runs));
	cr_expect_eq(n.saw_cancel_flag, 1, "the task started before it was cancelled");
	cr_expect_eq(n.first_rc, -ECANCELED, "first suspension returned %d", n.first_rc);
	cr_expect_eq(n.second_rc, -ECANCELED, "second suspension returned %d", n.second_rc);
	cr_expect_eq(n.join_rc, -ECANCELED);
	cr_expect_eq(n.result, MARK);
}

Test(cancel, not_started_joined_inline, .timeout = CREWT_TIMEOUT(30)) { cancel_not_started(false); }
Test(cancel, not_started_run_by_worker, .timeout = CREWT_TIMEOUT(30)) { cancel_not_started(true); }

/* ---- cancel a finished task ---- */

static void *quick(void *arg) { return arg; }

typedef struct finished {
	int cancel_rc, join_rc;
	void *result;
} finished;

static void *finished_main(void *arg)
{
	finished *f = arg;
	crew_task *t = crew_spawn(quick, MARK);
	if (!t)
		return (void *)1;
	/* One worker: while this task sleeps the worker runs `quick`, which
	 * never suspends, to its end before this task can resume. */
	if (crew_sleep(5 * CREWT_MS) != 0)
		return (void *)2;
	f->cancel_rc = crew_cancel(t);
	f->join_rc = crew_join(t, &f->result);
	return NULL;
}

Test(cancel, finished_task_is_ealready, .timeout = CREWT_TIMEOUT(30))
{
	finished f = {0};
	void *res = (void *)-1;
	cr_assert_eq(crewt_run(1, finished_main, &f, &res), 0);
	cr_assert_null(res, "failed at step %p", res);
	cr_expect_eq(f.cancel_rc, -EALREADY, "crew_cancel on a finished task: %d", f.cancel_rc);
	cr_expect_eq(f.join_rc, 0, "cancelled after it finished: join must return 0, got %d",
	             f.join_rc);
	cr_expect_eq(f.result, MARK);
}

/* ---- sticky: every later suspending call returns -ECANCELED ---- */

enum { S_SLEEP, S_SLEEP_AGAIN, S_SLEEP_0, S_SLEEP_UNTIL_FUTURE, S_SLEEP_UNTIL_PAST, S_YIELD,
       S_AWAIT, S_AWAIT_UNTIL, S_YIELD_AGAIN, S_COUNT };
static const char *const sticky_name[S_COUNT] = {
	"crew_sleep(60 s)", "crew_sleep(60 s) again", "crew_sleep(0)",
	"crew_sleep_until(now + 60 s)", "crew_sleep_until(past)", "crew_yield()",
	"crew_future_await(never set)", "crew_future_await_until(never set, +60 s)",
	"crew_yield() again"};

typedef struct sticky {
	crew_future *started, *never;
	int rc[S_COUNT];
	uint64_t took;
} sticky;

static void *sticky_body(void *p)
{
	sticky *s = p;
	crew_future_set(s->started, NULL);
	uint64_t t0 = crew_now();
	s->rc[S_SLEEP] = crew_sleep(LONG_SLEEP);
	s->rc[S_SLEEP_AGAIN] = crew_sleep(LONG_SLEEP);
	s->rc[S_SLEEP_0] = crew_sleep(0);
	s->rc[S_SLEEP_UNTIL_FUTURE] = crew_sleep_until(crew_now() + LONG_SLEEP);
	s->rc[S_SLEEP_UNTIL_PAST] = crew_sleep_until(crew_now() - CREWT_MS);
	s->rc[S_YIELD] = crew_yield();
	s->rc[S_AWAIT] = crew_future_await(s->never, NULL);
	s->rc[S_AWAIT_UNTIL] = crew_future_await_until(s->never, crew_now() + LONG_SLEEP, NULL);
	s->rc[S_YIELD_AGAIN] = crew_yield();
	s->took = crew_now() - t0;
	return MARK;
}

static void *sticky_main(void *arg)
{
	sticky *s = arg;
	crew_task *t = crew_spawn(sticky_body, s);
	if (!t)
		return (void *)1;
	if (crew_future_await(s->started, NULL) != 0)
		return (void *)2;
	if (crew_cancel(t) != 0)
		return (void *)3;
	void *r;
	if (crew_join(t, &r) != -ECANCELED || r != MARK)
		return (void *)4;
	return NULL;
}

Test(cancel, sticky, .timeout = CREWT_TIMEOUT(30))
{
	for (unsigned w = 1; w <= 2; w++) {
		sticky s = {.started = crew_future_new(), .never = crew_future_new()};
		cr_assert(s.started && s.never);
		void *res = (void *)-1;
		cr_assert_eq(crewt_run(w, sticky_main, &s, &res), 0);
		cr_expect_null(res, "workers=%u: failed at step %p", w, res);
		for (int i = 0; i < S_COUNT; i++)
			cr_expect_eq(s.rc[i], -ECANCELED, "workers=%u: %s in a cancelled task returned %d",
			             w, sticky_name[i], s.rc[i]);
		cr_expect_lt(s.took, PROMPT, "workers=%u: the cancelled calls took %.3f s", w,
		             s.took / 1e9);
		crew_future_release(s.started);
		crew_future_release(s.never);
	}
}

/* ---- crew_yield in a task that cancelled itself ---- */

typedef struct self_cancel {
	int cancel_rc, yield_rc, yield_rc2;
} self_cancel;

static void *cancel_myself(void *p)
{
	self_cancel *sc = p;
	sc->cancel_rc = crew_cancel(crew_self());
	sc->yield_rc = crew_yield();
	sc->yield_rc2 = crew_yield();
	return MARK;
}

static void *self_cancel_main(void *arg)
{
	crew_task *t = crew_spawn(cancel_myself, arg);
	void *r = NULL;
	if (!t)
		return (void *)1;
	int rc = crew_join(t, &r);
	return rc == -ECANCELED && r == MARK ? NULL : (void *)2;
}

Test(cancel, yield_after_self_cancel, .timeout = CREWT_TIMEOUT(30))
{
	self_cancel sc = {1, 1, 1};
	void *res = (void *)-1;
	cr_assert_eq(crewt_run(1, self_cancel_main, &sc, &res), 0);
	cr_expect_eq(sc.cancel_rc, 0);
	cr_expect_eq(sc.yield_rc, -ECANCELED, "crew_yield returned %d", sc.yield_rc);
	cr_expect_eq(sc.yield_rc2, -ECANCELED);
	cr_expect_null(res, "join of a self-cancelled task: wrong code or result");
}

/* ---- a cancelled task still joins (and cancels) its children ---- */

typedef struct family {
	crew_future *started;
	int child_sleep_rc;
	uint64_t child_slept;
	sleeper victim;                  /* second child, cancelled by the parent */
	int parent_sleep_rc, join1_rc, cancel2_rc, join2_rc;
	void *r1, *r2;
	uint64_t parent_join1_at, child_done_at;
} family;

#define CHILD_SLEEP (50 * CREWT_MS)

static void *diligent_child(void *p)
{
	family *f = p;
	uint64_t t0 = crew_now();
	f->child_sleep_rc = crew_sleep(CHILD_SLEEP);
	f->child_slept = crew_now() - t0;
	f->child_done_at = crew_now();
	return MARK;
}

static void *parent(void *p)
{
	family *f = p;
	crew_task *c1 = crew_spawn(diligent_child, f);
	crew_task *c2 = crew_spawn(long_sleeper, &f->victim);
	crew_future_set(f->started, NULL);
	f->parent_sleep_rc = crew_sleep(LONG_SLEEP); /* cancelled by main */
	/* Clean-up: collect the children, although this task is cancelled. */
	f->join1_rc = c1 ? crew_join(c1, &f->r1) : -1;
	f->parent_join1_at = crew_now();
	f->cancel2_rc = c2 ? crew_cancel(c2) : -1;
	f->join2_rc = c2 ? crew_join(c2, &f->r2) : -1;
	return NULL;
}

static void *family_main(void *arg)
{
	family *f = arg;
	crew_task *p = crew_spawn(parent, f);
	if (!p)
		return (void *)1;
	if (crew_future_await(f->started, NULL) != 0)
		return (void *)2;
	crew_cancel(p);
	crew_join(p, NULL);
	return NULL;
}

Test(cancel, cancelled_task_joins_children, .timeout = CREWT_TIMEOUT(30))
{
	for (unsigned w = 1; w <= 2; w++) {
		family f = {0};
		f.started = crew_future_new();
		f.victim.started = crew_future_new();
		cr_assert(f.started && f.victim.started);
		void *res = (void *)-1;
		cr_assert_eq(crewt_run(w, family_main, &f, &res), 0);
		cr_assert_null(res, "failed at step %p", res);
		cr_expect_eq(f.parent_sleep_rc, -ECANCELED);
		/* The child was not cancelled: it slept its full time, the join
		 * waited for it and returned 0. */
		cr_expect_eq(f.child_sleep_rc, 0, "workers=%u: the child's sleep returned %d", w,
		             f.child_sleep_rc);
		cr_expect_geq(f.child_slept, CHILD_SLEEP);
		cr_expect_eq(f.join1_rc, 0, "workers=%u: join in a cancelled task returned %d", w,
		             f.join1_rc);
		cr_expect_eq(f.r1, MARK);
		cr_expect_geq(f.parent_join1_at, f.child_done_at, "the join did not wait");
		/* The second child, cancelled by the cancelled parent. */
		cr_expect_eq(f.cancel2_rc, 0);
		cr_expect_eq(f.join2_rc, -ECANCELED);
		cr_expect_eq(f.r2, MARK);
		cr_expect_eq(atomic_load(&f.victim.runs), 1);
		cr_expect_eq(f.victim.sleep_rc, -ECANCELED);
		crew_future_release(f.started);
		crew_future_release(f.victim.started);
	}
}

/* ---- a task awaiting a future is woken by cancellation ---- */

typedef struct fut_cancel {
	crew_future *started, *never;
	int rc;
	uint64_t took;
} fut_cancel;

static void *await_forever(void *p)
{
	fut_cancel *fc = p;
	crew_future_set(fc->started, NULL);
	uint64_t t0 = crew_now();
	fc->rc = crew_future_await(fc->never, NULL);
	fc->took = crew_now() - t0;
	return MARK;
}

static void *fut_cancel_main(void *arg)
{
	fut_cancel *fc = arg;
	crew_task *t = crew_spawn(await_forever, fc);
	if (!t)
		return (void *)1;
	if (crew_future_await(fc->started, NULL) != 0)
		return (void *)2;
	/* After `started` the await is the only suspension point it reaches. */
	if (!crewt_wait_suspended(t))
		return (void *)3;
	if (crew_cancel(t) != 0)
		return (void *)4;
	void *r = NULL;
	return crew_join(t, &r) == -ECANCELED && r == MARK ? NULL : (void *)5;
}

Test(cancel, task_awaiting_future, .timeout = CREWT_TIMEOUT(30))
{
	for (unsigned w = 1; w <= 2; w++) {
		fut_cancel fc = {crew_future_new(), crew_future_new(), 1, 0};
		cr_assert(fc.started && fc.never);
		void *res = (void *)-1;
		cr_assert_eq(crewt_run(w, fut_cancel_main, &fc, &res), 0);
		cr_expect_null(res, "workers=%u: failed at step %p", w, res);
		cr_expect_eq(fc.rc, -ECANCELED, "workers=%u: await returned %d", w, fc.rc);
		cr_expect_lt(fc.took, PROMPT);
		cr_expect(!crew_future_done(fc.never));
		crew_future_release(fc.started);
		crew_future_release(fc.never);
	}
}

/* ---- a task cancelled while it waits in crew_join keeps waiting ---- */

/*
 * The parent joins a child that only finishes when main releases it, and main
 * cancels the parent while it is certainly inside that join:
 *   SUSPENDED: the child started on its own fiber before the join, so the
 *     parent suspends in the join (main waits for its state to say so);
 *   INLINE: one worker, the child has not started, so the join runs it on the
 *     parent's stack; main waits until the child is suspended in its await,
 *     which leaves the parent RUNNING inside the join.
 */
enum join_mode { JOIN_SUSPENDED, JOIN_INLINE };

typedef struct join_wait {
	enum join_mode mode;
	crew_future *child_started, *release;
	atomic_int joining;        /* the parent is about to call crew_join */
	crew_task *child;          /* atomic: published before `joining` */
	int child_rc, join_rc;
	bool child_inline;         /* the child ran without a stack of its own */
	void *result;
	uint64_t child_done_at, join_returned_at;
} join_wait;

static void *slow_child(void *p)
{
	join_wait *jw = p;
	jw->child_inline = crew_self()->stack == NULL; /* internal.h */
	crew_future_set(jw->child_started, NULL);
	jw->child_rc = crew_future_await(jw->release, NULL); /* not cancelled: 0 */
	jw->child_done_at = crew_now();
	return MARK;
}

static void *patient_parent(void *p)
{
	join_wait *jw = p;
	crew_task *c = crew_spawn(slow_child, jw);
	if (!c)
		return NULL;
	/* SUSPENDED: let the child start on its own fiber first. */
	if (jw->mode == JOIN_SUSPENDED && crew_future_await(jw->child_started, NULL) != 0)
		return NULL;
	__atomic_store_n(&jw->child, c, __ATOMIC_RELAXED);
	atomic_store(&jw->joining, 1); /* seq_cst: the child pointer before the flag */
	/* The only suspension point left before the child finishes. */
	jw->join_rc = crew_join(c, &jw->result); /* cancelled meanwhile: still waits */
	jw->join_returned_at = crew_now();
	return NULL;
}

static void *join_wait_main(void *arg)
{
	join_wait *jw = arg;
	crew_task *p = crew_spawn(patient_parent, jw);
	if (!p)
		return (void *)1;
	while (!atomic_load(&jw->joining))
		if (crew_yield() != 0)
			return (void *)2;
	crew_task *c = __atomic_load_n(&jw->child, __ATOMIC_RELAXED);
	if (jw->mode == JOIN_SUSPENDED) {
		if (!crewt_wait_suspended(p)) /* in crew_join: nowhere else */
			return (void *)3;
	} else {
		/* the child waits for `release`, run by the parent's join */
		if (crew_future_await(jw->child_started, NULL) != 0 || !crewt_wait_suspended(c))
			return (void *)4;
	}
	if (crew_cancel(p) != 0)
		return (void *)5;
	/* The cancel woke the parent; it must go back to waiting in the join,
	 * not return from it (then it would finish: DONE, and this fails). */
	if (jw->mode == JOIN_SUSPENDED && !crewt_wait_suspended(p))
		return (void *)7;
	if (crew_future_set(jw->release, NULL) != 0)
		return (void *)6;
	crew_join(p, NULL);
	return NULL;
}

static void join_keeps_waiting(enum join_mode mode, unsigned workers)
{
	join_wait jw = {.mode = mode, .join_rc = 1, .child_rc = 1};
	jw.child_started = crew_future_new();
	jw.release = crew_future_new();
	cr_assert(jw.child_started && jw.release);
	void *res = (void *)-1;
	cr_assert_eq(crewt_run(workers, join_wait_main, &jw, &res), 0);
	cr_assert_null(res, "workers=%u: failed at step %p", workers, res);
	cr_expect_eq(jw.child_inline, mode == JOIN_INLINE, "workers=%u: the child ran %s", workers,
	             jw.child_inline ? "inline" : "on its own fiber");
	cr_expect_eq(jw.child_rc, 0, "workers=%u: the child (not cancelled) got %d", workers,
	             jw.child_rc);
	cr_expect_eq(jw.join_rc, 0, "workers=%u: join in a cancelled task returned %d", workers,
	             jw.join_rc);
	cr_expect_eq(jw.result, MARK);
	cr_expect_geq(jw.join_returned_at, jw.child_done_at,
	              "workers=%u: the join returned before the child finished", workers);
	crew_future_release(jw.child_started);
	crew_future_release(jw.release);
}

Test(cancel, join_keeps_waiting_when_cancelled, .timeout = CREWT_TIMEOUT(30))
{
	for (unsigned w = 1; w <= 2; w++)
		join_keeps_waiting(JOIN_SUSPENDED, w);
}

/* One worker: nobody can steal the child, so the join certainly runs it inline. */
Test(cancel, inline_join_keeps_running_when_cancelled, .timeout = CREWT_TIMEOUT(30))
{
	join_keeps_waiting(JOIN_INLINE, 1);
}
