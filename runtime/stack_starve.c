/*
 * stack_starve.c - tasks that reach a worker when no stack can be had.
 *
 * Overview
 *   When a slab cannot be mapped (ENOMEM: RLIMIT_AS, overcommit limits,
 *   vm.max_map_count), a task that is about to start has no stack. Instead
 *   of aborting, the runtime enters "stack pressure":
 *   - the task is parked on the starved FIFO (rt->starved_head/tail, under
 *     rt->stack_lock), SCHEDULED as if it sat in any other queue (a wake
 *     does nothing, task.c);
 *   - rt->stack_pressure is set (under the lock, together with the FIFO
 *     becoming non-empty; cleared when it becomes empty again), and while it
 *     is set crew_spawn fails with ENOMEM (one relaxed load on its path);
 *   - every stack released from then on (a task's exit, crew__stack_put; a
 *     trim) goes to the oldest starved task, which is then queued like a
 *     spawned task, with its stack already assigned.
 *   One message on stderr, the first time in a run.
 *
 *   Parking happens on a fiber of its own: worker_prepare must hand its
 *   caller a fiber to switch to (worker_run, or crew_yield's direct switch),
 *   so it hands the worker's reserve stack (one per worker, mapped by
 *   crew_run before anything ran), whose entry queues the task on the FIFO
 *   and exits back to the scheduler. The task goes on the FIFO only once
 *   nothing runs on its behalf any more: from then on any worker may start
 *   it.
 *
 *   A joiner takes a starved task off the FIFO and runs it inline, on its
 *   own stack (crew__stack_take_starved), as it would an unstarted task of
 *   its own deque; even when less than a quarter of its stack is free (as a
 *   sync does when no stack can be had: fork.c): then the task finishes on
 *   what is left, or overflows it and is reported, instead of a hang.
 *   The remaining deadlock: starved tasks wait for some task to finish. If
 *   every task that holds a stack waits for a starved one in some other way
 *   (awaits a future it sets), nothing is ever released.
 */
#include "internal.h"

/* A RUNNING task that never ran becomes SCHEDULED again: it is queued on
 * the starved FIFO. A pending NOTIFIED is dropped (it has not started, so
 * there is nothing to wake); CANCELLED stays. */
static void task_requeued(crew_task *t)
{
	uint32_t s = crew__load_32(&t->state), n;
	do
		n = (s & ~(CREW_T_RUNNING | CREW_T_NOTIFIED)) | CREW_T_SCHEDULED;
	while (!crew__cas_32(&t->state, &s, n));
}

/* Give stack s to a starved task t and queue it on this worker. */
static void stack_give(crew_task *t, crew__stack *s)
{
	crew__stack_attach(t, s);
	crew__schedule(t, false); /* the push publishes t's new fields (release) */
}

/* The oldest starved task, or NULL; clears the pressure when none is left.
 * Called with rt->stack_lock held. */
static crew_task *starved_pop(crew__runtime *rt)
{
	crew_task *t = rt->starved_head;
	if (t) {
		rt->starved_head = t->next;
		if (!rt->starved_head)
			rt->starved_tail = NULL;
	}
	if (!rt->starved_head)
		crew__store_32(&rt->stack_pressure, 0); /* relaxed: see starve() */
	return t;
}

/* Under pressure: s goes to the oldest starved task, or back to w's pool. */
void crew__stack_give_starved(crew__worker *w, crew__stack *s)
{
	crew__runtime *rt = crew__rt;
	pthread_mutex_lock(&rt->stack_lock);
	crew_task *t = starved_pop(rt);
	pthread_mutex_unlock(&rt->stack_lock);
	if (t)
		stack_give(t, s);
	else
		crew__stack_push_hot(w, s);
}

/* t's joiner, on a stack of its own, takes t off the starved FIFO to run it
 * inline (crew_join): a joiner would otherwise hold its stack while it waits
 * for t, and when every stack is held so, nothing is released (a spawn/join
 * fib under a stack limit hung 5 runs in 20). False: t is not there (it got
 * a stack meanwhile, or never waited for one). */
