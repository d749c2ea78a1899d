/*
 * worker.c - the loop a worker thread runs.
 *
 *   loop {
 *     task = every 61st pick (or when a yield asks): reactor completions and
 *            due timers, the global inject queue, the due queue's head, own
 *            deque top if the same task has been there since the previous
 *            tick (starvation guard)
 *            ?: LIFO slot (the task this worker woke last; at most 3 in a row
 *               while other tasks wait)
 *            ?: due queue (tasks whose timers fired, deadline order, due.c)
 *            ?: own deque bottom (LIFO)
 *            ?: tasks that yielded (moved into the deque, FIFO order)
 *            ?: global inject queue (a batch)
 *            ?: timers due / reactor completions
 *            ?: steal half of a random victim's deque, else of its due queue
 *               (at most half the workers search at once, idle.c)
 *            ?: take over the LIFO task and due timers of a worker stuck in
 *               one task for CREW_GRACE_NS (work conservation, below)
 *            ?: park in the reactor (idle.c) until a wake-up, timer or I/O
 *     switch to the task's fiber; when it switches back, send what it
 *     submitted to the kernel (one batch) and settle its state
 *   }
 *
 * I/O: a task's operations belong to the reactor of the worker it submitted
 * them on; that worker reaps their completions at worker_poll (when it runs
 * dry, every 61st pick, after a park) together with cancel requests that
 * other workers queued for its ring (io/io.c).
 *
 * Work conservation: a worker that computes without suspending cannot run
 * its LIFO slot or expire its timers. An idle worker watches busy workers
 * (their published tick) and, when one has had the same task for
 * CREW_GRACE_NS while work waited on it, takes that work (Go's idle Ps do
 * the same with runnext and other Ps' timers). Parked workers time their
 * park so that they come back to look, and a worker that puts work where
 * only a watcher can take it wakes a parked worker that is not watching.
 *
 * The scheduler code runs on the worker thread's own stack and never
 * migrates; task code (fibers) may resume on any worker.
 */
#include "wait.h"
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#define CREW_FAIR_TICK 61
#define CREW_STEAL_MAX 256
#define CREW_TRIM_NS 1000000000ull
#define CREW_LIFO_MAX 3

/* What a watcher saw of another worker (work conservation). */
struct crew__watch {
	uint64_t tick;  /* the worker's published tick at our last look */
	uint64_t since; /* when we first saw that tick (0: never looked) */
};

/* ---- queuing ---- */

/* Owner: push t; when the deque is full, move its older half to the inject
 * queue first (one lock for the whole batch). */
void crew__worker_enqueue(crew__worker *w, crew_task *t)
{
	if (CREW_LIKELY(crew__deque_push(&w->deque, t)))
		return;
	crew_task **old = w->overflow;
	crew__stat_inc(&w->stats.overflows);
	unsigned n = crew__deque_take_oldest(&w->deque, old, CREW_DEQUE_CAP / 2);
	for (unsigned i = 0; i + 1 < n; i++)
		old[i]->next = old[i + 1];
	if (n)
		crew__inject_push_batch(crew__rt, old[0], old[n - 1], n);
	if (!crew__deque_push(&w->deque, t))
		crew__inject_push(crew__rt, t);
}

/* Put t in w's LIFO slot; returns the slot's previous occupant (or NULL).
 * Atomic exchange: an idle worker may take the slot's task (take-over). */
static crew_task *worker_lifo_put(crew__runtime *rt, crew__worker *w, crew_task *t)
{
	crew_task *prev = crew__fas_ptr(&w->lifo, t);
	/* Only a watcher can take the slot from a busy worker: make sure one
	 * looks (idle.c). */
	if (!prev)
		crew__idle_wake_watcher(rt);
	return prev;
}

/* Make a SCHEDULED task runnable: on our own deque when called on a worker,
 * else on the inject queue. A task woken on a worker goes to its LIFO slot
 * and runs right after the current task (the message-passing pattern: a
 * future set, then its awaiter runs, cache-warm); the slot's previous
 * occupant moves to the deque. A task in the slot is stealable only by the
 * take-over of a stuck worker, so only a push to the deque notifies idle
 * workers. */
