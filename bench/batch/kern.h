/*
 * kern.h - what every runtime's version of the batch workloads shares: input
 * generators, the serial kernels (leaves and baselines), the UTS tree's
 * SHA-1 generator and the answer checks. Header-only, valid C11 and C++17,
 * included by bench/wl_*.c (crew), bench/peers/omp/batch.c (OpenMP) and
 * bench/peers/tbb/batch.cpp (oneTBB), so that every runtime computes the same
 * thing on the same input and only the parallel skeleton differs.
 *
 * Written for crew from the algorithms (Cilk/BOTS/Lace describe the same
 * workloads); no text is taken from those projects. The UTS generator follows
 * the UTS specification (SHA-1 of the parent's 20-byte state and the child's
 * index, big-endian), so that the trees are the reference trees T1 and T3 and
 * their node counts are the published ones (4130071 and 4112897).
 */
#ifndef CREW_BENCH_KERN_H
#define CREW_BENCH_KERN_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
#define KERN_CAST(T, e) static_cast<T>(e)
#else
#define KERN_CAST(T, e) (e)
#endif

/* ---- fib ------------------------------------------------------------------ */

static inline uint64_t kern_fib(unsigned n) { return n < 2 ? n : kern_fib(n - 1) + kern_fib(n - 2); }
static inline uint64_t kern_fib_expected(unsigned n)
{
	uint64_t a = 0, b = 1;
	for (unsigned i = 0; i < n; i++) {
		uint64_t t = a + b;
		a = b;
		b = t;
	}
	return a;
}

/* ---- nqueens -------------------------------------------------------------- */
/* Row by row; a placement is valid when no earlier queen shares its column or
 * a diagonal. The board is the column of each placed row (bytes), copied into
 * each child as in BOTS/Cilk's nqueens, so that every child owns its board. */

static inline int kern_queens_ok(const unsigned char *b, int row, int col)
{
	for (int r = 0; r < row; r++) {
		int c = b[r];
		if (c == col || c - col == row - r || col - c == row - r)
			return 0;
	}
	return 1;
}

static inline uint64_t kern_queens(unsigned char *b, int n, int row)
{
	if (row == n)
		return 1;
	uint64_t count = 0;
	for (int col = 0; col < n; col++)
		if (kern_queens_ok(b, row, col)) {
			b[row] = (unsigned char)col;
			count += kern_queens(b, n, row + 1);
		}
	return count;
}

/* Solutions of n-queens, from OEIS A000170; 0 when not tabulated. */
static inline uint64_t kern_queens_expected(unsigned n)
{
	static const uint64_t t[] = { 1, 1, 0, 0, 2, 10, 4, 40, 92, 352, 724, 2680, 14200, 73712,
				      365596, 2279184, 14772512 };
	return n < sizeof t / sizeof t[0] ? t[n] : 0;
}

/* ---- UTS: SHA-1 and the reference trees ------------------------------------ */

static inline uint32_t kern_rol(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }
static inline uint32_t kern_load_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void kern_store_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* The SHA-1 compression function, unrolled: a 16-word circular message
 * schedule, and the five working variables renamed from round to round
 * instead of moved (the usual way to write it fast). */
#define KERN_F1(b, c, d) (((c ^ d) & b) ^ d)
#define KERN_F2(b, c, d) (b ^ c ^ d)
#define KERN_F3(b, c, d) (((b | c) & d) | (b & c))
#define KERN_W(i)                                                                                 \
	((i) < 16 ? w[(i)&15]                                                                     \
		  : (w[(i)&15] = kern_rol(w[((i) + 13) & 15] ^ w[((i) + 8) & 15] ^                \
					  w[((i) + 2) & 15] ^ w[(i)&15], 1)))
#define KERN_R(a, b, c, d, e, i, F, K)                                                            \
	e += kern_rol(a, 5) + F(b, c, d) + (K) + KERN_W(i);                                      \
	b = kern_rol(b, 30);
#define KERN_R5(i, F, K)                                                                          \
	KERN_R(a, b, c, d, e, (i), F, K) KERN_R(e, a, b, c, d, (i) + 1, F, K)                     \
	KERN_R(d, e, a, b, c, (i) + 2, F, K) KERN_R(c, d, e, a, b, (i) + 3, F, K)                 \
	KERN_R(b, c, d, e, a, (i) + 4, F, K)

