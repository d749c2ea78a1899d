/*
 * frames.h - the frame deque of strictly nested fork-join (crew_fork/sync).
 *
 * Overview
 *   A frame (crew_frame, on the forking function's stack) is pushed on the
 *   frame deque of the fiber that forks: one deque per fiber stack, allocated
 *   the first time a task on that stack forks and kept with the stack (a task
 *   may suspend between fork and sync and resume on another worker: its
 *   frames travel with its fiber). The worker running a fiber publishes that
 *   fiber's deque in w->fq, where thieves look for it, and in the
 *   thread-local crew__tls_fq, where crew_fork finds it.
 *
 *   Slots are indexed by three monotonic counters (Lace's split deque):
 *     [head, split)    shared: thieves may take the oldest (head) with a CAS
 *     [split, bottom)  private: only the owner (whoever runs the fiber) sees it
 *   - owner: push at bottom and pop from the private part with plain stores;
 *     no fence, no atomic read-modify-write. The common case is inline in
 *     the caller (crew.h: crew__fork_inline, crew__sync_inline); everything
 *     else goes to the exported crew_fork/crew_sync (fork.c), which repeat
 *     the common case (crew__fq_push here, the private pop in crew_sync).
 *     The inline push reads the thread-local so that the caller's compiler
 *     cannot keep another thread's copy across a suspension (internal.h,
 *     TLS hazard): an asm on x86-64; elsewhere it checks that the frame
 *     lies on the deque's stack (stack_lo, stack_span), which only the
 *     running fiber's deque passes. The inline pop checks the stack room
 *     (room, as crew__stack_room). CREW_DEBUG builds set limit to INT64_MIN,
 *     stack_span to 0 and room to the top of the address space: every fork
 *     and sync then goes through fork.c's checks.
 *   - thief: crew__fq_steal. A thief that finds the shared part empty asks
 *     for a share by storing 0 in the deque's `limit` (crew__fq_ask): the
 *     owner's next inline push then fails its bound (one compare serves
 *     both the request and a full deque), the out-of-line crew_fork sees the
 *     request and shares half of its private frames (crew__fq_share) after
 *     putting the bound back (crew__fq_rearm); parallel.c reads the request
 *     between grains. The thief also sets its victim worker's `splitreq`:
 *     the request stands on the worker until a share answers it, and the
 *     worker passes it on to the deque of each fiber it switches to
 *     (crew__fq_publish), so that a request made while the victim was
 *     between fibers, or running one without a deque yet, is not left on a
 *     deque nobody forks on (a thief then parked for nothing: bpc).
 *   - forks: the owner counts pushes in `forks` and adds them to its
 *     worker's crew_stats (crew__fq_count_forks) when the fiber switches
 *     back to the scheduler, before a task's end is published, and when
 *     crew_stats is called from a task.
 *   - owner popping a frame in the shared part (fork.c, sync_shared): it
 *     moves split down to that frame, fences, and reads head; the last
 *     shared frame is settled with a CAS on head, as in Chase-Lev.
 *   Invariant: head <= split <= bottom, bottom - head <= CREW_FQ_CAP
 *   (limit <= head_seen + CREW_FQ_CAP, head_seen <= head); each
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
 *     acquire load (or CAS) of `waiter` in crew_sync. `waiter` is set to
 *     NULL when the frame is shared (before the release store of split),
 *     not at the push: only a shared frame can be stolen.
 */
#ifndef CREW_FRAMES_H
#define CREW_FRAMES_H

#include "atomics.h"
#include "crew.h"
#include <stdint.h>

#define CREW_FQ_CAP CREW__FQ_CAP

struct crew_task;
/* The layouts of crew_frame and of the deque are in crew.h (struct
 * crew__frame, struct crew__fq): its inline fork and sync use them. */
typedef struct crew__fq crew__fq;
typedef struct crew__frame crew__frame;
#define CREW_FRAME_DONE ((struct crew_task *)1)

