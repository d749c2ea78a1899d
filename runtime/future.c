/*
 * future.c - one-shot values awaited by tasks and threads.
 *
 * Overview
 *   state: EMPTY -> SET, once (under the lock, published with release so a
 *   lock-free reader of SET also sees `value`).
 *   Task waiters: a node on the waiting task's stack, in a doubly-linked list
 *   under the future's lock. crew_future_set, holding the lock, detaches the
 *   list and for each node reads its task, then stores `fired` (release), and
 *   never touches the node again: the waiter may return as soon as it sees
 *   `fired` (acquire), without the lock, and its stack frame may go. The wake
 *   comes after: it may land on a task that already went on (a spurious wake,
 *   harmless, see task.c). A waiter that leaves early (cancelled, timed out)
 *   takes the lock and unlinks its own node, unless it fired meanwhile.
 *   Shutdown finds tasks blocked on futures by walking all tasks (run.c).
 *   Thread waiters: plain threads block on the state word with a futex;
 *   `thread_waiters` tells set() whether a FUTEX_WAKE is needed (Dekker pair:
 *   set stores state then fences then reads the count; a thread increments
 *   the count, then reads the state).
 */
#include "internal.h"
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { FUTURE_EMPTY = 0, FUTURE_SET = 1 };

typedef struct crew__future_waiter crew__future_waiter;

struct crew__future_waiter {
	crew__future_waiter *prev, *next; /* on the future, under its lock */
	crew_task *task;
	uint32_t fired;                   /* atomic: set() is done with the node */
};

struct crew_future {
	uint32_t state;          /* atomic */
	uint32_t thread_waiters; /* atomic */
	void *value;
	pthread_mutex_t lock;
	crew__future_waiter *waiters;
};

crew_future *crew_future_new(void)
{
	crew_future *f = calloc(1, sizeof(*f));
	if (!f) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&f->lock, NULL);
	return f;
}

void crew_future_release(crew_future *f)
{
	if (!f)
		return;
	pthread_mutex_destroy(&f->lock);
	free(f);
}

bool crew_future_done(crew_future *f)
{
	return f && crew__load_acquire_32(&f->state) == FUTURE_SET;
}

int crew_future_set(crew_future *f, void *value)
{
	if (!f)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	if (f->state == FUTURE_SET) {
		pthread_mutex_unlock(&f->lock);
		return -EALREADY;
	}
	f->value = value;
	/* release: value before SET, for crew_future_done and lock-free readers */
	crew__store_release_32(&f->state, FUTURE_SET);
	crew__future_waiter *n = f->waiters;
	f->waiters = NULL;
	while (n) {
		crew__future_waiter *next = n->next;
		crew_task *t = n->task;
		/* release: our reads of the node happen before the waiter, seeing
		 * fired, lets its stack frame go */
		crew__store_release_32(&n->fired, 1);
		crew__task_wake(t);
		n = next;
	}
	pthread_mutex_unlock(&f->lock);
	/* store->load: SET before reading thread_waiters; pairs with the
	 * increment in future_thread_wait */
	crew__fence();
	if (crew__load_32(&f->thread_waiters))
		syscall(SYS_futex, &f->state, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
	return 0;
}

static int future_task_wait(crew_future *f, crew_task *self, uint64_t deadline)
{
	if (crew__task_cancelled(self))
		return -ECANCELED;
	crew__future_waiter node = { .task = self };
	pthread_mutex_lock(&f->lock);
	if (f->state == FUTURE_SET) {
		pthread_mutex_unlock(&f->lock);
		return 0;
	}
	node.next = f->waiters;
	if (f->waiters)
		f->waiters->prev = &node;
	f->waiters = &node;
	pthread_mutex_unlock(&f->lock);

	uint32_t seq = 0;
	if (deadline != UINT64_MAX) {
		crew__worker *w = crew__worker_current();
		seq = crew__timer_arm(self);
		if (crew__timer_add(&w->timers, deadline, self, seq) != 0)
			deadline = 0; /* no memory for the timer: time out at once */
	}
	int rc;
	for (;;) {
		if (crew__load_acquire_32(&node.fired)) {
			rc = 0;
			break;
		}
		if (crew__task_cancelled(self)) {
			rc = -ECANCELED;
			break;
		}
		if (deadline != UINT64_MAX && (crew__timer_fired(self, seq) || deadline == 0)) {
			rc = -ETIMEDOUT;
			break;
		}
		crew__task_suspend(self);
	}
	if (rc != 0) { /* leaving early: unlink, unless set() got there first */
		pthread_mutex_lock(&f->lock);
		if (crew__load_32(&node.fired)) {
			rc = 0; /* set won the race: take the value */
		} else {
			if (node.prev)
				node.prev->next = node.next;
			else
				f->waiters = node.next;
			if (node.next)
				node.next->prev = node.prev;
		}
		pthread_mutex_unlock(&f->lock);
	}
	if (deadline != UINT64_MAX)
		crew__timer_disarm(self, seq); /* its entry, if still queued, goes stale */
	return rc;
}

static int future_thread_wait(crew_future *f, uint64_t deadline)
{
	crew__faa_32(&f->thread_waiters, 1); /* full barrier: pairs with set's fence */
	int rc = 0;
	while (crew__load_acquire_32(&f->state) != FUTURE_SET) {
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
		/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline */
		syscall(SYS_futex, &f->state, FUTEX_WAIT_BITSET_PRIVATE, FUTURE_EMPTY, tp, NULL,
			FUTEX_BITSET_MATCH_ANY);
	}
	crew__faa_32(&f->thread_waiters, (uint32_t)-1);
	return rc;
}

int crew_future_await_until(crew_future *f, uint64_t deadline_ns, void **value)
{
	if (!f)
		return -EINVAL;
	int rc = 0;
	if (crew__load_acquire_32(&f->state) != FUTURE_SET) {
		crew_task *self = crew_self();
		rc = self ? future_task_wait(f, self, deadline_ns) : future_thread_wait(f, deadline_ns);
	}
	if (rc == 0 && value)
		*value = f->value;
	return rc;
}

int crew_future_await(crew_future *f, void **value)
{
	return crew_future_await_until(f, UINT64_MAX, value);
}
