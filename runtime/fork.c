/*
 * fork.c - strictly nested fork-join: crew_fork, crew_sync, and the thief's
 * side (a stolen frame runs as a task of its own).
 *
 * Overview (the deque itself: frames.h)
 *   crew_fork  pushes the call into a slot of the running fiber's frame
 *              deque (plain stores) and, when a thief asked (q->limit 0),
 *              shares half of the private frames and wakes an idle worker.
 *              The common case is inline in the caller (crew.h); the rest
 *              is crew__fork_out here (which the exported crew_fork calls
 *              too, for callers that do not use crew.h's inline code).
 *   crew_sync  pops it: a private frame with plain stores, a shared one after
 *              lowering split (fence, and a CAS for the last one). Taken back:
 *              fn runs inline, on the caller's stack, as the calling task.
 *              Stolen: wait for the thief (frame_wait), on the slot.
 *   thief      worker_search -> crew__frame_steal: the frame is wrapped in a
 *              task (from the thief's pool, counted like a spawn so that the
 *              runtime cannot stop under it) which runs fn on a fiber of its
 *              own, so fn may suspend; it stores the result and exchanges
 *              the frame's `waiter` with CREW_FRAME_DONE, waking the owner if
 *              it registered there.
 *   Cancellation: a slot records its forking task (s->task, the deque's
 *   `task` when it was shared: frames.h). The task that runs a stolen frame
 *   (or one its owner's low stack sent to a fiber of its own, with a record
 *   like a slot on the syncing task's stack) is the slot's `kid`: the slot
 *   is on its deque's `stolen` list, under stolen_lock, from before the kid
 *   runs until before its result is published (the forking task waits in
 *   crew_sync meanwhile, so slot and record stay). crew_cancel
 *   of a task then cancels the kids of the frames it forked, and theirs
 *   (crew__fork_cancel_kids): a kid sees its forker's cancellation as fn
 *   run inline would. Orderings: the canceller sets CANCELLED, fences, then
 *   looks at a deque's `stolen` (without the lock when it is empty); a thief
 *   links the frame, fences, then reads the forker's state, under the lock.
 *   Either the walk finds the frame or the thief finds CANCELLED (and
 *   cancels its kid before it runs).
 *   Waiting: the owner registers in `waiter` (CAS) and suspends until DONE,
 *   like crew_join; its worker meanwhile runs or steals other work. We
 *   measured leapfrogging (steal back from the thief's current deque and
 *   run those frames inline) against this: no difference within the noise
 *   of our loaded 2-CPU machine on fib (crew-fork) and pfor at 2 workers (steals are rare with lazy splitting:
 *   about ten per fib(35)), and in crew it is unsafe: the thief's current
 *   fiber need not be the one running our frame (fibers suspend and
 *   migrate), and running an unrelated frame inline can tie this task to a
 *   wait that only this task's continuation would end (a deadlock that
 *   suspending cannot cause). So: suspend.
 *   The wait ignores cancellation: a sync is never skipped.
 */
#include "internal.h"
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(struct crew__frame) <= sizeof(crew_frame), "crew_frame too small");
_Static_assert(_Alignof(struct crew__frame) <= _Alignof(crew_frame), "crew_frame misaligned");
_Static_assert(CREW_FQ_CAP < ((uint64_t)1 << 31), "head's index is 32 bits");

/* The running fiber's deque, for crew.h's inline crew_fork (frames.h). */
__thread crew__fq *crew__tls_fq __attribute__((tls_model("initial-exec")));

/* ---- stolen kids (see Overview: Cancellation) ---- */

/* kid will run f's call away from its forker: link f (before kid runs). */
static void fork_kid_add(crew__slot *f, crew_task *kid)
{
	crew__fq *q = f->q;
	f->kid = kid;
	if (!q) {
		/* no deque to link it on (none could be had: no memory): a cancel
		 * of the forker made before now reaches it, a later one not */
		if (crew__load_32(&f->task->state) & CREW_T_CANCELLED)
			crew__task_set_cancelled(kid);
		return;
	}
	crew__spin_lock(&q->stolen_lock);
	f->kid_next = q->stolen;
	/* relaxed: a canceller's unlocked look is a hint (then the fence) */
	crew__store_ptr(&q->stolen, f);
	/* seq_cst fence: the link before the forker's state, as the canceller
	 * sets CANCELLED, fences, then looks at `stolen` (see Overview): one
	 * of the two sees the other's store */
	crew__fence();
	bool cancelled = crew__load_32(&f->task->state) & CREW_T_CANCELLED;
	crew__spin_unlock(&q->stolen_lock);
	if (cancelled)
		crew__task_set_cancelled(kid); /* not running yet: nothing to wake */
}

