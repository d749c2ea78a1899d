/*
 * crew.h - a multi-threaded, work-stealing task runtime for C.
 *
 * Overview
 * --------
 * crew brings asyncio's programming model to C and runs it on every core:
 *
 *   asyncio                         crew
 *   asyncio.run(main())             crew_run(main, arg, &result)
 *   asyncio.create_task(coro)       crew_spawn(fn, arg)
 *   await task                      crew_join(task, &result)
 *   task.cancel()                   crew_cancel(task)
 *   await asyncio.sleep(s)          crew_sleep(ns)
 *   await asyncio.sleep(0)          crew_yield()
 *   loop.create_future()            crew_future_new()
 *   fut.set_result(v)               crew_future_set(fut, v)
 *   await fut                       crew_future_await(fut, &v)
 *   asyncio.current_task()          crew_self()
 *   await asyncio.to_thread(f, x)   crew_offload(f, x, &result)
 *
 * A task is a function `void *fn(void *arg)` running on its own fiber (a small
 * stack). Worker threads (one per CPU by default) run tasks and steal work from
 * each other; a task that suspends (sleep, join, future await) may resume on
 * another worker.
 *
 * Conventions
 * - Every `int` function returns 0 (or a count) on success and a negative errno
 *   on failure, and a call that failed has done nothing the caller must undo.
 *   Functions returning a pointer return NULL and set errno.
 * - Every function that suspends is a cancellation point: once the calling task
 *   was cancelled it returns -ECANCELED at once (crew_join excepted, see there).
 *   Called outside a task, a suspending function returns -EPERM (futures excepted:
 *   a plain thread may await a future, it blocks).
 * - Times are nanoseconds of CLOCK_MONOTONIC (see crew_now()).
 * - Thread-locals: a task may move to another worker thread at any suspension.
 *   Do not keep the address of a thread-local variable across a suspending call.
 *
 * Cancellation rules
 *  1. A spawned task's body always runs, exactly once, even when it was cancelled
 *     before it started; the body owns `arg` and may free it.
 *  2. crew_cancel() is sticky: from then on every suspending call in the task
 *     returns -ECANCELED at once, and the body is expected to return.
 *  3. crew_join() still waits for a cancelled task (so clean-up code can collect
 *     its children) and returns -ECANCELED when the joined task was cancelled
 *     before it finished; *result gets the body's return value in both cases.
 *  4. crew_cancel() returns 0, or -EALREADY when the task had already finished.
 *
 * Completion, cancellation, deadline: a wait ends exactly once, with the first
 * of its outcomes to be settled (one atomic step decides it):
 *  - a future await returns 0 and the value when the future was set before the
 *    waiter left the future's waiter list, even if the task was cancelled or
 *    its deadline passed meanwhile; otherwise -ECANCELED or -ETIMEDOUT,
 *    whichever of the cancel and the deadline ended the wait first. An
 *    await on a future that is already set returns 0 at once, cancelled or not.
 *  - a sleep returns 0 when its timer fired (the deadline passed and a worker
 *    expired it) before the task, woken by the cancel, could withdraw the
 *    timer; otherwise -ECANCELED. A sleep called after the cancel returns
 *    -ECANCELED at once.
 *  A wait that ends early withdraws its timer at once (O(log n)): waits with a
 *  far deadline that complete early cost no memory afterwards.
 *
 * Timers and order: tasks whose deadlines pass wake in deadline order (ties:
 * the order the waits began) and, on one worker, run in that order however
 * far behind the worker is (a due queue apart from the LIFO deque). With more
 * than one worker, an idle worker may take the earliest half of a busy
 * worker's due tasks: each worker still starts its share in deadline order,
 * but two tasks on different workers run in parallel, in no defined order.
 * Tasks whose I/O completed (crew/io.h) go through the same FIFO, in the
 * order their completions were reaped.
 *
 * Fairness and work conservation: a task that computes without suspending
 * keeps its worker; crew does not preempt. Meanwhile:
 *  - tasks that yield (crew_yield) in a loop still let the worker serve its
 *    timers, I/O completions and the global queue every 61 switches;
 *  - the other tasks queued on that worker are stolen by idle workers (at
 *    once, or within about 1 ms: an idle worker never parks for longer while
 *    another one runs), and the task it woke last (its LIFO slot) and its
 *    timers that come due are taken over by an idle worker once the worker
 *    has run the same task for about 1 ms (1-3 ms measured);
 *  - not yet covered: a task that called crew_yield and was switched out
 *    directly to the task that now computes waits on its worker's private
 *    yield list until that task suspends or yields. To spread work, spawn it
 *    or wake it through a future instead of yielding to it.
 *  With a single worker, nothing else runs until the computing task suspends.
 *
 * Shutdown (asyncio.run semantics): when the main function returns, every task
 * still alive is cancelled (not-yet-started tasks still start and see -ECANCELED
 * at their first suspension); crew_run() returns once all of them have finished
 * and everything is freed. A handle that was neither joined nor detached is
 * reported on stderr, naming its function (asyncio's "never awaited").
 *
 * fork(): a child forked while crew_run runs (by a task or by any other
 * thread) has a copy of the runtime but none of its other threads, and the
 * io_uring rings it would use belong to the parent. In the child, only
 * async-signal-safe functions, exec*() and _exit() are valid, as POSIX says of
 * a multi-threaded parent. crew enforces its part: crew_spawn, crew_sleep,
 * crew_yield, crew_join, crew_cancel, crew_run and every suspending call fail
 * with EPERM (-EPERM) there without touching the parent's state,
 * crew_worker_id() is -1, crew_self() NULL, crew_workers() 0, crew_detach does
 * nothing. Do not set or await crew futures in the child, and do not return
 * from the task that forked: call _exit() (or exec). The parent is unaffected
 * and goes on. fork + exec from a task works (e.g. run a program, waitpid).
 * A child forked while no runtime runs is an ordinary process and may call
 * crew_run.
 *
 * Stacks
 * - Every task that starts on a worker gets a fiber stack of
 *   crew_config.stack_size usable bytes (256 KiB by default), reserved address
 *   space of which only the touched pages cost memory. A task joined before it
 *   started runs inline on its joiner's stack and needs none. Below each stack
 *   lies a 64 KiB guard region.
 * - Guards: on Linux >= 6.13 every stack has a guard (MADV_GUARD_INSTALL, no
 *   extra memory map). On older kernels a guard costs up to two entries of
 *   vm.max_map_count (65530 by default, for the whole process), so only the
 *   first stacks of a run get one: as many as a quarter of the map entries
 *   left free when crew_run needs the first guard (about 16,000 by default),
 *   leaving the rest to the application. Later stacks get a canary instead,
 *   just below their guard region, checked whenever their task switches back to
 *   the scheduler (suspends, or finishes).
 * - Overflow: a task that touches a guard (its own stack's or any other
 *   crew stack's) is reported on stderr with its name and the stack size, and
 *   the process aborts. On a stack without guard an overflow is reported when
 *   it ran through the whole 64 KiB region below the stack and wrote the canary
 *   (up to there it damages nothing but unused memory), when the task next
 *   switches back to the scheduler; an overflow that skips the canary, or one
 *   that crashes before the check, goes unreported.
 * - Frames larger than the guard: build task code with
 *   -fstack-clash-protection (gcc, clang; crew itself is built with it), so
 *   that a large frame touches every page on the way down and hits the guard.
 *   Without it a frame over 64 KiB can jump the guard and silently corrupt
 *   another task's stack.
 * - SIGSEGV: crew_run installs a process-wide SIGSEGV handler for the run
 *   (not in AddressSanitizer builds, which report overflows themselves). A
 *   fault that is not in a crew guard goes to the disposition that was in
 *   place when crew_run started: its handler is called (with its sa_mask
 *   blocked), and SIG_DFL (or SIG_IGN, for a fault the kernel would not let
 *   one ignore) kills the process as it would have without crew. When crew_run
 *   returns it restores that disposition only if crew's handler is still
 *   installed: a handler the application installed during the run stays.
 *   An application handler that wants crew's messages can call the previous
 *   handler it got from sigaction().
 * - Out of memory for stacks (RLIMIT_AS, overcommit limits, vm.max_map_count):
 *   crew_run maps the first stacks before main runs and returns -ENOMEM when it
 *   cannot. Later, a task that reaches a worker when no stack can be mapped is
 *   not lost: it waits in a FIFO and starts (in that order) as soon as some
 *   other task finishes and releases its stack; one message on stderr says so
 *   the first time. While any task waits, crew_spawn fails with ENOMEM (the
 *   caller can back off, join some of its tasks, retry). A task that
 *   crew_joins a waiting task runs it itself, inline on its own stack, on
 *   whatever is left of it (a stack that overflows so is reported as any
 *   overflow: raise the stack size, or lower the recursion). The one case
 *   that cannot resolve itself: if, after a task had to wait, no other task
 *   ever finishes (every task that holds a stack waits for a waiting one in
 *   another way, e.g. awaits a future it would set), the run hangs.
 *
 * Environment: CREW_WORKERS=N sets the number of workers when the config says 0;
 * CREW_BACKEND=io_uring|epoll forces an I/O backend (crew/io.h).
 */