void crew__schedule(crew_task *t, bool woken)
{
	crew__runtime *rt = crew__rt;
	crew__worker *w = crew__worker_current();
	if (w) {
		if (woken && !(t = worker_lifo_put(rt, w, t)))
			return;
		crew__worker_enqueue(w, t);
		/* No fence here: if a parking worker misses this task, we are alive
		 * and run it ourselves; only parallelism is delayed. */
		crew__idle_notify(rt);
	} else {
		crew__inject_push(rt, t); /* notifies, with the fence it needs */
	}
}

/* ---- timers ---- */

/* Expire the timers of `set` due at `now` (all of them with UINT64_MAX, at
 * shutdown) and queue their tasks on w's due queue, in deadline order.
 * `set` is w's own, or a stuck worker's (take-over). Returns how many tasks
 * were queued. */
static unsigned worker_expire_timers(crew__worker *w, crew__timer_set *set, uint64_t now)
{
	bool all = now == UINT64_MAX;
	crew_task *head = NULL, *tail = NULL;
	unsigned queued = 0;
	for (;;) {
		size_t n = crew__timer_expire(set, now, w->expired, CREW_EXPIRE_BATCH);
		for (size_t i = 0; i < n; i++) {
			crew_task *t = w->expired[i].task;
			/* shutdown: wake without firing, the wait sees the flag;
			 * else settle the wait (wait.h): a failed CAS means the wait
			 * was settled otherwise or is over */
			if (!all && !crew__wait_settle(t, w->expired[i].wait_seq, CREW_WAIT_TIMEDOUT))
				continue;
			if (!crew__task_claim(t))
				continue; /* running (now NOTIFIED) or queued already */
			t->next = NULL;
			if (tail)
				tail->next = t;
			else
				head = t;
			tail = t;
			queued++;
		}
		if (n < CREW_EXPIRE_BATCH)
			break;
	}
	if (head) {
		crew__due_push(w, head, tail, queued);
		crew__idle_notify(crew__rt); /* others may steal the younger half */
	}
	return queued;
}

/* Reap reactor completions without blocking; queue the tasks whose timers
 * came due (they run in deadline order from the due queue, however far
 * behind this worker is). */
static void worker_poll(crew__worker *w)
{
	crew__runtime *rt = crew__rt;
	if (CREW_UNLIKELY(!w->saw_shutdown && crew__load_32(&rt->shutdown))) {
		w->saw_shutdown = true;
		worker_expire_timers(w, &w->timers, UINT64_MAX);
	}
	crew__reactor_poll(&w->reactor, false, UINT64_MAX);
	/* after the poll: a poll may consume the eventfd write that announced
	 * a cancel request; looking at the queue only before it would leave the
	 * request there and let us park on an eventfd already read */
	crew__io_poll_cancels(w);
	if (crew__timer_next(&w->timers) != UINT64_MAX)
		worker_expire_timers(w, &w->timers, crew_now());
}

/* ---- picking the next task ---- */

/* A yielded task stays RUNNING while it sits on its worker's private yield
 * list (a wake just marks it NOTIFIED, nobody else can run it). Before it
 * becomes visible to other workers it turns SCHEDULED, like any queued task;
 * a pending NOTIFIED is dropped since it is about to run anyway. */
static void worker_task_queued(crew_task *t)
{
	uint32_t s = crew__load_32(&t->state), n;
	do
		n = (s & ~(CREW_T_RUNNING | CREW_T_NOTIFIED)) | CREW_T_SCHEDULED;
	while (!crew__cas_32(&t->state, &s, n));
}

static void worker_yield_list_append(crew__worker *w, crew_task *t)
{
	t->next = NULL;
	if (w->yield_tail)
		w->yield_tail->next = t;
	else
		w->yield_head = t;
	w->yield_tail = t;
}

static crew_task *worker_take_yielded(crew__worker *w)
{
	/* A lone task that keeps yielding with nothing else to run here is
	 * usually waiting for another thread: let the OS run that thread
	 * (it matters when workers outnumber cores). */
	if (w->yield_head == w->yield_tail)
		sched_yield();
	/* Reverse the FIFO list and push it: the first to yield ends at the
	 * bottom and runs first, and all of them become stealable. */
	crew_task *prev = NULL, *t = w->yield_head;
	while (t) {
		crew_task *next = t->next;
		t->next = prev;
		prev = t;
		t = next;
	}
	w->yield_head = w->yield_tail = NULL;
	for (t = prev; t;) {
		crew_task *next = t->next;
		worker_task_queued(t);
		crew__worker_enqueue(w, t);
		t = next;
	}
	return crew__deque_pop(&w->deque);
}

