/*
 * timer.h - a worker's sleeping tasks, ordered by deadline.
 *
 * Two structures, merged at expiry: a FIFO "run" of timers whose deadlines
 * arrived in non-decreasing order (the common case: many tasks sleeping the
 * same duration), which costs O(1) to add and to expire, and a binary
 * min-heap for the timers that arrived out of order.
 *
 * Owner-only: a worker adds timers for tasks that suspend on it and expires
 * them itself; no locking. Equal deadlines keep their insertion order (the
 * `order` tie-break), so timers that come due together wake in deadline order,
 * then in the order they were set, as asyncio's do.
 * An entry does not own its task: it carries the wait's sequence number.
 * A task's wait_seq equals `seq` while the wait is armed
 * (crew__timer_arm). Exactly one side moves it on to seq + 1 with a CAS:
 * the expiring worker (the timer fired: it then wakes the task), or the task
 * leaving the wait early (crew__timer_disarm). An entry whose CAS fails is
 * stale and is dropped. So the task learns that its deadline passed without
 * reading the clock, and a timer never fires into a later wait.
 */
#ifndef CREW_TIMER_H
#define CREW_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct crew_task;

typedef struct crew__timer {
	uint64_t deadline;
	uint64_t order;
	struct crew_task *task;
	uint32_t wait_seq;
} crew__timer;

typedef struct crew__timer_heap {
	crew__timer *v;          /* the heap */
	size_t n, cap;
	crew__timer *run;        /* the sorted run: a ring of run_cap entries */
	size_t run_head, run_len, run_cap;
	uint64_t next_order;
} crew__timer_heap;

int crew__timer_add(crew__timer_heap *h, uint64_t deadline, struct crew_task *t, uint32_t seq);
/* Earliest deadline, or UINT64_MAX when empty. */
static inline uint64_t crew__timer_next(const crew__timer_heap *h)
{
	uint64_t a = h->n ? h->v[0].deadline : UINT64_MAX;
	uint64_t b = h->run_len ? h->run[h->run_head].deadline : UINT64_MAX;
	return a < b ? a : b;
}
/* Pop up to `max` timers due at `now`, earliest first, into out[]. */
size_t crew__timer_expire(crew__timer_heap *h, uint64_t now, crew__timer *out, size_t max);
void crew__timer_fini(crew__timer_heap *h);

#endif
