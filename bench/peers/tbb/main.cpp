// The oneTBB peer of crew-bench: fork-join workloads with tbb::task_group.
//
//   tbb-bench <workload> [--workers N] [--n N]
//
// Prints one JSON line like crew-bench, with "runtime":"tbb". Only spawn and
// fib have a natural TBB form; the other workloads (sleepers, pingpong, yield)
// need tasks that suspend, which TBB tasks cannot do: for those the program
// prints "not supported" on stderr and exits with status 3, no JSON.
//
// --workers N caps TBB at N threads, the calling thread included (a task_arena
// of N slots under a global_control limit); 0 keeps TBB's default (all CPUs).
// "seconds" covers creating the arena and its worker threads, the workload,
// and finalize() waiting for the workers to exit, like crew-bench times the
// whole crew_run.
//
//   spawn  task_group::run n trivial tasks, each writing its result into its
//          slot of a vector, then wait() and sum the slots in order.
//   fib    a task_group per call: run fib(n-1), compute fib(n-2) directly, wait.
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <sys/resource.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

namespace {

enum : int { EXIT_USAGE = 2, EXIT_UNSUPPORTED = 3 };

// Returns nullptr on success, else what went wrong.
using Run = const char *(*)(std::uint64_t n);

struct Workload {
	const char *name;
	std::uint64_t default_n;
	Run run; // nullptr: not supported by this peer
};

const char *spawn_bench(std::uint64_t n)
{
	std::vector<std::uint64_t> results(n);
	tbb::task_group group;
	for (std::uint64_t i = 0; i < n; i++)
		group.run([&results, i] { results[i] = i; });
	group.wait();
	std::uint64_t sum = 0;
	for (std::uint64_t r : results)
		sum += r;
	return n > 0 && sum != n * (n - 1) / 2 ? "spawn: wrong sum of results" : nullptr;
}

std::uint64_t fib(std::uint64_t n)
{
	if (n < 2)
		return n;
	std::uint64_t a = 0;
	tbb::task_group group;
	group.run([&a, n] { a = fib(n - 1); });
	std::uint64_t b = fib(n - 2);
	group.wait();
	return a + b;
}

std::uint64_t fib_iterative(std::uint64_t n)
{
	std::uint64_t a = 0, b = 1;
	for (std::uint64_t i = 0; i < n; i++) {
		std::uint64_t t = a + b;
		a = b;
		b = t;
	}
	return a;
}

const char *fib_bench(std::uint64_t n)
{
	return fib(n) == fib_iterative(n) ? nullptr : "fib: wrong result";
}

const Workload workloads[] = {
	{ "spawn", 1000000, spawn_bench },
	{ "fib", 30, fib_bench },
	{ "sleepers", 100000, nullptr },
	{ "pingpong", 1000000, nullptr },
	{ "yield", 10000000, nullptr },
};

[[noreturn]] void usage(const std::string &msg)
{
	if (!msg.empty())
		std::fprintf(stderr, "tbb-bench: %s\n", msg.c_str());
	std::fputs("usage: tbb-bench <workload> [--workers N] [--n N]\nworkloads:", stderr);
	for (const Workload &w : workloads)
		std::fprintf(stderr, " %s (n=%" PRIu64 ")%s", w.name, w.default_n,
			     w.run ? "" : " [not supported]");
	std::fputc('\n', stderr);
	std::exit(EXIT_USAGE);
}

std::uint64_t parse_count(const char *flag, const char *text, std::uint64_t max)
{
	if (!text)
		usage(std::string(flag) + " needs a value");
	char *end = nullptr;
	errno = 0;
	unsigned long long v = std::strtoull(text, &end, 10);
	if (!*text || *end || errno || text[0] == '-' || v > max)
		usage(std::string(flag) + " needs a number <= " + std::to_string(max) +
		      ", got '" + text + "'");
	return v;
}

double peak_rss_mb()
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0.0;
	return static_cast<double>(ru.ru_maxrss) / 1024.0; // KiB on Linux
}

// Runs the workload with `workers` threads; returns its error or nullptr.
const char *run_timed(const Workload &w, std::uint64_t n, int workers, double *seconds)
{
	auto start = std::chrono::steady_clock::now();
	const char *err = nullptr;
	{
		// Attaching a handle lets finalize() wait until the workers have exited.
		tbb::task_scheduler_handle handle{ tbb::attach{} };
		{
			tbb::global_control limit(tbb::global_control::max_allowed_parallelism,
						  static_cast<std::size_t>(workers));
			tbb::task_arena arena(workers);
			arena.execute([&] { err = w.run(n); });
		}
		tbb::finalize(handle, std::nothrow);
	}
	*seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
	return err;
}

} // namespace

int main(int argc, char **argv)
{
	if (argc < 2)
		usage("");
	const Workload *w = nullptr;
	for (const Workload &candidate : workloads)
		if (std::strcmp(candidate.name, argv[1]) == 0)
			w = &candidate;
	if (!w)
		usage(std::string("unknown workload '") + argv[1] + "'");
	std::uint64_t n = w->default_n, workers = 0;
	for (int i = 2; i < argc; i += 2) {
		const char *value = i + 1 < argc ? argv[i + 1] : nullptr;
		if (std::strcmp(argv[i], "--workers") == 0)
			workers = parse_count("--workers", value, 1024);
		else if (std::strcmp(argv[i], "--n") == 0)
			n = parse_count("--n", value, UINT64_MAX / 2);
		else
			usage(std::string("unknown option '") + argv[i] + "'");
	}
	if (!w->run) {
		std::fprintf(stderr, "tbb-bench: %s not supported (TBB tasks cannot suspend)\n",
			     w->name);
		return EXIT_UNSUPPORTED;
	}
	if (std::strcmp(w->name, "fib") == 0 && n > 60)
		usage("fib needs --n <= 60");
	int threads = workers ? static_cast<int>(workers) : tbb::info::default_concurrency();

	double seconds = 0.0;
	if (const char *err = run_timed(*w, n, threads, &seconds)) {
		std::fprintf(stderr, "tbb-bench: %s\n", err);
		return 1;
	}
	std::printf("{\"bench\":\"%s\",\"runtime\":\"tbb\",\"workers\":%d,\"n\":%" PRIu64
		    ",\"seconds\":%.6f,\"rss_mb\":%.1f}\n",
		    w->name, threads, n, seconds, peak_rss_mb());
	return 0;
}