/* SHA-1 of a message shorter than 56 bytes (all UTS hashes are 20 or 24):
 * one padded block, its words read and the digest's written big-endian.
 * A general byte-message SHA-1, about as fast here as the one Lace's UTS
 * uses (68 against 72 ns a hash, measured); one that kept UTS states as
 * words and skipped the byte order took 55 ns, left out so that crew's
 * UTS and Lace's compare their runtimes, not their hashes. */
static inline void kern_sha1_short(const unsigned char *msg, unsigned len, unsigned char out[20])
{
	unsigned char buf[64] = { 0 };
	memcpy(buf, msg, len);
	buf[len] = 0x80;
	uint32_t w[16];
	for (int i = 0; i < 15; i++)
		w[i] = kern_load_be32(buf + 4 * i);
	w[15] = len * 8; /* the length in bits; its high word (w[14]) is 0 */
	const uint32_t h0 = 0x67452301u, h1 = 0xEFCDAB89u, h2 = 0x98BADCFEu, h3 = 0x10325476u,
		       h4 = 0xC3D2E1F0u;
	uint32_t a = h0, b = h1, c = h2, d = h3, e = h4;
	KERN_R5(0, KERN_F1, 0x5A827999u) KERN_R5(5, KERN_F1, 0x5A827999u)
	KERN_R5(10, KERN_F1, 0x5A827999u) KERN_R5(15, KERN_F1, 0x5A827999u)
	KERN_R5(20, KERN_F2, 0x6ED9EBA1u) KERN_R5(25, KERN_F2, 0x6ED9EBA1u)
	KERN_R5(30, KERN_F2, 0x6ED9EBA1u) KERN_R5(35, KERN_F2, 0x6ED9EBA1u)
	KERN_R5(40, KERN_F3, 0x8F1BBCDCu) KERN_R5(45, KERN_F3, 0x8F1BBCDCu)
	KERN_R5(50, KERN_F3, 0x8F1BBCDCu) KERN_R5(55, KERN_F3, 0x8F1BBCDCu)
	KERN_R5(60, KERN_F2, 0xCA62C1D6u) KERN_R5(65, KERN_F2, 0xCA62C1D6u)
	KERN_R5(70, KERN_F2, 0xCA62C1D6u) KERN_R5(75, KERN_F2, 0xCA62C1D6u)
	kern_store_be32(out, h0 + a);
	kern_store_be32(out + 4, h1 + b);
	kern_store_be32(out + 8, h2 + c);
	kern_store_be32(out + 12, h3 + d);
	kern_store_be32(out + 16, h4 + e);
}
#undef KERN_R5
#undef KERN_R
#undef KERN_W
#undef KERN_F1
#undef KERN_F2
#undef KERN_F3

struct kern_uts_node {
	unsigned char state[20];
	int height;
};

/* The two reference shapes: T1 geometric with a fixed branching factor 4 up
 * to depth gen_mx (T1: 10, seed 19), T3 binomial (root 2000 children, then 8
 * children with probability 0.124875, seed 42). The workload's n is T1's
 * depth or T3's root branching factor. */
struct kern_uts_tree {
	int binomial;   /* 0: geometric (T1), 1: binomial (T3) */
	double b0;      /* T1: 4, T3: root branching n */
	int gen_mx;     /* T1: depth n */
	double q;       /* T3: probability of a non-leaf */
	int m;          /* T3: children of a non-leaf */
	int seed;
};

static inline struct kern_uts_tree kern_uts_t1(unsigned depth)
{
	struct kern_uts_tree t = { 0, 4.0, (int)depth, 0.0, 0, 19 };
	return t;
}
static inline struct kern_uts_tree kern_uts_t3(unsigned root_children)
{
	struct kern_uts_tree t = { 1, (double)root_children, 0, 0.124875, 8, 42 };
	return t;
}

static inline void kern_uts_root(const struct kern_uts_tree *t, struct kern_uts_node *root)
{
	unsigned char seed[20] = { 0 };
	seed[16] = (unsigned char)(t->seed >> 24);
	seed[17] = (unsigned char)(t->seed >> 16);
	seed[18] = (unsigned char)(t->seed >> 8);
	seed[19] = (unsigned char)t->seed;
	kern_sha1_short(seed, 20, root->state);
	root->height = 0;
}

static inline void kern_uts_child(const struct kern_uts_node *parent, int i, struct kern_uts_node *child)
{
	unsigned char msg[24];
	memcpy(msg, parent->state, 20);
	kern_store_be32(msg + 20, (uint32_t)i);
	kern_sha1_short(msg, 24, child->state);
	child->height = parent->height + 1;
}