/* f's kid is done with it: unlink (before f->result is stored: kid_next
 * shares its storage). */
static void fork_kid_remove(crew__slot *f)
{
	crew__fq *q = f->q;
	if (!q)
		return;
	crew__spin_lock(&q->stolen_lock);
	crew__slot **pp = &q->stolen;
	while (*pp && *pp != f)
		pp = &(*pp)->kid_next;
	if (*pp)
		crew__store_ptr(pp, f->kid_next); /* relaxed: see fork_kid_add */
	crew__spin_unlock(&q->stolen_lock);
}

/* The frame deque where task p's forks go: that of the fiber it runs on (its
 * own stack's, or its joiner's when it runs inline; a task waiting for a
 * stack points at a reserve stack that never forks). NULL: none yet. */
static crew__fq *fork_deque_of(crew_task *p)
{
	crew__fiber *fb = crew__load_ptr(&p->fiber);
	if (!fb)
		return NULL;
	/* acquire: pairs with fork_new_deque's release (the deque's fields) */
	return crew__load_acquire_ptr(&((crew__stack *)fb)->frames);
}

/*
 * t was just cancelled (crew_cancel set CANCELLED): cancel the kids of the
 * frames it forked, and theirs. Iterative (a chain of stolen frames can be
 * as long as bpc's producer chain) with a list of kids still to walk, each
 * held by a reference: 64 on the stack, then grown on the heap. When the
 * list is full, the walk of p's frames starts over once it has grown (the
 * kids cancelled already are not taken again: crew__task_set_cancelled says
 * no). Without memory to grow it, p's remaining kids are left for another
 * pass from t, which reaches only kids not cancelled yet: below t's own,
 * a kid whose walk stopped keeps those of its kids that were not reached
 * (so it allocates rather than stop; a task forking 64 stolen frames that
 * each have stolen frames of their own was enough to get there).
 */
#define KIDS_WALK 64

/* The list of kids to walk, twice as long (the first one on the stack). */
static crew_task **kids_grow(crew_task **todo, crew_task **local, size_t *cap)
{
	crew_task **bigger = malloc(2 * *cap * sizeof(*bigger));
	if (!bigger)
		return NULL;
	memcpy(bigger, todo, *cap * sizeof(*bigger));
	if (todo != local)
		free(todo);
	*cap *= 2;
	return bigger;
}

void crew__fork_cancel_kids(crew_task *t)
{
	crew_task *local[KIDS_WALK], **todo = local;
	size_t cap = KIDS_WALK;
	bool again;
	/* full barrier: our CANCELLED before the deque reads (see Overview) */
	crew__fence();
	do {
		again = false;
		size_t n = 0;
		crew_task *p = t;
		for (;;) {
			crew__fq *q = fork_deque_of(p);
			bool full = false;
			if (q && crew__load_ptr(&q->stolen)) {
				crew__spin_lock(&q->stolen_lock);
				for (crew__slot *f = q->stolen; f; f = f->kid_next) {
					if (f->task != p)
						continue;
					if (n == cap) {
						full = true;
						break;
					}
					crew_task *k = f->kid;
					if (crew__task_set_cancelled(k)) {
						/* k stays allocated until our unref */
						crew__faa_32(&k->refs, 1);
						todo[n++] = k;
					}
				}
				crew__spin_unlock(&q->stolen_lock);
			}
			if (full) {
				crew_task **bigger = kids_grow(todo, local, &cap);
				if (bigger) {
					todo = bigger;
					continue; /* p's frames again, from the start */
				}
				again = true;
			}
			if (p != t)
				crew__task_unref(p);
			if (!n)
				break;
			p = todo[--n];
			crew__task_wake(p); /* a suspended kid returns -ECANCELED */
		}
	} while (again);
	if (todo != local)
		free(todo);
}

/* ---- the owner ---- */