#ifndef CREW_H
#define CREW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility; only what is marked here is
 * exported (and the linker version script keeps it that way). */
#if defined(CREW_BUILDING)
#define CREW_API __attribute__((visibility("default")))
#else
#define CREW_API
#endif

/** A task body: receives the argument given to crew_spawn, returns its result. */
typedef void *(*crew_fn)(void *arg);

/** A task handle. Consumed by exactly one crew_join() or crew_detach(). */
typedef struct crew_task crew_task;

/** A one-shot value that tasks and threads can await. */
typedef struct crew_future crew_future;

/** Runtime configuration; a zero field means "the default". */
typedef struct crew_config {
	unsigned workers;      /**< worker threads; 0: CREW_WORKERS, else online CPUs */
	size_t stack_size;     /**< usable bytes per fiber stack (16 KiB to 1 GiB; see
	                            "Stacks" above); 0: 256 KiB */
	unsigned ring_entries; /**< io_uring submission queue size per worker; 0: 256 */
} crew_config;

/**
 * crew_run - start the runtime, run `main(arg)` as the first task, shut down.
 *
 * Like asyncio.run: starts the workers, runs `main` as a task, and when it
 * returns cancels every task still alive, waits for all of them to end, joins
 * the workers and frees everything (every task handle becomes invalid).
 * Callable again after it returned.
 *
 * All workers are started before `main` is queued: when one cannot be
 * started, crew_run stops the others and fails without having run `main`
 * (`arg` is still the caller's).
 *
 * `result` (may be NULL) receives main's return value.
 * Returns 0; -EINVAL when `main` is NULL; -EBUSY when called from inside a task
 * (or while another crew_run is running in this process); -ENOMEM when memory
 * for the runtime or for its first fiber stacks cannot be had (a message on
 * stderr for the stacks); the error of pthread_create (-EAGAIN...) when a
 * worker thread cannot be started, with a message on stderr; -EPERM in a
 * child forked while a runtime ran (see fork() above); -EINVAL when
 * CREW_BACKEND names no backend (a message on stderr); or the error of the I/O
 * backend's setup: with CREW_BACKEND=io_uring, that of io_uring setup (-ENOSYS,
 * -EPERM: io_uring unavailable, with a message on stderr); without it, crew
 * falls back to epoll when io_uring cannot be set up (a one-line notice on
 * stderr) and fails only when epoll cannot be either. On error `main` never ran.
 * Installs crew's SIGSEGV handler for the duration of the run ("Stacks").
 * Context: any thread that is not a crew worker.
 */
