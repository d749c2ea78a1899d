/*
 * run.c - crew_run: start the workers, run main, shut down.
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
 *     has finished (worker.c); the first to see it sets rt->stop and wakes
 *     all workers, which leave their loops.
 *  5. crew_run joins the threads, reports handles never joined nor detached,
 *     and frees tasks, stacks, rings and the runtime.
 */
#include "internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

crew__runtime *crew__rt;
#if defined(CREW_TSAN)
uint32_t crew__tsan_fence_word;
#endif
static uint32_t crew__run_busy; /* one runtime per process at a time */

int crew_worker_id(void)
{
	crew__worker *w = crew__worker_current();
	return w ? (int)w->id : -1;
}

unsigned crew_workers(void)
{
	crew__runtime *rt = crew__load_acquire_ptr(&crew__rt);
	return rt ? rt->nworkers : 0;
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
		crew__timer_fini(&w->timers);
		free(w->expired);
	}
	crew__task_free_all(rt);
	crew__stack_free_all(rt);
	free(rt->parked_ids);
	free(rt->workers);
	pthread_mutex_destroy(&rt->inject_lock);
	pthread_mutex_destroy(&rt->idle_lock);
	pthread_mutex_destroy(&rt->ext_lock);
	pthread_mutex_destroy(&rt->stack_lock);
	free(rt);
}

CREW_COLD static int run_worker_init(crew__runtime *rt, crew__worker *w, unsigned id)
{
	w->id = id;
	w->rng = 0x9e3779b97f4a7c15ull * (id + 1);
	w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->wake_fd < 0) {
		int e = -errno;
		crew__error("eventfd failed: %s", strerror(errno));
		return e;
	}
	int rc = crew__deque_init(&w->deque);
	if (rc == 0 && !(w->overflow = malloc(sizeof(crew_task *) * (CREW_DEQUE_CAP / 2))))
		rc = -ENOMEM;
	if (rc == 0)
		rc = crew__reactor_init(&w->reactor, rt->ring_entries, w->wake_fd);
	if (rc) {
		crew__deque_fini(&w->deque);
		free(w->overflow);
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
	unsigned ready = 0;
	crew__stack_init();
	*err = run_config(cfg, rt);
	if (*err)
		goto fail;
	rt->workers = aligned_alloc(64, sizeof(crew__worker) * rt->nworkers);
	rt->parked_ids = calloc(rt->nworkers, sizeof(unsigned));
	if (!rt->workers || !rt->parked_ids) {
		*err = -ENOMEM;
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

int crew_run_with(const crew_config *cfg, crew_fn main_fn, void *arg, void **result)
{
	if (!main_fn)
		return -EINVAL;
	if (crew__worker_current())
		return -EBUSY; /* inside a task: asyncio.run refuses a running loop too */
	uint32_t idle = 0;
	if (!crew__cas_32(&crew__run_busy, &idle, 1))
		return -EBUSY;
	int err;
	crew__runtime *rt = run_new(cfg, &err);
	if (!rt) {
		crew__store_release_32(&crew__run_busy, 0);
		return err;
	}
	crew__store_release_ptr(&crew__rt, rt);
	/* The first stacks, before anything is queued: a runtime that cannot
	 * have one fails here, having run nothing. */
	if ((err = crew__stack_prepare(rt)) != 0)
		goto out;
	rt->main = crew_spawn_named(main_fn, arg, "main");
	if (!rt->main) {
		err = -ENOMEM;
		goto out;
	}
#if !defined(CREW_ASAN)
	/* ASan reports stack overflows itself. Failure is ignored on purpose:
	 * overflow.c said why on stderr, and the run works without messages. */
	(void)crew__overflow_install();
#endif
	unsigned started = 0;
	for (; started < rt->nworkers; started++) {
		crew__worker *w = &rt->workers[started];
		if ((err = -pthread_create(&w->thread, NULL, crew__worker_main, w)) != 0) {
			crew__error("pthread_create failed: %s", strerror(-err));
			break;
		}
	}
	if (started < rt->nworkers) {
		/* cannot run with fewer workers than configured: stop the others */
		crew__store_release_32(&rt->stop, 1);
		crew__idle_notify_all(rt);
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(rt->workers[i].thread, NULL);
	crew__overflow_uninstall();
	if (started == rt->nworkers) {
		err = 0;
		if (result)
			*result = rt->main->result;
	}
out:
	crew__store_release_ptr(&crew__rt, NULL);
	run_free(rt, rt->nworkers);
	crew__store_release_32(&crew__run_busy, 0);
	return err;
}

int crew_run(crew_fn main_fn, void *arg, void **result)
{
	return crew_run_with(NULL, main_fn, arg, result);
}