bool crew__stack_take_starved(crew__runtime *rt, crew_task *t)
{
	bool found = false;
	pthread_mutex_lock(&rt->stack_lock);
	crew_task **pp = &rt->starved_head, *prev = NULL;
	while (*pp && *pp != t) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (*pp) {
		*pp = t->next;
		if (rt->starved_tail == t)
			rt->starved_tail = prev;
		if (!rt->starved_head)
			crew__store_32(&rt->stack_pressure, 0); /* relaxed: see starve() */
		t->next = NULL;
		found = true;
	}
	pthread_mutex_unlock(&rt->stack_lock);
	return found;
}

/* Under pressure: hand w's pooled stacks beyond `keep` to starved tasks. */
void crew__stack_feed_starved(crew__worker *w, unsigned keep)
{
	while (w->stack_free_count > keep && crew__stack_pressure(crew__rt)) {
		crew__stack *s = w->stack_free;
		w->stack_free = s->next;
		w->stack_free_count--;
		crew__stack_give_starved(w, s);
	}
}

CREW_COLD static void starve(crew__runtime *rt, crew_task *t)
{
	task_requeued(t);
	crew__store_ptr(&t->fiber, NULL);
	t->stack = NULL;
	t->next = NULL;
	pthread_mutex_lock(&rt->stack_lock);
	/* A stack may have come back since crew__stack_get failed, with nobody
	 * starved to take it: look again before waiting. */
	crew__stack *s = rt->stack_cold;
	if (s) {
		crew__store_ptr(&rt->stack_cold, s->next);
		pthread_mutex_unlock(&rt->stack_lock);
		stack_give(t, s);
		return;
	}
	bool first = !rt->starved_head;
	if (rt->starved_tail)
		rt->starved_tail->next = t;
	else
		rt->starved_head = t;
	rt->starved_tail = t;
	/* Relaxed: the flag is a hint for crew_spawn and crew__stack_put; the
	 * FIFO itself is only read under the lock. A put that misses the flag
	 * pools its stack and the next one sees it. */
	crew__store_32(&rt->stack_pressure, 1);
	bool tell = !rt->stack_pressure_told;
	rt->stack_pressure_told = true;
	/* A task waiting in crew_join for t holds a stack: it is woken to take
	 * t and run it inline (crew__stack_take_starved). The joiner registers
	 * (CAS of `joiner`, a full barrier), then reads stack_pressure, and
	 * looks at the FIFO (under this lock) when it is set. seq_cst fence:
	 * our store of stack_pressure before our read of `joiner` (without
	 * it, both reads could miss the other's store, as a store buffer
	 * lets them: the joiner would sleep on its stack for good). So either
	 * it sees the pressure and then t here, or we see it. While t is
	 * queued here it cannot finish, so the joiner is still waiting, alive:
	 * a reference keeps it so for the wake below, after which t may run
	 * anywhere and end the wait. */
	crew__fence();
	crew_task *j = crew__load_ptr(&t->joiner);
	if (j == CREW_JOIN_DONE)
		j = NULL;
	if (j)
		crew__faa_32(&j->refs, 1);
	pthread_mutex_unlock(&rt->stack_lock);
	if (j) {
		crew__task_wake(j); /* spurious when it took t meanwhile: harmless */
		crew__task_unref(j);
	}
	/* Idle workers may hold free stacks in their pools: wake them, they
	 * hand them over before parking again (worker_park). */
	if (first)
		crew__idle_notify_all(rt);
	if (tell)
		crew__error("out of memory for fiber stacks (task '%s'): tasks wait for a stack to "
			    "be released, and crew_spawn fails with ENOMEM meanwhile",
			    t->name);
}

/* First code on the reserve stack: park the task, back to the scheduler.
 * The worker's code reads t->fiber before switching here, so t may go on
 * the FIFO only now. */
static void park_entry(void *arg)
{
	crew__fiber_started();
	crew_task *t = arg;
	crew__worker *w = crew__worker_current();
	w->switch_reason = CREW_SWITCH_EXIT;
	w->dead_stack = NULL; /* nothing to release (crew__stack_put) */
	starve(crew__rt, t); /* from here on t may start on any worker */
	crew__fiber_switch(&w->stack_reserve->fiber, &w->sched, true);
	__builtin_unreachable();
}

/* worker_prepare found no stack for t: the fiber to switch to instead. */
crew__fiber *crew__stack_park_fiber(crew__worker *w, crew_task *t)
{
	crew__fiber *f = &w->stack_reserve->fiber;
	crew__fiber_init(f, park_entry, t);
	return f;
}