/* The LIFO slot, else the deque's bottom. The slot is taken with an
 * exchange: a watcher may take it at the same time (take-over). */
static crew_task *worker_pop_local(crew__worker *w)
{
	crew_task *t = crew__load_ptr(&w->lifo);
	if (t && (w->lifo_runs < CREW_LIFO_MAX || crew__deque_empty(&w->deque)) &&
	    (t = crew__fas_ptr(&w->lifo, NULL))) {
		w->lifo_runs++;
		return t;
	}
	w->lifo_runs = 0; /* a turn for the others; the slot's task runs next */
	return crew__deque_pop(&w->deque);
}

/* Every CREW_FAIR_TICK-th pick: what the fast paths would otherwise starve
 * (completions, timers, the inject queue, the due queue, the deque's top). */
static crew_task *worker_next_fair(crew__runtime *rt, crew__worker *w)
{
	crew_task *t;
	worker_poll(w);
	if ((t = crew__inject_pop(rt, w)) || (t = crew__due_pop(w)))
		return t;
	/* Starvation guard: the oldest task (our deque's top) runs now if it
	 * already sat there at the previous tick, a whole interval ago;
	 * younger tasks keep their LIFO order. */
	crew_task *oldest = crew__deque_peek_top(&w->deque);
	if (oldest && oldest == w->fair_oldest) {
		t = crew__deque_steal(&w->deque);
		if (t != CREW_STEAL_EMPTY && t != CREW_STEAL_RETRY) {
			w->fair_oldest = NULL;
			return t;
		}
	}
	w->fair_oldest = oldest;
	return NULL;
}

static crew_task *worker_next(crew__worker *w)
{
	crew__runtime *rt = crew__rt;
	crew_task *t;
	/* relaxed: a watcher only compares it with what it saw before */
	crew__store_64((int64_t *)&w->tick_pub, (int64_t)++w->tick);
	if (CREW_UNLIKELY(w->tick % CREW_FAIR_TICK == 0 || w->fair_due)) {
		w->fair_due = false;
		if ((t = worker_next_fair(rt, w)))
			return t;
	}
	/* Woken timer tasks before the deque's unstarted work: tasks that
	 * already run finish first (their stacks come back, memory stays
	 * bounded), as when a wake lands in the LIFO slot. */
	crew_task *lifo = crew__load_ptr(&w->lifo);
	if ((!lifo || w->lifo_runs >= CREW_LIFO_MAX) && (t = crew__due_pop(w)))
		return t;
	if ((t = worker_pop_local(w)))
		return t;
	w->fair_oldest = NULL; /* the deque ran dry: whatever comes is new */
	/* Several tasks yielding to each other take turns here; a lone yielder
	 * usually waits for work elsewhere, so it runs again only after this
	 * worker looked for that work (worker_loop: its own queues here, then
	 * stealing, which also asks a busy worker to share its forked frames). */
	if (w->yield_head && w->yield_head != w->yield_tail)
		return worker_take_yielded(w);
	if (!crew__inject_empty(rt) && (t = crew__inject_pop(rt, w)))
		return t;
	worker_poll(w); /* timers and completions may wake tasks */
	if ((t = crew__due_pop(w)))
		return t;
	return worker_pop_local(w);
}

/* Steal up to half of v's tasks: the first is returned, the rest pushed on
 * our own deque. */
static crew_task *worker_steal_from(crew__worker *w, crew__worker *v)
{
	int64_t want = crew__deque_size(&v->deque);
	want = want / 2 + 1;
	if (want > CREW_STEAL_MAX)
		want = CREW_STEAL_MAX;
	crew_task *first = NULL;
	int retries = 0;
	for (int64_t k = 0; k < want;) {
		crew_task *t = crew__deque_steal(&v->deque);
		if (t == CREW_STEAL_EMPTY)
			break;
		if (t == CREW_STEAL_RETRY) {
			if (++retries > 8)
				break;
			continue;
		}
		k++;
		crew__stat_inc(&w->stats.steals);
		if (!first)
			first = t;
		else
			crew__worker_enqueue(w, t);
	}
	if (first)
		return first;
	/* woken tasks stay with a worker that keeps up (internal.h) */
	if (crew__worker_keeps_up(v, crew_now()))
		return NULL;
	return crew__due_steal(w, v);
}