static inline double kern_uts_prob(const struct kern_uts_node *n)
{
	uint32_t b = (uint32_t)n->state[16] << 24 | (uint32_t)n->state[17] << 16 |
		     (uint32_t)n->state[18] << 8 | n->state[19];
	return (double)(b & 0x7fffffffu) / 2147483648.0;
}

static inline int kern_uts_children(const struct kern_uts_tree *t, const struct kern_uts_node *n)
{
	int c;
	if (t->binomial) {
		if (n->height == 0)
			return (int)floor(t->b0);
		c = kern_uts_prob(n) < t->q ? t->m : 0;
	} else {
		double b = n->height < t->gen_mx ? t->b0 : 0.0;
		double p = 1.0 / (1.0 + b);
		c = (int)floor(log(1.0 - kern_uts_prob(n)) / log(1.0 - p));
	}
	return c > 100 ? 100 : c; /* the reference's cap, never reached by T1/T3 */
}

static inline uint64_t kern_uts_count(const struct kern_uts_tree *t, const struct kern_uts_node *n)
{
	int k = kern_uts_children(t, n);
	uint64_t count = 1;
	for (int i = 0; i < k; i++) {
		struct kern_uts_node c;
		kern_uts_child(n, i, &c);
		count += kern_uts_count(t, &c);
	}
	return count;
}

/* Reference node counts (UTS sample_trees.sh; the smaller ones measured with
 * the reference generator); 0 when not tabulated. */
static inline uint64_t kern_uts_expected(int binomial, unsigned n)
{
	if (!binomial)
		return n == 10 ? 4130071 : n == 9 ? 1031269 : 0;
	return n == 2000 ? 4112897 : n == 200 ? 2745281 : 0;
}

/* ---- knapsack (branch and bound) ------------------------------------------ */
/* Items sorted by decreasing value/weight; the bound of a node is its value
 * plus the remaining capacity filled at the current item's ratio (an upper
 * bound, since no later item has a better ratio). The incumbent best is
 * shared by all tasks (a relaxed atomic max in the parallel versions). */

struct kern_item {
	int value, weight;
};

static inline uint32_t kern_lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(*s >> 33);
}

static inline int kern_item_cmp(const void *a, const void *b)
{
	const struct kern_item *x = KERN_CAST(const struct kern_item *, a);
	const struct kern_item *y = KERN_CAST(const struct kern_item *, b);
	/* x.v/x.w > y.v/y.w first; ties by weight for a total order */
	long l = (long)x->value * y->weight, r = (long)y->value * x->weight;
	return l > r ? -1 : l < r ? 1 : x->weight - y->weight;
}

/* A subset-sum instance: n items of even weight 1000..1998, value = weight,
 * capacity = a third of the total weight, made odd. No subset fills an odd
 * capacity with even weights, and with value = weight the bound is v + c,
 * the capacity itself at every node: above every incumbent, so it never
 * prunes and every runtime visits the same 205M nodes at n = 30 (about
 * 0.25 s serial here) whatever order it explores them in. Same seed, same items, whatever the runtime. */
static inline int kern_knapsack_input(struct kern_item *items, int n)
{
	uint64_t s = 0x6b6e61707361636bULL; /* "knapsack" */
	long total = 0;
	for (int i = 0; i < n; i++) {
		items[i].weight = 2 * (500 + (int)(kern_lcg(&s) % 500));
		items[i].value = items[i].weight;
		total += items[i].weight;
	}
	qsort(items, (size_t)n, sizeof *items, kern_item_cmp);
	return (int)(total / 3) | 1;
}

static inline int kern_knapsack_bound_ok(const struct kern_item *e, int c, int v, int best)
{
	return (double)v + (double)c * e->value / e->weight > (double)best;
}

static int kern_knapsack_best_serial;

static inline int kern_knapsack(const struct kern_item *e, int c, int n, int v)
{
	if (c < 0)
		return -1;
	if (n == 0 || c == 0)
		return v;
	if (!kern_knapsack_bound_ok(e, c, v, kern_knapsack_best_serial))
		return -1;
	int with = kern_knapsack(e + 1, c - e->weight, n - 1, v + e->value);
	int without = kern_knapsack(e + 1, c, n - 1, v);
	int best = with > without ? with : without;
	if (best > kern_knapsack_best_serial)
		kern_knapsack_best_serial = best;
	return best;
}

