/*
 * inject.c - the global inject queue: spawns and wakes from threads that are
 * not workers, and the overflow of full deques.
 *
 * A mutex-protected intrusive FIFO (tasks link through t->next). `inject_len`
 * is also read without the lock as a hint (crew__inject_empty) by workers
 * deciding where to look and by parking workers re-checking for work.
 */
#include "internal.h"

#define CREW_INJECT_BATCH 32

static void inject_link(crew__runtime *rt, crew_task *head, crew_task *tail, unsigned n)
{
	pthread_mutex_lock(&rt->inject_lock);
	if (rt->inject_tail)
		rt->inject_tail->next = head;
	else
		rt->inject_head = head;
	rt->inject_tail = tail;
	crew__store_64((int64_t *)&rt->inject_len, (int64_t)(rt->inject_len + n));
	pthread_mutex_unlock(&rt->inject_lock);
	/* store->load fence: the new length is visible before we look for a
	 * parked worker; pairs with the fence in crew__idle_park, so either we
	 * see the parked worker or it sees the work. Needed here because the
	 * pusher may be a plain thread that will not run the task itself. */
	crew__fence();
	crew__idle_notify(rt);
}

void crew__inject_push(crew__runtime *rt, crew_task *t)
{
	t->next = NULL;
	inject_link(rt, t, t, 1);
}

void crew__inject_push_batch(crew__runtime *rt, crew_task *head, crew_task *tail, unsigned n)
{
	tail->next = NULL;
	inject_link(rt, head, tail, n);
}

/* Pop the oldest task; a worker also moves up to a batch more onto its own
 * deque (one lock per batch instead of per task). */
crew_task *crew__inject_pop(crew__runtime *rt, crew__worker *w)
{
	if (crew__inject_empty(rt))
		return NULL;
	pthread_mutex_lock(&rt->inject_lock);
	crew_task *t = rt->inject_head;
	if (!t) {
		pthread_mutex_unlock(&rt->inject_lock);
		return NULL;
	}
	/* A worker also takes up to a batch more, remembered in order while
	 * walking the list under the lock. */
	crew_task *rest[CREW_INJECT_BATCH];
	unsigned k = 0;
	crew_task *last = t;
	if (w) {
		unsigned more = (unsigned)(rt->inject_len / rt->nworkers);
		if (more > CREW_INJECT_BATCH)
			more = CREW_INJECT_BATCH;
		while (k < more && last->next)
			rest[k++] = last = last->next;
	}
	rt->inject_head = last->next;
	if (!rt->inject_head)
		rt->inject_tail = NULL;
	crew__store_64((int64_t *)&rt->inject_len, (int64_t)(rt->inject_len - 1 - k));
	pthread_mutex_unlock(&rt->inject_lock);
	if (w)
		crew__stat_inc(&w->stats.inject_pops);
	/* keep FIFO order on the LIFO deque: push the batch from its end */
	while (k-- > 0)
		crew__worker_enqueue(w, rest[k]);
	return t;
}