/* Owner only: push f; false when full (head_seen is refreshed first). The
 * out-of-line twin of crew.h's inline push (crew__fork_inline). */
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
	q->forks++;
	return true;
}

/* limit 0: a thief asks the owner to share (frames.h, Overview). */
#define CREW_FQ_ASKED 0
static inline bool crew__fq_asked(crew__fq *q)
{
	return crew__load_64(&q->limit) == CREW_FQ_ASKED; /* relaxed: a hint */
}
/* Any thread: ask q's owner for a share (read first: no cache-line traffic
 * while a request stands). */
static inline void crew__fq_ask(crew__fq *q)
{
	if (crew__load_64(&q->limit) != CREW_FQ_ASKED)
		crew__store_64(&q->limit, CREW_FQ_ASKED); /* relaxed: a hint */
}
/* The inline push's bound: head_seen + CREW_FQ_CAP; none in CREW_DEBUG
 * builds (every push then goes through fork.c's checks). */
static inline int64_t crew__fq_limit(const crew__fq *q)
{
#if defined(CREW_DEBUG)
	(void)q;
	return INT64_MIN;
#else
	return q->head_seen + (int64_t)CREW_FQ_CAP;
#endif
}
/* Owner only: the inline push's bound back to crew__fq_limit, answering a
 * request (the caller shares next). A request stored between the owner's
 * look and this store is lost: its thief asks again when it finds nothing,
 * and the share that follows wakes a parked one. */
static inline void crew__fq_rearm(crew__fq *q)
{
	crew__store_64(&q->limit, crew__fq_limit(q)); /* relaxed: a hint */
}

/* Owner only: share the private frames below index n (o_split < n <=
 * bottom). Their `waiter` starts here (a frame no thief can see needs
 * none): no store at the push. */
static inline void crew__fq_share_to(crew__fq *q, int64_t n)
{
	for (int64_t s = q->o_split; s < n; s++) /* relaxed: published by the release below */
		crew__store_ptr(&q->slots[s & (CREW_FQ_CAP - 1)]->waiter, NULL);
	q->o_split = n;
	/* release: the slots and frames below n before thieves see them shared;
	 * pairs with the acquire load of split in crew__fq_steal */
	crew__store_release_64(&q->split, n);
}

/* Owner only: share the older half of the private frames. */
static inline bool crew__fq_share(crew__fq *q)
{
	int64_t s = q->o_split, b = q->bottom;
	if (b <= s)
		return false;
	crew__fq_share_to(q, s + (b - s + 1) / 2);
	return true;
}

/* Anyone: frames shared and not stolen yet (a hint: a steal decides).
 * Head, then split (acquire: pairs with crew__fq_share_to's release). */
static inline bool crew__fq_has_shared(crew__fq *q)
{
	return crew__load_64(&q->head) < crew__load_acquire_64(&q->split);
}

/* The fiber is switching out with private frames (its task suspends or
 * yields): share them all, since they can only wait until it runs again
 * otherwise (a share happens at a fork). True when shared frames are left
 * for thieves (these, or older ones). Thieves find them through the
 * worker's w->fq, and after it moves on through its parked_fq (the last
 * CREW_PARKED_FQ such deques).
 * Called as the deque's owner: on the scheduler right after the fiber
 * switched back (nobody can resume it before worker_after_switch, and
 * whoever does sees split through the task's wake), or on the fiber itself
 * as it yields straight to the next task (worker.c). */
static inline bool crew__fq_share_all(crew__fq *q)
{
	int64_t b = q->bottom;
	if (b > q->o_split)
		crew__fq_share_to(q, b);
	/* shared frames not stolen yet (some maybe shared before, at a fork
	 * answering a thief): thieves must still find them (relaxed: a hint,
	 * a steal decides) */
	return crew__load_64(&q->head) < b;
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
