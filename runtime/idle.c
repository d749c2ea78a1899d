/*
 * idle.c - who is searching for work, who is parked, and waking them.
 *
 * Overview
 *   nsearching: workers stealing right now. At most half of the workers
 *     search at once, the rest park: no busy-waiting crowd.
 *   parked: a stack of worker ids under idle_lock; nparked mirrors its size
 *     for lock-free reads.
 *   Protocol (no lost wake-ups):
 *     notifier: make work visible; fence; if nobody searches and someone is
 *       parked, pop a parked worker and write its eventfd.
 *     parker:   push itself on the parked stack; fence; look for work once
 *       more (inject queue, every deque); only then block in the reactor.
 *   Each side's fence orders its store before its load, so at least one of
 *   them sees the other: the parker finds the work, or the notifier finds
 *   the parker. A worker woken for nothing just parks again.
 *   park_min: the earliest timeout among parked workers (UINT64_MAX: all
 *     park until woken), recomputed under idle_lock whenever the parked set
 *     changes. A worker that leaves work only a watcher can take (its LIFO
 *     slot, a new earliest timer) reads it to decide whether a parked worker
 *     must be woken to come and watch (worker.c, work conservation).
 */
#include "internal.h"
#include <time.h>

bool crew__idle_start_search(crew__runtime *rt, crew__worker *w)
{
	uint32_t s = crew__load_32(&rt->nsearching);
	if (2 * s >= rt->nworkers)
		return false;
	crew__faa_32(&rt->nsearching, 1);
	w->searching = true;
	return true;
}

void crew__idle_end_search(crew__runtime *rt, crew__worker *w, bool found)
{
	if (!w->searching)
		return;
	w->searching = false;
	uint32_t before = crew__faa_32(&rt->nsearching, (uint32_t)-1);
	/* The last searcher that found work wakes another worker if there is
	 * more to take, so that work spreads without every worker spinning. */
	if (found && before == 1 && crew__deque_size(&w->deque) > 0)
		crew__idle_notify(rt);
}

/* Under idle_lock: the earliest timeout of the parked workers. Release:
 * pairs with the acquire loads in worker.c (a hint; the parker's fence and
 * its last look settle races). */
static void idle_update_park_min(crew__runtime *rt)
{
	uint64_t min = UINT64_MAX;
	for (uint32_t i = 0; i < rt->nparked; i++) {
		uint64_t u = rt->workers[rt->parked_ids[i]].park_until;
		if (u < min)
			min = u;
	}
	crew__store_release_64((int64_t *)&rt->park_min, (int64_t)min);
}

/* Pop a parked worker (the last one parked, or with `latest` the one whose
 * park times out last) and write its eventfd. */
static void idle_wake(crew__runtime *rt, bool latest)
{
	pthread_mutex_lock(&rt->idle_lock);
	uint32_t n = rt->nparked;
	if (n == 0) {
		pthread_mutex_unlock(&rt->idle_lock);
		return;
	}
	uint32_t k = n - 1;
	for (uint32_t i = 0; latest && i < n; i++)
		if (rt->workers[rt->parked_ids[i]].park_until > rt->workers[rt->parked_ids[k]].park_until)
			k = i;
	crew__worker *v = &rt->workers[rt->parked_ids[k]];
	rt->parked_ids[k] = rt->parked_ids[n - 1];
	crew__store_32(&v->parked, 0);
	crew__store_32(&rt->nparked, n - 1);
	idle_update_park_min(rt);
	pthread_mutex_unlock(&rt->idle_lock);
	crew__reactor_wake(v->wake_fd);
}

static void idle_wake_one(crew__runtime *rt)
{
	idle_wake(rt, false);
}

/* Wake a parked worker that would not come back by itself, so that it
 * watches the busy ones (worker.c). */
void crew__idle_wake_watcher(crew__runtime *rt)
{
	idle_wake(rt, true);
}

void crew__idle_notify(crew__runtime *rt)
{
	/* A searcher will find the work; otherwise wake a parked worker. */
	if (crew__load_32(&rt->nsearching) != 0 || crew__load_32(&rt->nparked) == 0)
		return;
	idle_wake_one(rt);
}

void crew__idle_notify_all(crew__runtime *rt)
{
	pthread_mutex_lock(&rt->idle_lock);
	for (uint32_t i = 0; i < rt->nparked; i++)
		crew__store_32(&rt->workers[rt->parked_ids[i]].parked, 0);
	crew__store_32(&rt->nparked, 0);
	idle_update_park_min(rt);
	pthread_mutex_unlock(&rt->idle_lock);
	/* also the ones not parked yet: their next park returns at once */
	for (unsigned i = 0; i < rt->nworkers; i++)
		crew__reactor_wake(rt->workers[i].wake_fd);
}

static void idle_unpark_self(crew__runtime *rt, crew__worker *w)
{
	pthread_mutex_lock(&rt->idle_lock);
	if (w->parked) {
		uint32_t n = rt->nparked;
		for (uint32_t i = 0; i < n; i++) {
			if (rt->parked_ids[i] == w->id) {
				rt->parked_ids[i] = rt->parked_ids[n - 1];
				break;
			}
		}
		crew__store_32(&rt->nparked, n - 1);
		crew__store_32(&w->parked, 0);
		idle_update_park_min(rt);
	}
	pthread_mutex_unlock(&rt->idle_lock);
}

static bool idle_work_visible(crew__runtime *rt, crew__worker *w)
{
	if (crew__load_ptr(&w->lifo) || w->yield_head || !crew__inject_empty(rt) ||
	    crew__load_32(&rt->stop))
		return true;
	if (!w->saw_shutdown && crew__load_32(&rt->shutdown))
		return true; /* flush our timers first */
	for (unsigned i = 0; i < rt->nworkers; i++) {
		if (crew__deque_size(&rt->workers[i].deque) > 0 ||
		    crew__load_32(&rt->workers[i].due_len) > 0)
			return true;
		/* shared frames (frames.h); acquire: pairs with crew__fq_publish */
		crew__fq *q = crew__load_acquire_ptr(&rt->workers[i].fq);
		if (q && crew__load_64(&q->head) < crew__load_acquire_64(&q->split))
			return true;
	}
	return false;
}

void crew__idle_park(crew__runtime *rt, crew__worker *w, uint64_t wake_at)
{
	pthread_mutex_lock(&rt->idle_lock);
	rt->parked_ids[rt->nparked] = w->id;
	crew__store_32(&rt->nparked, rt->nparked + 1);
	crew__store_32(&w->parked, 1);
	w->park_until = wake_at;
	idle_update_park_min(rt);
	pthread_mutex_unlock(&rt->idle_lock);
	/* store->load: our parked entry before the last look for work; pairs
	 * with the notifier's fence (see Overview) */
	crew__fence();
	if (!idle_work_visible(rt, w)) {
		if (CREW_UNLIKELY(crew__under_valgrind)) {
			/* valgrind 3.19 keeps its big lock through io_uring_enter, so
			 * no other thread could run to wake us: nap in nanosleep
			 * (which lets go of it) and come back to look */
			struct timespec nap = { 0, 200000 };
			nanosleep(&nap, NULL);
		} else {
			crew__reactor_poll(&w->reactor, true, wake_at);
		}
	}
	idle_unpark_self(rt, w);
}
