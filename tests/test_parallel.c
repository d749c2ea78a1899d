/*
 * crew_parallel_for and crew_parallel_reduce: every index exactly once for
 * any range and grain (fixed-seed random cases), skewed work that gets split
 * across workers, reductions of doubles and of a struct with an
 * order-sensitive combine, and the argument and context errors.
 */
#include "helpers.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- coverage ---- */

typedef struct cover {
	size_t lo, hi, grain;
	atomic_uchar *hits;   /* hits[i - lo] */
	atomic_int bad_piece; /* a piece outside [lo, hi), or empty */
	atomic_uint workers_seen; /* bit per worker id that ran a piece */
	unsigned skew;        /* extra work per index near the end */
	atomic_ulong sink;
} cover;

static void cover_body(size_t a, size_t b, void *p)
{
	cover *c = p;
	if (a >= b || a < c->lo || b > c->hi)
		atomic_store(&c->bad_piece, 1);
	int id = crew_worker_id();
	if (id >= 0 && id < 32)
		atomic_fetch_or(&c->workers_seen, 1u << id);
	for (size_t i = a; i < b && i < c->hi; i++) {
		atomic_fetch_add(&c->hits[i - c->lo], 1);
		if (c->skew && i - c->lo >= (c->hi - c->lo) * 3 / 4) {
			/* busy work (no sleeping): `skew` steps, then more until
			 * both workers ran a piece or 5 ms passed, so that a
			 * worker the OS keeps off the CPU a while (a loaded
			 * machine) still finds heavy work left to ask for */
			unsigned long x = i;
			uint64_t until = crew_now() + 5 * CREWT_MS;
			unsigned k = 0;
			while (k < c->skew ||
			       (atomic_load(&c->workers_seen) != 3 && crew_now() < until)) {
				x = x * 6364136223846793005ul + 1442695040888963407ul;
				k++;
			}
			atomic_fetch_add(&c->sink, x & 1);
		}
	}
}

static void *cover_main(void *p)
{
	cover *c = p;
	return (void *)(intptr_t)crew_parallel_for(c->lo, c->hi, c->grain, cover_body, c);
}

