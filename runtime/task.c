/*
 * task.c - task objects and their state protocol: spawn, wake, suspend,
 * join, detach, cancel.
 *
 * Overview
 *   state (one atomic word, CREW_T_* in internal.h):
 *     SCHEDULED  set by spawn and by a wake of a suspended task; the task sits
 *                in exactly one queue (or was just popped from it).
 *     RUNNING    a worker switched to it: SCHEDULED -> RUNNING in one add.
 *     idle       neither: suspended, waiting for a wake.
 *     NOTIFIED   a wake that came while RUNNING; the worker that switches the
 *                task out sees it and reschedules instead of going idle, so a
 *                wake racing with a suspension is never lost (Tokio's rule).
 *     DONE       the body returned; result is valid (set with a full barrier).
 *     CANCELLED  sticky request; suspending calls return -ECANCELED.
 *   Only the transition idle -> SCHEDULED queues a task, and only the worker
 *   that switched a task out clears RUNNING, after the switch completed: a task
 *   is therefore in at most one queue and runs on at most one worker at a time.
 *
 *   Every suspension point loops on its own condition: a wake can be spurious
 *   (a stale timer, a cancel, the finisher of a task it joined). Task memory
 *   comes from slabs that live until crew_run returns, so a stale wake always
 *   lands on task memory: a freed task is DONE (the wake does nothing), a
 *   reused one gets a spurious wake.
 *
 *   refs: 2 at spawn, one for the handle (dropped by join/detach), one for the
 *   execution (dropped when the body finished). The last drop frees.
 *   joiner: NULL -> the joining task (CAS by the joiner) -> CREW_JOIN_DONE
 *   (exchange by the finisher, after DONE): one word, so the joiner either
 *   registers before the finisher looks, or sees CREW_JOIN_DONE.
 */
#include "internal.h"
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define CREW_TASK_SLAB 256

/* Slabs: the owner prepends new slabs and bumps `used`; the shutdown walk
 * (crew__task_wake_all) reads both from another thread, so both are
 * published with release after the slots they cover are initialised. */
struct crew__task_slab {
	crew__task_slab *next;
	uint32_t used;
	crew_task tasks[CREW_TASK_SLAB];
};

__thread crew__worker *crew__tls_worker __attribute__((tls_model("initial-exec")));

__attribute__((noinline)) crew__worker *crew__worker_current(void)
{
	/* The barrier keeps the compiler from caching the TLS address across
	 * calls in the caller (see internal.h). */
	__asm__ volatile("" ::: "memory");
	return crew__tls_worker;
}

static void report(const char *prefix, const char *fmt, va_list ap)
{
	fputs(prefix, stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void crew__error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report("crew: ", fmt, ap);
	va_end(ap);
}

void crew__die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report("crew: fatal: ", fmt, ap);
	va_end(ap);
	abort();
}

#if defined(CREW_DEBUG)
/* A handle passed to crew_join/crew_detach must be live and not consumed. */
static void task_check_handle(crew_task *t, const char *fn)
{
	if (t->magic != CREW_TASK_MAGIC_LIVE)
		crew__die("%s(%p): not a live task handle (already joined or detached?)", fn, (void *)t);
	uint32_t s = crew__load_32(&t->state);
	while (!(s & CREW_T_CONSUMED)) {
		if (crew__cas_32(&t->state, &s, s | CREW_T_CONSUMED))
			return;
	}
	crew__die("%s: handle of task '%s' used after it was joined or detached", fn, t->name);
}

/* A handle passed to crew_cancel/crew_task_name: its task not freed yet.
 * (A join in progress has consumed the handle, and a cancel then is fine:
 * the task lives until the join returns.) A freed slot is reused only after
 * CREW_TASK_QUARANTINE others, so a stale handle finds it freed. */
static void task_check_alive(const crew_task *t, const char *fn)
{
	if (t->magic != CREW_TASK_MAGIC_LIVE)
		crew__die("%s(%p): not a live task (its join returned, or it was detached and "
			  "finished)",
			  fn, (const void *)t);
}
#else
#define task_check_handle(t, fn) ((void)0)
#define task_check_alive(t, fn) ((void)0)
#endif

