/*
 * internal.h - the runtime's shared types: task, worker, runtime.
 * Nothing here is installed; every symbol is crew__ or static.
 */
#ifndef CREW_INTERNAL_H
#define CREW_INTERNAL_H

#define _GNU_SOURCE
#include "crew.h"
#include "atomics.h"
#include "deque.h"
#include "frames.h"
#include "fiber.h"
#include "timer.h"
#include "reactor.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#define CREW_COLD __attribute__((cold, noinline))
#define CREW_LIKELY(x) __builtin_expect(!!(x), 1)
#define CREW_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- task state word (see task.c for the protocol) ---- */
enum {
	CREW_T_SCHEDULED = 1u << 0, /* in a queue, or popped and about to run */
	CREW_T_RUNNING = 1u << 1,   /* a worker runs it (or it runs a child inline) */
	CREW_T_NOTIFIED = 1u << 2,  /* woken while running: reschedule on suspend */
	CREW_T_DONE = 1u << 3,      /* body returned; result is valid */
	CREW_T_CANCELLED = 1u << 4, /* crew_cancel was called (sticky) */
	CREW_T_CONSUMED = 1u << 5,  /* handle joined or detached */
};

#define CREW_TASK_MAGIC_LIVE 0x7461736bu /* "task" */
#define CREW_TASK_MAGIC_FREE 0x66726565u /* "free" */

typedef struct crew__stack crew__stack;
typedef struct crew__worker crew__worker;

struct crew_task {
	uint32_t state;          /* atomic: CREW_T_* */
	uint32_t refs;           /* atomic: handle + execution */
	uint32_t wait_seq;       /* atomic: the current wait's seq | outcome (wait.h) */
	uint32_t magic;
	crew_fn fn;
	void *arg;
	union {
		void *result;    /* once DONE: what the body returned */
		struct crew_deadline *scope; /* while it runs: innermost deadline scope, or
					      * NULL (crew_deadline_push; popped before the
					      * body returns, so the two never overlap) */
	};
	const char *name;
	struct crew_task *next;  /* intrusive link: inject queue, yield list, free list */
	crew__fiber *fiber;      /* fiber it runs on (own, or its joiner's when inline) */
	crew__stack *stack;      /* the stack it owns, or NULL (not started / inline) */
	struct crew_task *joiner;/* atomic: NULL, the waiting task, or CREW_JOIN_DONE */
};
#define CREW_JOIN_DONE ((crew_task *)1)

/* ---- worker ---- */
enum { CREW_SWITCH_SUSPEND = 1, CREW_SWITCH_YIELD, CREW_SWITCH_EXIT };

typedef struct crew__task_slab crew__task_slab;

/* Per-worker counters (stats.c): only the owner writes them, with relaxed
 * loads and stores (crew__stat_inc); crew_stats reads them from anywhere. */
typedef struct crew__stats {
	uint64_t tasks_run;      /* task bodies that finished here */
	uint64_t forks;          /* crew_fork calls */
	uint64_t steals;         /* tasks and frames taken from other workers */
	uint64_t steal_attempts; /* victims looked at */
	uint64_t parks;
	uint64_t inject_pops;    /* pops that got a task from the inject queue */
	uint64_t overflows;      /* full task deque (half moved) or frame deque */
	uint64_t idle_ns;        /* time parked */
} crew__stats;

static inline void crew__stat_add(uint64_t *c, uint64_t d)
{
	/* owner-only counter: not an RMW; relaxed so that readers elsewhere
	 * (crew_stats) see a whole value */
	crew__store_64((int64_t *)c, crew__load_64((const int64_t *)c) + (int64_t)d);
}
#define crew__stat_inc(c) crew__stat_add((c), 1)

#define CREW_RECV_HINTS 64 /* power of two */

/* Deques a worker keeps visible after their fiber switched out (parked_fq). */
#define CREW_PARKED_FQ 4

/* Timers expired per batch (crew__worker.expired, allocated with the worker). */
#define CREW_EXPIRE_BATCH 256