/* A fiber's first fork: its deque. NULL: outside a task, or no memory (then
 * the frame just runs at sync). */
CREW_COLD static crew__fq *fork_new_deque(crew__worker *w)
{
	if (!w || !w->current)
		return NULL;
	crew__stack *s = (crew__stack *)w->current->fiber;
	if (!s->frames) {
		crew__fq *q = aligned_alloc(64, sizeof(*q));
		if (!q)
			return NULL;
		/* the slots are written before they are read (push, share) */
		memset(q, 0, offsetof(crew__fq, slots));
		q->limit = crew__fq_limit();
#if !defined(CREW_DEBUG)
		/* the inline fork and sync (crew.h); CREW_DEBUG leaves them off
		 * (no limit, stack_span 0, room past every stack) for the checks
		 * below */
		/* relaxed: crew.h may read them through a stale thread-local */
		crew__store_64((int64_t *)&q->stack_lo, (int64_t)(uintptr_t)s->fiber.lo);
		crew__store_64((int64_t *)&q->stack_span, (int64_t)s->fiber.size);
		q->room = (uintptr_t)s->fiber.lo + s->fiber.size / 4; /* crew__stack_room */
#else
		q->room = UINTPTR_MAX;
#endif
		q->all_next = w->fq_all;
		w->fq_all = q;
		/* release: the deque's fields before a canceller reads it
		 * (fork_deque_of) */
		crew__store_release_ptr(&s->frames, q);
	}
	crew__fq_publish(w, &s->fiber);
	return s->frames;
}

/* A thief asked for work: share, and make sure somebody comes for it. */
CREW_COLD static void fork_share(crew__worker *w, crew__fq *q)
{
	/* first: a request after these is seen next time */
	crew__store_32(&w->splitreq, 0); /* relaxed: a hint */
	crew__fq_rearm(q);
	if (crew__fq_share(q))
		crew__idle_notify(crew__rt); /* the asker may have parked meanwhile */
}

#if defined(CREW_DEBUG)
/*
 * The order checks. Each fiber keeps a record of its outstanding frames,
 * oldest first: the forking task, the call, and the frame's index (its slot,
 * or CREW_FQ_CAP + its place in the record when it went to no slot: the deque
 * was full, or none could be had). A sync must be of the newest record, by
 * its task: that catches syncs out of order, twice, of frames forked
 * elsewhere, and frames past the deque's 512 (whose slot index alone would
 * say nothing) alike. A task joined inline runs on its joiner's fiber and
 * adds to the same record, above its joiner's frames, which is the nesting
 * it must keep.
 */
struct crew__dbg_frame {
	crew_task *task;
	crew_fn fn;
	void *arg;
	int64_t b;
};

/* A fork by the running task: record it; b is its slot, or -1 for none.
 * Returns the frame's index. */
static int64_t frame_note_fork(crew__worker *w, int64_t b, crew_fn fn, void *arg)
{
	crew__stack *s = (crew__stack *)w->current->fiber;
	if (s->forks == s->dbg_cap) {
		uint32_t cap = s->dbg_cap ? 2 * s->dbg_cap : 64;
		struct crew__dbg_frame *more = realloc(s->dbg_frames, cap * sizeof(*more));
		if (!more)
			crew__die("crew_fork in task '%s': no memory for CREW_DEBUG's record of "
				  "%u outstanding frames",
				  w->current->name, s->forks);
		s->dbg_frames = more;
		s->dbg_cap = cap;
	}
	if (b < 0)
		b = (int64_t)CREW_FQ_CAP + s->forks;
	s->dbg_frames[s->forks++] = (struct crew__dbg_frame){ w->current, fn, arg, b };
	return b;
}

/* A sync of frame {q, b, fn, arg} by the running task: it must be the
 * newest record of this fiber, forked by this task. q NULL and b 0: forked
 * outside a task (nothing to check). */