CREW_API int crew_run(crew_fn main, void *arg, void **result);

/**
 * crew_run_with - crew_run with an explicit configuration (NULL: defaults).
 * Also returns -EINVAL when a field is out of range (workers > 1024,
 * stack_size < 16 KiB or > 1 GiB, ring_entries > 32768), with a message.
 */
CREW_API int crew_run_with(const crew_config *cfg, crew_fn main, void *arg, void **result);

/**
 * crew_spawn - create a task running `fn(arg)`; asyncio.create_task.
 *
 * The task is queued and starts later on some worker; the caller continues.
 * Returns a handle that must be consumed by exactly one crew_join() or
 * crew_detach(). A task that was spawned always runs its body, exactly once
 * (cancellation rule 1), and the body owns `arg`; on failure nothing was
 * queued and `arg` is still the caller's.
 * NULL with errno ENOMEM when out of memory for the task, or while tasks wait
 * for a fiber stack ("Stacks" above: try again after some tasks finished);
 * EINVAL when `fn` is NULL; EPERM when no runtime is running (or in a forked
 * child, see fork() above). Spawning costs no stack: the task gets one when
 * it starts (none at all when it is joined before it started).
 * Context: a task; or any other thread while crew_run is running. From a
 * thread that is not a worker (a plain thread, or crew_offload's), a spawn
 * fails with EPERM once main has returned (shutdown began: threads outside
 * cannot keep crew_run from returning); one that races with main's return
 * either succeeds (then crew_run waits for the task: its body runs, and
 * sees -ECANCELED at its first suspension) or fails with EPERM; one before
 * crew_run is about to queue main fails with EPERM too (a thread that main
 * starts can always spawn). Tasks may still spawn during shutdown (the
 * children see -ECANCELED at their first suspension, as their parents do).
 * The macro form records the function's name for crew_task_name() and messages.
 */
CREW_API crew_task *crew_spawn_named(crew_fn fn, void *arg, const char *name);
#define crew_spawn(fn, arg) crew_spawn_named((fn), (arg), #fn)

/**
 * crew_join - wait for `t` to finish; await task.
 *
 * Consumes the handle. `result` (may be NULL) receives the body's return value.
 * Returns 0; -ECANCELED when `t` was cancelled before it finished (the result
 * is still stored); -EINVAL when `t` is NULL or is the calling task itself;
 * -EPERM outside a task. Arguments are checked first, as everywhere in crew:
 * crew_join(NULL, ...) outside a task is -EINVAL.
 * Waits even when the caller has been cancelled (rule 3).
 *
 * When `t` has not started yet and is the next task in the caller's own queue,
 * it runs inline on the caller's stack (the fork-join fast path): it needs no
 * fiber of its own, but its frames go on top of the caller's (a trivial body
 * costs 112 bytes per level on x86-64 at -O3, runtime frames included), so a
 * chain of tasks that each spawn and join a child nests one level per task.
 * A child therefore runs inline only while at least a quarter of the caller's
 * stack (crew_config.stack_size / 4: 64 KiB by default) is free; otherwise the
 * caller suspends and the child runs on a fiber of its own. Such chains can be
 * arbitrarily deep, and a body that may be joined inline can count on a
 * quarter of the stack size, not on all of it.
 * Context: a task.
 */
CREW_API int crew_join(crew_task *t, void **result);

/**
 * crew_detach - give up the handle; the task frees itself when it finishes.
 * Consumes the handle. NULL is ignored.
 * Context: a task; or any other thread while the crew_run that spawned the
 * task runs. The handle is invalid once that crew_run returned. A detach from
 * a plain thread that races with the end of crew_run is safe: if the runtime
 * is already ending it does nothing (crew_run frees the task, and may report
 * it as never detached).
 */
CREW_API void crew_detach(crew_task *t);

/**
 * crew_cancel - request cancellation of `t` (see the rules above).
 * Does not consume the handle. The task must not have been freed: once
 * crew_join returned, or a detached task finished, its memory may serve
 * another task, which the call would cancel (CREW_DEBUG builds abort with
 * a message). A cancel while another task joins `t` is fine. Returns
 * 0; -EALREADY when `t` had already
 * finished; -EINVAL when `t` is NULL; -EPERM when called from a thread that
 * is not a worker while no runtime runs (the runtime is ending or ended, so
 * `t` has finished; or a forked child), without touching `t`.
 * Context: a task; or any other thread while the crew_run that spawned `t`
 * runs. The handle is invalid once that crew_run returned (a call racing
 * with its end is safe, as said above).
 */
