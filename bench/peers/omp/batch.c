/*
 * omp-bench - the batch workloads (bench/batch.h) with OpenMP tasks (gcc's
 * libgomp, -fopenmp): the same kernels and inputs as crew-bench
 * (bench/batch/kern.h), the same task structure (a task where crew spawns,
 * taskwait where crew joins), the same checks and JSON line:
 *
 *   omp-bench <workload> [--workers N] [--n N]
 *   {"bench":"nqueens","runtime":"openmp","workers":2,"n":13,"seconds":0.41,"rss_mb":2.1}
 *
 * "seconds" spans one `parallel` region (team start included) around the
 * computation; input generation and checks are outside it. skew uses
 * `taskloop grainsize(KERN_SKEW_GRAIN)` (OpenMP's lazy-splitting loop).
 * Extra: `omp-bench knapsack-input --n N` prints the knapsack input in the
 * Cilk/Lace format ("N CAPACITY", then "VALUE WEIGHT" lines) followed by a
 * "best V" line (ignored by Lace's reader) with the right answer.
 * bpc re-executes itself once with 1 GiB stacks (see big_stacks).
 * Exit status: 0 ok, 1 wrong result, 2 usage, 3 unknown workload.
 */
#include "batch/kern.h"

#include <inttypes.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* bpc nests its producer chain n deep wherever a producer is not stolen:
 * OpenMP runs such a task on the waiting thread's own stack, so 40000 links
 * overflow the default 8 MiB (main) and 2-4 MiB (workers) stacks. Before
 * libgomp starts, re-execute once with a 1 GiB stack limit for the main
 * thread and OMP_STACKSIZE=1G for the workers (address space only; pages are
 * touched as used). */
static void big_stacks(char **argv)
{
	if (getenv("CREW_BENCH_BIG_STACKS"))
		return;
	struct rlimit rl;
	if (getrlimit(RLIMIT_STACK, &rl) == 0 &&
	    (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= (1UL << 30))) {
		rl.rlim_cur = 1UL << 30;
		setrlimit(RLIMIT_STACK, &rl);
	}
	setenv("CREW_BENCH_BIG_STACKS", "1", 1);
	setenv("OMP_STACKSIZE", "1G", 1);
	execv("/proc/self/exe", argv);
}

/* ---- the parallel skeletons ---- */

static uint64_t p_fib(unsigned n)
{
	if (n < 2)
		return n;
	uint64_t a, b;
#pragma omp task shared(a)
	a = p_fib(n - 1);
	b = p_fib(n - 2);
#pragma omp taskwait
	return a + b;
}

static uint64_t p_queens(const unsigned char *board, int n, int row)
{
	if (row == n)
		return 1;
	uint64_t cnt[32] = { 0 };
	for (int col = 0; col < n; col++)
		if (kern_queens_ok(board, row, col)) {
#pragma omp task shared(cnt) firstprivate(col)
			{
				unsigned char b[32];
				memcpy(b, board, (size_t)row);
				b[row] = (unsigned char)col;
				cnt[col] = p_queens(b, n, row + 1);
			}
		}
#pragma omp taskwait
	uint64_t sum = 0;
	for (int col = 0; col < n; col++)
		sum += cnt[col];
	return sum;
}

static uint64_t p_uts(const struct kern_uts_tree *t, const struct kern_uts_node *node)
{
	int k = kern_uts_children(t, node);
	if (k == 0)
		return 1;
	uint64_t local[16];
	uint64_t *cnt = k <= 16 ? local : malloc((size_t)k * sizeof *cnt);
	for (int i = 0; i < k; i++) {
#pragma omp task shared(cnt) firstprivate(i)
		{
			struct kern_uts_node c;
			kern_uts_child(node, i, &c);
			cnt[i] = p_uts(t, &c);
		}
	}
#pragma omp taskwait
	uint64_t sum = 1;
	for (int i = 0; i < k; i++)
		sum += cnt[i];
	if (cnt != local)
		free(cnt);
	return sum;
}

static int ks_best;