static uint64_t rng_next(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

Test(parallel, for_covers_each_index_once, .timeout = CREWT_TIMEOUT(120))
{
	uint64_t seed = 12345;
	static const unsigned workers[] = { 1, 2, 4 };
	for (int round = 0; round < CREWT_SIZE(40, 12); round++) {
		cover c = { 0 };
		c.lo = rng_next(&seed) % 1000 + (round % 3 == 0 ? (size_t)-1 / 2 : 0);
		size_t n = rng_next(&seed) % 50000;
		c.hi = c.lo + n;
		unsigned g = (unsigned)rng_next(&seed) % 5;
		c.grain = g == 0 ? 0 : g == 1 ? 1 : g == 2 ? n + 7 : rng_next(&seed) % 700 + 1;
		c.hits = calloc(n + 1, 1);
		cr_assert_not_null(c.hits);
		unsigned w = workers[round % 3];
		void *res = (void *)1;
		cr_assert_eq(crewt_run(w, cover_main, &c, &res), 0);
		cr_expect_eq((intptr_t)res, 0, "round %d: parallel_for returned %ld", round,
		             (long)(intptr_t)res);
		cr_expect(!atomic_load(&c.bad_piece), "round %d: a piece outside the range", round);
		for (size_t i = 0; i < n; i++)
			if (atomic_load(&c.hits[i]) != 1) {
				cr_expect(false, "round %d [%zu, %zu) grain %zu, %u workers: index %zu ran %u times",
				               round, c.lo, c.hi, c.grain, w, c.lo + i,
				               (unsigned)atomic_load(&c.hits[i]));
				break;
			}
		free(c.hits);
	}
}

/* The last quarter is heavy: with two workers the idle one asks, the owner
 * splits, and pieces run on both. (Each heavy index keeps busy up to 5 ms
 * until both workers ran a piece: the 1024 of them give the second worker
 * seconds to get onto a loaded machine's CPU, and cost nothing once it
 * did.) */
Test(parallel, for_skewed_work_is_shared, .timeout = CREWT_TIMEOUT(120))
{
	cover c = { .lo = 0, .hi = 4096, .grain = 4, .skew = CREWT_SIZE(200000, 20000) };
	c.hits = calloc(c.hi, 1);
	void *res = (void *)1;
	cr_assert_eq(crewt_run(2, cover_main, &c, &res), 0);
	cr_expect_eq((intptr_t)res, 0);
	for (size_t i = 0; i < c.hi; i++)
		cr_expect_eq(atomic_load(&c.hits[i]), 1, "index %zu", i);
	cr_expect_eq(atomic_load(&c.workers_seen), 3u, "pieces ran on workers %#x, want both",
	             atomic_load(&c.workers_seen));
	free(c.hits);
}

/* ---- reduce ---- */

typedef struct dctx {
	size_t n;
	double got;
	int rc;
} dctx;

static void dsum_body(size_t a, size_t b, void *acc, void *ctx)
{
	(void)ctx;
	double s = *(double *)acc;
	for (size_t i = a; i < b; i++)
		s += 1.0 / (double)(i + 1);
	*(double *)acc = s;
}

static void dsum_combine(void *acc, const void *right, void *ctx)
{
	(void)ctx;
	*(double *)acc += *(const double *)right;
}

static void *dsum_main(void *p)
{
	dctx *d = p;
	double zero = 0.0;
	d->rc = crew_parallel_reduce(0, d->n, 0, &d->got, sizeof(double), &zero, dsum_body,
	                             dsum_combine, NULL);
	return NULL;
}

Test(parallel, reduce_doubles, .timeout = CREWT_TIMEOUT(60))
{
	size_t n = CREWT_SIZE(2000000, 200000);
	double want = 0.0;
	for (size_t i = 0; i < n; i++)
		want += 1.0 / (double)(i + 1);
	for (unsigned w = 1; w <= 4; w *= 2) {
		dctx d = { .n = n, .got = -1.0 };
		cr_assert_eq(crewt_run(w, dsum_main, &d, NULL), 0);
		cr_expect_eq(d.rc, 0);
		cr_expect(fabs(d.got - want) < 1e-9 * want, "%u workers: %.17g, want %.17g", w, d.got,
		          want);
	}
}

/* A struct whose combine checks that the right operand follows the left one:
 * a reduce that combined out of order, or lost or doubled a piece, shows. */
typedef struct span {
	size_t first, end; /* [first, end) folded so far; end == 0: empty */
	uint64_t sum, count;
	uint32_t max;
	int broken;
} span;

static void span_body(size_t a, size_t b, void *acc, void *ctx)
{
	const uint32_t *v = ctx;
	span *s = acc;
	if (s->end == 0)
		s->first = a;
	else if (s->end != a)
		s->broken = 1;
	for (size_t i = a; i < b; i++) {
		s->sum += v[i];
		s->count++;
		if (v[i] > s->max)
			s->max = v[i];
	}
	s->end = b;
}

static void span_combine(void *acc, const void *right, void *ctx)
{
	(void)ctx;
	span *l = acc;
	const span *r = right;
	if (r->end == 0)
		return;
	if (l->end == 0) {
		*l = *r;
		return;
	}
	if (l->end != r->first || r->broken)
		l->broken = 1;
	l->end = r->end;
	l->sum += r->sum;
	l->count += r->count;
	if (r->max > l->max)
		l->max = r->max;
}

typedef struct sctx {
	size_t n, grain;
	const uint32_t *v;
	span got;
	int rc;
} sctx;

static void *span_main(void *p)
{
	sctx *s = p;
	span id = { 0 };
	s->rc = crew_parallel_reduce(0, s->n, s->grain, &s->got, sizeof(span), &id, span_body,
	                             span_combine, (void *)s->v);
	return NULL;
}

Test(parallel, reduce_struct_in_order, .timeout = CREWT_TIMEOUT(60))
{
	size_t n = CREWT_SIZE(1000000, 100000);
	uint32_t *v = malloc(n * sizeof(*v));
	uint64_t seed = 777, sum = 0;
	uint32_t max = 0;
	for (size_t i = 0; i < n; i++) {
		v[i] = (uint32_t)rng_next(&seed);
		sum += v[i];
		if (v[i] > max)
			max = v[i];
	}
	for (unsigned w = 1; w <= 4; w *= 2) {
		sctx s = { .n = n, .grain = 64, .v = v };
		cr_assert_eq(crewt_run(w, span_main, &s, NULL), 0);
		cr_expect_eq(s.rc, 0);
		cr_expect(!s.got.broken, "%u workers: combined out of order", w);
		cr_expect(s.got.first == 0 && s.got.end == n, "%u workers: [%zu, %zu)", w, s.got.first,
		          s.got.end);
		cr_expect_eq(s.got.count, n);
		cr_expect_eq(s.got.sum, sum);
		cr_expect_eq(s.got.max, max);
	}
	free(v);
}

/* ---- errors ---- */

static void nop_body(size_t a, size_t b, void *ctx) { (void)a, (void)b, (void)ctx; }
static void nop_rbody(size_t a, size_t b, void *acc, void *ctx) { (void)a, (void)b, (void)acc, (void)ctx; }
static void nop_comb(void *a, const void *r, void *ctx) { (void)a, (void)r, (void)ctx; }

static void count_body(size_t a, size_t b, void *ctx) { *(size_t *)ctx += b - a + 1; }

static void *errors_main(void *p)
{
	int *bad = p;
	double r = 1, id = 0;
	size_t calls = 0;
	if (crew_parallel_for(0, 10, 1, NULL, NULL) != -EINVAL) *bad |= 1;
	if (crew_parallel_for(10, 9, 1, nop_body, NULL) != -EINVAL) *bad |= 2;
	if (crew_parallel_for(5, 5, 1, count_body, &calls) != 0 || calls != 0) *bad |= 4;
	if (crew_parallel_reduce(0, 1, 0, &r, 0, &id, nop_rbody, nop_comb, NULL) != -EINVAL) *bad |= 8;
	if (crew_parallel_reduce(0, 1, 0, NULL, 8, &id, nop_rbody, nop_comb, NULL) != -EINVAL) *bad |= 16;
	if (crew_parallel_reduce(0, 1, 0, &r, 8, NULL, nop_rbody, nop_comb, NULL) != -EINVAL) *bad |= 32;
	if (crew_parallel_reduce(0, 1, 0, &r, 8, &id, NULL, nop_comb, NULL) != -EINVAL) *bad |= 64;
	if (crew_parallel_reduce(0, 1, 0, &r, 8, &id, nop_rbody, NULL, NULL) != -EINVAL) *bad |= 128;
	if (crew_parallel_reduce(2, 1, 0, &r, 8, &id, nop_rbody, nop_comb, NULL) != -EINVAL) *bad |= 256;
	if (crew_parallel_reduce(3, 3, 0, &r, 8, &id, nop_rbody, nop_comb, NULL) != 0 || r != 0.0)
		*bad |= 512; /* empty: the identity */
	return NULL;
}

Test(parallel, errors)
{
	int bad = 0;
	cr_assert_eq(crewt_run(1, errors_main, &bad, NULL), 0);
	cr_expect_eq(bad, 0, "failed checks: %#x", bad);
	double r, id = 0;
	size_t calls = 0;
	cr_expect_eq(crew_parallel_for(0, 10, 1, count_body, &calls), -EPERM);
	cr_expect_eq(calls, 0);
	cr_expect_eq(crew_parallel_reduce(0, 10, 1, &r, 8, &id, nop_rbody, nop_comb, NULL), -EPERM);
	cr_expect_eq(crew_parallel_for(0, 10, 1, NULL, NULL), -EINVAL, "arguments are checked first");
}

/* Pieces that suspend (sleep, yield) mid-range, on one and on two workers:
 * still every index once (a piece may resume on another worker). */
static void sleepy_body(size_t a, size_t b, void *p)
{
	cover *c = p;
	for (size_t i = a; i < b; i++) {
		if (i % 97 == 0)
			crew_sleep(20000); /* 20 us */
		else if (i % 31 == 0)
			crew_yield();
		atomic_fetch_add(&c->hits[i - c->lo], 1);
	}
}

static void *sleepy_main(void *p)
{
	cover *c = p;
	return (void *)(intptr_t)crew_parallel_for(c->lo, c->hi, c->grain, sleepy_body, c);
}

Test(parallel, for_body_suspends, .timeout = CREWT_TIMEOUT(60))
{
	for (unsigned w = 1; w <= 2; w++) {
		cover c = { .lo = 0, .hi = 5000, .grain = 16 };
		c.hits = calloc(c.hi, 1);
		void *res = (void *)1;
		cr_assert_eq(crewt_run(w, sleepy_main, &c, &res), 0);
		cr_expect_eq((intptr_t)res, 0);
		for (size_t i = 0; i < c.hi; i++)
			if (atomic_load(&c.hits[i]) != 1) {
				cr_expect(false, "%u workers: index %zu ran %u times", w, i,
				          (unsigned)atomic_load(&c.hits[i]));
				break;
			}
		free(c.hits);
	}
}
