/*
 * sleep.c - crew_now, crew_sleep, crew_sleep_until.
 *
 * A sleeping task puts a timer node (in its own frame) into the timer set of
 * the worker it runs on and suspends. That worker (or an idle one, when it is
 * busy: worker.c) wakes it when the deadline passes, even if the task would
 * next run elsewhere. Who ended the wait is settled on the task's wait_seq
 * (see timer.h): the expirer, or the task leaving early (cancelled), which
 * removes its node first.
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

/* Sleep until `deadline_ns`, known to be in the future or not. A cancel
 * that races with the deadline: whichever settles wait_seq first wins (a
 * sleep whose timer already fired returns 0, see crew.h). */
static int sleep_until(crew__worker *w, crew_task *t, uint64_t deadline_ns)
{
	crew__deadline d;
	int rc = crew__deadline_start(w, t, &d, deadline_ns);
	if (rc)
		return rc; /* -ENOMEM: the timer set could not grow */
	for (;;) {
		crew__task_suspend(t);
		if (crew__deadline_passed(t, &d))
			return 0; /* the worker saw the deadline pass: no clock read */
		if (crew__task_cancelled(t))
			return crew__deadline_end(t, &d) ? -ECANCELED : 0;
		/* a spurious wake: suspend again, the timer is still set */
	}
}

int crew_sleep_until(uint64_t deadline_ns)
{
	crew__worker *w;
	crew_task *t;
	int rc = crew__suspend_begin(&w, &t);
	if (rc)
		return rc;
	if (crew_now() >= deadline_ns)
		return 0;
	return sleep_until(w, t, deadline_ns);
}

int crew_sleep(uint64_t ns)
{
	crew__worker *w;
	crew_task *t;
	int rc = crew__suspend_begin(&w, &t);
	if (rc)
		return rc;
	if (ns == 0)
		return 0;
	uint64_t now = crew_now();
	return sleep_until(w, t, ns > UINT64_MAX - now ? UINT64_MAX : now + ns);
}