static int p_knapsack(const struct kern_item *e, int c, int n, int v)
{
	if (c < 0)
		return -1;
	if (n == 0 || c == 0)
		return v;
	int best_now;
#pragma omp atomic read relaxed
	best_now = ks_best;
	if (!kern_knapsack_bound_ok(e, c, v, best_now))
		return -1;
	int without, with;
#pragma omp task shared(without)
	without = p_knapsack(e + 1, c, n - 1, v);
	with = p_knapsack(e + 1, c - e->weight, n - 1, v + e->value);
#pragma omp taskwait
	int best = with > without ? with : without;
	for (;;) { /* atomic max */
		int b;
#pragma omp atomic read relaxed
		b = ks_best;
		if (best <= b || __atomic_compare_exchange_n(&ks_best, &b, best, 0, __ATOMIC_RELAXED,
							      __ATOMIC_RELAXED))
			break;
	}
	return best;
}

static void p_mm(const double *A, const double *B, double *C, int m, int n, int p, int ld)
{
	if (m <= KERN_MM_LEAF && n <= KERN_MM_LEAF && p <= KERN_MM_LEAF) {
		kern_mm_leaf(A, B, C, m, n, p, ld);
	} else if (m >= n && m >= p) {
		int h = m / 2;
#pragma omp task
		p_mm(A, B, C, h, n, p, ld);
		p_mm(A + h * ld, B, C + h * ld, m - h, n, p, ld);
#pragma omp taskwait
	} else if (n >= m && n >= p) {
		int h = n / 2;
		p_mm(A, B, C, m, h, p, ld);
		p_mm(A + h, B + h * ld, C, m, n - h, p, ld);
	} else {
		int h = p / 2;
#pragma omp task
		p_mm(A, B, C, m, n, h, ld);
		p_mm(A, B + h, C + h, m, n, p - h, ld);
#pragma omp taskwait
	}
}

static void p_merge(const kern_elm *a, long na, const kern_elm *b, long nb, kern_elm *out)
{
	long ma, mb;
	if (!kern_merge_split(&a, &na, &b, &nb, out, &ma, &mb))
		return;
#pragma omp task
	p_merge(a, ma, b, mb, out);
	p_merge(a + ma, na - ma, b + mb, nb - mb, out + ma + mb);
#pragma omp taskwait
}

static void p_sort(kern_elm *a, kern_elm *tmp, long n)
{
	if (n <= KERN_SORT_QUICK) {
		kern_quicksort(a, n);
		return;
	}
	long q = n / 4;
#pragma omp task
	p_sort(a, tmp, q);
#pragma omp task
	p_sort(a + q, tmp + q, q);
#pragma omp task
	p_sort(a + 2 * q, tmp + 2 * q, q);
	p_sort(a + 3 * q, tmp + 3 * q, n - 3 * q);
#pragma omp taskwait
#pragma omp task
	p_merge(a, q, a + q, q, tmp);
	p_merge(a + 2 * q, q, a + 3 * q, n - 3 * q, tmp + 2 * q);
#pragma omp taskwait
	p_merge(tmp, 2 * q, tmp + 2 * q, n - 2 * q, a);
}

static uint64_t p_skew(uint64_t n)
{
	uint64_t sum = 0;
#pragma omp taskloop grainsize(KERN_SKEW_GRAIN) reduction(+ : sum)
	for (uint64_t i = 0; i < n; i++)
		sum += kern_skew_iter(i, n);
	return sum;
}

static uint64_t p_bpc(uint64_t k)
{
	if (k == 0)
		return 0;
	uint64_t rest, c[KERN_BPC_CONSUMERS];
#pragma omp task shared(rest)
	rest = p_bpc(k - 1);
	for (int j = 0; j < KERN_BPC_CONSUMERS; j++) {
#pragma omp task shared(c) firstprivate(j)
		c[j] = kern_bpc_consume(k, (uint64_t)j);
	}
#pragma omp taskwait
	uint64_t sum = rest;
	for (int j = 0; j < KERN_BPC_CONSUMERS; j++)
		sum += c[j];
	return sum;
}

/* ---- driver ---- */

static double now(void) { return omp_get_wtime(); }

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs("usage: omp-bench <fib|nqueens|uts-t1|uts-t3|knapsack|matmul|cilksort|skew|bpc>"
		      " [--workers N] [--n N]\n", stderr);
		return 2;
	}
	const char *w = argv[1];
	if (strcmp(w, "bpc") == 0)
		big_stacks(argv); /* returns only when already done (or exec failed) */
	long long n = -1;
	int workers = 0;
	for (int i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--workers") == 0)
			workers = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--n") == 0)
			n = atoll(argv[i + 1]);
		else {
			fprintf(stderr, "omp-bench: unknown option '%s'\n", argv[i]);
			return 2;
		}
	}
	if (workers <= 0)
		workers = omp_get_num_procs();
	omp_set_num_threads(workers);