CREW_API int crew_cancel(crew_task *t);

/**
 * crew_yield - let other runnable tasks run; asyncio.sleep(0).
 * The caller goes behind the tasks runnable on its worker. However many tasks
 * yield to each other, every 61st switch serves the worker's timers, I/O
 * completions and the global queue. Returns 0; -ECANCELED; -EPERM outside a
 * task.
 */
CREW_API int crew_yield(void);

/**
 * crew_sleep - suspend the calling task for at least `ns` nanoseconds.
 * Returns 0; -ECANCELED (at once, or when cancelled while sleeping, see
 * "Completion, cancellation, deadline"); -ETIMEDOUT when a deadline scope
 * (crew_deadline_push) ends before the sleep would; -EPERM outside a task; -ENOMEM when
 * the worker's timer set could not grow (nothing was armed). Never returns
 * early. `ns` 0 returns at once without suspending.
 */
CREW_API int crew_sleep(uint64_t ns);

/** crew_sleep_until - like crew_sleep, until crew_now() >= deadline_ns. */
CREW_API int crew_sleep_until(uint64_t deadline_ns);

/**
 * crew_deadline - a deadline scope (asyncio.timeout), declared by the caller
 * (usually on its stack) and bracketed by crew_deadline_push / _pop.
 * Fields are private.
 */
typedef struct crew_deadline {
	uint64_t at;                 /* private: this scope's deadline */
	uint64_t effective;          /* private: the earliest of at and the enclosing scopes' */
	struct crew_deadline *prev;  /* private: the enclosing scope */
} crew_deadline;

/**
 * crew_deadline_push - enter a deadline scope: until the matching
 * crew_deadline_pop, every wait of the calling task (crew_sleep*, future
 * awaits, the I/O calls of crew/io.h) ends with -ETIMEDOUT once
 * crew_now() >= deadline_ns. Scopes nest: the earliest enclosing deadline
 * applies. A wait that hits the deadline is withdrawn first (an I/O call is
 * cancelled and returns only after the kernel is done with its buffer,
 * unless the operation completed first: then its result is returned).
 * crew_join is not affected (it is not a cancellation point either).
 * A sleep that would end before the scope's deadline returns 0 as usual.
 * `scope` is the caller's memory and must stay valid until the pop; the task
 * must pop every scope it pushed, innermost first, before it returns.
 * Returns 0; -EINVAL when `scope` is NULL; -EPERM outside a task.
 * Context: a task.
 */
CREW_API int crew_deadline_push(crew_deadline *scope, uint64_t deadline_ns);

/**
 * crew_deadline_pop - leave the innermost deadline scope: the enclosing
 * scope's deadline (or none) applies again. Returns 0; -EINVAL when `scope`
 * is NULL or is not the calling task's innermost scope (nothing changes);
 * -EPERM outside a task. Context: the task that pushed `scope`.
 */
CREW_API int crew_deadline_pop(crew_deadline *scope);

/**
 * crew_deadline_expired - true when the scope's deadline has passed
 * (asyncio.Timeout.expired()); false for NULL. Any thread; reads the clock.
 */
CREW_API bool crew_deadline_expired(const crew_deadline *scope);

/** crew_now - nanoseconds of CLOCK_MONOTONIC. Any thread. */
CREW_API uint64_t crew_now(void);

/** crew_self - the calling task, or NULL outside a task. */
CREW_API crew_task *crew_self(void);

/**
 * crew_task_name - the name of the spawned function ("main" for crew_run's
 * main task), or NULL when `t` is NULL. Valid until the handle is consumed.
 */
CREW_API const char *crew_task_name(const crew_task *t);

/** crew_worker_id - 0..workers-1 on a worker thread; -1 elsewhere. */
CREW_API int crew_worker_id(void);

/** crew_workers - the number of workers of the running runtime; 0 when none. */
CREW_API unsigned crew_workers(void);

/**
 * crew_offload - run the blocking function `fn(arg)` on a plain thread while
 * the calling task is suspended; asyncio.to_thread.
 *
 * For code that blocks (a library call, name resolution, a CPU-heavy step
 * that must not hold a worker): the worker runs other tasks meanwhile.
 * Threads come from a bounded pool per runtime, started on demand:
 * CREW_OFFLOAD_THREADS (1 to 256), else the number of CPUs + 4, at most 32;
 * calls beyond it queue in order. Pool threads block every signal.
 * Cancellation does not interrupt `fn` (C cannot): a task cancelled while
 * `fn` runs still waits for it, and the call then returns -ECANCELED with
 * the result stored. A task cancelled before the call, or while its call
 * still waits for a pool thread, gets -ECANCELED at once, and `fn` does not
 * run. Deadline scopes do not end the call (it is not one of the waits
 * they bound): put the deadline inside `fn`.
 * `result` (may be NULL) receives fn's return value.
 * Returns 0; -ECANCELED (see above: check whether *result was stored by
 * comparing with a sentinel you set before); -EINVAL when `fn` is NULL;
 * -EPERM outside a task; -EAGAIN (or -ENOMEM) when no pool thread could be
 * started, with a message on stderr (fn did not run).
 * Context: a task. `arg` and the result stay the caller's.
 */