struct crew__worker {
	/* shared part: read or written by other threads */
	crew__deque deque;
	int64_t spawned __attribute__((aligned(64))); /* owner writes, others read */
	int64_t finished;
	uint32_t parked;         /* under rt->idle_lock: 1 while in the parked list */
	int wake_fd;             /* eventfd: write 1 to unpark this worker */
	/* read by idle workers that take over a busy worker's work (worker.c) */
	crew_task *lifo __attribute__((aligned(64))); /* atomic: the task woken last here: runs next */
	uint64_t tick_pub;       /* atomic: `tick`, so a watcher sees this worker is stuck */
	uint64_t dry_at;         /* atomic: crew_now() when it last ran out of tasks */
	/* due queue (due.c): tasks whose timers fired, in deadline order */
	uint32_t due_lock;
	uint32_t due_len;        /* atomic: read without the lock as a hint */
	crew_task *due_head, *due_tail;
	/* fork-join (fork.c): read by thieves */
	crew__fq *fq __attribute__((aligned(64))); /* atomic: the running fiber's frame deque */
	uint32_t splitreq;       /* atomic: a thief asks for a share, whatever fiber runs here */
	/* atomic: the last deques that shared all their frames as their fiber
	 * switched out (worker.c), round robin: thieves look there too, since
	 * `fq` moves on with the next fiber (stale entries are harmless: a
	 * thief takes only what a deque shares, with a CAS) */
	crew__fq *parked_fq[CREW_PARKED_FQ];
	/* deques pushed out of parked_fq with frames still shared, linked
	 * through stranded_next (crew__fq_park): thieves look there last and
	 * drop the ones they find with nothing shared */
	uint32_t stranded_lock;
	crew__fq *stranded;      /* atomic: read without the lock as a hint */
	/* I/O cancel requests from other workers (io.c), for our reactor */
	uint32_t io_cancel_lock;
	struct crew__io_op *io_cancel_head; /* atomic: read without the lock as a hint */

	/* private part: only the owning thread */
	unsigned id __attribute__((aligned(64)));
	unsigned parked_next;    /* the parked_fq slot written next */
	pthread_t thread;
	crew__fiber sched;       /* the worker thread's own stack */
	crew_task *current;      /* task running now (NULL in the scheduler) */
	unsigned lifo_runs;      /* consecutive picks from `lifo` */
	int switch_reason;       /* why the running fiber switched back */
	crew__stack *dead_stack; /* stack of a fiber that exited: release it */
	uint64_t tick;
	crew_task *fair_oldest;   /* deque top seen at the last fairness tick */
	bool fair_due;           /* a yield reached the fairness tick: run it */
	struct crew__watch *watch; /* per worker: what we saw it stuck on (worker.c) */
	uint64_t watch_until;    /* look at busy workers again by then */
	bool watching;           /* under rt->idle_lock: parked, and will look at busy workers */
	uint64_t rng;
	bool searching;
	bool asked;              /* this search asked a frame deque to share (worker.c) */
	bool saw_shutdown;
	crew_task *yield_head, *yield_tail; /* tasks that yielded, FIFO; still RUNNING */
	crew__timer_set timers;
	crew__timer_due *expired; /* scratch for timers that came due: CREW_EXPIRE_BATCH */
	crew_task **overflow;    /* scratch: half a deque moving to the inject queue */
	crew__reactor reactor;
	int recv_full[CREW_RECV_HINTS]; /* fd + 1 whose last receive here filled its buffer (io.c) */
	/* pools */
	crew_task *task_free;
#if defined(CREW_DEBUG)
	/* task_free is a FIFO here, reused only past CREW_TASK_QUARANTINE
	 * slots: a stale handle then finds a freed task, not another live one */
	crew_task *task_free_tail;
	unsigned task_free_n;
#endif
	crew__task_slab *task_slabs;
	crew__stack *stack_free;
	unsigned stack_free_count;
	uint64_t trim_at;        /* earliest time to trim the hot stack list */
	void *altstack;
	crew__stats stats;
	crew__fq *fq_all;        /* frame deques this worker allocated (freed at the end) */
	crew_task *steal_spare;  /* a task ready to carry a stolen frame */
	crew__stack *steal_stack;/* and its stack (fork.c, crew__frame_steal) */
	crew__stack *stack_reserve; /* runs the parking fiber of a starved task (stack_starve.c) */
};

