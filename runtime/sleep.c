/*
 * sleep.c - crew_now, crew_sleep, crew_sleep_until.
 *
 * A sleep is a wait (wait.h) with a deadline and no other source: its timer
 * node lives in the sleeper's frame, in the timer set of the worker it
 * suspends on. That worker (or an idle one, when it is busy: worker.c) settles
 * the wait when the deadline passes, even if the task would next run
 * elsewhere; a cancel settles it first when it comes first.
 */
#include "wait.h"
#include <errno.h>
#include <time.h>

uint64_t crew_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sleep until `deadline_ns`, known to be in the future or not. A cancel
 * that races with the deadline: whichever settles the wait first wins (a
 * sleep whose timer already fired returns 0, see crew.h). A scope deadline
 * earlier than ours ends the sleep with -ETIMEDOUT. */
static int sleep_until(crew__worker *w, crew_task *t, uint64_t deadline_ns)
{
	uint64_t scope = crew__wait_scope_deadline(t);
	if (scope < deadline_ns && crew_now() >= scope)
		return -ETIMEDOUT; /* the scope is over already */
	crew__wait wt;
	int rc = crew__wait_begin(&wt, w, t, deadline_ns);
	if (rc)
		return rc; /* -ENOMEM: the timer set could not grow */
	uint32_t how = crew__wait_block(&wt);
	crew__wait_end(&wt);
	if (how == CREW_WAIT_CANCELLED)
		return -ECANCELED;
	return wt.scope ? -ETIMEDOUT : 0; /* the worker saw the deadline pass */
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
