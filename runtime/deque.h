/*
 * deque.h - the per-worker work-stealing deque (Chase-Lev, fixed capacity).
 *
 * Overview
 *   A ring of task pointers indexed by two counters: `top` (thieves take from
 *   here, oldest task) and `bottom` (the owner pushes and pops here, newest
 *   task: LIFO, cache-warm). Elements live in [top, bottom).
 *   - crew__deque_push / crew__deque_pop: owner thread only.
 *   - crew__deque_steal: any thread.
 *   Invariant: a task pointer is returned by exactly one of pop/steal. The owner
 *   and the thieves only race for the last element; both settle it with a CAS
 *   on `top`. Capacity is fixed: push fails when full and the caller moves half
 *   of the deque to the global inject queue (worker.c).
 *   Steal-half is a loop of single steals done by the thief (worker.c): a
 *   batched CAS of top by k is unsafe against an owner that pops without CAS.
 *
 * Orderings (after Le, Pop, Cohen, Zappa Nardelli, PPoPP 2013):
 *   push: slot store, then release store of bottom -> pairs with the thief's
 *     acquire load of bottom, so a thief that sees the new bottom sees the slot
 *     and everything written to the task before it was pushed.
 *   pop: bottom-1 is published with a full barrier (xchg) before top is read:
 *     with the thief's fence between its loads of top and bottom, either the
 *     thief sees the decremented bottom or the owner sees the thief's new top.
 *   steal: CAS on top claims the element; the slot was read before the CAS,
 *     and a failed CAS discards it.
 */
#ifndef CREW_DEQUE_H
#define CREW_DEQUE_H

#include "atomics.h"
#include <stddef.h>

struct crew_task;

#define CREW_DEQUE_CAP 8192u /* power of two */

typedef struct crew__deque {
	int64_t top __attribute__((aligned(64)));        /* thieves CAS it */
	int64_t bottom __attribute__((aligned(64)));     /* owner writes it */
	struct crew_task **slots;                        /* CREW_DEQUE_CAP entries */
} crew__deque;

int crew__deque_init(crew__deque *d);
void crew__deque_fini(crew__deque *d);

/* Owner only. false when full. */
static inline bool crew__deque_push(crew__deque *d, struct crew_task *t)
{
	int64_t b = crew__load_64(&d->bottom); /* only the owner writes bottom */
	int64_t top = crew__load_acquire_64(&d->top);
	if (b - top >= (int64_t)CREW_DEQUE_CAP)
		return false;
	crew__store_ptr(&d->slots[b & (CREW_DEQUE_CAP - 1)], t);
	/* release: the slot (and the task's fields) before the new bottom */
	crew__store_release_64(&d->bottom, b + 1);
	return true;
}

/* Owner only: the newest task, or NULL. */
static inline struct crew_task *crew__deque_pop(crew__deque *d)
{
	int64_t b = crew__load_64(&d->bottom) - 1;
	/* full barrier: the decremented bottom is visible before we read top,
	 * pairs with the fence in crew__deque_steal */
	crew__fas_64(&d->bottom, b);
	int64_t top = crew__load_64(&d->top);
	if (top > b) { /* empty: undo */
		crew__store_64(&d->bottom, b + 1);
		return NULL;
	}
	struct crew_task *t = crew__load_ptr(&d->slots[b & (CREW_DEQUE_CAP - 1)]);
	if (top == b) { /* the last element: race the thieves for it */
		if (!crew__cas_64(&d->top, top, top + 1))
			t = NULL;
		crew__store_64(&d->bottom, b + 1);
	}
	return t;
}

/* Owner only: true when empty, without the pop's barrier (a thief may empty
 * it meanwhile, never fill it). */
static inline bool crew__deque_empty(crew__deque *d)
{
	return crew__load_64(&d->bottom) <= crew__load_acquire_64(&d->top);
}

/* Owner only: the task the next pop would return, without taking it. */
static inline struct crew_task *crew__deque_peek(crew__deque *d)
{
	int64_t b = crew__load_64(&d->bottom) - 1;
	if (crew__load_acquire_64(&d->top) > b)
		return NULL;
	return crew__load_ptr(&d->slots[b & (CREW_DEQUE_CAP - 1)]);
}

/* Owner only: the oldest task (the next steal's), without taking it. */
static inline struct crew_task *crew__deque_peek_top(crew__deque *d)
{
	int64_t top = crew__load_acquire_64(&d->top);
	if (top >= crew__load_64(&d->bottom))
		return NULL;
	return crew__load_ptr(&d->slots[top & (CREW_DEQUE_CAP - 1)]);
}

#define CREW_STEAL_EMPTY ((struct crew_task *)0)
#define CREW_STEAL_RETRY ((struct crew_task *)1)

/* Any thread: the oldest task; CREW_STEAL_EMPTY, or CREW_STEAL_RETRY when it
 * lost a race (the deque may still hold work). */
static inline struct crew_task *crew__deque_steal(crew__deque *d)
{
	int64_t top = crew__load_acquire_64(&d->top);
	/* seq_cst fence: pairs with the owner's xchg in pop (see Overview) */
	crew__fence();
	int64_t b = crew__load_acquire_64(&d->bottom);
	if (top >= b)
		return CREW_STEAL_EMPTY;
	struct crew_task *t = crew__load_ptr(&d->slots[top & (CREW_DEQUE_CAP - 1)]);
	if (!crew__cas_64(&d->top, top, top + 1))
		return CREW_STEAL_RETRY;
	return t;
}

/* Owner only: take up to `max` of the oldest tasks (leaving at least one)
 * into out[] with a single CAS on top; returns how many. Safe against
 * thieves (they CAS the same top) and against the owner's pop, which cannot
 * run meanwhile: this is the owner. */
static inline unsigned crew__deque_take_oldest(crew__deque *d, struct crew_task **out, unsigned max)
{
	for (;;) {
		int64_t top = crew__load_acquire_64(&d->top);
		int64_t b = crew__load_64(&d->bottom);
		int64_t k = b - top - 1;
		if (k <= 0)
			return 0;
		if (k > (int64_t)max)
			k = max;
		for (int64_t i = 0; i < k; i++)
			out[i] = crew__load_ptr(&d->slots[(top + i) & (CREW_DEQUE_CAP - 1)]);
		if (crew__cas_64(&d->top, top, top + k))
			return (unsigned)k;
	}
}

/* Any thread: an estimate (exact for the owner when no thief is active). */
static inline int64_t crew__deque_size(crew__deque *d)
{
	int64_t b = crew__load_acquire_64(&d->bottom);
	int64_t top = crew__load_acquire_64(&d->top);
	return b > top ? b - top : 0;
}

#endif /* CREW_DEQUE_H */
