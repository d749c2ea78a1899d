/* wait.c - the cold part of a task's wait (protocol in wait.h). */
#include "wait.h"

int crew__wait_arm_timer(crew__wait *wt, crew__worker *w, uint64_t deadline)
{
	wt->tm.home = NULL;
	uint64_t prev_next = crew__timer_next(&w->timers);
	int rc = crew__timer_add(&w->timers, &wt->tm, deadline, wt->task, wt->seq);
	if (rc)
		return rc;
	wt->timed = true;
	if (deadline < prev_next)
		crew__worker_timer_added(w, deadline, prev_next);
	return 0;
}