CREW_API int crew_offload(crew_fn fn, void *arg, void **result);

/**
 * crew_future_new - a new, empty future. NULL with errno ENOMEM.
 * The creator owns it and frees it with crew_future_release() (see there).
 * Context: any thread; a future may outlive crew_run.
 */
CREW_API crew_future *crew_future_new(void);

/**
 * crew_future_set - store `value` and wake every waiter, on whatever worker or
 * thread it waits. Returns 0; -EALREADY when already set; -EINVAL on NULL.
 * Context: any thread (task, worker, plain pthread).
 */
CREW_API int crew_future_set(crew_future *f, void *value);

/**
 * crew_future_await - wait until `f` is set; `value` (may be NULL) gets its value.
 * In a task it suspends; on a plain thread it blocks. Returns 0; -ECANCELED
 * (the calling task was cancelled, see "Completion, cancellation, deadline");
 * -EINVAL on NULL. Any number of tasks and threads may await one future.
 */
CREW_API int crew_future_await(crew_future *f, void **value);

/**
 * crew_future_await_until - crew_future_await with a deadline (CLOCK_MONOTONIC
 * ns). Returns -ETIMEDOUT when the deadline passed before the future was set;
 * -ENOMEM (in a task) when the worker's timer set could not grow, before any
 * waiting. The timer is withdrawn as soon as the await returns.
 */
CREW_API int crew_future_await_until(crew_future *f, uint64_t deadline_ns, void **value);

/** crew_future_done - true once `f` is set (false for NULL). Any thread. */
CREW_API bool crew_future_done(crew_future *f);

/**
 * crew_future_release - free `f` (NULL is ignored).
 * Safe as soon as every await of `f` has returned (or crew_future_done(f) was
 * true) and no other call on `f` is still running in the caller's own code,
 * whatever the setter's thread is still doing: crew_future_set touches the
 * future for the last time with the store that makes it set, and only the
 * waiters' own records afterwards. Nobody may await or set `f` afterwards.
 */
CREW_API void crew_future_release(crew_future *f);

/* ---- strictly nested fork-join ------------------------------------------ */

/**
 * crew_frame - one forked call, declared by the caller on its own stack
 * (`crew_frame f;`). 64 bytes on LP64 (eight pointers); its fields are
 * private. It must stay in scope, unmoved, from crew_fork to crew_sync.
 * (A frame elsewhere, e.g. in heap memory, works too.)
 */
typedef struct crew_frame {
	void *crew_private_[8];
} crew_frame;

/* Feature test: the strictly nested fork-join API below is there. */
#define CREW_HAVE_FORK 1

/**
 * crew_fork - make `fn(arg)` available to other workers; Cilk's spawn.
 *
 * The call is pushed on a per-fiber frame deque: no heap allocation and no
 * atomic read-modify-write while no worker steals (idle workers ask, and the
 * forking task then shares half of its unstolen frames at its next fork;
 * when it suspends or yields, it shares them all, where thieves find them
 * while it is among the last few fibers that did so on its worker). Do not
 * wait, before crew_sync, for something only `fn` does: nothing makes `fn`
 * run before the sync (with one worker nobody else can).
 * Whoever runs `fn` (this task at crew_sync, or a thief) runs it exactly once.
 * A stolen `fn` runs as a task of its own (named "crew_fork") on a fiber of
 * its own on the thief, so it may suspend (sleep, join, futures) like any
 * task. It sees the forking task's cancellation as the forking task itself
 * would: once the forking task is cancelled (before or while `fn` runs),
 * every suspending call in `fn` returns -ECANCELED (a wait in progress ends
 * at once), as when crew_sync runs `fn` inline. Deadline scopes are not
 * passed on: a stolen `fn` starts with none (the forking task's scope may be
 * left before the sync), while an `fn` run inline is inside the syncing
 * task's; an `fn` that needs a deadline either way sets its own scope.
 * An `fn` run by crew_sync runs as the syncing task, on its stack (or, when
 * less than a quarter of the stack is free, as a task on a fiber of its own,
 * which sees the cancellation as a stolen `fn` does, and, like it, starts
 * with no deadline scope: so whether an `fn` synced under a scope gets its
 * deadline depends on the stack depth of the sync, even on one worker).
 * Rules: every crew_fork is matched by one crew_sync of the same frame, in
 * the same task, in reverse order of the forks (the last forked is synced
 * first), and all before the task returns. Builds with CREW_DEBUG check it
 * and abort with a message; otherwise a violation corrupts the deque. A
 * frame that was never forked must not be synced (a zeroed one aborts with
 * a message; garbage is undefined, in every build).
 * Up to 512 frames may be outstanding per fiber; beyond that (and when no
 * memory for a fiber's first deque, about 32 KiB, can be had) crew_fork
 * keeps the call for crew_sync to run inline (counted as an overflow).
 * Outside a task it does nothing: crew_sync calls fn inline.
 * Memory: `f` and `arg` remain the caller's; `arg` must stay valid until the
 * sync returned.
 * Context: a task (anything else: see above). Not a cancellation point.
 *
 * Inline fast path: this header turns calls of crew_fork and crew_sync into
 * inline code (the macros below) that pushes and pops the frame with a few
 * plain loads and stores, and calls the exported functions only for
 * everything else (a fiber's first fork, a full deque, a thief's request,
 * a stolen frame, a low stack, CREW_DEBUG builds of libcrew). The frame's
 * address does not leave the calling function, so the compiler may keep
 * the frame in registers and call `fn` directly at the sync. That code
 * reads the private layout below: it is compiled into the caller, so a
 * program must be rebuilt with the crew.h of the libcrew it runs with.
 * Define CREW_NO_INLINE_FORK before including crew.h to call the exported
 * functions instead (same semantics).
 */
