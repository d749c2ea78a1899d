/*
 * frames.h - the frame deque of strictly nested fork-join (crew_fork/sync).
 *
 * Overview
 *   A fork pushes its call (fn and arg) into a slot of the frame deque of
 *   the fiber that forks: one deque per fiber stack,
 *   allocated the first time a task on that stack forks and kept with the
 *   stack (a task may suspend between fork and sync and resume on another
 *   worker: its frames travel with its fiber). The caller's crew_frame
 *   keeps a copy of fn and arg and the slot's index (crew.h). The worker
 *   running a fiber publishes that fiber's deque in w->fq, where thieves
 *   look for it, and in the thread-local crew__tls_fq, where crew_fork
 *   finds it.
 *
 *   Slots are used as a stack: slot b holds the fiber's b-th outstanding
 *   frame, stolen or not, until its sync (so a stolen frame's slot can
 *   carry its result and its waiter: nothing is pushed over it before).
 *   Three indices split them (Lace's split deque):
 *     [head, split)    shared: thieves may take the oldest (head) with a CAS
 *     [split, bottom)  private: only the owner (whoever runs the fiber) sees it
 *     [0, head)        stolen, not synced yet (or free again, see below)
 *   - owner: push at bottom and pop from the private part with plain stores;
 *     no fence, no atomic read-modify-write. The common case is inline in
 *     the caller (crew.h: crew__fork_inline, crew__sync_inline); everything
 *     else goes to crew__fork_out/crew__sync_out (fork.c), which repeat the
 *     common case (crew__fq_push here, the private pop in crew__sync_out).
 *     The inline push reads the thread-local so that the caller's compiler
 *     cannot keep another thread's copy across a suspension (internal.h,
 *     TLS hazard): an asm on x86-64; elsewhere it checks that the stack
 *     pointer lies on the deque's stack (stack_lo, stack_span), which only
 *     the running fiber's deque passes. The inline push checks the stack
 *     room (room, as crew__stack_room); a frame pushed out of line with less
 *     gets a negative index (CREW__FQ_LOW, crew.h), so that its sync, at the
 *     same depth, goes out of line too and the inline pop needs no check.
 *     CREW_DEBUG builds set limit to INT64_MIN, stack_span to 0 and room to
 *     the top of the address space, and mark every frame so: every fork and
 *     sync then goes through fork.c's checks.
 *   - head: the low 32 bits are the index, the high 32 a generation. A
 *     thief's CAS adds 1 (the index; it never passes CREW_FQ_CAP). The
 *     owner moves head only by a CAS that also adds 1 << 32: when it takes
 *     the last shared frame back (sync_shared: the index stays, the slot is
 *     the owner's again) and when it syncs a stolen frame (the index goes
 *     back down to that frame's slot, which is free again). So a thief that
 *     read head before such a move, however long ago, fails its CAS: it
 *     cannot take a slot whose frame was popped, or pushed anew, since.
 *   - thief: crew__fq_steal. A thief that finds the shared part empty asks
 *     for a share by storing 0 in the deque's `limit` (crew__fq_ask): the
 *     owner's next inline push then fails its bound (one compare serves
 *     both the request and a full deque), the out-of-line push sees the
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
 *   - forker: a slot's `task` is stored when the frame is shared (only a
 *     thief needs it, to pass on the forker's cancellation), from the
 *     deque's `task`: private frames are always that task's, because a
 *     task that runs another inline on its fiber (crew_join) shares its
 *     own private frames first (crew__fq_share_private). The push then
 *     stores two words and the index.
 *   - owner popping a frame in the shared part (fork.c, sync_shared): it
 *     moves split down to that frame, fences, and reads head; the last
 *     shared frame is settled with a CAS on head, as in Chase-Lev.
 *   Invariant: idx(head) <= split <= bottom <= CREW_FQ_CAP; each pushed
 *   frame is taken by exactly one of the owner's pop or a steal. When the
 *   owner syncs a stolen frame, the frames pushed after it were synced
 *   already and the older ones still in the deque were stolen too (thieves
 *   take the oldest first): the deque is empty, idx(head) is the frame's
 *   slot + 1, and the owner sets all three indices to the frame's slot.
 *   Deques are freed only when crew_run ends: a pointer read from w->fq is
 *   always valid memory.
 *
 * Orderings
 *   share: slots written, then release store of split -> pairs with the
 *     thief's acquire load of split: a thief that sees a slot shared sees
 *     its fn, arg and task, and reads them after its CAS (the slot is then
 *     its frame's until the sync).
 *   owner shrink / thief steal: the owner stores split then fences (seq_cst)
 *     then reads head; the thief reads head, fences, reads split. With both
 *     fences either the thief sees the lowered split (and backs off) or the
 *     owner sees the thief's head (and settles the last frame by CAS).
 *   frame result: the thief stores the result, then exchanges the slot's
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
/* The layouts of crew_frame, of a slot and of the deque are in crew.h
 * (struct crew__frame, crew__slot, crew__fq): its inline fork and sync use
 * them. */
typedef struct crew__fq crew__fq;
typedef struct crew__slot crew__slot;
#define CREW_FRAME_DONE ((struct crew_task *)1)

