/*
 * sleep.c - crew_now, crew_sleep, crew_sleep_until.
 *
 * A sleeping task puts a timer on the heap of the worker it runs on (owner
 * only, no lock) and suspends. That worker wakes it when the deadline passes,
 * even if the task would next run elsewhere. The timer entry carries the
 * task's wait_seq; a task that leaves the wait early (cancelled) bumps it so
 * the entry turns stale.
 */
#include "internal.h"
#include <errno.h>
#include <time.h>

uint64_t crew_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int crew_sleep_until(uint64_t deadline_ns)
{
	crew__worker *w = crew__worker_current();
	crew_task *t = w ? w->current : NULL;
	if (!t)
		return -EPERM;
	if (crew__task_cancelled(t))
		return -ECANCELED;
	if (crew_now() >= deadline_ns)
		return 0;
	uint32_t seq = crew__faa_32(&t->wait_seq, 1) + 1;
	int rc = crew__timer_add(&w->timers, deadline_ns, t, seq);
	if (rc)
		return rc;
	for (;;) {
		crew__task_suspend(t);
		if (crew_now() >= deadline_ns) {
			rc = 0;
			break;
		}
		if (crew__task_cancelled(t)) {
			rc = -ECANCELED;
			break;
		}
		/* a spurious wake: suspend again, the timer is still set */
	}
	crew__faa_32(&t->wait_seq, 1); /* the entry (if still queued) is stale now */
	return rc;
}

int crew_sleep(uint64_t ns)
{
	uint64_t now = crew_now();
	return crew_sleep_until(ns > UINT64_MAX - now ? UINT64_MAX : now + ns);
}