static void frame_check_sync(crew__fq *q, int64_t b, crew_fn fn, void *arg)
{
	if (!q && b == 0)
		return;
	crew__worker *w = crew__worker_current();
	crew__stack *s = w && w->current ? (crew__stack *)w->current->fiber : NULL;
	if (!s || (q && s->frames != q) || b < 0 || (!q && b < (int64_t)CREW_FQ_CAP))
		crew__die("crew_sync: a frame forked on another fiber, or not forked (frames "
			  "must be synced by the task that forked them)");
	const struct crew__dbg_frame *top = s->forks ? &s->dbg_frames[s->forks - 1] : NULL;
	if (!top || top->b != b || top->fn != fn || top->arg != arg)
		crew__die("crew_sync in task '%s': frames must be synced once each, in reverse "
			  "order of their forks (this is not the newest of the fiber's %u "
			  "outstanding frames)",
			  w->current->name, s->forks);
	/* a task joined inline runs on its joiner's fiber: the record alone
	 * would let it sync its joiner's frames */
	if (top->task != w->current)
		crew__die("crew_sync in task '%s': frames must be synced by the task that "
			  "forked them (this one was forked by another task)",
			  w->current->name);
	s->forks--;
}
#else
#define frame_note_fork(w, b, fn, arg) (b)
#define frame_check_sync(q, b, fn, arg) ((void)0)
#endif

/* A fork that got no slot (no deque, or it is full): crew_sync will run the
 * call inline. */
static struct crew__forked fork_unpushed(crew__worker *w, crew_fn fn, void *arg)
{
#if defined(CREW_DEBUG)
	if (w && w->current)
		return (struct crew__forked){ NULL, frame_note_fork(w, -1, fn, arg) };
#endif
	(void)w;
	(void)fn;
	(void)arg;
	return (struct crew__forked){ NULL, 0 };
}

CREW_COLD static struct crew__forked fork_overflow(crew__worker *w, crew_fn fn, void *arg)
{
	crew__stat_inc(&w->stats.overflows);
	return fork_unpushed(w, fn, arg); /* run at sync: correct, only not parallel */
}

struct crew__forked crew__fork_out(crew_fn fn, void *arg)
{
	/* The thread-local directly, not crew__worker_current(): the TLS-migration
	 * hazard (internal.h) is a TLS address cached across a suspension, and
	 * nothing in crew_fork suspends. */
	crew__worker *w = crew__tls_worker;
	crew__fq *q = w ? w->fq : NULL;
	/* w->fq is the running fiber's deque; NULL until that fiber's first fork */
	if (CREW_UNLIKELY(!q) && !(q = fork_new_deque(w)))
		return fork_unpushed(w, fn, arg);
	int64_t b = crew__fq_push(q, fn, arg);
	if (CREW_UNLIKELY(b < 0))
		return fork_overflow(w, fn, arg);
	b = frame_note_fork(w, b, fn, arg);
	/* a hint; reading it late only delays sharing */
	if (CREW_UNLIKELY(crew__load_64(&q->limit) == CREW_FQ_ASKED))
		fork_share(w, q);
	/* Low on stack (or CREW_DEBUG: every frame): the inline sync must not
	 * take this one, crew__sync_out checks the room (crew.h) */
#if defined(CREW_DEBUG)
	b -= CREW__FQ_LOW;
#else
	if (CREW_UNLIKELY(!crew__stack_room(w->current)))
		b -= CREW__FQ_LOW;
#endif
	return (struct crew__forked){ q, b };
}

/* Parenthesised: crew.h's macro of the same name is the inline fast path. */
void(crew_fork)(crew_frame *frame, crew_fn fn, void *arg)
{
	struct crew__frame *f = (struct crew__frame *)frame;
	f->fn = fn;
	f->arg = arg;
	struct crew__forked r = crew__fork_out(fn, arg);
	f->q = r.q;
	f->b = r.b;
}

/* The frame was stolen (or sent to a fiber of its own): wait until its
 * task finished it. */
static void *frame_wait(crew__slot *f)
{
	crew_task *self = crew__worker_current()->current;
	/* acquire: the result before DONE, pairs with the thief's exchange */
	if (crew__load_acquire_ptr(&f->waiter) != CREW_FRAME_DONE) {
		/* full barrier (cas): registered before the thief looks, or we see
		 * DONE; pairs with the thief's exchange */
		if (crew__cas_ptr(&f->waiter, NULL, self)) {
			/* not cancellable: a wake may be spurious (timers, shutdown) */
			while (crew__load_acquire_ptr(&f->waiter) != CREW_FRAME_DONE)
				crew__task_suspend(self);
		}
	}
	return f->result;
}

