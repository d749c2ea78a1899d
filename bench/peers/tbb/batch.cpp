// tbb-batch - the batch workloads (bench/batch.h) with oneTBB: tbb::task_group
// where crew spawns and joins, tbb::parallel_reduce over a blocked_range of
// grain KERN_SKEW_GRAIN for skew (TBB's parallel_for family, auto_partitioner).
// Same kernels, inputs and checks as crew-bench (bench/batch/kern.h), same
// command line and JSON line (runtime "tbb"):
//
//   tbb-batch <workload> [--workers N] [--n N]
//
// "seconds" spans what tbb-bench's (main.cpp) span does: scheduler start, a
// task_arena of N slots under a global_control limit, the computation and
// finalize(); input generation and checks are outside it.
// Exit status: 0 ok, 1 wrong result, 2 usage, 3 unknown workload.
#include "batch/kern.h"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_reduce.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

namespace {

std::uint64_t p_fib(unsigned n)
{
	if (n < 2)
		return n;
	std::uint64_t a = 0, b;
	tbb::task_group g;
	g.run([&] { a = p_fib(n - 1); });
	b = p_fib(n - 2);
	g.wait();
	return a + b;
}

std::uint64_t p_queens(const unsigned char *board, int n, int row)
{
	if (row == n)
		return 1;
	std::uint64_t cnt[32] = {};
	unsigned char kids[32][32];
	tbb::task_group g;
	for (int col = 0; col < n; col++)
		if (kern_queens_ok(board, row, col)) {
			std::memcpy(kids[col], board, static_cast<std::size_t>(row));
			kids[col][row] = static_cast<unsigned char>(col);
			g.run([&, col] { cnt[col] = p_queens(kids[col], n, row + 1); });
		}
	g.wait();
	std::uint64_t sum = 0;
	for (int col = 0; col < n; col++)
		sum += cnt[col];
	return sum;
}

std::uint64_t p_uts(const kern_uts_tree *t, const kern_uts_node *node)
{
	int k = kern_uts_children(t, node);
	if (k == 0)
		return 1;
	std::vector<std::uint64_t> cnt(static_cast<std::size_t>(k));
	tbb::task_group g;
	for (int i = 0; i < k; i++)
		g.run([&, i] {
			kern_uts_node c;
			kern_uts_child(node, i, &c);
			cnt[static_cast<std::size_t>(i)] = p_uts(t, &c);
		});
	g.wait();
	std::uint64_t sum = 1;
	for (auto c : cnt)
		sum += c;
	return sum;
}

std::atomic<int> ks_best{ 0 };

int p_knapsack(const kern_item *e, int c, int n, int v)
{
	if (c < 0)
		return -1;
	if (n == 0 || c == 0)
		return v;
	if (!kern_knapsack_bound_ok(e, c, v, ks_best.load(std::memory_order_relaxed)))
		return -1;
	int without = 0, with;
	tbb::task_group g;
	g.run([&] { without = p_knapsack(e + 1, c, n - 1, v); });
	with = p_knapsack(e + 1, c - e->weight, n - 1, v + e->value);
	g.wait();
	int best = with > without ? with : without;
	int b = ks_best.load(std::memory_order_relaxed);
	while (best > b && !ks_best.compare_exchange_weak(b, best, std::memory_order_relaxed))
		;
	return best;
}

void p_mm(const double *A, const double *B, double *C, int m, int n, int p, int ld)
{
	if (m <= KERN_MM_LEAF && n <= KERN_MM_LEAF && p <= KERN_MM_LEAF) {
		kern_mm_leaf(A, B, C, m, n, p, ld);
	} else if (m >= n && m >= p) {
		int h = m / 2;
		tbb::task_group g;
		g.run([=] { p_mm(A, B, C, h, n, p, ld); });
		p_mm(A + h * ld, B, C + h * ld, m - h, n, p, ld);
		g.wait();
	} else if (n >= m && n >= p) {
		int h = n / 2;
		p_mm(A, B, C, m, h, p, ld);
		p_mm(A + h, B + h * ld, C, m, n - h, p, ld);
	} else {
		int h = p / 2;
		tbb::task_group g;
		g.run([=] { p_mm(A, B, C, m, n, h, ld); });
		p_mm(A, B + h, C + h, m, n, p - h, ld);
		g.wait();
	}
}

void p_merge(const kern_elm *a, long na, const kern_elm *b, long nb, kern_elm *out)
{
	if (na < nb) {
		std::swap(a, b);
		std::swap(na, nb);
	}
	if (kern_merge_is_small(nb)) {
		kern_merge_serial(a, na, b, nb, out);
		return;
	}
	long ma = na / 2, mb = kern_lower_bound(b, nb, a[ma]);
	tbb::task_group g;
	g.run([=] { p_merge(a, ma, b, mb, out); });
	p_merge(a + ma, na - ma, b + mb, nb - mb, out + ma + mb);
	g.wait();
}

void p_sort(kern_elm *a, kern_elm *tmp, long n)
{
	if (n <= KERN_SORT_QUICK) {
		kern_quicksort(a, n);
		return;
	}
	long q = n / 4;
	tbb::task_group g;
	g.run([=] { p_sort(a, tmp, q); });
	g.run([=] { p_sort(a + q, tmp + q, q); });
	g.run([=] { p_sort(a + 2 * q, tmp + 2 * q, q); });
	p_sort(a + 3 * q, tmp + 3 * q, n - 3 * q);
	g.wait();
	g.run([=] { p_merge(a, q, a + q, q, tmp); });
	p_merge(a + 2 * q, q, a + 3 * q, n - 3 * q, tmp + 2 * q);
	g.wait();
	p_merge(tmp, 2 * q, tmp + 2 * q, n - 2 * q, a);
}

std::uint64_t p_skew(std::uint64_t n)
{
	return tbb::parallel_reduce(
		tbb::blocked_range<std::uint64_t>(0, n, KERN_SKEW_GRAIN), std::uint64_t{ 0 },
		[=](const tbb::blocked_range<std::uint64_t> &r, std::uint64_t s) {
			return s + kern_skew_range(r.begin(), r.end(), n);
		},
		std::plus<std::uint64_t>());
}

std::uint64_t p_bpc(std::uint64_t k)
{
	if (k == 0)
		return 0;
	std::uint64_t rest = 0, c[KERN_BPC_CONSUMERS];
	tbb::task_group chain, consumers;
	chain.run([&] { rest = p_bpc(k - 1); });
	for (int j = 0; j < KERN_BPC_CONSUMERS; j++)
		consumers.run([&, j] { c[j] = kern_bpc_consume(k, static_cast<std::uint64_t>(j)); });
	consumers.wait();
	chain.wait();
	std::uint64_t sum = rest;
	for (auto v : c)
		sum += v;
	return sum;
}

// bpc nests its producer chain n deep wherever a producer is not stolen:
// TBB runs such a task on the waiting thread's own stack, so 40000 links
// overflow the default stacks. For bpc: re-execute once with a 1 GiB stack
// limit for the main thread, and 1 GiB worker stacks (address space only).
bool big_stacks = false;

void ensure_big_stacks(char **argv)
{
	big_stacks = true;
	if (std::getenv("CREW_BENCH_BIG_STACKS"))
		return;
	struct rlimit rl;
	if (getrlimit(RLIMIT_STACK, &rl) == 0 && (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= (1UL << 30))) {
		rl.rlim_cur = 1UL << 30;
		setrlimit(RLIMIT_STACK, &rl);
	}
	setenv("CREW_BENCH_BIG_STACKS", "1", 1);
	execv("/proc/self/exe", argv);
}

template <class F> double timed(int workers, F &&f)
{
	auto start = std::chrono::steady_clock::now();
	{
		tbb::task_scheduler_handle handle{ tbb::attach{} };
		{
			tbb::global_control stack(tbb::global_control::thread_stack_size,
						  big_stacks ? (std::size_t{ 1 } << 30) : std::size_t{ 4 } << 20);
			tbb::global_control limit(tbb::global_control::max_allowed_parallelism,
						  static_cast<std::size_t>(workers));
			tbb::task_arena arena(workers);
			arena.execute(f);
		}
		tbb::finalize(handle, std::nothrow);
	}
	return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

} // namespace

int main(int argc, char **argv)
{
	if (argc < 2) {
		std::fputs("usage: tbb-batch <fib|nqueens|uts-t1|uts-t3|knapsack|matmul|cilksort|skew|bpc>"
			   " [--workers N] [--n N]\n", stderr);
		return 2;
	}
	std::string w = argv[1];
	if (w == "bpc")
		ensure_big_stacks(argv); // returns once the stacks are big (or exec failed)
	long long n = -1;
	int workers = 0;
	for (int i = 2; i + 1 < argc; i += 2) {
		if (std::strcmp(argv[i], "--workers") == 0)
			workers = std::atoi(argv[i + 1]);
		else if (std::strcmp(argv[i], "--n") == 0)
			n = std::atoll(argv[i + 1]);
		else {
			std::fprintf(stderr, "tbb-batch: unknown option '%s'\n", argv[i]);
			return 2;
		}
	}
	if (workers <= 0)
		workers = tbb::this_task_arena::max_concurrency();
	auto def = [&](long long d) { if (n < 0) n = d; };
	bool ok = true;
	double secs = 0;
	if (w == "fib") {
		def(30);
		std::uint64_t r = 0;
		secs = timed(workers, [&] { r = p_fib(static_cast<unsigned>(n)); });
		ok = r == kern_fib_expected(static_cast<unsigned>(n));
	} else if (w == "nqueens") {
		def(13);
		std::uint64_t r = 0;
		unsigned char b[32] = {};
		secs = timed(workers, [&] { r = p_queens(b, static_cast<int>(n), 0); });
		ok = r == kern_queens_expected(static_cast<unsigned>(n));
	} else if (w == "uts-t1" || w == "uts-t3") {
		bool bin = w == "uts-t3";
		def(bin ? 2000 : 10);
		kern_uts_tree t = bin ? kern_uts_t3(static_cast<unsigned>(n)) : kern_uts_t1(static_cast<unsigned>(n));
		kern_uts_node root;
		kern_uts_root(&t, &root);
		std::uint64_t r = 0;
		secs = timed(workers, [&] { r = p_uts(&t, &root); });
		std::uint64_t want = kern_uts_expected(bin, static_cast<unsigned>(n));
		ok = r == (want ? want : kern_uts_count(&t, &root));
	} else if (w == "knapsack") {
		def(30);
		kern_item items[64];
		int cap = kern_knapsack_input(items, static_cast<int>(n)), r = 0;
		secs = timed(workers, [&] { r = p_knapsack(items, cap, static_cast<int>(n), 0); });
		ok = r == kern_knapsack_dp(items, static_cast<int>(n), cap);
	} else if (w == "matmul") {
		def(1024);
		int m = static_cast<int>(n);
		std::vector<double> A(static_cast<std::size_t>(m) * m), B(A.size()), C(A.size());
		kern_mm_input(A.data(), B.data(), C.data(), m);
		secs = timed(workers, [&] { p_mm(A.data(), B.data(), C.data(), m, m, m, m); });
		ok = kern_mm_check(A.data(), B.data(), C.data(), m);
	} else if (w == "cilksort") {
		def(10000000);
		std::vector<kern_elm> a(static_cast<std::size_t>(n)), tmp(a.size());
		std::uint64_t sum, xr;
		kern_sort_input(a.data(), static_cast<long>(n), &sum, &xr);
		secs = timed(workers, [&] { p_sort(a.data(), tmp.data(), static_cast<long>(n)); });
		ok = kern_sort_check(a.data(), static_cast<long>(n), sum, xr);
	} else if (w == "skew") {
		def(400000);
		std::uint64_t r = 0, un = static_cast<std::uint64_t>(n);
		secs = timed(workers, [&] { r = p_skew(un); });
		ok = r == kern_skew_range(0, un, un);
	} else if (w == "bpc") {
		def(40000);
		std::uint64_t r = 0;
		secs = timed(workers, [&] { r = p_bpc(static_cast<std::uint64_t>(n)); });
		ok = r == kern_bpc(static_cast<std::uint64_t>(n));
	} else {
		return 3;
	}
	if (!ok) {
		std::fprintf(stderr, "tbb-batch: %s n=%lld: wrong result\n", w.c_str(), n);
		return 1;
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	std::printf("{\"bench\":\"%s\",\"runtime\":\"tbb\",\"workers\":%d,\"n\":%lld,\"seconds\":%.6f,"
		    "\"rss_mb\":%.1f}\n", w.c_str(), workers, n, secs, static_cast<double>(ru.ru_maxrss) / 1024.0);
	return 0;
}