/* Work conservation (see the top of this file): take the waiting work of a
 * worker that has run the same task for CREW_GRACE_NS. Sets w->watch_until
 * to when we should look again (UINT64_MAX: nothing to watch). */
static crew_task *worker_take_over(crew__runtime *rt, crew__worker *w)
{
	if (!w->watch)
		return NULL;
	uint64_t now = 0;
	for (unsigned i = 0; i < rt->nworkers; i++) {
		crew__worker *v = &rt->workers[i];
		struct crew__watch *seen = &w->watch[i];
		if (v == w || crew__load_32(&v->parked))
			continue; /* a parked worker's ring times its own timers */
		if (!now)
			now = crew_now();
		/* relaxed: compared only with what we saw at an earlier look */
		uint64_t tick = (uint64_t)crew__load_64((const int64_t *)&v->tick_pub);
		if (seen->tick != tick || !seen->since)
			*seen = (struct crew__watch){ tick, now }; /* it moved on */
		uint64_t stuck_at = seen->since + CREW_GRACE_NS; /* stuck from then on */
		uint64_t next = crew__timer_next(&v->timers);
		bool lifo = crew__load_ptr(&v->lifo) != NULL;
		uint64_t look = lifo ? stuck_at : next < stuck_at ? stuck_at : next;
		if (look > now) { /* nothing to take yet: come back then */
			if (look < w->watch_until)
				w->watch_until = look;
			continue;
		}
		/* v has run one task for the whole grace while work waited */
		worker_expire_timers(w, &v->timers, now);
		crew_task *t = crew__load_ptr(&v->lifo);
		if (t && crew__cas_ptr(&v->lifo, t, NULL))
			return t; /* full barrier (cas): pairs with the owner's exchange */
		if ((t = crew__due_pop(w)))
			return t;
	}
	return NULL;
}

/*
 * We asked a fiber's frame deque to share (crew__frame_steal found nothing
 * shared): its owner shares at its next fork, usually within microseconds
 * (a parked asker would come back tens of microseconds later, after the
 * owner took its frames back: bpc with crew_fork ran no faster on two
 * workers than on one). Wait for the share here for up to CREW_ASK_SPIN_NS,
 * still counted as searching (so the owner's share wakes nobody), looking
 * at the other workers' deques (tasks, due tasks, shared frames) and the
 * inject queue; then give up (the owner may not fork again for a long
 * time) and park.
 */
#define CREW_ASK_SPIN_NS 50000ull
static crew_task *worker_await_share(crew__runtime *rt, crew__worker *w)
{
	uint64_t until = crew_now() + CREW_ASK_SPIN_NS;
	for (unsigned polls = 0;; polls++) {
		for (unsigned i = 0; i < rt->nworkers; i++) {
			crew__worker *v = &rt->workers[i];
			if (v == w)
				continue;
			/* tasks spawned meanwhile: nobody else looks for them while
			 * we count as searching */
			if (crew__deque_size(&v->deque) > 0 || crew__load_32(&v->due_len) > 0) {
				crew_task *t = worker_steal_from(w, v);
				if (t)
					return t;
			}
			/* acquire: pairs with crew__fq_publish (a hint: the steal
			 * decides, and it looks at v's parked deques too) */
			crew__fq *q = crew__load_acquire_ptr(&v->fq);
			bool shared = q && crew__fq_has_shared(q);
			if (shared || crew__fq_parked_shared(v)) {
				crew_task *t = crew__frame_steal(w, v);
				if (t)
					return t;
			}
			if (q && !shared)
				crew__fq_ask(q); /* v may have switched fibers: ask anew */
		}
		if (!crew__inject_empty(rt) || crew__load_32(&rt->shutdown))
			return crew__inject_pop(rt, w); /* or back to the loop: shutdown */
		crew__cpu_relax();
		if (polls % 64 == 63 && crew_now() >= until)
			return NULL;
	}
}