static void *sync_on_own_fiber(crew_fn fn, void *arg, crew__fq *q);
static void *frame_run(void *arg);

/* The frame is ours to run: here, or on a fiber of its own when the stack
 * is low. */
static inline void *sync_run(crew_fn fn, void *arg, crew__fq *q)
{
	return crew__stack_room(crew__worker_current()->current) ? fn(arg) :
								   sync_on_own_fiber(fn, arg, q);
}

/* The frame in slot b is in the shared part: take it back unless a thief
 * did. Out of line: crew_sync's fast path then needs no saved registers. */
__attribute__((noinline)) static void *sync_shared(crew__fq *q, int64_t b, crew_fn fn, void *arg)
{
	q->bottom = b;
	q->o_split = b;
	crew__store_64(&q->split, b);
	/* seq_cst: our lowered split before we read head; pairs with the
	 * thief's fence in crew__fq_steal (frames.h, Orderings) */
	crew__fence();
	int64_t h = crew__load_64(&q->head);
	if (crew__fq_idx(h) < b) /* thieves cannot reach b any more */
		return sync_run(fn, arg, q);
	/* the last shared frame: ours if our CAS comes first (it keeps the
	 * index and changes the generation: frames.h, Overview) */
	if (crew__fq_idx(h) == b && crew__cas_64(&q->head, h, crew__fq_moved(h, b)))
		return sync_run(fn, arg, q);
	/* stolen: head is b + 1 now, and no thief can move it (split is b) */
	void *r = frame_wait(&q->slots[b]);
	/* slot b is free again: head back down to it, in a new generation (a
	 * CAS, so that a move we did not expect cannot go unseen) */
	h = crew__load_64(&q->head);
	if (crew__fq_idx(h) != b + 1 ||
	    !crew__cas_64(&q->head, h, crew__fq_moved(h, b)))
		crew__die("crew_sync: frame deque %p corrupted (head %lld after the steal of "
			  "slot %lld)",
			  (void *)q, (long long)crew__fq_idx(h), (long long)b);
	return r;
}

/* The frame is ours again but the stack is low (a deep chain of inline
 * syncs, as crew_join bounds its inline joins): run it as a task on a fiber
 * of its own and wait for it, as for a stolen frame, with a record on our
 * stack in place of a slot. Inline, on what is left of this stack, when no
 * task or no stack can be had: a task left to wait for a stack would wait
 * for good when, as in a deep chain, every stack is held by a sync waiting
 * for such a task (stack_starve.c); a stack that overflows is reported.
 * q: the deque it was popped from, or NULL (never pushed). */
__attribute__((noinline)) static void *sync_on_own_fiber(crew_fn fn, void *arg, crew__fq *q)
{
	crew__worker *w = crew__worker_current();
	crew__stack *s = crew__stack_get(w);
	if (!s)
		return fn(arg);
	crew_task *t = crew__task_alloc(w);
	if (!t) {
		crew__stack_put(w, s);
		return fn(arg);
	}
	/* The kid goes on this fiber's deque's stolen list (made if the frame
	 * was never pushed: the deque was full, or none could be had), so
	 * that a cancel of ours reaches it (fork_kid_add). */
	crew__slot rec = { .fn = fn, .arg = arg, .task = w->current,
			   .q = q ? q : crew__frames_of_current(w) };
	crew__store_ptr(&rec.waiter, NULL); /* relaxed: published by the push */
	crew__task_init_frame(w, t, frame_run, &rec);
	crew__stack_attach(t, s);
	fork_kid_add(&rec, t); /* it runs fn for the forking task: its kid */
	crew__schedule(t, false); /* the push is a release: t and rec with it */
	return frame_wait(&rec);
}

void *crew__sync_out(crew__fq *q, int64_t b, crew_fn fn, void *arg)
{
	if (CREW_UNLIKELY(!q)) { /* outside a task, or the deque was full */
		if (CREW_UNLIKELY(!fn)) /* a zeroed frame, say: not forked */
			crew__die("crew_sync: the frame has no function (was it forked?)");
		frame_check_sync(NULL, b, fn, arg);
		crew__worker *w = crew__tls_worker;
		if (w && w->current && !crew__stack_room(w->current))
			return sync_on_own_fiber(fn, arg, NULL);
		return fn(arg);
	}
	if (b < 0) /* forked low on stack (crew__fork_out) */
		b += CREW__FQ_LOW;
	frame_check_sync(q, b, fn, arg);
	if (CREW_LIKELY(b >= q->o_split)) { /* private: nobody else can see it */
		q->bottom = b;
		if (CREW_UNLIKELY(!crew__stack_room(crew__tls_worker->current)))
			return sync_on_own_fiber(fn, arg, q);
		return fn(arg);
	}
	return sync_shared(q, b, fn, arg);
}