/* ---- memory ---- */

static crew_task *slab_carve(crew__task_slab **slabs)
{
	crew__task_slab *s = *slabs;
	if (!s || s->used == CREW_TASK_SLAB) {
		s = malloc(sizeof(*s));
		if (!s)
			return NULL;
		s->used = 0;
		s->next = *slabs;
		crew__store_release_ptr(slabs, s);
	}
	crew_task *t = &s->tasks[s->used];
	memset(t, 0, sizeof(*t));
	/* a fresh slot looks finished to the shutdown walk until spawn sets it */
	crew__store_32(&t->state, CREW_T_DONE);
	crew__store_release_32(&s->used, s->used + 1);
	return t;
}

static void slabs_wake(crew__task_slab *s)
{
	for (; s; s = crew__load_ptr(&s->next)) {
		uint32_t used = crew__load_acquire_32(&s->used);
		for (uint32_t i = 0; i < used; i++) {
			crew_task *t = &s->tasks[i];
			uint32_t st = crew__load_32(&t->state);
			if (!(st & (CREW_T_DONE | CREW_T_SCHEDULED)))
				crew__task_wake(t); /* suspended or running: see run.c */
		}
	}
}

/* Shutdown step 3: wake every task that is suspended (or about to be), so
 * that it sees the shutdown flag. Spurious wakes are harmless by design. */
void crew__task_wake_all(crew__runtime *rt)
{
	crew__fence(); /* the shutdown flag before the states we read */
	for (unsigned i = 0; i < rt->nworkers; i++)
		slabs_wake(crew__load_acquire_ptr(&rt->workers[i].task_slabs));
	pthread_mutex_lock(&rt->ext_lock);
	slabs_wake(rt->ext_slabs);
	pthread_mutex_unlock(&rt->ext_lock);
}

#if defined(CREW_DEBUG)
#define CREW_TASK_QUARANTINE 4096 /* freed slots a worker holds before reusing one */
#endif

crew_task *crew__task_alloc(crew__worker *w)
{
	crew_task *t;
	if (w) {
		t = w->task_free;
#if defined(CREW_DEBUG)
		if (w->task_free_n <= CREW_TASK_QUARANTINE)
			t = NULL;
		else if (!--w->task_free_n)
			w->task_free_tail = NULL;
#endif
		if (CREW_LIKELY(t))
			w->task_free = t->next;
		else
			t = slab_carve(&w->task_slabs);
		return t;
	}
	crew__runtime *rt = crew__rt;
	pthread_mutex_lock(&rt->ext_lock);
	t = rt->ext_free;
	if (t)
		rt->ext_free = t->next;
	else
		t = slab_carve(&rt->ext_slabs);
	pthread_mutex_unlock(&rt->ext_lock);
	return t;
}

static void task_free(crew_task *t)
{
	t->magic = CREW_TASK_MAGIC_FREE; /* state stays DONE: stale wakes do nothing */
	crew__worker *w = crew__worker_current();
	if (w) {
#if defined(CREW_DEBUG)
		t->next = NULL; /* to the tail: reused last (CREW_TASK_QUARANTINE) */
		if (w->task_free_tail)
			w->task_free_tail->next = t;
		else
			w->task_free = t;
		w->task_free_tail = t;
		w->task_free_n++;
#else
		t->next = w->task_free;
		w->task_free = t;
#endif
		return;
	}
	crew__runtime *rt = crew__rt;
	pthread_mutex_lock(&rt->ext_lock);
	t->next = rt->ext_free;
	rt->ext_free = t;
	pthread_mutex_unlock(&rt->ext_lock);
}

void crew__task_unref(crew_task *t)
{
	/* full barrier: everything this holder did with t happens before the
	 * last holder frees it */
	if (crew__faa_32(&t->refs, (uint32_t)-1) == 1)
		task_free(t);
}