static crew_task *worker_search(crew__worker *w)
{
	crew__runtime *rt = crew__rt;
	unsigned n = rt->nworkers;
	w->watch_until = UINT64_MAX;
	if (n < 2 || !crew__idle_start_search(rt, w))
		return crew__inject_pop(rt, w);
	w->asked = false;
	crew_task *t = NULL;
	for (int round = 0; round < 2 && !t; round++) {
		w->rng = w->rng * 6364136223846793005ull + 1442695040888963407ull;
		unsigned start = (unsigned)(w->rng >> 33) % n;
		for (unsigned i = 0; i < n && !t; i++) {
			unsigned v = (start + i) % n;
			if (v == w->id)
				continue;
			crew__stat_inc(&w->stats.steal_attempts);
			/* tasks first, then the frames of the fiber it runs */
			if (!(t = worker_steal_from(w, &rt->workers[v])))
				t = crew__frame_steal(w, &rt->workers[v]);
		}
		if (!t)
			t = crew__inject_pop(rt, w);
	}
	if (!t && w->asked)
		t = worker_await_share(rt, w);
	if (!t)
		t = worker_take_over(rt, w);
	crew__idle_end_search(rt, w, t != NULL);
	return t;
}

/* ---- running a task ---- */

/* Settle the state of the task that just switched back to the scheduler. */
static void worker_after_switch(crew__worker *w, crew_task *t)
{
	uint32_t s, n;
	switch (w->switch_reason) {
	case CREW_SWITCH_EXIT:
		crew__stack_put(w, w->dead_stack);
		w->dead_stack = NULL;
		return;
	case CREW_SWITCH_YIELD:
		worker_yield_list_append(w, t); /* stays RUNNING, see above */
		return;
	case CREW_SWITCH_SUSPEND:
		/* Only now, with the fiber fully switched out, may another worker
		 * resume it: clear RUNNING, or requeue it if a wake came while it
		 * was running (NOTIFIED). Pairs with the CASes in crew__task_wake. */
		s = crew__load_32(&t->state);
		for (;;) {
			if (s & CREW_T_NOTIFIED) {
				n = (s & ~(CREW_T_RUNNING | CREW_T_NOTIFIED)) | CREW_T_SCHEDULED;
				if (crew__cas_32(&t->state, &s, n)) {
					crew__worker_enqueue(w, t);
					return;
				}
			} else if (crew__cas_32(&t->state, &s, s & ~CREW_T_RUNNING)) {
				return;
			}
		}
	}
}

/* A popped (SCHEDULED) task becomes RUNNING; the first time, it gets a
 * stack. When no stack can be had, the caller switches to the worker's
 * parking fiber instead, which queues t to wait for a stack and returns to
 * the scheduler (stack_starve.c). */
static void worker_prepare(crew__worker *w, crew_task *t)
{
	crew__faa_32(&t->state, CREW_T_RUNNING - CREW_T_SCHEDULED); /* one bit moves */
	if (!t->fiber) {
		crew__stack *s = crew__stack_get(w);
		if (CREW_UNLIKELY(!s)) {
			crew__store_ptr(&t->fiber, crew__stack_park_fiber(w, t));
			return;
		}
		crew__stack_attach(t, s);
	}
}

/*
 * crew_yield: switch straight to the next local task, without a trip
 * through the scheduler: the next task is the LIFO slot, the deque's bottom,
 * else the head of the yield list; the yielding task goes to the tail of the
 * yield list. Every CREW_FAIR_TICK-th yield, when tasks wait in the due
 * queue, or when nothing else is runnable here, it goes through the
 * scheduler instead, and asks for its fairness pick (fair_due): timers,
 * completions and the inject queue are served however many tasks keep
 * yielding here, and yielded tasks become stealable.
 */
