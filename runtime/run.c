/*
 * run.c - crew_run: start the workers, run main, shut down; the gate that
 * lets plain threads use a runtime safely; fork().
 *
 * Start, in order:
 *  1. The runtime is allocated and published in crew__rt (the workers read
 *     it), and every worker thread is started. When one cannot be started,
 *     those that did are stopped and joined and crew_run fails: main never
 *     ran, nothing is left behind.
 *  2. main's task is made (rt->main set before it can run): the one step
 *     that can still fail, with nothing run.
 *  3. The gate opens: plain threads may spawn from now on (before main is
 *     queued, so that a thread main starts can spawn at once).
 *  4. main is queued.
 *
 * Shutdown, in order (asyncio.run semantics):
 *  1. main's body returns; its finisher calls crew__runtime_begin_shutdown.
 *  2. rt->shutdown is set: from now on every suspending call returns
 *     -ECANCELED at once, and tasks that finish count as cancelled.
 *  3. Tasks already suspended are woken: every task that is neither queued,
 *     running nor done gets a wake (task.c walks the task slabs), and sees the
 *     flag; sleeping ones are also woken by the worker whose heap holds their
 *     timer (each worker flushes its heap when it first sees the flag; every
 *     worker is unparked for that). Joins keep waiting for their children,
 *     which are cancelled too. Not-started tasks still start.
 *  4. A worker that runs out of work checks whether every task ever spawned
 *     has finished (crew__runtime_try_stop, under stop_lock); the first to see
 *     it sets rt->stop and wakes all workers, which leave their loops.
 *  5. crew_run joins the threads (and the offload pool), closes the gate and waits until no plain
 *     thread is inside, clears crew__rt, reports handles never joined nor
 *     detached, and frees tasks, stacks, rings and the runtime.
 *
 * Plain threads (not workers) may call crew_spawn, crew_detach and
 * crew_cancel while crew_run runs. Two rules keep them safe:
 *  - The gate (run_gate): such a call enters (crew__ext_enter) before it
 *    touches the runtime and leaves after. crew_run frees the runtime only
 *    after it closed the gate and every thread inside has left; a thread that
 *    finds the gate closed fails with EPERM and touches nothing.
 *  - A late spawn and the stop decision agree through rt->stop_lock: the
 *    spawn counts itself (ext_spawned) under the lock unless stop is set; the
 *    stop decision counts unfinished tasks under the lock and sets stop only
 *    when there are none. A spawn that succeeded keeps the workers running
 *    until its task finished; a later one fails with EPERM.
 *  A task spawning (the hot path) does neither: its runtime cannot stop
 *  before the spawning task finished.
 *
 * fork(): a child forked while a runtime runs shares the io_uring rings'
 * memory with us (MAP_SHARED) and has none of our other threads. Its copy of
 * the runtime must never be used: the pthread_atfork child handler makes the
 * child a process without a runtime (crew__rt NULL, gate closed, the forking
 * thread no worker), so every crew call there fails with EPERM instead of
 * touching shared state, and the rings are mapped MADV_DONTFORK, so a stray
 * access faults in the child rather than corrupting our queues.
 */
#include "internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

crew__runtime *crew__rt;
#if defined(CREW_TSAN)
uint32_t crew__tsan_fence_word;
#endif
static uint32_t crew__run_busy; /* one runtime per process at a time */
static uint32_t run_forked;     /* this is a child forked while a runtime ran */

/* ---- the gate (see the top of the file) ---- */

/* bit 31: closed; bits 0..30: plain threads inside. Closed while no runtime
 * is open to plain threads. */
#define RUN_GATE_CLOSED 0x80000000u
static uint32_t run_gate = RUN_GATE_CLOSED;

crew__runtime *crew__ext_enter(void)
{
	/* Closed: refuse without counting, so that a thread calling in a loop
	 * cannot keep run_gate_close waiting. */
	if (crew__load_32(&run_gate) & RUN_GATE_CLOSED)
		return NULL;
	/* Full barrier (RMW): our count is visible before we use the runtime.
	 * Pairs with the RMW in run_gate_close: either it comes first (we see
	 * the bit and leave) or our count is there when the closer waits for it.
	 * Reading the gate open also orders us after run_gate_open's RMW, which
	 * follows the store of crew__rt: the runtime we return is complete. */
	uint32_t g = crew__faa_32(&run_gate, 1);
	if (!(g & RUN_GATE_CLOSED))
		return crew__load_ptr(&crew__rt);
	crew__faa_32(&run_gate, (uint32_t)-1);
	return NULL;
}