/* ---- offload pool (offload.c) ---- */
typedef struct crew__offload_job crew__offload_job;
typedef struct crew__offload_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	crew__offload_job *head, *tail; /* queued jobs, FIFO */
	pthread_t *threads;
	unsigned nthreads, idle, limit;
	bool stop;
} crew__offload_pool;

/* ---- runtime ---- */
typedef struct crew__runtime {
	crew__worker *workers;
	unsigned nworkers;
	size_t stack_size;
	unsigned ring_entries;
	const crew__backend *backend; /* picked when crew_run starts (run.c) */
	crew_task *main;

	uint32_t shutdown;       /* atomic: main returned; every task is cancelled */
	uint32_t stop;           /* atomic: all tasks ended; workers exit */
	uint64_t ext_spawned;    /* atomic: spawns from non-worker threads */
	/* Taken by a plain-thread spawn (check stop, count the spawn) and by the
	 * stop decision: either the spawn is counted before the decision, or it
	 * sees stop and fails (run.c, "Plain threads"). */
	pthread_mutex_t stop_lock;

	/* global inject queue (inject.c) */
	pthread_mutex_t inject_lock;
	crew_task *inject_head, *inject_tail;
	uint64_t inject_len;     /* atomic: read without the lock as a hint */

	/* idle accounting (idle.c) */
	pthread_mutex_t idle_lock;
	unsigned *parked_ids;
	uint32_t nparked;        /* atomic */
	uint32_t nwatching;      /* atomic, written under idle_lock: parked workers watching */
	uint32_t nsearching;     /* atomic */

	/* task memory for non-worker threads (task.c) */
	pthread_mutex_t ext_lock;
	crew_task *ext_free;
	crew__task_slab *ext_slabs;

	crew__offload_pool offload; /* offload.c */

	/* stacks (stack.c) */
	pthread_mutex_t stack_lock;
	crew__stack *stack_cold;  /* returned to the OS (MADV_DONTNEED), reusable */
	struct crew__stack_slab *stack_slabs; /* atomic head: read by the SIGSEGV handler */
	size_t stack_nslabs;      /* under stack_lock: slabs mapped in this run */
	size_t guard_budget;      /* under stack_lock: stacks that may still get an mprotect guard */
	bool guard_budget_known;  /* under stack_lock */
	/* stack pressure (stack_starve.c): set while tasks wait for a stack */
	uint32_t stack_pressure;  /* atomic; written under stack_lock */
	bool stack_pressure_told; /* under stack_lock: the message was printed */
	crew_task *starved_head, *starved_tail; /* under stack_lock: FIFO via ->next */
} crew__runtime;

extern crew__runtime *crew__rt;

/* The calling thread's worker. Not inlined and behind a compiler barrier:
 * a fiber can resume on another thread, and a cached TLS address would name
 * the old worker (the TLS-migration hazard in DESIGN.md). */
crew__worker *crew__worker_current(void);
/* initial-exec: one %fs-relative load instead of a __tls_get_addr call (crew_fork
 * reads it per call); libcrew.so may still be dlopen()ed: 8 bytes fit in the
 * static TLS surplus glibc reserves for that. */
extern __thread crew__worker *crew__tls_worker __attribute__((tls_model("initial-exec")));

