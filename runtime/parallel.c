/*
 * parallel.c - data-parallel helpers on crew_fork/crew_sync: parallel_for
 * and parallel_reduce, with lazy binary splitting.
 *
 * Overview
 *   A range is run grain by grain in a plain loop. Between grains the loop
 *   reads the split request of its fiber's frame deque (crew__fq_asked, set
 *   by a thief that found nothing to steal there: frames.h; the deque is made
 *   first if the fiber has none, or no thief could ask); only then does it
 *   fork the upper half
 *   of what is left and go on with the lower half. So on one worker, or
 *   while everybody is busy, a range costs its loop plus one load per grain;
 *   when a worker runs dry the work splits in halves, log2(n / grain) deep at
 *   most. parallel_reduce gives each forked upper half its own accumulator
 *   (starting at the identity) and combines it into the lower half's after
 *   the sync: the combine sees operands in index order (associativity is
 *   enough, commutativity is not needed).
 */
#include "internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A thief asked the running fiber for work (a relaxed load: a hint). */
static inline bool par_hungry(void)
{
	crew__worker *w = crew__worker_current(); /* the body may migrate us */
	crew__fq *q = w->fq;
	return CREW_UNLIKELY(q && crew__fq_asked(q));
}

/* grain 0: about 8 pieces per worker, at most 4096 iterations a poll */
static size_t par_grain(size_t n, size_t grain)
{
	if (grain)
		return grain;
	size_t g = n / (8 * (size_t)crew__rt->nworkers);
	return g < 1 ? 1 : g > 4096 ? 4096 : g;
}

/* ---- parallel_for ---- */

struct par_for {
	size_t lo, hi, grain;
	void (*body)(size_t lo, size_t hi, void *ctx);
	void *ctx;
};

static void par_for_run(const struct par_for *p);

/* The forked upper half: on a thief's fiber, which needs a deque of its own
 * before anybody can ask it to split further. */
static void *par_for_task(void *arg)
{
	(void)crew__frames_of_current(crew__worker_current());
	par_for_run(arg);
	return NULL;
}

static void par_for_run(const struct par_for *p)
{
	size_t lo = p->lo, hi = p->hi, grain = p->grain;
	while (hi - lo > grain) {
		if (par_hungry()) {
			size_t mid = lo + (hi - lo) / 2;
			struct par_for up = { mid, hi, grain, p->body, p->ctx };
			struct par_for low = { lo, mid, grain, p->body, p->ctx };
			crew_frame f;
			crew_fork(&f, par_for_task, &up);
			par_for_run(&low);
			crew_sync(&f);
			return;
		}
		p->body(lo, lo + grain, p->ctx);
		lo += grain;
	}
	p->body(lo, hi, p->ctx);
}

int crew_parallel_for(size_t lo, size_t hi, size_t grain,
		      void (*body)(size_t lo, size_t hi, void *ctx), void *ctx)
{
	if (!body || lo > hi)
		return -EINVAL;
	if (!crew_self())
		return -EPERM;
	if (lo == hi)
		return 0;
	(void)crew__frames_of_current(crew__worker_current()); /* none: runs serially */
	struct par_for p = { lo, hi, par_grain(hi - lo, grain), body, ctx };
	par_for_run(&p);
	return 0;
}

/* ---- parallel_reduce ---- */

struct par_reduce {
	size_t lo, hi, grain, size;
	const void *identity;
	void (*body)(size_t lo, size_t hi, void *acc, void *ctx);
	void (*combine)(void *acc, const void *right, void *ctx);
	void *ctx;
	void *acc;
};

static void par_reduce_run(const struct par_reduce *p);

static void *par_reduce_task(void *arg)
{
	(void)crew__frames_of_current(crew__worker_current()); /* as par_for_task */
	par_reduce_run(arg);
	return NULL;
}

/* Split [lo, hi): the upper half into a fresh accumulator, forked. false
 * when no memory for it (then the caller just goes on serially). */
static bool par_reduce_split(const struct par_reduce *p, size_t lo, size_t hi)
{
	void *right = malloc(p->size);
	if (!right)
		return false;
	memcpy(right, p->identity, p->size);
	size_t mid = lo + (hi - lo) / 2;
	struct par_reduce up = *p, low = *p;
	up.lo = mid, up.hi = hi, up.acc = right;
	low.lo = lo, low.hi = mid;
	crew_frame f;
	crew_fork(&f, par_reduce_task, &up);
	par_reduce_run(&low);
	crew_sync(&f);
	p->combine(p->acc, right, p->ctx);
	free(right);
	return true;
}

static void par_reduce_run(const struct par_reduce *p)
{
	size_t lo = p->lo, hi = p->hi, grain = p->grain;
	while (hi - lo > grain) {
		if (par_hungry() && par_reduce_split(p, lo, hi))
			return;
		p->body(lo, lo + grain, p->acc, p->ctx);
		lo += grain;
	}
	p->body(lo, hi, p->acc, p->ctx);
}

int crew_parallel_reduce(size_t lo, size_t hi, size_t grain, void *result, size_t size,
			 const void *identity,
			 void (*body)(size_t lo, size_t hi, void *acc, void *ctx),
			 void (*combine)(void *acc, const void *right, void *ctx), void *ctx)
{
	if (!body || !combine || !result || !identity || size == 0 || lo > hi)
		return -EINVAL;
	if (!crew_self())
		return -EPERM;
	memmove(result, identity, size);
	if (lo == hi)
		return 0;
	(void)crew__frames_of_current(crew__worker_current()); /* none: runs serially */
	struct par_reduce p = { lo, hi, par_grain(hi - lo, grain), size, identity,
				body, combine, ctx, result };
	par_reduce_run(&p);
	return 0;
}
