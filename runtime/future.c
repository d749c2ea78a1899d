/*
 * future.c - one-shot values awaited by tasks and threads.
 *
 * Overview
 *   state: one atomic word, EMPTY -> SET once; while EMPTY, bit LOCKED is a
 *   spinlock guarding `waiters` (a doubly-linked list of nodes that live in
 *   the waiters' own frames). SET is final and can never be locked.
 *
 *   crew_future_set: lock, store `value`, detach the waiter list, then one
 *   release store of SET, which unlocks and publishes in the same instant.
 *   That store is set's last access to the future: whoever sees SET (an
 *   awaiter returning, crew_future_done) may release it at once, whatever the
 *   setter's thread does next. Then set fires the detached nodes: for each it
 *   reads the node's task (or futex word), stores `fired` (release) and does
 *   not touch the node again, so the waiter's frame may go as soon as it sees
 *   `fired`; then it wakes the task (a spurious wake if the task went on: task
 *   memory outlives it, task.c) or FUTEX_WAKEs the thread.
 *
 *   A plain thread that sets holds the runtime's gate (run.c) while it fires,
 *   so that crew_run cannot free the memory of a task it is still waking.
 *
 *   Waiters: a task or plain thread locks, links its node, unlocks, and
 *   suspends (task) or FUTEX_WAITs on the node's `fired` (thread) until it
 *   fires. A waiter leaving early (cancelled, timed out) locks and unlinks its
 *   node; if the lock cannot be had because the future is SET, the setter
 *   owns the node and is about to fire it: the waiter waits for `fired` and
 *   takes the value (completion wins, see crew.h).
 */
#include "wait.h"
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { FUTURE_EMPTY = 0, FUTURE_LOCKED = 1, FUTURE_SET = 2 };

typedef struct crew__future_waiter crew__future_waiter;

struct crew__future_waiter {
	crew__future_waiter *prev, *next; /* on the future, under its lock */
	crew_task *task;                  /* NULL: a plain thread */
	uint32_t seq;                     /* the task's wait (wait.h) */
	uint32_t fired;                   /* atomic: set() is done with the node */
};

struct crew_future {
	uint32_t state; /* atomic: EMPTY, EMPTY|LOCKED, SET */
	void *value;
	crew__future_waiter *waiters;
};

crew_future *crew_future_new(void)
{
	crew_future *f = calloc(1, sizeof(*f));
	if (!f)
		errno = ENOMEM;
	return f;
}

void crew_future_release(crew_future *f)
{
	free(f);
}

bool crew_future_done(crew_future *f)
{
	/* acquire: pairs with set's release store; value is visible after */
	return f && crew__load_acquire_32(&f->state) == FUTURE_SET;
}

/* Take the lock; false (without it) once the future is SET. The critical
 * sections are a few stores; a holder that was preempted is waited out with
 * sched_yield. */
static bool future_lock(crew_future *f)
{
	unsigned spins = 0;
	/* acquire: a caller that finds SET goes on to read `value` */
	uint32_t s = crew__load_acquire_32(&f->state);
	for (;;) {
		if (s == FUTURE_SET)
			return false;
		/* full barrier (cas): the critical section stays after it */
		if (s == FUTURE_EMPTY && crew__cas_32(&f->state, &s, FUTURE_LOCKED))
			return true;
		crew__spin_wait(&spins);
		s = crew__load_acquire_32(&f->state);
	}
}

static void future_unlock(crew_future *f)
{
	/* release: the list changes before the lock is seen free */
	crew__store_release_32(&f->state, FUTURE_EMPTY);
}

static void future_link(crew_future *f, crew__future_waiter *n)
{
	n->prev = NULL;
	n->next = f->waiters;
	if (f->waiters)
		f->waiters->prev = n;
	f->waiters = n;
}

static void future_unlink(crew_future *f, crew__future_waiter *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		f->waiters = n->next;
	if (n->next)
		n->next->prev = n->prev;
}

static long futex(uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, word, op, val, ts, NULL, FUTEX_BITSET_MATCH_ANY);
}

/* Fire the nodes of a detached list (set's second half; f may be gone). */
static void future_fire(crew__future_waiter *n)
{
	while (n) {
		crew__future_waiter *next = n->next;
		crew_task *t = n->task;
		uint32_t seq = n->seq;
		uint32_t *word = &n->fired;
		/* release: our reads of the node happen before the waiter, seeing
		 * fired, lets its frame go */
		crew__store_release_32(word, 1);
		/* Settle the wait (or find it settled by its timer or a cancel:
		 * the waiter then looks for `fired`, so wake it all the same). */
		if (t) {
			crew__wait_settle(t, seq, CREW_WAIT_DONE);
			crew__task_wake(t);
		}
		else /* the thread may have returned already: at worst a spurious
		      * wake of whatever waits on that stack address next */
			futex(word, FUTEX_WAKE_PRIVATE, 1, NULL);
		n = next;
	}
}

