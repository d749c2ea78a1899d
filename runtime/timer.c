/* timer.c - the per-worker timer set (protocol in timer.h). */
#include "timer.h"
#include "atomics.h"
#include <errno.h>
#include <stdlib.h>

static void set_lock(crew__timer_set *s)
{
	crew__spin_lock(&s->lock);
}

static void set_unlock(crew__timer_set *s)
{
	crew__spin_unlock(&s->lock);
}

/* ---- the heap (of node pointers, each node knowing its index) ---- */

static bool timer_before(const crew__timer *a, const crew__timer *b)
{
	return a->deadline < b->deadline || (a->deadline == b->deadline && a->order < b->order);
}

static void heap_place(crew__timer_set *s, size_t i, crew__timer *tm)
{
	s->heap[i] = tm;
	tm->where = (int32_t)i;
}

static void heap_sift_up(crew__timer_set *s, size_t i, crew__timer *tm)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!timer_before(tm, s->heap[p]))
			break;
		heap_place(s, i, s->heap[p]);
		i = p;
	}
	heap_place(s, i, tm);
}

static void heap_sift_down(crew__timer_set *s, size_t i, crew__timer *tm)
{
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= s->n)
			break;
		if (c + 1 < s->n && timer_before(s->heap[c + 1], s->heap[c]))
			c++;
		if (!timer_before(s->heap[c], tm))
			break;
		heap_place(s, i, s->heap[c]);
		i = c;
	}
	heap_place(s, i, tm);
}

static int heap_push(crew__timer_set *s, crew__timer *tm)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		crew__timer **v = realloc(s->heap, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->heap = v;
		s->cap = cap;
	}
	heap_sift_up(s, s->n++, tm);
	return 0;
}

/* Remove the node at index i: the last node fills the hole and moves up or
 * down from there. */
static void heap_remove_at(crew__timer_set *s, size_t i)
{
	s->heap[i]->where = CREW_TIMER_NONE;
	crew__timer *last = s->heap[--s->n];
	if (i == s->n)
		return;
	if (i > 0 && timer_before(last, s->heap[(i - 1) / 2]))
		heap_sift_up(s, i, last);
	else
		heap_sift_down(s, i, last);
}

/* ---- the run ---- */

static void run_append(crew__timer_set *s, crew__timer *tm)
{
	tm->where = CREW_TIMER_RUN;
	tm->next = NULL;
	tm->prev = s->run_tail;
	if (s->run_tail)
		s->run_tail->next = tm;
	else
		s->run_head = tm;
	s->run_tail = tm;
	s->run_len++;
}

static void run_unlink(crew__timer_set *s, crew__timer *tm)
{
	if (tm->prev)
		tm->prev->next = tm->next;
	else
		s->run_head = tm->next;
	if (tm->next)
		tm->next->prev = tm->prev;
	else
		s->run_tail = tm->prev;
	s->run_len--;
	tm->where = CREW_TIMER_NONE;
}

/* ---- the set ---- */

/* Under the lock: recompute the published earliest deadline. Relaxed: it is
 * a hint for other workers (they take the lock before acting on it). */
static void set_publish_next(crew__timer_set *s)
{
	uint64_t a = s->n ? s->heap[0]->deadline : UINT64_MAX;
	uint64_t b = s->run_head ? s->run_head->deadline : UINT64_MAX;
	crew__store_64((int64_t *)&s->next, (int64_t)(a < b ? a : b));
}

void crew__timer_init(crew__timer_set *s)
{
	*s = (crew__timer_set){ .next = UINT64_MAX };
}

uint64_t crew__timer_next(const crew__timer_set *s)
{
	return (uint64_t)crew__load_64((const int64_t *)&s->next);
}

int crew__timer_add(crew__timer_set *s, crew__timer *tm, uint64_t deadline,
		    struct crew_task *t, uint32_t seq)
{
	tm->deadline = deadline;
	tm->task = t;
	tm->wait_seq = seq;
	tm->home = s;
	int rc = 0;
	set_lock(s);
	tm->order = s->next_order++;
	/* In order with the run (ties keep insertion order): O(1). */
	if (!s->run_tail || s->run_tail->deadline <= deadline)
		run_append(s, tm);
	else
		rc = heap_push(s, tm);
	if (rc)
		tm->where = CREW_TIMER_NONE;
	set_publish_next(s);
	set_unlock(s);
	return rc;
}

bool crew__timer_remove(crew__timer *tm)
{
	crew__timer_set *s = tm->home;
	if (!s)
		return false;
	set_lock(s);
	bool removed = true;
	if (tm->where == CREW_TIMER_RUN)
		run_unlink(s, tm);
	else if (tm->where >= 0)
		heap_remove_at(s, (size_t)tm->where);
	else
		removed = false;
	if (removed)
		set_publish_next(s);
	set_unlock(s);
	tm->home = NULL;
	return removed;
}

size_t crew__timer_expire(crew__timer_set *s, uint64_t now, crew__timer_due *out, size_t max)
{
	size_t k = 0;
	if (crew__timer_next(s) > now)
		return 0; /* a hint; a later add goes through the owner anyway */
	set_lock(s);
	while (k < max) {
		crew__timer *r = s->run_head;
		crew__timer *p = s->n ? s->heap[0] : NULL;
		crew__timer *e = r && (!p || timer_before(r, p)) ? r : p;
		if (!e || e->deadline > now)
			break;
		/* copy what settling needs: the node may go once we unlock */
		out[k++] = (crew__timer_due){ e->task, e->wait_seq };
		if (e == r)
			run_unlink(s, e);
		else
			heap_remove_at(s, 0);
	}
	set_publish_next(s);
	set_unlock(s);
	return k;
}

size_t crew__timer_count(crew__timer_set *s)
{
	set_lock(s);
	size_t n = s->n + s->run_len;
	set_unlock(s);
	return n;
}

void crew__timer_fini(crew__timer_set *s)
{
	free(s->heap);
	s->heap = NULL;
	s->n = s->cap = s->run_len = 0;
	s->run_head = s->run_tail = NULL;
	s->next = UINT64_MAX;
}
