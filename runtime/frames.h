/*
 * frames.h - the frame deque of strictly nested fork-join (crew_fork/sync).
 *
 * Overview
 *   A frame (crew_frame, on the forking function's stack) is pushed on the
 *   frame deque of the fiber that forks: one deque per fiber stack, allocated
 *   the first time a task on that stack forks and kept with the stack (a task
 *   may suspend between fork and sync and resume on another worker: its
 *   frames travel with its fiber). The worker running a fiber publishes that
 *   fiber's deque in w->fq, where thieves look for it.
 *
 *   Slots are indexed by three monotonic counters (Lace's split deque):
 *     [head, split)    shared: thieves may take the oldest (head) with a CAS
 *     [split, bottom)  private: only the owner (whoever runs the fiber) sees it
 *   - owner: push at bottom and pop from the private part with plain stores;
 *     no fence, no atomic read-modify-write (crew__fq_push, crew__fq_pop).
 *   - thief: crew__fq_steal. A thief that finds the shared part empty sets
 *     its victim worker's `splitreq`; the owner reads that flag at its next
 *     fork and then shares half of its private frames (crew__fq_share).
 *   - owner popping a frame in the shared part (fork.c, sync_shared): it
 *     moves split down to that frame, fences, and reads head; the last
 *     shared frame is settled with a CAS on head, as in Chase-Lev.
 *   Invariant: head <= split <= bottom, bottom - head <= CREW_FQ_CAP; each
 *   pushed frame is taken by exactly one of the owner's pop or a steal.
 *   When the owner finds the frame it syncs stolen, every older frame was
 *   stolen too (thieves take the oldest first): the deque is then empty,
 *   bottom = split = head, and bottom stays above the indices of those older
 *   frames; their syncs pop "index bottom - 1", find head above it, and wait
 *   for their thieves, which is right for each of them. The
 *   counters never go back, so a thief holding a stale head (the deque may
 *   have passed to another fiber since: stacks are reused) fails its CAS.
 *   Deques are freed only when crew_run ends: a pointer read from w->fq is
 *   always valid memory.
 *
 * Orderings
 *   share: slots and frames written, then release store of split -> pairs
 *     with the thief's acquire load of split: a thief that sees the frame
 *     shared sees its fn and arg.
 *   owner shrink / thief steal: the owner stores split then fences (seq_cst)
 *     then reads head; the thief reads head, fences, reads split. With both
 *     fences either the thief sees the lowered split (and backs off) or the
 *     owner sees the thief's head (and settles the last frame by CAS).
 *   frame result: the thief stores the result, then exchanges the frame's
 *     `waiter` with CREW_FRAME_DONE (full barrier) -> pairs with the owner's
 *     acquire load (or CAS) of `waiter` in crew_sync.
 */
#ifndef CREW_FRAMES_H
#define CREW_FRAMES_H

#include "atomics.h"
#include <stdint.h>

#define CREW_FQ_CAP 512u /* frames outstanding per fiber; power of two */

struct crew_task;
typedef struct crew__fq crew__fq;

/* The private layout of crew_frame (crew.h). */
typedef struct crew__frame {
	void *(*fn)(void *);
	void *arg;
	void *result;
	crew__fq *q;               /* NULL: not in a deque, sync runs fn inline */
	struct crew_task *waiter;  /* atomic: NULL, the syncing task, or CREW_FRAME_DONE */
	uint32_t depth;            /* CREW_DEBUG: the forking task's outstanding forks */
} crew__frame;
#define CREW_FRAME_DONE ((struct crew_task *)1)

struct crew__fq {
	int64_t head __attribute__((aligned(64))); /* thieves CAS it */
	int64_t split __attribute__((aligned(64))); /* owner stores, thieves load */
	/* owner only: whoever runs the fiber; handed over with the fiber */
	int64_t bottom __attribute__((aligned(64)));
	int64_t o_split;   /* the owner's copy of split (only the owner writes it) */
	int64_t head_seen; /* head at some past moment: head only grows */
	crew__fq *all_next; /* the allocating worker's list, freed at the end */
	crew__frame *slots[CREW_FQ_CAP];
};

/* Owner only: push f; false when full (head_seen is refreshed first). */
static inline bool crew__fq_push(crew__fq *q, crew__frame *f)
{
	int64_t b = q->bottom;
	if (__builtin_expect(b - q->head_seen >= (int64_t)CREW_FQ_CAP, 0)) {
		q->head_seen = crew__load_64(&q->head); /* relaxed: a bound only */
		if (b - q->head_seen >= (int64_t)CREW_FQ_CAP)
			return false;
	}
	/* relaxed: a stale thief may read the slot (its CAS then fails) */
	crew__store_ptr(&q->slots[b & (CREW_FQ_CAP - 1)], f);
	q->bottom = b + 1;
	return true;
}

/* Owner only: share the older half of the private frames. */
static inline bool crew__fq_share(crew__fq *q)
{
	int64_t s = q->o_split, b = q->bottom;
	if (b <= s)
		return false;
	s += (b - s + 1) / 2;
	q->o_split = s;
	/* release: the slots and frames below s before thieves see them shared;
	 * pairs with the acquire load of split in crew__fq_steal */
	crew__store_release_64(&q->split, s);
	return true;
}

#define CREW_FQ_EMPTY ((crew__frame *)0)
#define CREW_FQ_RETRY ((crew__frame *)1)

/* Any thread: the oldest shared frame, CREW_FQ_EMPTY (nothing shared), or
 * CREW_FQ_RETRY (lost a race: there may be more). */
static inline crew__frame *crew__fq_steal(crew__fq *q)
{
	int64_t h = crew__load_acquire_64(&q->head);
	/* seq_cst fence: pairs with the owner's fence after it lowered split
	 * (fork.c, sync_shared), see Orderings */
	crew__fence();
	int64_t s = crew__load_acquire_64(&q->split);
	if (h >= s)
		return CREW_FQ_EMPTY;
	crew__frame *f = crew__load_ptr(&q->slots[h & (CREW_FQ_CAP - 1)]);
	/* full barrier (cas): claims slot h; a failed CAS discards f */
	if (!crew__cas_64(&q->head, h, h + 1))
		return CREW_FQ_RETRY;
	return f;
}

#endif /* CREW_FRAMES_H */
