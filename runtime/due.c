/*
 * due.c - a worker's due queue: tasks whose timers fired (in deadline order)
 * and tasks whose I/O completed (in completion order, io.c), FIFO.
 *
 * Overview
 *   Expiring timers wakes their tasks in deadline order; they must also run
 *   in that order (asyncio does, DESIGN.md), even when the worker is behind
 *   and the next batch comes due before the last one ran. The deque cannot
 *   keep that order (its bottom is LIFO: a later batch would run first), so
 *   woken timer tasks go to this FIFO instead, appended batch after batch.
 *   The owner takes from the head when its LIFO slot and deque are empty (and
 *   on its fairness tick); a thief takes the older half from the head too,
 *   into its own due queue, so the order holds on each worker.
 *
 *   A spinlock guards the list (tasks link through t->next: a SCHEDULED task
 *   is in no other list); `len` is also read without it, as a hint.
 */
#include "internal.h"

void crew__due_push(crew__worker *w, crew_task *head, crew_task *tail, unsigned n)
{
	tail->next = NULL;
	crew__spin_lock(&w->due_lock);
	if (w->due_tail)
		w->due_tail->next = head;
	else
		w->due_head = head;
	w->due_tail = tail;
	crew__store_32(&w->due_len, w->due_len + n);
	crew__spin_unlock(&w->due_lock);
}

crew_task *crew__due_pop(crew__worker *w)
{
	if (crew__load_32(&w->due_len) == 0)
		return NULL;
	crew__spin_lock(&w->due_lock);
	crew_task *t = w->due_head;
	if (t) {
		w->due_head = t->next;
		if (!w->due_head)
			w->due_tail = NULL;
		crew__store_32(&w->due_len, w->due_len - 1);
	}
	crew__spin_unlock(&w->due_lock);
	return t;
}

/* Take the older half of v's due queue (at least one): the first is
 * returned, the rest join the thief's own due queue, in order. */
crew_task *crew__due_steal(crew__worker *thief, crew__worker *v)
{
	if (crew__load_32(&v->due_len) == 0)
		return NULL;
	crew__spin_lock(&v->due_lock);
	crew_task *first = v->due_head, *last = first;
	unsigned k = 0;
	if (first) {
		unsigned want = (v->due_len + 1) / 2;
		for (k = 1; k < want && last->next; k++)
			last = last->next;
		v->due_head = last->next;
		if (!v->due_head)
			v->due_tail = NULL;
		crew__store_32(&v->due_len, v->due_len - k);
	}
	crew__spin_unlock(&v->due_lock);
	if (first && first != last)
		crew__due_push(thief, first->next, last, k - 1);
	return first;
}