/* task.c */
crew_task *crew__task_alloc(crew__worker *w);
void crew__task_unref(crew_task *t);
bool crew__task_set_cancelled(crew_task *t);
/* fork.c: t was just cancelled; cancel the tasks running frames it forked */
void crew__fork_cancel_kids(crew_task *t);
void crew__task_wake(crew_task *t);
bool crew__task_claim(crew_task *t);
void crew__task_suspend(crew_task *t);
void crew__task_run_body(crew_task *t);
bool crew__task_cancelled(crew_task *t);
void crew__task_free_all(crew__runtime *rt);
void crew__task_wake_all(crew__runtime *rt);
void crew__fiber_entry(void *arg);
void crew__task_init_frame(crew__worker *w, crew_task *t, crew_fn fn, void *arg);
/* crew_run's thread: queue main, with rt->main set before it can run. */
int crew__task_prepare_main(crew__runtime *rt, crew_fn fn, void *arg);
void crew__task_start_main(crew__runtime *rt);

/*
 * May a child run inline here (crew_join; crew_sync, fork.c)? Only while at least a quarter of the running
 * fiber's stack is free below this frame. Inline joins nest: a chain of tasks
 * that each spawn a child and join it would otherwise grow one stack until it
 * overflows (about 2,500 levels fill 256 KiB). Past the bound the child stays
 * in the deque and the joiner suspends; the worker then pops the child and
 * runs it on a fiber of its own, where inlining starts afresh. So a child run
 * inline starts with at least stack_size / 4 free (64 KiB by default), and a
 * chain of any depth costs one fiber per 3/4 stack of inline levels.
 * A quarter, not a fixed 64 KiB: with the smallest stacks (16 KiB) a fixed
 * margin would disable the fast path altogether, and with large ones a
 * quarter still leaves the child more than a fixed margin would.
 * Cost on the fast path: the frame address, two loads, a shift, a compare.
 * self->fiber is the fiber we run on: self's own, or its joiner's when self
 * itself runs inline (task_run_inline sets it).
 */
static inline bool crew__stack_room(const crew_task *self)
{
	const crew__fiber *f = self->fiber;
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
	return sp - (uintptr_t)f->lo >= f->size / 4;
}

/* The common start of a suspending call: the calling worker and task, or
 * -EPERM outside a task, or -ECANCELED once the task was cancelled. */
static inline int crew__suspend_begin(crew__worker **w, crew_task **t)
{
	*w = crew__worker_current();
	*t = *w ? (*w)->current : NULL;
	if (!*t)
		return -EPERM;
	return crew__task_cancelled(*t) ? -ECANCELED : 0;
}

/* worker.c */
void *crew__worker_main(void *arg);
void crew__worker_enqueue(crew__worker *w, crew_task *t);
void crew__worker_yield(crew__worker *w, crew_task *t);
void crew__schedule(crew_task *t, bool woken);
int64_t crew__tasks_unfinished(crew__runtime *rt);

/* run.c */
void crew__runtime_begin_shutdown(crew__runtime *rt);
bool crew__runtime_try_stop(crew__runtime *rt);
/* A thread that is not a worker brackets every use of the runtime with these
 * (the gate, run.c): enter returns the runtime, kept alive until leave, or
 * NULL (no runtime, or it is ending: nothing was entered, do not leave). */
crew__runtime *crew__ext_enter(void);
void crew__ext_leave(void);

/* io/io.c: cancel requests other workers queued for w's reactor (owner) */
void crew__io_cancel_drain(crew__worker *w);
static inline void crew__io_poll_cancels(crew__worker *w)
{
	/* Called after the reactor's poll. A request pushed before the eventfd
	 * write that poll consumed is seen here (the requester pushes under the
	 * lock, then writes; acquire keeps this load after the poll's read); a
	 * later one comes with an eventfd write of its own, which ends our next
	 * park. */
	if (CREW_UNLIKELY(crew__load_acquire_ptr(&w->io_cancel_head) != NULL))
		crew__io_cancel_drain(w);
}

/* inject.c */
void crew__inject_push(crew__runtime *rt, crew_task *t);
void crew__inject_push_batch(crew__runtime *rt, crew_task *head, crew_task *tail, unsigned n);
crew_task *crew__inject_pop(crew__runtime *rt, crew__worker *w);
/*
 * v keeps up with its work: it ran out of tasks within CREW_SPARE_NS and has
 * at most CREW_SPARE_TASKS queued. Tasks woken by I/O then gather on worker 0
 * (io.c), and other workers leave v's due queue alone (worker.c, idle.c),
 * so that I/O-bound work stays on as few workers as keep up with it. Not
 * its deque: spawned work is stolen at once, as fork-join needs.
 */