/* A plain dynamic programme over the capacity: the check for any runtime. */
static inline int kern_knapsack_dp(const struct kern_item *items, int n, int cap)
{
	int *best = KERN_CAST(int *, calloc((size_t)cap + 1, sizeof(int)));
	if (!best)
		return -2;
	for (int i = 0; i < n; i++)
		for (int c = cap; c >= items[i].weight; c--) {
			int v = best[c - items[i].weight] + items[i].value;
			if (v > best[c])
				best[c] = v;
		}
	int r = best[cap];
	free(best);
	return r;
}

/* ---- matmul (divide and conquer) ------------------------------------------ */
/* C += A*B on row-major n x n blocks with leading dimension ld: split the
 * largest of m, n, p in two; m and p halves are independent (parallel), the
 * two n halves add into the same C (one after the other). Entries are small
 * integers stored as doubles, so every sum is exact and the check is exact. */

#define KERN_MM_LEAF 32

static inline void kern_mm_leaf(const double *A, const double *B, double *C, int m, int n, int p, int ld)
{
	for (int i = 0; i < m; i++)
		for (int k = 0; k < n; k++) {
			double a = A[i * ld + k];
			const double *b = B + k * ld;
			double *c = C + i * ld;
			for (int j = 0; j < p; j++)
				c[j] += a * b[j];
		}
}

static inline void kern_mm(const double *A, const double *B, double *C, int m, int n, int p, int ld)
{
	if (m <= KERN_MM_LEAF && n <= KERN_MM_LEAF && p <= KERN_MM_LEAF) {
		kern_mm_leaf(A, B, C, m, n, p, ld);
	} else if (m >= n && m >= p) {
		int h = m / 2;
		kern_mm(A, B, C, h, n, p, ld);
		kern_mm(A + h * ld, B, C + h * ld, m - h, n, p, ld);
	} else if (n >= m && n >= p) {
		int h = n / 2;
		kern_mm(A, B, C, m, h, p, ld);
		kern_mm(A + h, B + h * ld, C, m, n - h, p, ld);
	} else {
		int h = p / 2;
		kern_mm(A, B, C, m, n, h, ld);
		kern_mm(A, B + h, C + h, m, n, p - h, ld);
	}
}

static inline void kern_mm_input(double *A, double *B, double *C, int n)
{
	uint64_t s = 0x6d61746d756cULL; /* "matmul" */
	for (long i = 0; i < (long)n * n; i++) {
		A[i] = (double)(kern_lcg(&s) % 8);
		B[i] = (double)(kern_lcg(&s) % 8) - 3.0;
		C[i] = 0.0;
	}
}

/* Exact check in O(n^2): C*x == A*(B*x) for an integer vector x. */
static inline int kern_mm_check(const double *A, const double *B, const double *C, int n)
{
	double *x = KERN_CAST(double *, malloc(sizeof(double) * (size_t)n * 3));
	if (!x)
		return 0;
	double *bx = x + n, *cx = x + 2 * n;
	for (int i = 0; i < n; i++)
		x[i] = (double)(i % 7) - 3.0;
	for (int i = 0; i < n; i++) {
		double b = 0, c = 0;
		for (int j = 0; j < n; j++) {
			b += B[(long)i * n + j] * x[j];
			c += C[(long)i * n + j] * x[j];
		}
		bx[i] = b;
		cx[i] = c;
	}
	int ok = 1;
	for (int i = 0; i < n && ok; i++) {
		double a = 0;
		for (int j = 0; j < n; j++)
			a += A[(long)i * n + j] * bx[j];
		ok = a == cx[i];
	}
	free(x);
	return ok;
}

/* ---- cilksort -------------------------------------------------------------- */
/* Cilk's sort: split the array in four, sort the quarters in parallel (serial
 * quicksort + insertion sort below a cut-off), merge pairs in parallel, then
 * merge the two halves; a merge of big runs splits itself by binary search
 * (the median of the larger run) into two independent merges. */

typedef uint64_t kern_elm;
#define KERN_SORT_QUICK 2048 /* below: serial sort */
#define KERN_SORT_MERGE 2048 /* a shorter run up to this: serial merge */
#define KERN_SORT_INSERT 20

static inline void kern_insertion(kern_elm *a, long n)
{
	for (long i = 1; i < n; i++) {
		kern_elm v = a[i];
		long j = i - 1;
		for (; j >= 0 && a[j] > v; j--)
			a[j + 1] = a[j];
		a[j + 1] = v;
	}
}

