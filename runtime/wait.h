/*
 * wait.h - the one way a task waits: a waiter record and its routine.
 *
 * Overview
 *   Every suspension that can end for more than one reason (sleep, future
 *   await, I/O; next: semaphores, channels, timed joins) goes through a
 *   crew__wait that lives in the waiting function's frame:
 *
 *     crew__wait_begin   arm: a new sequence number on the task's wait_seq,
 *                        and a timer for the deadline (the earlier of the
 *                        call's own and the task's deadline scope)
 *     (publish seq)      the caller hands {task, seq} to whoever completes
 *                        the wait (a future's waiter node, an I/O record)
 *     crew__wait_block   suspend until the wait is settled; returns how
 *     crew__wait_end     remove the timer if it is still set (O(log n))
 *
 *   Settling: the task's wait_seq word holds `seq` (low two bits 0) while
 *   the wait is armed. Exactly one side moves it to seq | outcome with one
 *   CAS (crew__wait_settle): the completer (CREW_WAIT_DONE), the timer's
 *   expirer (CREW_WAIT_TIMEDOUT) or the task itself once it sees it was
 *   cancelled (CREW_WAIT_CANCELLED). A settler knows only {task, seq},
 *   copied out of its record before it lets the record go: task memory
 *   outlives every wake (task.c), and a settler from an earlier wait holds an
 *   older seq, so its CAS fails and it never ends a later wait.
 *   The winner then wakes the task (crew__task_wake); a loser may still wake
 *   it (spurious wakes are harmless: crew__wait_block loops on wait_seq).
 *
 *   crew_join keeps its own loop (task.c): it is not a cancellation point
 *   (rule 3) and has no deadline, so it needs no wait record; a timed join
 *   would use one.
 *
 *   What settling does not decide: a source with its own hand-off (a future
 *   whose setter took the waiter list, an I/O operation the kernel still
 *   owns) is finished by its caller after crew__wait_block returns (future.c:
 *   completion wins; io.c: the caller waits for the kernel's completion).
 */
#ifndef CREW_WAIT_H
#define CREW_WAIT_H

#include "internal.h"

enum {
	CREW_WAIT_DONE = 1,      /* completed by its source */
	CREW_WAIT_TIMEDOUT = 2,  /* its timer fired */
	CREW_WAIT_CANCELLED = 3, /* the task was cancelled (or shutdown began) */
	CREW_WAIT_MASK = 3,
};

typedef struct crew__wait {
	crew_task *task;
	uint32_t seq;         /* armed value of task->wait_seq */
	bool timed;           /* tm is in a timer set */
	bool scope;           /* the deadline is the scope's (earlier than the call's) */
	crew__timer tm;
} crew__wait;

/* Any thread: settle {t, seq} with `how`. true when this call settled it
 * (the caller then wakes t); false when it was settled already or the wait
 * is over. Full barrier (CAS): whatever the settler wrote before (an I/O
 * result) is visible to the task that sees the outcome (acquire load in
 * crew__wait_block). */
static inline bool crew__wait_settle(crew_task *t, uint32_t seq, uint32_t how)
{
	uint32_t expected = seq;
	return crew__cas_32(&t->wait_seq, &expected, seq | how);
}

/* The outcome so far: 0 while armed, else CREW_WAIT_*. Acquire: pairs with
 * the settler's CAS. */
static inline uint32_t crew__wait_outcome(const crew__wait *wt)
{
	uint32_t s = crew__load_acquire_32(&wt->task->wait_seq);
	return s == wt->seq ? 0 : (s & CREW_WAIT_MASK);
}

/* The task's current deadline scope, UINT64_MAX: none. */
static inline uint64_t crew__wait_scope_deadline(const crew_task *t)
{
	return t->scope ? t->scope->effective : UINT64_MAX;
}

/* Put wt's timer for `deadline` into w's set. 0 or -ENOMEM. */
static inline int crew__wait_arm_timer(crew__wait *wt, crew__worker *w, uint64_t deadline)
{
	wt->tm.home = NULL;
	uint64_t prev_next = crew__timer_next(&w->timers);
	int rc = crew__timer_add(&w->timers, &wt->tm, deadline, wt->task, wt->seq);
	if (rc)
		return rc;
	wt->timed = true;
	/* a new earliest: should we get stuck in a task before it, an idle
	 * worker must be watching to take it over (worker.c) */
	if (deadline < prev_next)
		crew__idle_wake_watcher(crew__rt);
	return 0;
}

/* Arm a wait of task t running on worker w, until `deadline` (UINT64_MAX:
 * none) or the task's scope deadline, whichever is earlier. 0, or -ENOMEM
 * when the timer set could not grow (nothing armed; do not block). Inline:
 * an untimed wait (a future await, most I/O) costs a load and a store. */
static inline int crew__wait_begin(crew__wait *wt, crew__worker *w, crew_task *t, uint64_t deadline)
{
	wt->task = t;
	wt->timed = false;
	wt->scope = false;
	/* A new sequence: the old value is settled (low bits set) or the fresh
	 * 0 no settler holds, so no settler's CAS can match before we publish
	 * seq. Relaxed: settlers learn seq through a release of their own (the
	 * timer set's lock, a future's lock, the reactor's submission). */
	uint32_t seq = (crew__load_32(&t->wait_seq) & ~(uint32_t)CREW_WAIT_MASK) + 4;
	crew__store_32(&t->wait_seq, seq);
	wt->seq = seq;
	uint64_t scope = crew__wait_scope_deadline(t);
	if (CREW_UNLIKELY(scope < deadline)) {
		deadline = scope;
		wt->scope = true;
	}
	if (deadline == UINT64_MAX)
		return 0;
	return crew__wait_arm_timer(wt, w, deadline);
}

/* Suspend until the wait is settled; settles it CANCELLED itself when the
 * task was cancelled. Returns CREW_WAIT_DONE, _TIMEDOUT or _CANCELLED.
 * The caller looked at cancellation before arming (crew__suspend_begin): a
 * cancel that comes later (or shutdown) also wakes the task, so it is
 * looked for only after a wake, not before the first suspension. */
static inline uint32_t crew__wait_block(crew__wait *wt)
{
	crew_task *t = wt->task;
	uint32_t how;
	while (!(how = crew__wait_outcome(wt))) {
		crew__task_suspend(t);
		if (!(how = crew__wait_outcome(wt)) && crew__task_cancelled(t) &&
		    crew__wait_settle(t, wt->seq, CREW_WAIT_CANCELLED))
			return CREW_WAIT_CANCELLED;
	}
	return how;
}

/* Remove the timer if still set. Call before the frame goes, whatever the
 * outcome. A wait settled TIMEDOUT was settled by its expirer, which had
 * taken the node out of the set first (timer.c): no lock to take then, which
 * keeps the common sleep free of a second trip through the set's lock. */
static inline void crew__wait_end(crew__wait *wt)
{
	if (wt->timed) {
		wt->timed = false;
		if (crew__wait_outcome(wt) != CREW_WAIT_TIMEDOUT)
			crew__timer_remove(&wt->tm); /* after this no expirer sees the node */
	}
}
#endif
