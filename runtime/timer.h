/*
 * timer.h - a worker's timed waits, ordered by deadline.
 *
 * Overview
 *   A timed wait (sleep, future await with a deadline) puts a crew__timer
 *   node, which lives in the waiting task's own stack frame, into the timer
 *   set of the worker it suspends on. The set is two structures merged at
 *   expiry: a "run", a doubly-linked list of nodes whose deadlines arrived in
 *   non-decreasing order (the common case: many tasks sleeping the same
 *   duration; O(1) to add, expire and remove), and a binary min-heap of node
 *   pointers for those that arrived out of order (O(log n) to add, expire and
 *   remove; each node knows its index). Equal deadlines keep their insertion
 *   order (the `order` tie-break), so timers due together come out in
 *   deadline order, then in the order they were set, as asyncio's do.
 *
 *   A wait that ends early (completed, cancelled) removes its node at once,
 *   so the set holds only live waits: a million waits with a far deadline that
 *   complete at once leave it empty.
 *
 *   Locking: a small spinlock per set. The owner worker adds and expires;
 *   the waiting task removes its own node from whatever worker it runs on by
 *   then; an idle worker expires a busy worker's overdue timers
 *   (work conservation, worker.c). Only the owner adds, so `home` is fixed for
 *   the life of the node.
 *
 *   Settling a wait: the node carries the task and the wait's sequence number.
 *   The task's wait_seq equals `seq` while the wait is armed (crew__timer_arm).
 *   Exactly one side moves it on to seq + 1 with a CAS: the expirer (the
 *   timer fired: it then wakes the task), or the task leaving early
 *   (crew__timer_disarm). Expiry copies task and seq out of the node under the
 *   lock and never touches the node afterwards; a task leaving early first
 *   removes its node under the lock. So the node may live on the task's stack,
 *   a timer never fires into a later wait, and the task learns that its
 *   deadline passed without reading the clock.
 */
#ifndef CREW_TIMER_H
#define CREW_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct crew_task;
struct crew__timer_set;

enum { CREW_TIMER_NONE = -1, CREW_TIMER_RUN = -2 };

typedef struct crew__timer {
	uint64_t deadline;
	uint64_t order;                 /* tie-break: insertion order */
	struct crew_task *task;
	uint32_t wait_seq;
	int32_t where;                  /* heap index, CREW_TIMER_RUN or _NONE (under lock) */
	struct crew__timer *prev, *next; /* the run's links */
	struct crew__timer_set *home;   /* the set it was added to */
} crew__timer;

/* What expiry hands back: enough to settle the wait without the node. */
typedef struct crew__timer_due {
	struct crew_task *task;
	uint32_t wait_seq;
} crew__timer_due;

typedef struct crew__timer_set {
	uint32_t lock;                  /* atomic: 0 free, 1 held */
	uint64_t next;                  /* atomic: earliest deadline, UINT64_MAX: none */
	crew__timer **heap;
	size_t n, cap;
	crew__timer *run_head, *run_tail;
	size_t run_len;
	uint64_t next_order;
} crew__timer_set;

void crew__timer_init(crew__timer_set *s);
/* Add `tm` (owner only). 0, or -ENOMEM when the heap cannot grow. */
int crew__timer_add(crew__timer_set *s, crew__timer *tm, uint64_t deadline,
		    struct crew_task *t, uint32_t seq);
/* Remove `tm` if it is still in its set (any thread). true: removed, so the
 * timer will never fire; false: it was expired already (the expirer settles
 * the wait on wait_seq), or never added. */
bool crew__timer_remove(crew__timer *tm);
/* Earliest deadline, or UINT64_MAX when empty. Any thread (a hint when read
 * by another than the owner). */
uint64_t crew__timer_next(const crew__timer_set *s);
/* Take up to `max` timers due at `now` (all with now == UINT64_MAX), earliest
 * first, into out[]. Any thread. */
size_t crew__timer_expire(crew__timer_set *s, uint64_t now, crew__timer_due *out, size_t max);
/* Live timers in the set (for tests and statistics). */
size_t crew__timer_count(crew__timer_set *s);
void crew__timer_fini(crew__timer_set *s);

#endif
