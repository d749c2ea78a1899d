/* timer.c - the per-worker timer heap (see timer.h). */
#include "timer.h"
#include <errno.h>
#include <stdlib.h>

static bool timer_before(const crew__timer *a, const crew__timer *b)
{
	return a->deadline < b->deadline || (a->deadline == b->deadline && a->order < b->order);
}

static crew__timer *run_last(crew__timer_heap *h)
{
	return &h->run[(h->run_head + h->run_len - 1) & (h->run_cap - 1)];
}

/* Append to the sorted run; -ENOMEM when it cannot grow. */
static int run_append(crew__timer_heap *h, const crew__timer *e)
{
	if (h->run_len == h->run_cap) {
		size_t cap = h->run_cap ? h->run_cap * 2 : 256; /* powers of two */
		crew__timer *r = malloc(cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		for (size_t i = 0; i < h->run_len; i++) /* unwrap the ring */
			r[i] = h->run[(h->run_head + i) & (h->run_cap - 1)];
		free(h->run);
		h->run = r;
		h->run_head = 0;
		h->run_cap = cap;
	}
	h->run[(h->run_head + h->run_len++) & (h->run_cap - 1)] = *e;
	return 0;
}

static int heap_push(crew__timer_heap *h, crew__timer e);

int crew__timer_add(crew__timer_heap *h, uint64_t deadline, struct crew_task *t, uint32_t seq)
{
	crew__timer e = { deadline, h->next_order++, t, seq };
	/* In order with the run (ties keep insertion order): O(1). */
	if (h->run_len == 0 || run_last(h)->deadline <= deadline)
		return run_append(h, &e);
	return heap_push(h, e);
}

static int heap_push(crew__timer_heap *h, crew__timer e)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 256;
		crew__timer *v = realloc(h->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	size_t i = h->n++;
	while (i > 0) { /* sift up */
		size_t p = (i - 1) / 2;
		if (!timer_before(&e, &h->v[p]))
			break;
		h->v[i] = h->v[p];
		i = p;
	}
	h->v[i] = e;
	return 0;
}

static void timer_pop(crew__timer_heap *h)
{
	crew__timer last = h->v[--h->n];
	size_t i = 0;
	for (;;) { /* sift down */
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && timer_before(&h->v[c + 1], &h->v[c]))
			c++;
		if (!timer_before(&h->v[c], &last))
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = last;
}

size_t crew__timer_expire(crew__timer_heap *h, uint64_t now, crew__timer *out, size_t max)
{
	size_t k = 0;
	while (k < max) {
		crew__timer *r = h->run_len ? &h->run[h->run_head] : NULL;
		crew__timer *p = h->n ? &h->v[0] : NULL;
		if (r && (!p || timer_before(r, p))) { /* the earlier of the two heads */
			if (r->deadline > now)
				break;
			out[k++] = *r;
			h->run_head = (h->run_head + 1) & (h->run_cap - 1);
			h->run_len--;
		} else if (p) {
			if (p->deadline > now)
				break;
			out[k++] = *p;
			timer_pop(h);
		} else {
			break;
		}
	}
	return k;
}

void crew__timer_fini(crew__timer_heap *h)
{
	free(h->v);
	free(h->run);
	h->v = h->run = NULL;
	h->n = h->cap = h->run_head = h->run_len = h->run_cap = 0;
}