void crew__ext_leave(void)
{
	/* RMW (release part): all we did with the runtime happens before the
	 * closer's acquire load that sees the count drop (run_gate_close). */
	crew__faa_32(&run_gate, (uint32_t)-1);
}

/* crew_run's thread, once main is queued. */
static void run_gate_open(void)
{
	/* Clears bit 31 (adding it to a word that has it set). RMW: crew__rt
	 * and main's queueing before any thread's enter reads the gate open. */
	crew__faa_32(&run_gate, RUN_GATE_CLOSED);
}

/* crew_run's thread, after the workers stopped: close, then wait for the
 * threads inside; a plain-thread call is short (no blocking inside). */
static void run_gate_close(void)
{
	crew__faa_32(&run_gate, RUN_GATE_CLOSED); /* sets bit 31; pairs: enter */
	/* acquire: pairs with the leave RMW of every thread that was inside */
	while (crew__load_acquire_32(&run_gate) != RUN_GATE_CLOSED)
		sched_yield();
}

/* ---- fork ---- */

/* In the child: a copy of the runtime whose other threads did not come along
 * and whose rings belong to the parent. Make it a process without a runtime;
 * only the forking thread runs here, so plain stores suffice. */
static void run_atfork_child(void)
{
	if (!crew__load_32(&crew__run_busy))
		return; /* no runtime was running: the child may start its own */
	crew__store_32(&run_forked, 1);
	crew__store_32(&run_gate, RUN_GATE_CLOSED); /* nobody is inside here */
	crew__store_ptr(&crew__rt, NULL);
	crew__tls_worker = NULL; /* a task's fork: the thread is no worker here */
}

static pthread_once_t run_atfork_once = PTHREAD_ONCE_INIT;

static void run_atfork_register(void)
{
	if (pthread_atfork(NULL, NULL, run_atfork_child) != 0)
		crew__error("pthread_atfork failed: a child forked by a task must "
			    "not call crew functions");
}

int crew_worker_id(void)
{
	crew__worker *w = crew__worker_current();
	return w ? (int)w->id : -1;
}

unsigned crew_workers(void)
{
	if (crew__worker_current())
		return crew__rt->nworkers;
	crew__runtime *rt = crew__ext_enter();
	if (!rt)
		return 0;
	unsigned n = rt->nworkers;
	crew__ext_leave();
	return n;
}

void crew__runtime_begin_shutdown(crew__runtime *rt)
{
	crew__store_release_32(&rt->shutdown, 1);
	/* Only main is left (the common case): nobody to wake, skip the walk.
	 * Main itself is still counted as not finished here. A task spawned
	 * after this check sees the flag at its first suspension. */
	if (crew__tasks_unfinished(rt) > 1)
		crew__task_wake_all(rt);
	crew__idle_notify_all(rt);
}

/* Shutdown step 4, by a worker that ran out of work after shutdown began:
 * true when no task is left; then stop is set and every worker woken. */
bool crew__runtime_try_stop(crew__runtime *rt)
{
	if (crew__tasks_unfinished(rt) != 0)
		return false; /* the usual answer, without the lock */
	/* Under stop_lock no plain thread can count a spawn (task_spawn_ext):
	 * 0 here stays true, and a spawn after us sees stop. */
	pthread_mutex_lock(&rt->stop_lock);
	bool stop = crew__tasks_unfinished(rt) == 0;
	if (stop) /* release: pairs with the workers' loads of stop */
		crew__store_release_32(&rt->stop, 1);
	pthread_mutex_unlock(&rt->stop_lock);
	if (stop)
		crew__idle_notify_all(rt);
	return stop;
}

static long online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? n : 1;
}

CREW_COLD static int run_config(const crew_config *cfg, crew__runtime *rt)
{
	crew_config c = cfg ? *cfg : (crew_config){ 0 };
	if (c.workers == 0) {
		const char *env = getenv("CREW_WORKERS");
		if (env && *env) {
			char *end;
			long v = strtol(env, &end, 10);
			if (*end || v < 1 || v > 1024) {
				crew__error("CREW_WORKERS=%s: expected a number from 1 to 1024", env);
				return -EINVAL;
			}
			c.workers = (unsigned)v;
		} else {
			c.workers = (unsigned)online_cpus();
		}
	}
	if (c.workers > 1024) {
		crew__error("crew_config.workers=%u: at most 1024", c.workers);
		return -EINVAL;
	}
	if (c.stack_size == 0)
		c.stack_size = 256 * 1024;
	if (c.stack_size < 16 * 1024 || c.stack_size > (size_t)1 << 30) {
		crew__error("crew_config.stack_size=%zu: expected 16 KiB to 1 GiB", c.stack_size);
		return -EINVAL;
	}
	if (c.ring_entries == 0)
		c.ring_entries = 256;
	if (c.ring_entries > 32768) {
		crew__error("crew_config.ring_entries=%u: at most 32768", c.ring_entries);
		return -EINVAL;
	}
	rt->nworkers = c.workers;
	rt->stack_size = c.stack_size;
	rt->ring_entries = c.ring_entries;
	return 0;
}