static inline void kern_quicksort(kern_elm *a, long n)
{
	while (n > KERN_SORT_INSERT) {
		kern_elm x = a[0], y = a[n / 2], z = a[n - 1];
		kern_elm piv = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
		/* Hoare's partition on pointers, each scan keeping the value it
		 * stopped at for the swap (no reload): the pivot is an element,
		 * and after a swap each side's last element stops the other
		 * scan, so neither runs off. At the end a[0..hi] are all <= piv
		 * and the rest >= piv. */
		kern_elm *lo = a, *hi = a + n - 1;
		for (;;) {
			kern_elm h, l;
			while ((h = *hi) > piv)
				hi--;
			while ((l = *lo) < piv)
				lo++;
			if (lo >= hi)
				break;
			*hi-- = l;
			*lo++ = h;
		}
		long left = hi - a + 1;
		if (left == n) /* no swap, and a[n - 1] is a largest: it stays */
			left = n - 1;
		/* recurse on the smaller side, loop on the larger */
		if (left < n - left) {
			kern_quicksort(a, left);
			a += left;
			n -= left;
		} else {
			kern_quicksort(a + left, n - left);
			n = left;
		}
	}
	kern_insertion(a, n);
}

static inline void kern_merge_serial(const kern_elm *a, long na, const kern_elm *b, long nb, kern_elm *out)
{
	const kern_elm *a_end = a + na, *b_end = b + nb;
	/* While both runs have two or more left, the next element of the run
	 * just taken is loaded before the end test, so the next compare need
	 * not wait for the test (Cilk's fast loop); the last element of either
	 * run ends it. Written on pointers: gcc's code for the same loop on
	 * indices took 7% longer over the whole sort (measured). */
	if (na > 1 && nb > 1) {
		kern_elm x = *a, y = *b;
		for (;;) {
			if (x < y) {
				*out++ = x;
				x = *++a;
				if (a == a_end - 1)
					break;
			} else {
				*out++ = y;
				y = *++b;
				if (b == b_end - 1)
					break;
			}
		}
	}
	/* then only the pointer just advanced is checked */
	if (a < a_end && b < b_end) {
		kern_elm x = *a, y = *b;
		for (;;) {
			if (x < y) {
				*out++ = x;
				if (++a == a_end)
					break;
				x = *a;
			} else {
				*out++ = y;
				if (++b == b_end)
					break;
				y = *b;
			}
		}
	}
	memcpy(out, a < a_end ? a : b, (size_t)(a < a_end ? a_end - a : b_end - b) * sizeof *out);
}