void crew__worker_yield(crew__worker *w, crew_task *t)
{
	crew_task *n = NULL;
	if (CREW_LIKELY(++w->tick % CREW_FAIR_TICK != 0)) {
		if (crew__load_ptr(&w->lifo) && (n = crew__fas_ptr(&w->lifo, NULL))) {
			worker_prepare(w, n);
		} else if (!crew__deque_empty(&w->deque) && (n = crew__deque_pop(&w->deque))) {
			worker_prepare(w, n);
		} else if (crew__load_32(&w->due_len) == 0 && (n = w->yield_head)) {
			/* already RUNNING: no atomics */
			w->yield_head = n->next;
			if (!w->yield_head)
				w->yield_tail = NULL;
		}
	} else {
		w->fair_due = true;
	}
	if (!n) {
		w->switch_reason = CREW_SWITCH_YIELD;
		crew__fiber_switch(t->fiber, &w->sched, false);
		return;
	}
	/* t's fiber is switched out before anyone can pick it from the private
	 * yield list: only this worker's code does, after this switch. Its
	 * frames are shared as at a switch to the scheduler (worker_run); we
	 * are still on t's fiber, its deque's owner (w->fq is t's deque here,
	 * unlike in worker_run, where it may name a fiber that has since
	 * resumed on another worker). */
	/* its forks into crew_stats, as at a switch to the scheduler */
	crew__fq_count_forks(w, w->fq);
	if (w->fq && crew__fq_share_all(w->fq))
		crew__fq_park(w, w->fq);
	worker_yield_list_append(w, t);
	w->current = n;
	crew__fq_publish(w, n->fiber);
	crew__fiber_switch(t->fiber, n->fiber, false);
}

/* q, pushed out of parked_fq with frames still shared, goes on w's
 * stranded list, unless it is on some worker's list already: the flag, set
 * by CAS, makes us the only writer of q's link until a walk of our list
 * unlinks q and clears it (fork.c, fq_stranded_walk). A deque that a thief
 * is dropping from its list just now is left to that thief, which looks
 * again after it cleared the flag: a miss would cost parallelism only, as
 * every frame runs at its sync at the latest. Deques live until crew_run
 * returns, so a listed one is never freed. */
static void fq_strand(crew__worker *w, crew__fq *q)
{
	uint32_t off = 0;
	if (crew__load_32(&q->stranded) || !crew__cas_32(&q->stranded, &off, 1))
		return;
	crew__spin_lock(&w->stranded_lock);
	q->stranded_next = w->stranded;
	/* relaxed: the lock orders the link for thieves; the load without it
	 * is a hint */
	crew__store_ptr(&w->stranded, q);
	crew__spin_unlock(&w->stranded_lock);
}

void crew__fq_park(crew__worker *w, crew__fq *q)
{
	/* a fiber that suspends again with the same frames still shared: its
	 * deque is there already (a second entry would push another out) */
	bool there = false;
	for (unsigned i = 0; i < CREW_PARKED_FQ && !there; i++)
		there = crew__load_ptr(&w->parked_fq[i]) == q;
	if (!there) {
		/* an entry with nothing shared left is free; else the oldest
		 * goes, to the stranded list (thieves look there last), so
		 * that no shared frame is ever out of sight */
		unsigned slot = w->parked_next % CREW_PARKED_FQ;
		for (unsigned i = 0; i < CREW_PARKED_FQ; i++) {
			crew__fq *p = crew__load_ptr(&w->parked_fq[i]);
			if (!p || !crew__fq_has_shared(p)) {
				slot = i;
				break;
			}
		}
		crew__fq *old = crew__load_ptr(&w->parked_fq[slot]);
		if (slot == w->parked_next % CREW_PARKED_FQ)
			w->parked_next++;
		if (old && crew__fq_has_shared(old))
			fq_strand(w, old);
		/* release: the deque's fields first; pairs with
		 * crew__frame_steal's acquire. Thieves look there after w->fq
		 * has moved on. */
		crew__store_release_ptr(&w->parked_fq[slot], q);
	}
	crew__idle_notify(crew__rt);
}

static void worker_run(crew__worker *w, crew_task *t)
{
	worker_prepare(w, t);
	w->current = t;
	crew__fq_publish(w, t->fiber);
	crew__fiber_switch(&w->sched, t->fiber, false);
	crew__stack_after_switch(w); /* canaries of stacks without guard page */
	/* the forks of the fiber that switched back (still ours: RUNNING) */
	crew__fq_count_forks(w, w->fq);
	/* it suspended or yielded with frames nobody could steal: share them
	 * (a yield straight to the next task does it in crew__worker_yield).
	 * w->fq is the deque of the fiber that just switched back: nobody can
	 * resume it before worker_after_switch below. */
	if (CREW_UNLIKELY(w->fq != NULL) && crew__fq_share_all(w->fq))
		crew__fq_park(w, w->fq);
	/* back on the scheduler: the task that switched is w->current (t, or a
	 * child t was running inline) */
	crew_task *cur = w->current;
	w->current = NULL;
	/* What the tasks submitted goes to the kernel at the next poll, in one
	 * batch, or now when many wait (reactor.h) */
	crew__reactor_flush_batch(&w->reactor);
	worker_after_switch(w, cur);
}