static void run_free(crew__runtime *rt, unsigned ready)
{
	for (unsigned i = 0; i < ready; i++) {
		crew__worker *w = &rt->workers[i];
		crew__reactor_fini(&w->reactor);
		close(w->wake_fd);
		crew__deque_fini(&w->deque);
		free(w->overflow);
		crew__frames_free(w);
		crew__timer_fini(&w->timers);
		free(w->expired);
	}
	crew__offload_fini(rt);
	crew__task_free_all(rt);
	crew__stack_free_all(rt);
	free(rt->parked_ids);
	free(rt->workers);
	pthread_mutex_destroy(&rt->inject_lock);
	pthread_mutex_destroy(&rt->idle_lock);
	pthread_mutex_destroy(&rt->ext_lock);
	pthread_mutex_destroy(&rt->stack_lock);
	pthread_mutex_destroy(&rt->stop_lock);
	free(rt);
}

/* The I/O backend: CREW_BACKEND=io_uring|epoll forces one; else io_uring,
 * or epoll (with a notice) when io_uring cannot be set up. rt->backend NULL:
 * not decided yet (the first worker's reactor decides). */
CREW_COLD static int run_pick_backend(crew__runtime *rt)
{
	const char *env = getenv("CREW_BACKEND");
	rt->backend = NULL;
	if (!env || !*env)
		return 0;
	if (strcmp(env, "io_uring") == 0)
		rt->backend = &crew__backend_uring;
	else if (strcmp(env, "epoll") == 0)
		rt->backend = &crew__backend_epoll;
	else {
		crew__error("CREW_BACKEND=%s: expected io_uring or epoll", env);
		return -EINVAL;
	}
	return 0;
}

CREW_COLD static int run_reactor_init(crew__runtime *rt, crew__worker *w)
{
	if (rt->backend) /* forced, or decided by the first worker */
		return crew__reactor_init(&w->reactor, rt->backend, rt->ring_entries, w->wake_fd, true);
	int rc = crew__reactor_init(&w->reactor, &crew__backend_uring, rt->ring_entries, w->wake_fd,
				    false);
	if (rc == 0) {
		rt->backend = &crew__backend_uring;
		return 0;
	}
	crew__error("io_uring unavailable (%s%s): using epoll", strerror(-rc),
		    rc == -ENOSYS || rc == -EPERM ? ": old kernel, seccomp or io_uring_disabled" :
		    rc == -ENOMEM ? ": locked-memory limit?" : "");
	rt->backend = &crew__backend_epoll;
	return crew__reactor_init(&w->reactor, rt->backend, rt->ring_entries, w->wake_fd, true);
}

CREW_COLD static int run_worker_init(crew__runtime *rt, crew__worker *w, unsigned id)
{
	w->id = id;
	w->rng = 0x9e3779b97f4a7c15ull * (id + 1);
	crew__timer_init(&w->timers);
	w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->wake_fd < 0) {
		int e = -errno;
		crew__error("eventfd failed: %s", strerror(errno));
		return e;
	}
	int rc = crew__deque_init(&w->deque);
	if (rc == 0 && !(w->overflow = malloc(sizeof(crew_task *) * (CREW_DEQUE_CAP / 2))))
		rc = -ENOMEM;
	/* up front, as the overflow scratch: made on the first expiry, a
	 * failed malloc left a sleeping task's timer unexpirable (the worker
	 * spun on a deadline in the past) */
	if (rc == 0 && !(w->expired = malloc(sizeof(*w->expired) * CREW_EXPIRE_BATCH)))
		rc = -ENOMEM;
	if (rc == 0)
		rc = run_reactor_init(rt, w);
	if (rc) {
		crew__deque_fini(&w->deque);
		free(w->overflow);
		free(w->expired);
		w->overflow = NULL;
		w->expired = NULL;
		close(w->wake_fd);
	}
	return rc;
}