static void slabs_release(crew__task_slab *s, crew_task *skip)
{
	while (s) {
		for (unsigned i = 0; i < s->used; i++) {
			crew_task *t = &s->tasks[i];
			if (t->magic == CREW_TASK_MAGIC_LIVE && t != skip)
				fprintf(stderr,
					"crew: task '%s' was never joined nor detached "
					"(crew_join or crew_detach its handle)\n",
					t->name ? t->name : "?");
		}
		crew__task_slab *next = s->next;
		free(s);
		s = next;
	}
}

/* After all workers stopped: report handles never consumed, free all slabs. */
void crew__task_free_all(crew__runtime *rt)
{
	for (unsigned i = 0; i < rt->nworkers; i++) {
		slabs_release(rt->workers[i].task_slabs, rt->main);
		rt->workers[i].task_slabs = NULL;
		rt->workers[i].task_free = NULL;
	}
	slabs_release(rt->ext_slabs, rt->main);
	rt->ext_slabs = NULL;
	rt->ext_free = NULL;
}

/* ---- spawn ---- */

/* Fill a freshly allocated task: SCHEDULED, two references. */
static void task_init_spawned(crew_task *t, crew_fn fn, void *arg, const char *name)
{
	t->fn = fn;
	t->arg = arg;
	t->name = name ? name : "?";
	t->result = NULL; /* and scope: no deadline scope */
	crew__store_ptr(&t->fiber, NULL); /* relaxed: see task_run_inline */
	t->stack = NULL;
	t->magic = CREW_TASK_MAGIC_LIVE;
	crew__store_ptr(&t->joiner, NULL);
	crew__store_32(&t->refs, 2);
	crew__store_32(&t->state, CREW_T_SCHEDULED);
}

/* A worker stole a frame (fork.c): t will run fn(arg) on a fiber of its own,
 * right away on w. No handle: one reference, the execution's. Counted as a
 * spawn so that the runtime cannot stop before it finished. */
void crew__task_init_frame(crew__worker *w, crew_task *t, crew_fn fn, void *arg)
{
	task_init_spawned(t, fn, arg, "crew_fork");
	crew__store_32(&t->refs, 1);
	/* owner-only counter; release: read by the termination check */
	crew__store_release_64(&w->spawned, w->spawned + 1);
}

/* A spawn from a thread that is not a worker: inside the gate (the runtime
 * stays allocated), and under stop_lock, so that the spawn is either counted
 * before the stop decision or refused after it (crew__runtime_try_stop): a
 * task that is counted keeps the workers running until it finished. Refused
 * too once shutdown began (main returned): threads that kept spawning would
 * otherwise keep crew_run from returning for as long as they went on
 * (3 threads spawning tasks of 10 us for 5 s after main returned held it
 * 146 s, with 31M tasks and 2.4 GB queued). */