int crew_future_set(crew_future *f, void *value)
{
	if (!f)
		return -EINVAL;
	if (!future_lock(f))
		return -EALREADY;
	f->value = value;
	crew__future_waiter *list = f->waiters;
	f->waiters = NULL;
	/* release: value and the detached list before SET; unlocks too. The
	 * last access to f (see Overview). */
	crew__store_release_32(&f->state, FUTURE_SET);
	if (!list)
		return 0;
	/* A plain thread may be the last one to touch a waiting task (the wake
	 * after `fired`): inside the gate, crew_run cannot free task memory
	 * under it. A task waiter has not finished before its node fires, so
	 * the runtime is still running and the enter succeeds. */
	crew__runtime *gated = crew__worker_current() ? NULL : crew__ext_enter();
	future_fire(list);
	if (gated)
		crew__ext_leave();
	return 0;
}

/* A task waits; the node and the wait record are in this frame. The wait
 * is armed before the node is linked (the setter reads its seq under the
 * lock). */
static int future_task_wait(crew_future *f, crew__worker *w, crew_task *self, uint64_t deadline)
{
	crew__future_waiter node = { .task = self };
	crew__wait wt;
	int rc = crew__wait_begin(&wt, w, self, deadline);
	if (rc)
		return rc; /* -ENOMEM: nothing armed, nothing linked */
	node.seq = wt.seq;
	if (!future_lock(f)) {
		crew__wait_end(&wt);
		return 0;
	}
	future_link(f, &node);
	future_unlock(f);

	uint32_t how = crew__wait_block(&wt);
	rc = how == CREW_WAIT_CANCELLED ? -ECANCELED : how == CREW_WAIT_TIMEDOUT ? -ETIMEDOUT : 0;
	if (rc != 0 && future_lock(f)) { /* leaving early: unlink */
		future_unlink(f, &node);
		future_unlock(f);
	} else {
		/* SET: set owns the node and fires it soon (or did, DONE);
		 * completion wins */
		while (!crew__load_acquire_32(&node.fired)) /* pairs with future_fire */
			crew__task_suspend(self);
		rc = 0;
	}
	crew__wait_end(&wt); /* no timer left behind */
	return rc;
}

/* A plain thread waits on its node's futex word. */
static int future_thread_wait(crew_future *f, uint64_t deadline)
{
	crew__future_waiter node = { .task = NULL };
	if (!future_lock(f))
		return 0;
	future_link(f, &node);
	future_unlock(f);
	int rc = 0;
	while (!crew__load_acquire_32(&node.fired)) { /* pairs with future_fire */
		struct timespec ts, *tp = NULL;
		if (deadline != UINT64_MAX) {
			if (crew_now() >= deadline) {
				rc = -ETIMEDOUT;
				break;
			}
			ts.tv_sec = (time_t)(deadline / 1000000000u);
			ts.tv_nsec = (long)(deadline % 1000000000u);
			tp = &ts;
		}
		/* FUTEX_WAIT_BITSET: an absolute CLOCK_MONOTONIC deadline */
		futex(&node.fired, FUTEX_WAIT_BITSET_PRIVATE, 0, tp);
	}
	if (rc != 0) {
		if (future_lock(f)) {
			future_unlink(f, &node);
			future_unlock(f);
			return rc;
		}
		while (!crew__load_acquire_32(&node.fired))
			futex(&node.fired, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL);
		rc = 0; /* set won the race: take the value */
	}
	return rc;
}

int crew_future_await_until(crew_future *f, uint64_t deadline_ns, void **value)
{
	if (!f)
		return -EINVAL;
	int rc = 0;
	if (crew__load_acquire_32(&f->state) != FUTURE_SET) {
		crew__worker *w = crew__worker_current();
		crew_task *self = w ? w->current : NULL;
		if (self)
			rc = crew__task_cancelled(self) ? -ECANCELED :
							  future_task_wait(f, w, self, deadline_ns);
		else
			rc = future_thread_wait(f, deadline_ns);
	}
	if (rc == 0 && value)
		*value = f->value;
	return rc;
}

int crew_future_await(crew_future *f, void **value)
{
	return crew_future_await_until(f, UINT64_MAX, value);
}
