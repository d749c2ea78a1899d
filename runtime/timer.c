/* timer.c - the per-worker timer heap (see timer.h). */
#include "timer.h"
#include <errno.h>
#include <stdlib.h>

static bool timer_before(const crew__timer *a, const crew__timer *b)
{
	return a->deadline < b->deadline || (a->deadline == b->deadline && a->order < b->order);
}

int crew__timer_add(crew__timer_heap *h, uint64_t deadline, struct crew_task *t, uint32_t seq)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 256;
		crew__timer *v = realloc(h->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	crew__timer e = { deadline, h->next_order++, t, seq };
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
	while (k < max && h->n && h->v[0].deadline <= now) {
		out[k++] = h->v[0];
		timer_pop(h);
	}
	return k;
}

void crew__timer_fini(crew__timer_heap *h)
{
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}