/* head's index and generation (see Overview) */
static inline int64_t crew__fq_idx(int64_t head)
{
	return (int64_t)(uint32_t)head;
}
/* head with index idx, in the generation after head's (unsigned: the
 * generation wraps, harmlessly, after 2^32 moves) */
static inline int64_t crew__fq_moved(int64_t head, int64_t idx)
{
	uint64_t gen = ((uint64_t)head >> 32) + 1;
	return (int64_t)((gen << 32) | (uint64_t)idx);
}

/* Owner only: push fn(arg), forked by q->task; its slot's index, or -1 when
 * full. The out-of-line twin of crew.h's inline push (crew__fork_inline):
 * the slot's task is stored when it is shared (crew__fq_share_to). */
static inline int64_t crew__fq_push(crew__fq *q, crew_fn fn, void *arg)
{
	int64_t b = q->bottom;
	if (__builtin_expect(b >= (int64_t)CREW_FQ_CAP, 0))
		return -1;
	crew__slot *s = &q->slots[b];
	s->fn = fn; /* plain: read by a thief after the share's release */
	s->arg = arg;
	q->bottom = b + 1;
	q->forks++;
	return b;
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
/* The inline push's bound: the deque's size; none in CREW_DEBUG builds
 * (every push then goes through fork.c's checks). */
static inline int64_t crew__fq_limit(void)
{
#if defined(CREW_DEBUG)
	return INT64_MIN;
#else
	return (int64_t)CREW_FQ_CAP;
#endif
}
/* Owner only: the inline push's bound back to crew__fq_limit, answering a
 * request (the caller shares next). A request stored between the owner's
 * look and this store is lost: its thief asks again when it finds nothing,
 * and the share that follows wakes a parked one. */
static inline void crew__fq_rearm(crew__fq *q)
{
	crew__store_64(&q->limit, crew__fq_limit()); /* relaxed: a hint */
}

/* Owner only: share the private frames below index n (o_split < n <=
 * bottom). Their `waiter` and `task` (the forking task) start here (a
 * frame no thief can see needs neither): no store at the push. Private
 * frames are always q->task's: a task that runs inline on its joiner's
 * fiber shares the joiner's first (crew__fq_share_private). */
static inline void crew__fq_share_to(crew__fq *q, int64_t n)
{
	for (int64_t s = q->o_split; s < n; s++) {
		/* relaxed: published by the release below */
		crew__store_ptr(&q->slots[s].waiter, NULL);
		q->slots[s].task = q->task;
	}
	q->o_split = n;
	/* release: the slots below n before thieves see them shared; pairs
	 * with the acquire load of split in crew__fq_steal */
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
	return crew__fq_idx(crew__load_64(&q->head)) < crew__load_acquire_64(&q->split);
}

/* Owner only: share every private frame. Called when they would otherwise
 * wait until the fiber runs on (crew__fq_share_all), and before the fiber's
 * task runs another task inline (crew_join, task.c), so that they record
 * that task as their forker (crew__fq_share_to). */
static inline void crew__fq_share_private(crew__fq *q)
{
	if (q->bottom > q->o_split)
		crew__fq_share_to(q, q->bottom);
}

/* The fiber is switching out with private frames (its task suspends or
 * yields): share them all, since they can only wait until it runs again
 * otherwise (a share happens at a fork). True when shared frames are left
 * for thieves (these, or older ones). Thieves find them through the
 * worker's w->fq, and after it moves on through its parked_fq (the last
 * CREW_PARKED_FQ such deques) and its stranded list (those pushed out of
 * parked_fq with frames still shared: worker.c, crew__fq_park).
 * Called as the deque's owner: on the scheduler right after the fiber
 * switched back (nobody can resume it before worker_after_switch, and
 * whoever does sees split through the task's wake), or on the fiber itself
 * as it yields straight to the next task (worker.c). */
static inline bool crew__fq_share_all(crew__fq *q)
{
	crew__fq_share_private(q);
	/* shared frames not stolen yet (some maybe shared before, at a fork
	 * answering a thief): thieves must still find them (relaxed: a hint,
	 * a steal decides) */
	return crew__fq_idx(crew__load_64(&q->head)) < q->bottom;
}

#define CREW_FQ_EMPTY ((crew__slot *)0)
#define CREW_FQ_RETRY ((crew__slot *)1)

/* Any thread: the oldest shared frame's slot (ours now, until its sync),
 * CREW_FQ_EMPTY (nothing shared), or CREW_FQ_RETRY (lost a race: there may
 * be more). */
static inline crew__slot *crew__fq_steal(crew__fq *q)
{
	int64_t h = crew__load_acquire_64(&q->head);
	/* seq_cst fence: pairs with the owner's fence after it lowered split
	 * (fork.c, sync_shared), see Orderings */
	crew__fence();
	int64_t s = crew__load_acquire_64(&q->split);
	if (crew__fq_idx(h) >= s)
		return CREW_FQ_EMPTY;
	/* full barrier (cas): claims the slot; fails if anybody moved head
	 * since we read it (the owner's moves change the generation) */
	if (!crew__cas_64(&q->head, h, h + 1))
		return CREW_FQ_RETRY;
	return &q->slots[crew__fq_idx(h)];
}

#endif /* CREW_FRAMES_H */