/* Parenthesised: see crew_fork. */
void *(crew_sync)(crew_frame *frame)
{
	struct crew__frame *f = (struct crew__frame *)frame;
	return crew__sync_out(f->q, f->b, f->fn, f->arg);
}

/* ---- the thief ---- */

/* The body of the task that runs a stolen frame (or one its owner's low
 * stack sent to a fiber of its own). */
static void *frame_run(void *arg)
{
	crew__slot *f = arg;
	void *r = f->fn(f->arg);
	fork_kid_remove(f); /* before the result: they share storage */
	f->result = r;
	crew__worker *w = crew__worker_current(); /* fn may have migrated us */
	/* before DONE: the owner may read crew_stats right after its sync */
	crew__fq_count_forks(w, ((crew__stack *)w->current->fiber)->frames);
	/* full barrier: the result before DONE; pairs with the owner's acquire
	 * load or CAS of waiter. After this f may be gone: not touched again. */
	crew_task *j = crew__fas_ptr(&f->waiter, CREW_FRAME_DONE);
	if (j)
		crew__task_wake(j);
	return NULL;
}

/* v's stranded list (deques pushed out of v's parked_fq with frames shared:
 * worker.c, crew__fq_park). With `from`: the oldest shared frame of the
 * first deque that has one (*from gets the deque), or CREW_FQ_EMPTY. Without
 * (a look for idle workers): CREW_FQ_RETRY when some deque has frames
 * shared, else CREW_FQ_EMPTY. Either way the deques found with nothing
 * shared leave the list. */
CREW_COLD static crew__slot *fq_stranded_walk(crew__worker *v, crew__fq **from)
{
	crew__slot *f = CREW_FQ_EMPTY;
	crew__fq *again = NULL; /* dropped, but shared again meanwhile */
	crew__spin_lock(&v->stranded_lock);
	crew__fq **pp = &v->stranded;
	while (*pp) {
		crew__fq *p = *pp;
		if (!from) {
			f = crew__fq_has_shared(p) ? CREW_FQ_RETRY : CREW_FQ_EMPTY;
			if (f == CREW_FQ_RETRY)
				break;
		} else {
			f = crew__fq_steal(p);
			if (f == CREW_FQ_RETRY) { /* lost a race: frames may be left */
				pp = &p->stranded_next;
				continue;
			}
			if (f != CREW_FQ_EMPTY) {
				*from = p;
				break;
			}
		}
		/* Nothing shared: off the list. The flag says who may write
		 * p's link: whoever set it, under its list's lock, until it is
		 * cleared. So unlink first, then clear (clearing first let
		 * another worker link p onto its list while ours still ran
		 * through it: the lists merged, and a cycle hung this walk).
		 * A worker that pushed p out of its ring meanwhile saw the
		 * flag set and left p to us: if p shared again, it goes back
		 * on (seq_cst fence: the clear before the look, as that worker
		 * looks at p, then CASes the flag). */
		crew__store_ptr(pp, p->stranded_next); /* relaxed: the lock orders it */
		/* release: our read of p's link before the clear */
		crew__store_release_32(&p->stranded, 0);
		crew__fence();
		uint32_t off = 0;
		if (crew__fq_has_shared(p) && crew__cas_32(&p->stranded, &off, 1)) {
			p->stranded_next = again;
			again = p;
		}
	}
	while (again) { /* back on, at the head: the next walk sees them */
		crew__fq *p = again;
		again = p->stranded_next;
		p->stranded_next = v->stranded;
		crew__store_ptr(&v->stranded, p);
	}
	crew__spin_unlock(&v->stranded_lock);
	if (from && f == CREW_FQ_RETRY)
		f = CREW_FQ_EMPTY; /* the thief asks, and comes back */
	return f;
}