#define CREW_SPARE_NS 200000ull
#define CREW_SPARE_TASKS 64
static inline bool crew__worker_keeps_up(crew__worker *v, uint64_t now)
{
	/* relaxed: hints; the steal itself decides */
	uint64_t dry = (uint64_t)crew__load_64((const int64_t *)&v->dry_at);
	return now - dry < CREW_SPARE_NS &&
	       crew__deque_size(&v->deque) + (int64_t)crew__load_32(&v->due_len) <= CREW_SPARE_TASKS;
}

static inline bool crew__inject_empty(crew__runtime *rt)
{
	return crew__load_acquire_u64(&rt->inject_len) == 0;
}

/* due.c */
void crew__due_push(crew__worker *w, crew_task *head, crew_task *tail, unsigned n);
crew_task *crew__due_pop(crew__worker *w);
crew_task *crew__due_steal(crew__worker *thief, crew__worker *v);

/* idle.c */
void crew__idle_notify(crew__runtime *rt);
void crew__idle_notify_all(crew__runtime *rt);
void crew__idle_wake_watcher(crew__runtime *rt);
bool crew__idle_start_search(crew__runtime *rt, crew__worker *w);
void crew__idle_end_search(crew__runtime *rt, crew__worker *w, bool found);
void crew__idle_park(crew__runtime *rt, crew__worker *w, uint64_t wake_at);
#define CREW_GRACE_NS 1000000ull /* a stuck worker's work is taken after this (worker.c) */

/* stack.c */
struct crew__stack {
	crew__fiber fiber;  /* first member: a task fiber is always inside its stack */
	crew__stack *next;
	char *guard;       /* lowest address: the guard region */
	const char *owner; /* name of the task it was handed to (overflow messages) */
	unsigned valgrind_id; /* valgrind's name for this stack (stack.c) */
	bool unguarded;    /* no guard page: a canary below the guard region instead */
	crew__fq *frames;  /* frame deque of the tasks running on it, or NULL (fork.c) */
	uint32_t forks;    /* CREW_DEBUG: frames forked on it and not yet synced */
#if defined(CREW_DEBUG)
	uint32_t dbg_cap;              /* CREW_DEBUG: room in dbg_frames */
	struct crew__dbg_frame *dbg_frames; /* CREW_DEBUG: those `forks` frames, oldest
					 first (fork.c: the order checks) */
#endif
};
crew__stack *crew__stack_get(crew__worker *w);
void crew__stack_attach(crew_task *t, crew__stack *s);
void crew__stack_put(crew__worker *w, crew__stack *s);
void crew__stack_trim(crew__worker *w, unsigned keep);
void crew__stack_drop_all(crew__worker *w);
void crew__stack_init(void);
/* Valgrind 3.19 holds its big lock through io_uring_enter: parked workers
 * nap in nanosleep instead (idle.c). */
extern bool crew__under_valgrind;
#define CREW_STACK_HOT 256
void crew__stack_free_all(crew__runtime *rt);
size_t crew__stack_guard_size(void);
int crew__stack_prepare(crew__runtime *rt);
bool crew__stack_in_guard(crew__runtime *rt, const void *addr);
crew__stack *crew__stack_pop_cold(crew__runtime *rt);
void crew__stack_push_hot(crew__worker *w, crew__stack *s);
/* Test hooks: at most this many stacks get an mprotect guard, and at most
 * this many slabs (64 stacks each) are mapped per run (SIZE_MAX: no cap). */
extern size_t crew__stack_guard_limit;
extern size_t crew__stack_slab_limit;

/* Canaries: set once a stack without a guard page exists; then every switch
 * back to the scheduler checks the canary of the stack that switched. */