static crew__runtime *run_new(const crew_config *cfg, int *err)
{
	crew__runtime *rt = calloc(1, sizeof(*rt));
	if (!rt) {
		*err = -ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&rt->inject_lock, NULL);
	pthread_mutex_init(&rt->idle_lock, NULL);
	pthread_mutex_init(&rt->ext_lock, NULL);
	pthread_mutex_init(&rt->stack_lock, NULL);
	pthread_mutex_init(&rt->stop_lock, NULL);
	crew__offload_init(rt);
	unsigned ready = 0;
	crew__stack_init();
	*err = run_pick_backend(rt); /* first: on failure no worker is counted yet */
	if (*err == 0)
		*err = run_config(cfg, rt);
	if (*err)
		goto fail;
	rt->workers = aligned_alloc(64, sizeof(crew__worker) * rt->nworkers);
	rt->parked_ids = calloc(rt->nworkers, sizeof(unsigned));
	if (!rt->workers || !rt->parked_ids) {
		*err = -ENOMEM;
		rt->nworkers = 0; /* run_free walks no worker: none was set up */
		goto fail;
	}
	memset(rt->workers, 0, sizeof(crew__worker) * rt->nworkers);
	for (; ready < rt->nworkers; ready++)
		if ((*err = run_worker_init(rt, &rt->workers[ready], ready)) != 0)
			goto fail;
	return rt;
fail:
	run_free(rt, ready);
	return NULL;
}

/* Stop and join the first n workers (no task was queued). */
CREW_COLD static void run_stop_workers(crew__runtime *rt, unsigned n)
{
	/* Without stop_lock: the gate is not open yet, so no plain thread can
	 * be spawning. release: pairs with the workers' loads of stop. */
	crew__store_release_32(&rt->stop, 1);
	crew__idle_notify_all(rt);
	for (unsigned i = 0; i < n; i++)
		pthread_join(rt->workers[i].thread, NULL);
}

/* Start step 1: all workers, or none (those started are stopped again). */
static int run_start_workers(crew__runtime *rt)
{
	for (unsigned i = 0; i < rt->nworkers; i++) {
		int rc = pthread_create(&rt->workers[i].thread, NULL, crew__worker_main,
					&rt->workers[i]);
		if (rc != 0) {
			crew__error("cannot start worker %u of %u: pthread_create: %s", i + 1,
				    rt->nworkers, strerror(rc));
			run_stop_workers(rt, i);
			return -rc;
		}
	}
	return 0;
}

int crew_run_with(const crew_config *cfg, crew_fn main_fn, void *arg, void **result)
{
	if (!main_fn)
		return -EINVAL;
	if (crew__worker_current())
		return -EBUSY; /* inside a task: asyncio.run refuses a running loop too */
	if (crew__load_32(&run_forked)) {
		crew__error("crew_run in a child forked while a runtime ran: not supported "
			    "(exec or _exit there)");
		return -EPERM;
	}
	pthread_once(&run_atfork_once, run_atfork_register);
	uint32_t idle = 0;
	if (!crew__cas_32(&crew__run_busy, &idle, 1))
		return -EBUSY;
	int err;
	crew__runtime *rt = run_new(cfg, &err);
	if (!rt) {
		crew__store_release_32(&crew__run_busy, 0);
		return err;
	}
	crew__store_release_ptr(&crew__rt, rt); /* the workers read it */
	/* The first stacks, before anything is started or queued: a runtime
	 * that cannot have them fails here, having run nothing. */
	err = crew__stack_prepare(rt);
#if !defined(CREW_ASAN)
	/* ASan reports stack overflows itself. Failure is ignored on purpose:
	 * overflow.c said why on stderr, and the run works without messages. */
	(void)crew__overflow_install();
#endif
	bool opened = false;
	if (err == 0)
		err = run_start_workers(rt);
	if (err == 0) {
		err = crew__task_prepare_main(rt, main_fn, arg);
		if (err == 0) {
			/* open before main runs: a thread main starts may spawn */
			run_gate_open();
			opened = true;
			crew__task_start_main(rt);
			for (unsigned i = 0; i < rt->nworkers; i++)
				pthread_join(rt->workers[i].thread, NULL);
			/* every task finished, so every offload did: the pool
			 * threads may still be waking their last task */
			crew__offload_stop(rt);
			if (result)
				*result = rt->main->result;
			crew__stats_end(rt);
		} else {
			run_stop_workers(rt, rt->nworkers); /* nothing was queued */
		}
	}
	crew__overflow_uninstall();
	if (opened)
		run_gate_close();
	crew__store_release_ptr(&crew__rt, NULL);
	run_free(rt, rt->nworkers);
	crew__store_release_32(&crew__run_busy, 0);
	return err;
}

int crew_run(crew_fn main_fn, void *arg, void **result)
{
	return crew_run_with(NULL, main_fn, arg, result);
}