bool crew__fq_stranded_shared(crew__worker *v)
{
	return crew__load_ptr(&v->stranded) && fq_stranded_walk(v, NULL) == CREW_FQ_RETRY;
}

/* Steal the oldest shared frame of the fiber v runs: a task that runs it,
 * ready for worker_run; or NULL (then v's deque is asked to share more). */
crew_task *crew__frame_steal(crew__worker *w, crew__worker *v)
{
	/* acquire: pairs with the release in crew__fq_publish */
	crew__fq *q = crew__load_acquire_ptr(&v->fq), *from = q;
	crew__slot *f = CREW_FQ_EMPTY;
	/* The task that will carry the frame, and its stack, before the frame
	 * is ours. None while tasks wait for stacks (stack_starve.c), or when
	 * no stack can be had: the stolen frame's task would wait for a stack
	 * while its forker holds one, waiting for it in crew_sync, and once
	 * every stack is held so nothing is released. Unstolen, a frame runs
	 * at its sync. */
	if (CREW_UNLIKELY(crew__stack_pressure(crew__rt))) {
		crew__stack_put(w, w->steal_stack); /* to a waiting task */
		w->steal_stack = NULL;
		return NULL;
	}
	if (!w->steal_spare && !(w->steal_spare = crew__task_alloc(w)))
		return NULL;
	if (!w->steal_stack && !(w->steal_stack = crew__stack_get(w)))
		return NULL;
	if (q) {
		f = CREW_FQ_RETRY;
		for (int retries = 0; f == CREW_FQ_RETRY && retries < 8; retries++)
			f = crew__fq_steal(q);
	}
	/* the deques of fibers that switched out with frames shared (worker.c) */
	for (unsigned i = 0; i < CREW_PARKED_FQ && (f == CREW_FQ_EMPTY || f == CREW_FQ_RETRY); i++) {
		crew__fq *p = crew__load_acquire_ptr(&v->parked_fq[i]);
		if (p && p != q) {
			f = crew__fq_steal(p);
			from = p;
		}
	}
	/* and the deques pushed out of those (worker.c, crew__fq_park) */
	if ((f == CREW_FQ_EMPTY || f == CREW_FQ_RETRY) && crew__load_ptr(&v->stranded))
		f = fq_stranded_walk(v, &from);
	if (f == CREW_FQ_EMPTY || f == CREW_FQ_RETRY) {
		/* Ask v (it passes the request to the next fiber it runs, if
		 * it leaves this one: crew__fq_publish) and v's current deque.
		 * Read first: no cache-line traffic while the request stands. */
		if (!crew__load_32(&v->splitreq))
			crew__store_32(&v->splitreq, 1); /* relaxed: a hint */
		/* worker_search waits a little for the share, but only when v
		 * runs a fiber that forks: a worker that serves I/O tasks (no
		 * frame deque) would be waited on for nothing, and the waiting
		 * thief would take its woken tasks meanwhile */
		if (q) {
			crew__fq_ask(q);
			w->asked = true;
		}
		return NULL;
	}
	crew_task *t = w->steal_spare;
	w->steal_spare = NULL;
	f->q = from; /* the slot is ours until its sync: frames.h */
	crew__task_init_frame(w, t, frame_run, f);
	crew__stack_attach(t, w->steal_stack);
	w->steal_stack = NULL;
	fork_kid_add(f, t); /* f->task waits in crew_sync for f: alive until the remove */
	crew__stat_inc(&w->stats.steals);
	return t;
}

/* The running fiber's deque, made if it has none (parallel.c: thieves can
 * only ask a fiber with a deque to share). NULL: no memory, or not a task. */
crew__fq *crew__frames_of_current(crew__worker *w)
{
	crew__fq *q = w ? w->fq : NULL;
	return q ? q : fork_new_deque(w);
}

/* crew_run's end: the deques this worker allocated. */
void crew__frames_free(crew__worker *w)
{
	if (w->steal_spare) {
		w->steal_spare->next = w->task_free; /* an unused slot: back to the pool */
		w->task_free = w->steal_spare;
		w->steal_spare = NULL;
	}
	while (w->fq_all) {
		crew__fq *q = w->fq_all;
		w->fq_all = q->all_next;
		free(q);
	}
}