/* First index in b[0..nb) whose element is >= v. */
static inline long kern_lower_bound(const kern_elm *b, long nb, kern_elm v)
{
	long lo = 0, hi = nb;
	while (lo < hi) {
		long mid = lo + (hi - lo) / 2;
		if (b[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Whether a merge whose shorter run has `shorter` elements runs serially:
 * Cilk's test, on the shorter run only, so the last splits leave serial
 * merges of up to a few times 2 * KERN_SORT_MERGE elements (each split
 * halves the longer run and takes the matching part of the shorter). */
static inline bool kern_merge_is_small(long shorter)
{
	return shorter <= KERN_SORT_MERGE;
}

/* The step every parallel merge shares: make *a the longer run; merge
 * small inputs serially here (false: done); else split: a[0..*ma) with
 * b[0..*mb) and the rest go to two merges (true). */
static inline bool kern_merge_split(const kern_elm **a, long *na, const kern_elm **b, long *nb,
				    kern_elm *out, long *ma, long *mb)
{
	if (*na < *nb) {
		const kern_elm *t = *a;
		*a = *b;
		*b = t;
		long tn = *na;
		*na = *nb;
		*nb = tn;
	}
	if (kern_merge_is_small(*nb)) {
		kern_merge_serial(*a, *na, *b, *nb, out);
		return false;
	}
	*ma = *na / 2;
	*mb = kern_lower_bound(*b, *nb, (*a)[*ma]);
	return true;
}

/* Serial versions of the parallel skeleton (the baseline runs these). */
static inline void kern_merge(const kern_elm *a, long na, const kern_elm *b, long nb, kern_elm *out)
{
	long ma, mb;
	if (!kern_merge_split(&a, &na, &b, &nb, out, &ma, &mb))
		return;
	kern_merge(a, ma, b, mb, out);
	kern_merge(a + ma, na - ma, b + mb, nb - mb, out + ma + mb);
}

static inline void kern_cilksort(kern_elm *a, kern_elm *tmp, long n)
{
	if (n <= KERN_SORT_QUICK) {
		kern_quicksort(a, n);
		return;
	}
	long q = n / 4;
	kern_elm *a1 = a, *a2 = a + q, *a3 = a + 2 * q, *a4 = a + 3 * q;
	kern_elm *t1 = tmp, *t2 = tmp + q, *t3 = tmp + 2 * q, *t4 = tmp + 3 * q;
	kern_cilksort(a1, t1, q);
	kern_cilksort(a2, t2, q);
	kern_cilksort(a3, t3, q);
	kern_cilksort(a4, t4, n - 3 * q);
	kern_merge(a1, q, a2, q, t1);
	kern_merge(a3, q, a4, n - 3 * q, t3);
	kern_merge(t1, 2 * q, t3, n - 2 * q, a);
}

static inline void kern_sort_input(kern_elm *a, long n, uint64_t *sum, uint64_t *xr)
{
	uint64_t s = 0x736f7274ULL; /* "sort" */
	*sum = *xr = 0;
	for (long i = 0; i < n; i++) {
		a[i] = (uint64_t)kern_lcg(&s) << 32 | kern_lcg(&s);
		*sum += a[i];
		*xr ^= a[i] * 0x9E3779B97F4A7C15ULL;
	}
}

static inline int kern_sort_check(const kern_elm *a, long n, uint64_t sum, uint64_t xr)
{
	uint64_t s = 0, x = 0;
	for (long i = 0; i < n; i++) {
		if (i && a[i - 1] > a[i])
			return 0;
		s += a[i];
		x ^= a[i] * 0x9E3779B97F4A7C15ULL;
	}
	return s == sum && x == xr;
}

/* ---- skew: a loop whose iterations cost very different amounts ------------- */
/* Iteration i runs kern_skew_cost(i, n) rounds of a mixing function: a ramp
 * from 50 to 550 rounds over the range, and one iteration in 97 (chosen by a
 * hash, so the heavy ones are scattered) costs 50x more. A static split
 * into equal halves leaves one worker with far more work. */

static inline uint64_t kern_skew_cost(uint64_t i, uint64_t n)
{
	uint64_t c = 50 + 500 * i / (n ? n : 1);
	if ((i * 0x9E3779B97F4A7C15ULL) >> 57 == 0 || (i * 2654435761u) % 97 == 0)
		c *= 50;
	return c;
}

static inline uint64_t kern_skew_iter(uint64_t i, uint64_t n)
{
	uint64_t x = i + 1, rounds = kern_skew_cost(i, n);
	for (uint64_t r = 0; r < rounds; r++) {
		x ^= x >> 31;
		x *= 0xBF58476D1CE4E5B9ULL;
		x ^= x >> 29;
	}
	return x;
}

static inline uint64_t kern_skew_range(uint64_t lo, uint64_t hi, uint64_t n)
{
	uint64_t sum = 0;
	for (uint64_t i = lo; i < hi; i++)
		sum += kern_skew_iter(i, n);
	return sum;
}

#define KERN_SKEW_GRAIN 16 /* iterations per leaf of the recursive halving */

/* ---- bpc: bouncing producer-consumer -------------------------------------- */
/* A chain of n producers: producer k first spawns producer k-1 (the next link
 * of the chain, the oldest task in its deque, hence what a thief takes), then
 * KERN_BPC_CONSUMERS consumers of KERN_BPC_WORK rounds each, then joins them
 * all. With LIFO owners and FIFO thieves the chain keeps moving between
 * workers. The answer is the sum of the consumers' results. */

#define KERN_BPC_CONSUMERS 16
#define KERN_BPC_WORK 400

static inline uint64_t kern_bpc_consume(uint64_t k, uint64_t j)
{
	uint64_t x = k * 1000003u + j + 1;
	for (int r = 0; r < KERN_BPC_WORK; r++) {
		x ^= x >> 33;
		x *= 0xFF51AFD7ED558CCDULL;
	}
	return x & 0xffff;
}

static inline uint64_t kern_bpc(uint64_t k)
{
	uint64_t sum = 0;
	for (; k > 0; k--)
		for (uint64_t j = 0; j < KERN_BPC_CONSUMERS; j++)
			sum += kern_bpc_consume(k, j);
	return sum;
}

#endif
