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
 *   Watching (work conservation, worker.c): a worker that computes without
 *     suspending cannot run its LIFO slot or expire its timers; an idle
 *     worker takes them over. So a worker never parks without a timeout
 *     while another worker is running and nobody watches: its park is then
 *     bounded by CREW_GRACE_NS ("watching"; nwatching counts such parked
 *     workers). A running worker that leaves work only a watcher can take
 *     wakes a parked worker when none watches (crew__idle_wake_watcher),
 *     and a parker looks at the others' `parked` flags last: idle_lock
 *     orders the two (see there).
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

/* Under idle_lock: take the k-th parked worker out of the parked set. */
static void idle_remove(crew__runtime *rt, uint32_t k)
{
	uint32_t n = rt->nparked;
	crew__worker *v = &rt->workers[rt->parked_ids[k]];
	rt->parked_ids[k] = rt->parked_ids[n - 1];
	crew__store_32(&rt->nparked, n - 1);
	crew__store_32(&v->parked, 0);
	if (v->watching) {
		v->watching = false;
		crew__store_32(&rt->nwatching, rt->nwatching - 1);
	}
}

static void idle_wake_one(crew__runtime *rt)
{
	pthread_mutex_lock(&rt->idle_lock);
	uint32_t n = rt->nparked;
	if (n == 0) {
		pthread_mutex_unlock(&rt->idle_lock);
		return;
	}
	crew__worker *v = &rt->workers[rt->parked_ids[n - 1]];
	idle_remove(rt, n - 1);
	pthread_mutex_unlock(&rt->idle_lock);
	crew__reactor_wake(v->wake_fd);
}

/* Work only a watcher can take was left (a LIFO task, a new earliest timer:
 * worker.c) by a running worker: wake a parked worker when none watches.
 * No fence needed: the caller is running, so it left the parked set under
 * idle_lock; a parker that registered before that is seen here through the
 * lock, and one that registers after it sees the caller running (its own
 * look after its fence) and watches. */
void crew__idle_wake_watcher(crew__runtime *rt)
{
	if (crew__load_32(&rt->nparked) && !crew__load_32(&rt->nwatching))
		idle_wake_one(rt);
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
	while (rt->nparked)
		idle_remove(rt, rt->nparked - 1);
	pthread_mutex_unlock(&rt->idle_lock);
	/* also the ones not parked yet: their next park returns at once */
	for (unsigned i = 0; i < rt->nworkers; i++)
		crew__reactor_wake(rt->workers[i].wake_fd);
}

static void idle_unpark_self(crew__runtime *rt, crew__worker *w)
{
	pthread_mutex_lock(&rt->idle_lock);
	if (w->parked) {
		for (uint32_t i = 0; i < rt->nparked; i++) {
			if (rt->parked_ids[i] == w->id) {
				idle_remove(rt, i);
				break;
			}
		}
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
	uint64_t now = crew_now();
	for (unsigned i = 0; i < rt->nworkers; i++) {
		crew__worker *v = &rt->workers[i];
		/* a worker that keeps up runs its woken tasks itself (internal.h) */
		if (crew__deque_size(&v->deque) > 0 ||
		    (crew__load_32(&v->due_len) > 0 && (v == w || !crew__worker_keeps_up(v, now))))
			return true;
		/* shared frames (frames.h); acquire: pairs with crew__fq_publish */
		crew__fq *q = crew__load_acquire_ptr(&v->fq);
		if (q && crew__fq_has_shared(q))
			return true;
		/* and those of fibers v switched out of (not ours: we never
		 * steal from ourselves) */
		if (v != w && crew__fq_parked_shared(v))
			return true;
	}
	return false;
}

/* Another worker is running (not parked): it may get stuck in one task. */
static bool idle_others_run(crew__runtime *rt, crew__worker *w)
{
	for (unsigned i = 0; i < rt->nworkers; i++)
		if (&rt->workers[i] != w && !crew__load_32(&rt->workers[i].parked))
			return true;
	return false;
}

/* Under idle_lock, while parked: count us as watching. */
static void idle_watch(crew__runtime *rt, crew__worker *w)
{
	if (!w->watching) {
		w->watching = true;
		crew__store_32(&rt->nwatching, rt->nwatching + 1);
	}
}

/* Park until wake_at (UINT64_MAX: until woken). A park that ends within
 * CREW_GRACE_NS counts as watching: we look at the busy workers again by
 * then (worker.c). */
void crew__idle_park(crew__runtime *rt, crew__worker *w, uint64_t wake_at)
{
	uint64_t now = crew_now();
	bool watching = wake_at <= now + CREW_GRACE_NS;
	pthread_mutex_lock(&rt->idle_lock);
	rt->parked_ids[rt->nparked] = w->id;
	crew__store_32(&rt->nparked, rt->nparked + 1);
	crew__store_32(&w->parked, 1);
	if (watching)
		idle_watch(rt, w);
	pthread_mutex_unlock(&rt->idle_lock);
	/* store->load: our parked entry before the last look for work; pairs
	 * with the notifier's fence (see Overview) */
	crew__fence();
	bool work = idle_work_visible(rt, w);
	if (!work && !watching && !crew__load_32(&rt->nwatching) && idle_others_run(rt, w)) {
		uint64_t look = now + CREW_GRACE_NS;
		pthread_mutex_lock(&rt->idle_lock);
		if (w->parked) /* nobody woke us meanwhile */
			idle_watch(rt, w);
		pthread_mutex_unlock(&rt->idle_lock);
		if (look < wake_at)
			wake_at = look;
	}
	if (!work) {
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