CREW_API void crew_fork(crew_frame *f, crew_fn fn, void *arg);

/**
 * crew_sync - the result of the frame's `fn(arg)`; Cilk's sync for one frame.
 *
 * If no other worker took the frame, calls fn(arg) here, inline (while at
 * least a quarter of the stack is free, as crew_join's inline path; below
 * that fn runs as a task on a fiber of its own and crew_sync waits for it,
 * so fork/sync chains of any depth fit the default stack). Otherwise
 * suspends until the thief finished it (its worker runs other work
 * meanwhile). The wait
 * is not a cancellation point and is never skipped: a cancelled task's syncs
 * still wait for their frames (whose arguments may live on its stack).
 * Context: the task that forked `f` (see crew_fork's rules); outside a task,
 * calls fn(arg). Inline fast path: see crew_fork.
 */
CREW_API void *crew_sync(crew_frame *f);

/*
 * Private: what the inline crew_fork/crew_sync see of a frame and of the
 * frame deque of the running fiber (runtime/frames.h has the protocol).
 * Not API: names and layout change whenever libcrew's do.
 *
 * The caller's crew_frame keeps only what its own sync needs (fn, arg, the
 * deque and the slot's index). The inline code never lets the frame's
 * address out of the calling function (the out-of-line calls take its
 * fields by value), so the compiler may keep it in registers and knows, at
 * the sync, which fn the fork stored: the call is direct (gcc makes fib's
 * sync a loop, as it does for Lace's typed SYNC). Thieves see the copy in
 * the deque's slot, which also holds what a stolen frame's sync needs.
 */
#define CREW__FQ_CAP 512u /* frames outstanding per fiber */
/* Subtracted from the index of a frame forked with less than a quarter of
 * the stack free (crew__fork_out): its sync, whose stack depth is the
 * fork's, then fails the inline test and goes out of line, which checks the
 * room. The inline sync so needs no stack check of its own (its stack
 * pointer lived across the call in between: a spill and a reload). */
#define CREW__FQ_LOW ((int64_t)1 << 40)
struct crew_task;
struct crew__fq;
struct crew__frame {
	crew_fn fn;
	void *arg;
	struct crew__fq *q;            /* NULL: not in a deque, crew_sync runs fn */
	int64_t b;                     /* its slot: q->slots[b] */
};
/* A slot: one cache line, written by the owner at the push and the share;
 * a thief that takes it writes the rest. It stays the frame's until its
 * sync (slots are used as a stack: slot b holds the fiber's b-th
 * outstanding frame). */
struct crew__slot {
	crew_fn fn;
	void *arg;
	struct crew_task *task;        /* the forking task (a thief's task inherits its
					* cancellation), stored when shared */
	struct crew_task *waiter;      /* atomic, once shared: NULL, the syncing task,
					* or DONE */
	union {
		void *result;                /* a thief's: fn's result, stored after... */
		struct crew__slot *kid_next; /* ...it left q->stolen (fork.c) */
	};
	struct crew_task *kid;         /* the task running it when stolen (fork.c) */
	struct crew__fq *q;            /* its deque, once stolen */
	void *pad_;
} __attribute__((aligned(64)));
struct crew__fq {
	/* shared with thieves */
	int64_t head __attribute__((aligned(64))); /* atomic: thieves CAS it; the low
					32 bits index the oldest shared slot, the high
					32 count the owner's moves of it (frames.h) */
	uint32_t stolen_lock;        /* spinlock: `stolen` and its slots' kid links */
	struct crew__slot *stolen;   /* slots (or records) whose fn a task runs elsewhere */
	struct crew__fq *stranded_next; /* a worker's stranded list (worker.c), under its lock */
	uint32_t stranded;           /* atomic: 1 while on some worker's stranded list */
	int64_t split __attribute__((aligned(64))); /* atomic: owner stores, thieves load */
	int64_t limit;               /* atomic: inline pushes only below it; 0: a thief
					found nothing shared and asks for a share;
					INT64_MIN: CREW_DEBUG builds, no inline push */
	/* the owner's (whoever runs the fiber) */
	int64_t bottom __attribute__((aligned(64))); /* next push goes to slot bottom */
	int64_t o_split;             /* the owner's copy of split: inline pops at or above */
	uintptr_t stack_lo;          /* atomic: the fiber's stack is */
	uintptr_t stack_span;        /*   [stack_lo, stack_lo + stack_span) */
	uintptr_t room;              /* inline forks only while the stack pointer is >= room
					(UINTPTR_MAX: CREW_DEBUG builds, none) */
	struct crew_task *task;      /* the task running on the fiber (its forks' forker) */
	uint64_t forks;              /* pushes not yet added to the worker's crew_stats */
	struct crew__fq *all_next;   /* the allocating worker's list */
	struct crew__slot slots[CREW__FQ_CAP];
};
/* The running fiber's deque (NULL: none yet, or not a worker thread). */
CREW_API extern __thread struct crew__fq *crew__tls_fq __attribute__((tls_model("initial-exec")));

