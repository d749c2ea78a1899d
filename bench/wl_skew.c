/*
 * wl_skew.c - an imbalanced loop: n iterations (default 400000) whose costs
 * differ by up to ~500x (a ramp, plus one iteration in ~97 fifty times
 * heavier; bench/batch/kern.h). The crew_spawn/join version halves the range
 * recursively down to KERN_SKEW_GRAIN iterations; the crew_parallel_for
 * version (CREW_HAVE_FORK) hands the loop to the runtime's lazy splitting.
 * The answer is the sum of the iterations' results, checked against the
 * serial loop's (tabulated for the default n).
 */
#include "batch.h"
#include "batch/kern.h"

#include <stdatomic.h>

#define SK_DEFAULT_SUM 1983628080157490942ULL /* kern_skew_range(0, 400000, 400000) mod 2^63 */

struct sarg {
	uint64_t lo, hi, n;
};

/* Sums are kept modulo 2^63 so that no sum can be BATCH_ERROR. */
#define M63 (~(1ULL << 63))

/* The serial sum, tabulated for the default n (from the serial loop). */
static uint64_t sk_expected(uint64_t n)
{
	return n == 400000 ? SK_DEFAULT_SUM : kern_skew_range(0, n, n) & M63;
}

static void sk_serial(struct batch_run *r) { r->result = kern_skew_range(0, r->n, r->n) & M63; }

static const char *sk_check(struct batch_run *r)
{
	if (r->result == BATCH_ERROR)
		return "a spawn or join failed";
	return r->result == sk_expected(r->n) ? NULL : "wrong sum";
}

static void *sk_task(void *arg)
{
	const struct sarg *a = arg;
	if (a->hi - a->lo <= KERN_SKEW_GRAIN)
		return batch_ptr(kern_skew_range(a->lo, a->hi, a->n) & M63);
	uint64_t mid = a->lo + (a->hi - a->lo) / 2;
	struct sarg lo = { a->lo, mid, a->n }, hi = { mid, a->hi, a->n };
	crew_task *t = crew_spawn(sk_task, &lo);
	if (!t)
		return batch_ptr(BATCH_ERROR);
	uint64_t h = batch_u64(sk_task(&hi));
	void *l = NULL;
	if (crew_join(t, &l) != 0 || h == BATCH_ERROR || batch_u64(l) == BATCH_ERROR)
		return batch_ptr(BATCH_ERROR);
	return batch_ptr((h + batch_u64(l)) & M63);
}

static void *sk_main(void *arg)
{
	struct batch_run *r = arg;
	struct sarg all = { 0, r->n, r->n };
	r->result = batch_u64(sk_task(&all));
	return NULL;
}

#ifdef CREW_HAVE_FORK /* ---- crew_parallel_for ---- */
struct sk_pf {
	uint64_t n;
	_Atomic uint64_t sum;
};

static void sk_body(size_t lo, size_t hi, void *ctx)
{
	struct sk_pf *p = ctx;
	atomic_fetch_add_explicit(&p->sum, kern_skew_range(lo, hi, p->n), memory_order_relaxed);
}

static void *sk_fork_main(void *arg)
{
	struct batch_run *r = arg;
	struct sk_pf p = { .n = r->n };
	atomic_init(&p.sum, 0);
	int rc = crew_parallel_for(0, r->n, KERN_SKEW_GRAIN, sk_body, &p);
	r->result = rc == 0 ? atomic_load(&p.sum) & M63 : BATCH_ERROR;
	return NULL;
}
#define SK_FORK sk_fork_main
#else
#define SK_FORK NULL
#endif

const struct batch_workload wl_skew = {
	.name = "skew", .default_n = 400000, .serial = sk_serial, .crew = sk_main, .fork = SK_FORK,
	.check = sk_check,
};