CREW_COLD static crew_task *task_spawn_ext(crew_fn fn, void *arg, const char *name)
{
	crew__runtime *rt = crew__ext_enter();
	if (!rt) {
		errno = EPERM;
		return NULL;
	}
	crew_task *t = NULL;
	int err = EPERM;
	/* tasks wait for stacks (stack_starve.c): try later, unless main has
	 * returned, when EPERM (below) is the answer that lasts */
	if (CREW_UNLIKELY(crew__stack_pressure(rt)) && !crew__load_acquire_32(&rt->shutdown)) {
		crew__ext_leave();
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_lock(&rt->stop_lock);
	/* stop: set under stop_lock (run.c); shutdown: a spawn that reads it
	 * just before main's return sets it is counted, and its task sees
	 * -ECANCELED at its first suspension like any other */
	if (!crew__load_32(&rt->stop) && !crew__load_acquire_32(&rt->shutdown)) {
		t = crew__task_alloc(NULL);
		if (t) {
			task_init_spawned(t, fn, arg, name);
			/* full barrier: the task's fields before the count the
			 * termination check reads (acquire, crew__tasks_unfinished) */
			crew__faa_u64(&rt->ext_spawned, 1);
		} else {
			err = ENOMEM;
		}
	}
	pthread_mutex_unlock(&rt->stop_lock);
	if (t)
		crew__schedule(t, false); /* publishes t: the push is a release */
	crew__ext_leave();
	if (!t)
		errno = err;
	return t;
}

crew_task *crew_spawn_named(crew_fn fn, void *arg, const char *name)
{
	if (!fn) {
		errno = EINVAL;
		return NULL;
	}
	crew__worker *w = crew__worker_current();
	if (CREW_UNLIKELY(!w))
		return task_spawn_ext(fn, arg, name);
	/* A task spawning: its runtime cannot stop before the task finished,
	 * so no gate and no lock here (the hot path: no atomic RMW). */
	if (CREW_UNLIKELY(crew__stack_pressure(crew__rt))) { /* stack_starve.c */
		errno = ENOMEM;
		return NULL;
	}
	crew_task *t = crew__task_alloc(w);
	if (!t) {
		errno = ENOMEM;
		return NULL;
	}
	task_init_spawned(t, fn, arg, name);
	/* owner-only counter; release: read by the termination check */
	crew__store_release_64(&w->spawned, w->spawned + 1);
	crew__schedule(t, false); /* publishes t: the push is a release */
	return t;
}

/* crew_run's thread, after the workers started: main's task, ready but not
 * queued (so that the gate can open before main runs, and a thread main
 * starts may spawn at once). rt->main is set before the push makes main
 * runnable, so its finisher (crew__task_run_body) recognises it. */
int crew__task_prepare_main(crew__runtime *rt, crew_fn fn, void *arg)
{
	crew_task *t = crew__task_alloc(NULL);
	if (!t)
		return -ENOMEM;
	task_init_spawned(t, fn, arg, "main");
	rt->main = t;
	return 0;
}

/* Queue main (prepared above); cannot fail. */
void crew__task_start_main(crew__runtime *rt)
{
	/* full barrier: counted before it can run (crew__tasks_unfinished) */
	crew__faa_u64(&rt->ext_spawned, 1);
	crew__schedule(rt->main, false); /* the push is a release: rt->main with it */
}

/* ---- wake and suspend ---- */

/* The wake protocol: true when the caller moved t from idle to SCHEDULED and
 * must queue it; false when there is nothing to queue (finished, already
 * queued, or running: then NOTIFIED makes its worker requeue it). */
bool crew__task_claim(crew_task *t)
{
	uint32_t s = crew__load_32(&t->state);
	for (;;) {
		if (s & (CREW_T_DONE | CREW_T_SCHEDULED))
			return false; /* finished, or already queued */
		if (s & CREW_T_RUNNING) {
			if (s & CREW_T_NOTIFIED)
				return false;
			if (crew__cas_32(&t->state, &s, s | CREW_T_NOTIFIED))
				return false; /* its worker reschedules it when it switches out */
			continue;
		}
		if (crew__cas_32(&t->state, &s, s | CREW_T_SCHEDULED))
			return true;
	}
}

void crew__task_wake(crew_task *t)
{
	if (crew__task_claim(t))
		crew__schedule(t, true);
}

/* Switch the running task out; its worker decides (worker.c) whether it goes
 * idle or runs again (NOTIFIED). Returns when the task was resumed. */
void crew__task_suspend(crew_task *t)
{
	crew__worker *w = crew__worker_current();
	w->switch_reason = CREW_SWITCH_SUSPEND;
	crew__fiber_switch(t->fiber, &w->sched, false);
}

bool crew__task_cancelled(crew_task *t)
{
	return (crew__load_32(&t->state) & CREW_T_CANCELLED) ||
	       crew__load_32(&crew__rt->shutdown);
}

/* Run t's body on the current fiber, then finish it. */
void crew__task_run_body(crew_task *t)
{
#if defined(CREW_DEBUG)
	/* the fiber's outstanding forks (fork.c): the body leaves them as found */
	uint32_t *forks = &((crew__stack *)t->fiber)->forks, forks_before = *forks;
#endif
	void *result = t->fn(t->arg);
	crew__runtime *rt = crew__rt;
#if defined(CREW_DEBUG)
	if (*forks != forks_before)
		crew__die("task '%s' returned with %u forked frame(s) not synced (crew_sync "
			  "every crew_fork before returning)",
			  t->name, *forks - forks_before);
#endif
	t->result = result;
	/* its forks into crew_stats before its end can be seen (a joiner may
	 * read them next) */
	crew__fq *q = ((crew__stack *)t->fiber)->frames;
	if (q && q->forks)
		crew__fq_count_forks(crew__worker_current(), q);
	bool is_main = t == rt->main;
	/* A task that ends after shutdown began was cancelled (asyncio.run). */
	uint32_t cancel = !is_main && crew__load_32(&rt->shutdown) ? CREW_T_CANCELLED : 0;
	uint32_t s = crew__load_32(&t->state);
	while (!crew__cas_32(&t->state, &s,
			     (s & ~(CREW_T_RUNNING | CREW_T_NOTIFIED)) | CREW_T_DONE | cancel))
		;
	/* The CAS is a full barrier: result and DONE are visible before the
	 * joiner is read; pairs with the joiner's CAS in task_wait_done. */
	crew_task *j = crew__fas_ptr(&t->joiner, CREW_JOIN_DONE);
	if (j)
		crew__task_wake(j);
	if (is_main)
		crew__runtime_begin_shutdown(rt);
	crew__worker *w = crew__worker_current(); /* the body may have migrated */
	crew__stat_inc(&w->stats.tasks_run);
	/* release: all of the task's effects before the count the termination
	 * check reads (worker.c) */
	crew__store_release_64(&w->finished, w->finished + 1);
	crew__task_unref(t);
}

/* First code on a task's own fiber. */
void crew__fiber_entry(void *arg)
{
	crew__fiber_started();
	crew_task *t = arg;
	crew__stack *stack = t->stack; /* t may be freed once it finished */
	crew__task_run_body(t);
	crew__worker *w = crew__worker_current();
	w->switch_reason = CREW_SWITCH_EXIT;
	w->dead_stack = stack;
	crew__fiber_switch(&stack->fiber, &w->sched, true);
	__builtin_unreachable();
}

/* ---- public task API ---- */

crew_task *crew_self(void)
{
	crew__worker *w = crew__worker_current();
	return w ? w->current : NULL;
}

const char *crew_task_name(const crew_task *t)
{
	if (!t)
		return NULL;
	task_check_alive(t, "crew_task_name");
	return t->name;
}

/* Run a not-yet-started child on the joiner's own fiber (fork-join fast path). */
static void task_run_inline(crew__worker *w, crew_task *parent, crew_task *c)
{
	crew__faa_32(&c->state, CREW_T_RUNNING - CREW_T_SCHEDULED);
	/* relaxed: a canceller may read it (fork.c, fork_deque_of) */
	crew__store_ptr(&c->fiber, parent->fiber);
	w->current = c;
	crew__fq *q = ((crew__stack *)c->fiber)->frames;
	if (q) {
		crew__fq_share_private(q); /* parent's frames recorded as parent's */
		q->task = c; /* c's forks are c's (fork.c: a frame's forker) */
	}
	crew__task_run_body(c);
	/* the child may have suspended and moved us to another worker */
	crew__worker_current()->current = parent;
	if ((q = ((crew__stack *)parent->fiber)->frames)) /* c may have made it */
		q->task = parent;
}

/* Take c from the bottom of our own deque if it sits there unstarted. */
static bool task_take_unstarted(crew__worker *w, crew_task *c)
{
	if (crew__deque_peek(&w->deque) != c || crew__deque_pop(&w->deque) != c)
		return false; /* not ours, or a thief got it first */
	if (c->fiber == NULL)
		return true;
	crew__deque_push(&w->deque, c); /* a resumed task: it needs its own fiber */
	return false;
}

static void task_wait_done(crew__worker *w, crew_task *self, crew_task *c)
{
	if (!crew__cas_ptr(&c->joiner, NULL, self))
		return; /* CREW_JOIN_DONE: it finished meanwhile */
	/* Not cancellable (rule 3): wait even when self was cancelled. A
	 * child that waits for a stack meanwhile wakes us (stack_starve.c):
	 * then we run it here, as a joiner holding a stack must (full barrier
	 * (cas) above: registered before we read stack_pressure; pairs with
	 * the fence in starve()). Even on a stack with less than a quarter
	 * free: no stack can be had for it, and waiting would hold ours for
	 * good once every stack is held so (a deep spawn/join chain, spread
	 * over the stacks by thieves while they lasted, hung on its last one);
	 * on what is left it finishes, or overflows and is reported. */
	while (!(crew__load_acquire_32(&c->state) & CREW_T_DONE)) {
		if (CREW_UNLIKELY(crew__stack_pressure(crew__rt)) &&
		    crew__stack_take_starved(crew__rt, c)) {
			task_run_inline(w, self, c);
			return;
		}
		crew__task_suspend(self);
		w = crew__worker_current(); /* we may have moved */
	}
}

int crew_join(crew_task *c, void **result)
{
	if (!c)
		return -EINVAL;
	crew__worker *w = crew__worker_current();
	crew_task *self = w ? w->current : NULL;
	if (!self)
		return -EPERM;
	if (c == self)
		return -EINVAL;
	task_check_handle(c, "crew_join");
	uint32_t s = crew__load_acquire_32(&c->state);
	if (!(s & CREW_T_DONE)) {
		/* not started: run it here if it sits at the bottom of our
		 * deque (a child waiting for a stack: task_wait_done) */
		if (crew__stack_room(self) && task_take_unstarted(w, c))
			task_run_inline(w, self, c);
		else
			task_wait_done(w, self, c);
		s = crew__load_acquire_32(&c->state);
	}
	if (result)
		*result = c->result;
	crew__task_unref(c);
	return (s & CREW_T_CANCELLED) ? -ECANCELED : 0;
}

void crew_detach(crew_task *t)
{
	if (!t)
		return;
	if (CREW_UNLIKELY(!crew__worker_current())) {
		/* a plain thread: the last reference may free t, which needs the
		 * runtime; none (crew_run ending or over): every task was freed
		 * with it, nothing to do */
		if (!crew__ext_enter())
			return;
		task_check_handle(t, "crew_detach");
		crew__task_unref(t);
		crew__ext_leave();
		return;
	}
	task_check_handle(t, "crew_detach");
	crew__task_unref(t);
}

/* Set CANCELLED on t: true when this call set it (false: set before, or t
 * finished). The caller wakes t. */
bool crew__task_set_cancelled(crew_task *t)
{
	uint32_t s = crew__load_32(&t->state);
	for (;;) {
		if (s & (CREW_T_DONE | CREW_T_CANCELLED))
			return false; /* finished, or sticky: asked before */
		if (crew__cas_32(&t->state, &s, s | CREW_T_CANCELLED))
			return true;
	}
}

int crew_cancel(crew_task *t)
{
	if (!t)
		return -EINVAL;
	/* A plain thread enters the gate: the wake below may queue t. No
	 * runtime: it ended, and every task with it. */
	bool ext = !crew__worker_current();
	if (CREW_UNLIKELY(ext) && !crew__ext_enter())
		return -EPERM;
	int rc = 0;
	task_check_alive(t, "crew_cancel");
	if (crew__task_set_cancelled(t)) {
		/* a suspended task returns -ECANCELED from its wait */
		crew__task_wake(t);
		crew__fork_cancel_kids(t); /* tasks running frames t forked */
	} else if (crew__load_32(&t->state) & CREW_T_DONE) {
		rc = -EALREADY;
	}
	if (ext)
		crew__ext_leave();
	return rc;
}

int crew_yield(void)
{
	crew__worker *w;
	crew_task *t;
	int rc = crew__suspend_begin(&w, &t);
	if (rc)
		return rc;
	crew__worker_yield(w, t);
	return crew__task_cancelled(t) ? -ECANCELED : 0;
}