/* The out-of-line rest of crew_fork and crew_sync (fork.c); they take the
 * frame's fields by value so that the frame's address stays in the caller. */
struct crew__forked {
	struct crew__fq *q;
	int64_t b;
};
CREW_API struct crew__forked crew__fork_out(crew_fn fn, void *arg);
CREW_API void *crew__sync_out(struct crew__fq *q, int64_t b, crew_fn fn, void *arg);

/* The stack pointer (an address on the running fiber's stack). volatile:
 * read where it is used, not kept from an earlier read across the calls in
 * between (gcc kept it across fib's recursion: a spill and a reload). */
static inline __attribute__((always_inline)) uintptr_t crew__sp(void)
{
	uintptr_t sp;
#if defined(__x86_64__)
	__asm__ volatile("movq %%rsp, %0" : "=r"(sp));
#elif defined(__aarch64__)
	__asm__ volatile("mov %0, sp" : "=r"(sp));
#else
	sp = (uintptr_t)__builtin_frame_address(0);
#endif
	return sp;
}

/*
 * The thread-local read anew where crew_fork is called. A compiler may keep
 * the address of a thread-local across a call, after which this fiber may
 * run on another thread (crew_sync and every suspending call may move it).
 * On x86-64 the read is an asm the compiler cannot keep or move across a
 * call (initial-exec: two loads, one after static linking). Elsewhere it is
 * an atomic read (of another thread's copy, maybe), and crew__fork_inline
 * checks that the stack pointer lies on that deque's stack, which only the
 * running fiber's deque passes (CREW__FQ_CHECK_STACK), before it reads
 * anything else of the deque. (Stacks and deques live until crew_run
 * returns, and so do the worker threads.)
 */
#if defined(__SANITIZE_THREAD__)
#define CREW__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CREW__TSAN 1
#endif
#endif

#if defined(__x86_64__) && !defined(CREW__FQ_TLS_PORTABLE)
static inline __attribute__((always_inline)) struct crew__fq *crew__fq_running(void)
{
	struct crew__fq *q;
	__asm__ volatile("movq crew__tls_fq@gottpoff(%%rip), %0\n\t"
			 "movq %%fs:(%0), %0"
			 : "=r"(q)
			 :
			 : "memory");
	return q;
}
#define CREW__FQ_CHECK_STACK(q) 1
#else
#if defined(CREW__TSAN)
/* Under ThreadSanitizer: a stale read may return another thread's deque,
 * just allocated there, and TSan cannot know that the stack check below
 * makes that harmless: read the thread-local afresh (a call) instead. */
__attribute__((noinline, unused)) static struct crew__fq *crew__fq_running_fresh(void)
{
	return __atomic_load_n(&crew__tls_fq, __ATOMIC_RELAXED);
}
static inline __attribute__((always_inline)) struct crew__fq *crew__fq_running(void)
{
	return crew__fq_running_fresh();
}
#else
static inline __attribute__((always_inline)) struct crew__fq *crew__fq_running(void)
{
	return __atomic_load_n(&crew__tls_fq, __ATOMIC_RELAXED);
}
#endif
#define CREW__FQ_CHECK_STACK(q)                                                                 \
	(crew__sp() - __atomic_load_n(&(q)->stack_lo, __ATOMIC_RELAXED) <                       \
	 __atomic_load_n(&(q)->stack_span, __ATOMIC_RELAXED))
#endif

static inline __attribute__((always_inline)) void crew__fork_inline(crew_frame *frame, crew_fn fn,
								     void *arg)
{
	struct crew__frame *f = (struct crew__frame *)(void *)frame;
	f->fn = fn;
	f->arg = arg;
	struct crew__fq *q = crew__fq_running();
	/* the stack pointer on this deque's stack where the read above needs
	 * the check; room in the deque, no thief asking (limit 0), a quarter
	 * of the stack free (else crew__fork_out marks the frame: its sync
	 * goes out of line, CREW__FQ_LOW) */
	if (__builtin_expect(q != NULL && CREW__FQ_CHECK_STACK(q), 1)) {
		int64_t b = q->bottom;
		if (__builtin_expect(b < __atomic_load_n(&q->limit, __ATOMIC_RELAXED) &&
					     crew__sp() >= q->room,
				     1)) {
			/* plain stores: a thief reads them only after the share's
			 * release store of split (frames.h, Orderings) */
			struct crew__slot *s = &q->slots[b];
			s->fn = fn;
			s->arg = arg;
			q->bottom = b + 1;
			q->forks++;
			f->q = q;
			f->b = b;
			return;
		}
	}
	struct crew__forked r = crew__fork_out(fn, arg);
	f->q = r.q;
	f->b = r.b;
}

/* A frame forked under a condition and synced under the same one is fine,
 * but gcc, which sees the fields the inline fork set, cannot always tell
 * that they were set on that path: no -Wmaybe-uninitialized here. Under
 * ThreadSanitizer, whose calls take the frame's address, gcc reports such a
 * read at the frame's declaration, out of this pragma's reach: there the
 * reads are relaxed atomic loads, which it does not report. */