#define DEF(x) (n < 0 ? (n = (x)) : n)
	int ok = 1;
	double t0 = 0, t1 = 0;
	if (strcmp(w, "knapsack-input") == 0) {
		struct kern_item items[64];
		DEF(30);
		if (n < 1 || n > 64)
			return 2;
		int cap = kern_knapsack_input(items, (int)n);
		printf("%lld %d\n", n, cap);
		for (int i = 0; i < n; i++)
			printf("%d %d\n", items[i].value, items[i].weight);
		printf("best %d\n", kern_knapsack_dp(items, (int)n, cap));
		return 0;
	} else if (strcmp(w, "fib") == 0) {
		DEF(30);
		uint64_t r = 0;
		t0 = now();
#pragma omp parallel
#pragma omp single
		r = p_fib((unsigned)n);
		t1 = now();
		ok = r == kern_fib_expected((unsigned)n);
	} else if (strcmp(w, "nqueens") == 0) {
		DEF(13);
		uint64_t r = 0;
		unsigned char b[32];
		t0 = now();
#pragma omp parallel
#pragma omp single
		r = p_queens(b, (int)n, 0);
		t1 = now();
		ok = r == kern_queens_expected((unsigned)n);
	} else if (strcmp(w, "uts-t1") == 0 || strcmp(w, "uts-t3") == 0) {
		int bin = w[5] == '3';
		DEF(bin ? 2000 : 10);
		struct kern_uts_tree t = bin ? kern_uts_t3((unsigned)n) : kern_uts_t1((unsigned)n);
		struct kern_uts_node root;
		kern_uts_root(&t, &root);
		uint64_t r = 0;
		t0 = now();
#pragma omp parallel
#pragma omp single
		r = p_uts(&t, &root);
		t1 = now();
		uint64_t want = kern_uts_expected(bin, (unsigned)n);
		ok = r == (want ? want : kern_uts_count(&t, &root));
	} else if (strcmp(w, "knapsack") == 0) {
		struct kern_item items[64];
		DEF(30);
		int cap = kern_knapsack_input(items, (int)n), r = 0;
		ks_best = 0;
		t0 = now();
#pragma omp parallel
#pragma omp single
		r = p_knapsack(items, cap, (int)n, 0);
		t1 = now();
		ok = r == kern_knapsack_dp(items, (int)n, cap);
	} else if (strcmp(w, "matmul") == 0) {
		DEF(1024);
		size_t sz = (size_t)n * (size_t)n * sizeof(double);
		double *A = malloc(sz), *B = malloc(sz), *C = malloc(sz);
		kern_mm_input(A, B, C, (int)n);
		t0 = now();
#pragma omp parallel
#pragma omp single
		p_mm(A, B, C, (int)n, (int)n, (int)n, (int)n);
		t1 = now();
		ok = kern_mm_check(A, B, C, (int)n);
	} else if (strcmp(w, "cilksort") == 0) {
		DEF(10000000);
		kern_elm *a = malloc((size_t)n * sizeof *a), *tmp = malloc((size_t)n * sizeof *a);
		uint64_t sum, xr;
		kern_sort_input(a, (long)n, &sum, &xr);
		t0 = now();
#pragma omp parallel
#pragma omp single
		p_sort(a, tmp, (long)n);
		t1 = now();
		ok = kern_sort_check(a, (long)n, sum, xr);
	} else if (strcmp(w, "skew") == 0) {
		DEF(400000);
		uint64_t r = 0;
		t0 = now();
#pragma omp parallel
#pragma omp single
		r = p_skew((uint64_t)n);
		t1 = now();
		ok = r == kern_skew_range(0, (uint64_t)n, (uint64_t)n);
	} else if (strcmp(w, "bpc") == 0) {
		DEF(40000);
		uint64_t r = 0;
		t0 = now();
#pragma omp parallel
#pragma omp single
		r = p_bpc((uint64_t)n);
		t1 = now();
		ok = r == kern_bpc((uint64_t)n);
	} else {
		return 3;
	}
	if (!ok) {
		fprintf(stderr, "omp-bench: %s n=%lld: wrong result\n", w, n);
		return 1;
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("{\"bench\":\"%s\",\"runtime\":\"openmp\",\"workers\":%d,\"n\":%lld,\"seconds\":%.6f,"
	       "\"rss_mb\":%.1f}\n", w, workers, n, t1 - t0, (double)ru.ru_maxrss / 1024.0);
	return 0;
}
