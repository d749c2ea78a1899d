/* wait.c - arming and blocking of a task's wait (protocol in wait.h). */
#include "wait.h"

int crew__wait_begin(crew__wait *wt, crew__worker *w, crew_task *t, uint64_t deadline)
{
	wt->task = t;
	wt->timed = false;
	wt->scope = false;
	wt->tm.home = NULL;
	/* A new sequence: the old value is settled (low bits set) or the fresh
	 * 0 no settler holds, so no settler's CAS can match before we publish
	 * seq. Relaxed: settlers learn seq through a release of their own (the
	 * timer set's lock, a future's lock, the reactor's submission). */
	uint32_t seq = (crew__load_32(&t->wait_seq) & ~(uint32_t)CREW_WAIT_MASK) + 4;
	crew__store_32(&t->wait_seq, seq);
	wt->seq = seq;
	uint64_t scope = crew__wait_scope_deadline(t);
	if (scope < deadline) {
		deadline = scope;
		wt->scope = true;
	}
	if (deadline == UINT64_MAX)
		return 0;
	uint64_t prev_next = crew__timer_next(&w->timers);
	int rc = crew__timer_add(&w->timers, &wt->tm, deadline, t, seq);
	if (rc)
		return rc;
	wt->timed = true;
	if (deadline < prev_next)
		crew__worker_timer_added(w, deadline, prev_next);
	return 0;
}

uint32_t crew__wait_block(crew__wait *wt)
{
	crew_task *t = wt->task;
	for (;;) {
		uint32_t how = crew__wait_outcome(wt);
		if (how)
			return how;
		if (crew__task_cancelled(t) && crew__wait_settle(t, wt->seq, CREW_WAIT_CANCELLED))
			return CREW_WAIT_CANCELLED;
		if (!crew__wait_outcome(wt)) /* a lost settle above: look again first */
			crew__task_suspend(t);
	}
}