#if defined(CREW__TSAN)
#define CREW__FRAME_READ(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#else
#define CREW__FRAME_READ(x) (x)
#endif
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
static inline __attribute__((always_inline)) void *crew__sync_inline(crew_frame *frame)
{
	struct crew__frame *f = (struct crew__frame *)(void *)frame;
	struct crew__fq *q = CREW__FRAME_READ(f->q);
	int64_t b = CREW__FRAME_READ(f->b);
	if (__builtin_expect(q != NULL, 1)) {
		/* still in the private part (nobody else could take it); a
		 * frame forked low on stack has a negative index (CREW__FQ_LOW) */
		if (__builtin_expect(b >= q->o_split, 1)) {
			q->bottom = b;
			return CREW__FRAME_READ(f->fn)(CREW__FRAME_READ(f->arg));
		}
	}
	return crew__sync_out(q, b, CREW__FRAME_READ(f->fn), CREW__FRAME_READ(f->arg));
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#if !defined(CREW_NO_INLINE_FORK)
#define crew_fork(f, fn, arg) crew__fork_inline((f), (fn), (arg))
#define crew_sync(f) crew__sync_inline(f)
#endif

/**
 * crew_parallel_for - call body(a, b, ctx) on pieces [a, b) that cover
 * [lo, hi) exactly once, in parallel when workers are idle.
 *
 * Lazy binary splitting: the caller runs the range `grain` iterations per
 * call, in order; only when another worker asks for work does it fork the
 * upper half of what is left. One worker thus costs a plain loop (plus one
 * load per piece); pieces are never larger than `grain` except the last of
 * each half. `grain` 0 picks one (about 8 pieces per worker, at most 4096).
 * Pieces may run on other workers, at the same time: body must be safe for
 * that. body may suspend (like any forked call).
 * Returns 0 when every piece ran; -EINVAL when `body` is NULL or lo > hi;
 * -EPERM outside a task. lo == hi runs nothing.
 * Context: a task.
 */
CREW_API int crew_parallel_for(size_t lo, size_t hi, size_t grain,
			       void (*body)(size_t lo, size_t hi, void *ctx), void *ctx);

/**
 * crew_parallel_reduce - fold [lo, hi) into `*result`, in parallel.
 *
 * Values are `size` bytes of the caller's type (a double, a struct...).
 * `result` is first set to a copy of `*identity`. body(a, b, acc, ctx) folds
 * the iterations [a, b) into the accumulator `acc` (a `size`-byte value);
 * combine(acc, right, ctx) folds the accumulator `right` (of the iterations
 * that follow acc's) into `acc`. A split (when a worker asks for work, as in
 * crew_parallel_for) gives the upper half a fresh accumulator copied from
 * `identity` (a malloc of `size` bytes; without memory it does not split)
 * and combines it after the halves are done. Operands keep index order, so
 * combine must be associative, not necessarily commutative; the result
 * equals the serial fold when combine is exactly associative (floating-point
 * sums may differ in the last bits, like any parallel sum).
 * `identity` must not overlap `result` and must stay unchanged during the
 * call; both remain the caller's.
 * Returns 0; -EINVAL when body, combine, result or identity is NULL, size is
 * 0 or lo > hi; -EPERM outside a task.
 * Context: a task.
 */
CREW_API int crew_parallel_reduce(size_t lo, size_t hi, size_t grain, void *result, size_t size,
				  const void *identity,
				  void (*body)(size_t lo, size_t hi, void *acc, void *ctx),
				  void (*combine)(void *acc, const void *right, void *ctx),
				  void *ctx);

/* ---- statistics ---------------------------------------------------------- */

/** What one worker did during a run (crew_stats). */
typedef struct crew_worker_stats {
	uint64_t tasks_spawned;  /**< crew_spawn calls on it, and stolen frames it ran as tasks */
	uint64_t tasks_run;      /**< task bodies that finished on it (spawned, main, stolen
	                              frames; a task joined inline counts too) */
	uint64_t forks;          /**< crew_fork calls that pushed a frame (counted
	                              per fiber, added when its task ends, when it
	                              switches out, or by the caller's crew_stats) */
	uint64_t steals;         /**< tasks and frames it took from other workers */
	uint64_t steal_attempts; /**< other workers it looked at for work */
	uint64_t parks;          /**< times it slept for lack of work */
	uint64_t inject_pops;    /**< pops from the global queue that got a task */
	uint64_t overflows;      /**< full task deque (half moved to the global queue), or
	                              crew_fork past 512 outstanding frames */
	uint64_t idle_ns;        /**< time parked, in ns */
} crew_worker_stats;

/**
 * crew_stats - per-worker counters: `out[i]` gets worker i's, for i below
 * both `max` and the number of workers, which is returned.
 *
 * In a task: the running runtime's numbers so far (each counter is read
 * whole, the set not at one instant: other workers keep counting). On any
 * other thread: the numbers of the last crew_run that ended (not while a
 * crew_run starts or ends). The sum of tasks_run over the workers of an
 * ended run equals the sum of tasks_spawned, plus one for main, plus the
 * tasks plain threads spawned. Counting costs each worker a private
 * increment, no shared memory traffic.
 * CREW_STATS=1 in the environment prints them on stderr when crew_run ends.
 * Returns the number of workers (>= 0); -EINVAL when `out` is NULL and max
 * is not 0; -EPERM when there is no run to report on.
 * Memory: `out` is the caller's, max entries.
 */
CREW_API int crew_stats(crew_worker_stats *out, unsigned max);

#ifdef __cplusplus
}
#endif

#include <crew/io.h>

#endif /* CREW_H */