/* ---- termination ---- */

/* How many tasks ever spawned have not finished (0: none is left). Reads all
 * `finished` counters before all `spawned` ones (acquire): a task's spawn
 * happens before its finish, so every finish we count has its spawn counted
 * too, and 0 really means none is left. */
int64_t crew__tasks_unfinished(crew__runtime *rt)
{
	int64_t fin = 0, spawned = 0;
	for (unsigned i = 0; i < rt->nworkers; i++)
		fin += crew__load_acquire_64(&rt->workers[i].finished);
	spawned = (int64_t)crew__load_acquire_u64(&rt->ext_spawned);
	for (unsigned i = 0; i < rt->nworkers; i++)
		spawned += crew__load_acquire_64(&rt->workers[i].spawned);
	return spawned - fin;
}

/* Park; an idle worker also gives stack memory back, at most once per
 * CREW_TRIM_NS (a trim costs TLB shoot-downs on every core: not something to
 * do each time a worker runs dry for a moment). */
static void worker_park(crew__runtime *rt, crew__worker *w)
{
	uint64_t wake_at = crew__timer_next(&w->timers);
	if (w->watch_until < wake_at)
		wake_at = w->watch_until; /* come back to look at a busy worker */
	if (w->stack_free_count > CREW_STACK_HOT) {
		uint64_t now = crew_now();
		if (now >= w->trim_at) {
			crew__stack_trim(w, CREW_STACK_HOT);
			w->trim_at = now + CREW_TRIM_NS;
		} else if (w->trim_at < wake_at) {
			wake_at = w->trim_at; /* come back to trim if still idle */
		}
	}
	/* Tasks wait for a stack: ours, idle here, go to them (stack_starve.c) */
	if (CREW_UNLIKELY(crew__stack_pressure(rt)))
		crew__stack_feed_starved(w, 0);
	uint64_t t0 = crew_now();
	crew__idle_park(rt, w, wake_at);
	crew__stat_inc(&w->stats.parks);
	crew__stat_add(&w->stats.idle_ns, crew_now() - t0);
}

static void worker_loop(crew__worker *w)
{
	crew__runtime *rt = crew__rt;
	for (;;) {
		crew_task *t = worker_next(w);
		if (!t) {
			/* relaxed: read by others as a hint (crew__worker_keeps_up) */
			crew__store_64((int64_t *)&w->dry_at, (int64_t)crew_now());
			t = worker_search(w);
		}
		if (!t && w->yield_head)
			t = worker_take_yielded(w); /* the lone yielder, after a search */
		if (t) {
			worker_run(w, t);
			continue;
		}
		if (crew__load_32(&rt->stop))
			return;
		if (crew__load_32(&rt->shutdown) && crew__runtime_try_stop(rt))
			return; /* run.c: agrees with late plain-thread spawns */
		worker_park(rt, w);
	}
}

void *crew__worker_main(void *arg)
{
	crew__worker *w = arg;
	crew__tls_worker = w;
	crew__fiber_init_thread(&w->sched);
	crew__reactor_start(&w->reactor);
	w->trim_at = crew_now() + CREW_TRIM_NS;
	w->watch_until = UINT64_MAX;
	/* no memory for it: this worker just does not take over others' work */
	w->watch = calloc(crew__rt->nworkers, sizeof(*w->watch));
	/* Without an alternate signal stack an overflow still kills the process,
	 * only without crew's message; overflow.c said why on stderr. */
	(void)crew__overflow_thread_init(w);
	worker_loop(w);
	free(w->watch);
	w->watch = NULL;
	crew__stack_drop_all(w);
	crew__overflow_thread_fini(w);
	crew__store_ptr(&w->fq, NULL);
	crew__store_ptr(&crew__tls_fq, NULL);
	crew__tls_worker = NULL;
	return NULL;
}
