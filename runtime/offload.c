/*
 * offload.c - crew_offload: run a blocking function on a plain thread while
 * the calling task is suspended (asyncio.to_thread).
 *
 * Overview
 *   A bounded pool of plain threads per runtime, started on demand (the
 *   first offload starts one; another starts when a job is queued and no
 *   thread is idle, up to the limit). Jobs live in the offloading task's own
 *   frame and link through a FIFO under the pool's mutex; no allocation per
 *   call.
 *
 *   A pool thread pops a job (marking it started, under the mutex), runs
 *   fn(arg), stores the result, then `done` (release) and wakes the task.
 *   A task cancelled while its job still waits in the FIFO takes it out
 *   (under the mutex) and returns -ECANCELED: fn never runs. Once started,
 *   the task waits for `done` whatever happens (cancellation does not
 *   interrupt fn: the call returns -ECANCELED after fn finished, with the
 *   result stored), so the job's
 *   frame outlives every access by the pool thread except the wake, which
 *   touches only task memory; crew_run joins the pool threads before it
 *   frees that (crew__offload_stop), and a task that waits keeps the run
 *   going, so no job is left when the pool stops.
 *
 *   Pool threads block every signal: signals for the process go to the
 *   application's own threads (crew_signal_wait, or their handlers).
 */
#include "internal.h"
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CREW_OFFLOAD_MAX 256

struct crew__offload_job {
	crew__offload_job *next;
	crew_fn fn;
	void *arg;
	void *result;
	crew_task *task;
	bool started;  /* under the pool's lock: a pool thread took it */
	uint32_t done; /* atomic: the result is stored */
};

/* The pool's size limit: CREW_OFFLOAD_THREADS, else asyncio's default
 * (CPUs + 4, at most 32). Read once per runtime. */
static unsigned offload_limit(void)
{
	const char *env = getenv("CREW_OFFLOAD_THREADS");
	if (env && *env) {
		char *end;
		long v = strtol(env, &end, 10);
		if (!*end && v >= 1 && v <= CREW_OFFLOAD_MAX)
			return (unsigned)v;
		crew__error("CREW_OFFLOAD_THREADS=%s: expected 1 to %d; using the default", env,
			    CREW_OFFLOAD_MAX);
	}
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	long n = (cpus > 0 ? cpus : 1) + 4;
	return (unsigned)(n > 32 ? 32 : n);
}

static void *offload_thread(void *arg)
{
	crew__runtime *rt = arg;
	crew__offload_pool *p = &rt->offload;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->head && !p->stop) {
			p->idle++;
			pthread_cond_wait(&p->cond, &p->lock);
			p->idle--;
		}
		crew__offload_job *j = p->head;
		if (!j)
			break; /* stop, and nothing left */
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		j->started = true;
		pthread_mutex_unlock(&p->lock);
		void *r = j->fn(j->arg);
		crew_task *t = j->task;
		j->result = r;
		/* release: the result before `done`; pairs with the waiter's
		 * acquire load. Last access to the job: its frame may go now. */
		crew__store_release_32(&j->done, 1);
		crew__task_wake(t);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Under p->lock: start one more pool thread. 0 or -errno. */
static int offload_start_thread(crew__runtime *rt)
{
	crew__offload_pool *p = &rt->offload;
	if (!p->limit)
		p->limit = offload_limit();
	if (p->nthreads == p->limit)
		return -EAGAIN;
	if (!p->threads && !(p->threads = calloc(p->limit, sizeof(*p->threads))))
		return -ENOMEM;
	/* The new thread inherits our signal mask: block everything around the
	 * create (we are a worker thread; its own mask is restored). */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&p->threads[p->nthreads], NULL, offload_thread, rt);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return -rc;
	p->nthreads++;
	return 0;
}

/* Take job out of the FIFO unless a pool thread took it already. */
static bool offload_withdraw(crew__offload_pool *p, crew__offload_job *job)
{
	pthread_mutex_lock(&p->lock);
	bool queued = !job->started;
	if (queued) {
		crew__offload_job **pp = &p->head, *prev = NULL;
		while (*pp != job) {
			prev = *pp;
			pp = &(*pp)->next;
		}
		*pp = job->next;
		if (p->tail == job)
			p->tail = prev;
	}
	pthread_mutex_unlock(&p->lock);
	return queued;
}

int crew_offload(crew_fn fn, void *arg, void **result)
{
	if (!fn)
		return -EINVAL;
	crew__worker *w;
	crew_task *self;
	int rc = crew__suspend_begin(&w, &self);
	if (rc == -EPERM)
		return rc;
	/* A task cancelled before the call: fn does not run at all. */
	if (rc)
		return rc;
	crew__runtime *rt = crew__rt;
	crew__offload_pool *p = &rt->offload;
	crew__offload_job job = { .fn = fn, .arg = arg, .task = self };
	pthread_mutex_lock(&p->lock);
	if (p->idle == 0) { /* one more thread, unless at the limit (-EAGAIN) */
		int err = offload_start_thread(rt);
		if (err && p->nthreads == 0) { /* nobody could ever run it */
			pthread_mutex_unlock(&p->lock);
			crew__error("crew_offload: cannot start a pool thread: %s", strerror(-err));
			return err;
		}
	}
	if (p->tail)
		p->tail->next = &job;
	else
		p->head = &job;
	p->tail = &job;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	/* Not a cancellation point while fn runs: wait for it whatever happens
	 * (its frame is this one). Acquire pairs with the pool's release. A
	 * cancel wakes us: while the job still waits in the FIFO, it goes. */
	bool started = false; /* known taken by a pool thread: no withdraw */
	while (!crew__load_acquire_32(&job.done)) {
		if (!started && crew__task_cancelled(self)) {
			if (offload_withdraw(p, &job))
				return -ECANCELED; /* fn did not run */
			started = true;
		}
		crew__task_suspend(self);
	}
	if (result)
		*result = job.result;
	return crew__task_cancelled(self) ? -ECANCELED : 0;
}

void crew__offload_init(crew__runtime *rt)
{
	crew__offload_pool *p = &rt->offload;
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
}

/* crew_run's end, after the workers stopped (so no job is queued or in
 * flight: every offloading task waited for its job): stop and join the
 * pool. */
void crew__offload_stop(crew__runtime *rt)
{
	crew__offload_pool *p = &rt->offload;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	p->nthreads = 0;
}

/* run_free: the pool's memory (stopped before, or never started). */
void crew__offload_fini(crew__runtime *rt)
{
	crew__offload_pool *p = &rt->offload;
	free(p->threads);
	p->threads = NULL;
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
}