extern uint32_t crew__stack_canaries;
void crew__stack_check_slow(crew__worker *w);
/* Called by worker_run right after the switch back to the scheduler. */
static inline void crew__stack_after_switch(crew__worker *w)
{
	if (CREW_UNLIKELY(crew__load_32(&crew__stack_canaries)))
		crew__stack_check_slow(w);
}

/* stack_starve.c: what happens when no stack can be had */
crew__fiber *crew__stack_park_fiber(crew__worker *w, crew_task *t);
void crew__stack_give_starved(crew__worker *w, crew__stack *s);
void crew__stack_feed_starved(crew__worker *w, unsigned keep);
/* Take t off the starved FIFO (true), for its joiner to run it inline. */
bool crew__stack_take_starved(crew__runtime *rt, crew_task *t);
static inline bool crew__stack_pressure(crew__runtime *rt)
{
	return crew__load_32(&rt->stack_pressure) != 0;
}

/* offload.c */
void crew__offload_init(crew__runtime *rt);
void crew__offload_stop(crew__runtime *rt);
void crew__offload_fini(crew__runtime *rt);

/* fork.c */
crew_task *crew__frame_steal(crew__worker *w, crew__worker *v);
crew__fq *crew__frames_of_current(crew__worker *w);
/* Whether a deque on v's stranded list has frames shared (those without
 * leave it). */
bool crew__fq_stranded_shared(crew__worker *v);
void crew__frames_free(crew__worker *w);
/* worker.c: q (a deque that just shared all its frames as its fiber switched
 * out) goes to w's parked_fq, and an idle worker is told. */
void crew__fq_park(crew__worker *w, crew__fq *q);
/* The frame deque of the fiber `f` runs on (every task fiber is inside its
 * stack): published for thieves (w->fq) and for crew_fork (crew__tls_fq)
 * before the worker switches to it. */
static inline void crew__fq_publish(crew__worker *w, crew__fiber *f)
{
	crew__fq *q = ((crew__stack *)f)->frames;
	/* relaxed: crew.h may read another thread's copy (CREW__FQ_CHECK_STACK) */
	crew__store_ptr(&crew__tls_fq, q);
	if (q)
		q->task = w->current; /* the forker of the frames it pushes (fork.c) */
	/* a thief's request stands on the worker until a fork answers it: it
	 * goes to the deque of whatever fiber runs here now (relaxed: a hint) */
	if (q && CREW_UNLIKELY(crew__load_32(&w->splitreq)))
		crew__fq_ask(q);
	/* release: the deque's initialisation before thieves use it; pairs
	 * with the acquire load in crew__frame_steal */
	if (crew__load_ptr(&w->fq) != q)
		crew__store_release_ptr(&w->fq, q);
}
/* Whether one of v's parked deques (parked_fq) has frames shared: a hint
 * for idle workers (a steal decides). */
static inline bool crew__fq_parked_shared(crew__worker *v)
{
	for (unsigned i = 0; i < CREW_PARKED_FQ; i++) {
		/* acquire: pairs with the release store in crew__fq_park */
		crew__fq *p = crew__load_acquire_ptr(&v->parked_fq[i]);
		if (p && crew__fq_has_shared(p))
			return true;
	}
	return crew__fq_stranded_shared(v);
}

/* Owner of q (the thread running its fiber): its forks so far go to w's
 * crew_stats (frames.h). */
static inline void crew__fq_count_forks(crew__worker *w, crew__fq *q)
{
	if (q && q->forks) {
		crew__stat_add(&w->stats.forks, q->forks);
		q->forks = 0;
	}
}

/* stats.c */
void crew__stats_end(crew__runtime *rt);

/* overflow.c: every int is 0 or a negative errno */
int crew__overflow_install(void);
void crew__overflow_uninstall(void);
int crew__overflow_thread_init(crew__worker *w);
void crew__overflow_thread_fini(crew__worker *w);


/* errors */
void crew__error(const char *fmt, ...) __attribute__((format(printf, 1, 2), cold));
/* a misuse CREW_DEBUG caught, or a broken invariant: message, then abort */
void crew__die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn, cold));

#endif /* CREW_INTERNAL_H */
