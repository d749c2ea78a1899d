/*
 * crew-bench - the crew side of the benchmark contract (see DESIGN.md).
 *
 *   crew-bench <workload> [--workers N] [--n N] [--stack-kib K] [--guard-madvise on|off]
 *
 * --guard-madvise off makes madvise(MADV_GUARD_INSTALL) and process_madvise
 * fail with EINVAL (a seccomp filter), as on kernels before 6.13 (Debian 12's
 * 6.1): crew then guards stacks with mprotect, within its map-count budget.
 *
 * --workers 0 (the default) and --stack-kib 0 (the default) leave the choice
 * to crew (CREW_WORKERS or the CPU count; 256 KiB fiber stacks). The harness
 * (tools/bench-compare.sh) uses the defaults; --stack-kib is for experiments
 * such as "how many sleepers fit with 16 KiB stacks".
 *
 * Runs one workload once and prints exactly one JSON line on stdout:
 *   {"bench":"spawn","runtime":"crew","workers":2,"n":1000000,"seconds":0.21,"rss_mb":14.2}
 *
 * What "seconds" covers: the whole crew_run_with() call, i.e. runtime start-up
 * (workers, rings), the workload, and shutdown (joining the workers, freeing
 * everything). The peers (bench/peers/) time the same span: building the Tokio
 * runtime, the TBB arena up to finalize(), the whole asyncio.run(), so start-up
 * cost counts against every runtime alike (except Go, whose runtime starts
 * before main() can time anything). It is small next to the default sizes.
 *
 * "rss_mb" is the process's peak resident set (getrusage ru_maxrss / 1024).
 *
 * Workloads (same definitions in every peer):
 *   spawn     main spawns n trivial tasks (task i returns i), keeps every
 *             handle, then joins them in order and checks the sum.
 *   fib       fib(n) with a task per call: spawn fib(n-1), compute fib(n-2)
 *             by a direct call, join. n is the fib argument (default 30).
 *   sleepers  main spawns n tasks that each sleep 10 ms, then joins them all.
 *   live      like sleepers, but all n are alive at once: each task, once
 *             started, waits on a gate future; the last to start tells main,
 *             which opens the gate and joins them all (n fiber stacks in use
 *             at the same moment: the memory and map-count worst case).
 *   pingpong  two tasks make n round trips; every message is a fresh future
 *             (crew_future_new/set/await/release per message, two per round).
 *   yield     two tasks call crew_yield() n/2 times each (n yields in total);
 *             adds "ns_per_switch" = seconds / n. Meant for --workers 1.
 *   fib-serial  fib(n) as a plain recursive C function (noinline: a call per
 *             node), the serial baseline of `fib --runtime crew-fork`.
 *   pfor      n element visits: n / 2^20 sums of a 2^20-element uint64 array
 *             with crew_parallel_for; pfor-serial: the plain loop.
 *
 * Exit status: 0 ok, 1 the workload failed or gave a wrong result, 2 usage.
 */
#include <crew.h>
#include "sim_kernel.h" /* tests/: the seccomp filter of --guard-madvise off */
#include "batch.h"          /* the batch workloads (nqueens, uts, ...): bench/wl_*.c */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000ULL /* nanoseconds per millisecond */

/* What a workload's main task receives and reports back. */
struct bench_ctx {
	uint64_t n;
	unsigned workers;   /* filled in by the main task: the real worker count */
	const char *failed; /* NULL on success, else a message for stderr */
};

struct workload {
	const char *name;
	uint64_t default_n;
	crew_fn main;
	bool per_switch; /* print the extra ns_per_switch field */
};

static void *ptr_of(uint64_t v) { return (void *)(uintptr_t)v; }
static uint64_t u64_of(void *p) { return (uint64_t)(uintptr_t)p; }

/* Every workload main starts here so that the JSON line can show the worker
 * count the runtime really used (--workers 0 means "the runtime's default"). */
static struct bench_ctx *enter(void *arg)
{
	struct bench_ctx *ctx = arg;
	ctx->workers = crew_workers();
	return ctx;
}

/* ---- spawn ---------------------------------------------------------------- */

static void *trivial_task(void *arg) { return arg; }

static void *spawn_main(void *arg)
{
	struct bench_ctx *ctx = enter(arg);
	crew_task **tasks = malloc(ctx->n * sizeof *tasks);
	if (!tasks) {
		ctx->failed = "spawn: out of memory for the handle array";
		return NULL;
	}
	uint64_t spawned = 0;
	for (; spawned < ctx->n; spawned++) {
		tasks[spawned] = crew_spawn(trivial_task, ptr_of(spawned));
		if (!tasks[spawned])
			break;
	}
	/* Join whatever was spawned even after a failure: handles must be consumed. */
	uint64_t sum = 0;
	for (uint64_t i = 0; i < spawned; i++) {
		void *res = NULL;
		if (crew_join(tasks[i], &res) != 0)
			ctx->failed = "spawn: crew_join failed";
		sum += u64_of(res);
	}
	free(tasks);
	if (spawned < ctx->n)
		ctx->failed = "spawn: crew_spawn failed";
	else if (sum != ctx->n * (ctx->n - 1) / 2)
		ctx->failed = "spawn: wrong sum of results";
	return NULL;
}

/* ---- fib ------------------------------------------------------------------ */

/* Returned by a fib task whose own spawn or join failed; fib values never get
 * near it for any n the benchmark can finish. */
#define FIB_ERROR UINT64_MAX

static void *fib_task(void *arg)
{
	uint64_t n = u64_of(arg);
	if (n < 2)
		return arg;
	crew_task *child = crew_spawn(fib_task, ptr_of(n - 1));
	if (!child)
		return ptr_of(FIB_ERROR);
	uint64_t b = u64_of(fib_task(ptr_of(n - 2)));
	void *a = NULL;
	if (crew_join(child, &a) != 0 || u64_of(a) == FIB_ERROR || b == FIB_ERROR)
		return ptr_of(FIB_ERROR);
	return ptr_of(u64_of(a) + b);
}

static uint64_t fib_iterative(uint64_t n)
{
	uint64_t a = 0, b = 1;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t t = a + b;
		a = b;
		b = t;
	}
	return a;
}

static void *fib_main(void *arg)
{
	struct bench_ctx *ctx = enter(arg);
	uint64_t got = u64_of(fib_task(ptr_of(ctx->n)));
	if (got == FIB_ERROR)
		ctx->failed = "fib: crew_spawn or crew_join failed";
	else if (got != fib_iterative(ctx->n))
		ctx->failed = "fib: wrong result";
	return NULL;
}

/* ---- sleepers ------------------------------------------------------------- */

static void *sleeper_task(void *arg)
{
	(void)arg;
	return ptr_of(crew_sleep(10 * MS) == 0);
}

static void *sleepers_main(void *arg)
{
	struct bench_ctx *ctx = enter(arg);
	crew_task **tasks = malloc(ctx->n * sizeof *tasks);
	if (!tasks) {
		ctx->failed = "sleepers: out of memory for the handle array";
		return NULL;
	}
	uint64_t spawned = 0;
	for (; spawned < ctx->n; spawned++) {
		tasks[spawned] = crew_spawn(sleeper_task, NULL);
		if (!tasks[spawned])
			break;
	}
	uint64_t slept = 0;
	for (uint64_t i = 0; i < spawned; i++) {
		void *ok = NULL;
		if (crew_join(tasks[i], &ok) == 0)
			slept += u64_of(ok);
	}
	free(tasks);
	if (spawned < ctx->n)
		ctx->failed = "sleepers: crew_spawn failed";
	else if (slept != ctx->n)
		ctx->failed = "sleepers: a crew_sleep or crew_join failed";
	return NULL;
}

/* ---- live ----------------------------------------------------------------- */

struct live_ctx {
	uint64_t n;
	uint64_t started; /* atomic */
	crew_future *all_started, *gate;
};

static void *live_task(void *arg)
{
	struct live_ctx *l = arg;
	if (__atomic_add_fetch(&l->started, 1, __ATOMIC_RELAXED) == l->n)
		crew_future_set(l->all_started, NULL);
	return ptr_of(crew_future_await(l->gate, NULL) == 0);
}

static void *live_main(void *arg)
{
	struct bench_ctx *ctx = enter(arg);
	struct live_ctx l = { .n = ctx->n };
	crew_task **tasks = malloc(ctx->n * sizeof *tasks);
	l.all_started = crew_future_new();
	l.gate = crew_future_new();
	if (!tasks || !l.all_started || !l.gate) {
		ctx->failed = "live: out of memory";
		free(tasks);
		crew_future_release(l.all_started);
		crew_future_release(l.gate);
		return NULL;
	}
	uint64_t spawned = 0;
	for (; spawned < ctx->n; spawned++) {
		tasks[spawned] = crew_spawn(live_task, &l);
		if (!tasks[spawned])
			break;
	}
	if (spawned == ctx->n && ctx->n)
		crew_future_await(l.all_started, NULL);
	crew_future_set(l.gate, NULL);
	uint64_t ok = 0;
	for (uint64_t i = 0; i < spawned; i++) {
		void *r = NULL;
		if (crew_join(tasks[i], &r) == 0)
			ok += u64_of(r);
	}
	free(tasks);
	crew_future_release(l.all_started);
	crew_future_release(l.gate);
	if (spawned < ctx->n)
		ctx->failed = "live: crew_spawn failed";
	else if (ok != ctx->n)
		ctx->failed = "live: a future await or crew_join failed";
	return NULL;
}

/* ---- pingpong ------------------------------------------------------------- */

/*
 * Every message is a fresh future, set by its sender and awaited by its
 * receiver, and its value is the future that carries the same direction's
 * next message:
 *
 *   round i:  ping: req[i+1] = new; set(req[i], req[i+1]); rep[i+1] = await(rep[i])
 *             pong: req[i+1] = await(req[i]); rep[i+1] = new; set(rep[i], rep[i+1])
 *
 * The receiver releases each future as soon as its await returned (crew.h:
 * safe whatever the setter still does), and at the end the one it received
 * but never awaited (req[n], rep[n]).
 */
struct pingpong {
	uint64_t rounds;
	crew_future *req0, *rep0;
};

/* On a failure both sides just stop and leak their futures: the run is
 * reported as failed. A failing pong sets NULL so that ping stops too. */
static void *ping_task(void *arg)
{
	struct pingpong *pp = arg;
	crew_future *req = pp->req0, *rep = pp->rep0;
	for (uint64_t i = 0; i < pp->rounds; i++) {
		crew_future *next_req = crew_future_new();
		void *next_rep = NULL;
		if (!next_req || crew_future_set(req, next_req) != 0 ||
		    crew_future_await(rep, &next_rep) != 0 || !next_rep)
			return ptr_of(0);
		crew_future_release(rep);
		req = next_req;
		rep = next_rep;
	}
	crew_future_release(rep); /* rep[n]: received, never set */
	return ptr_of(1);
}

static void *pong_task(void *arg)
{
	struct pingpong *pp = arg;
	crew_future *req = pp->req0, *rep = pp->rep0;
	for (uint64_t i = 0; i < pp->rounds; i++) {
		void *next_req = NULL;
		if (crew_future_await(req, &next_req) != 0)
			return ptr_of(0);
		crew_future_release(req);
		crew_future *next_rep = crew_future_new();
		if (!next_rep) {
			crew_future_set(rep, NULL);
			return ptr_of(0);
		}
		if (crew_future_set(rep, next_rep) != 0)
			return ptr_of(0);
		req = next_req;
		rep = next_rep;
	}
	crew_future_release(req); /* req[n]: received, never set */
	return ptr_of(1);
}

static void *pingpong_main(void *arg)
{
	struct bench_ctx *ctx = enter(arg);
	struct pingpong pp = { .rounds = ctx->n };
	pp.req0 = crew_future_new();
	pp.rep0 = crew_future_new();
	crew_task *ping = NULL, *pong = NULL;
	if (pp.req0 && pp.rep0) {
		pong = crew_spawn(pong_task, &pp);
		ping = pong ? crew_spawn(ping_task, &pp) : NULL;
	}
	if (!ping) {
		ctx->failed = "pingpong: out of memory";
		if (pong) { /* it waits for a request that never comes */
			crew_cancel(pong);
			crew_join(pong, NULL);
		}
		return NULL; /* leaks req[0]/rep[0]: the run failed anyway */
	}
	void *ping_ok = NULL, *pong_ok = NULL;
	crew_join(ping, &ping_ok);
	if (!u64_of(ping_ok))
		crew_cancel(pong); /* it may wait for a request that never comes */
	crew_join(pong, &pong_ok);
	if (!u64_of(ping_ok) || !u64_of(pong_ok))
		ctx->failed = "pingpong: a future operation failed";
	return NULL;
}

/* ---- yield ---------------------------------------------------------------- */

static void *yield_task(void *arg)
{
	uint64_t count = u64_of(arg);
	for (uint64_t i = 0; i < count; i++)
		if (crew_yield() != 0)
			return ptr_of(0);
	return ptr_of(1);
}

static void *yield_main(void *arg)
{
	struct bench_ctx *ctx = enter(arg);
	uint64_t half = ctx->n / 2;
	crew_task *a = crew_spawn(yield_task, ptr_of(half));
	crew_task *b = crew_spawn(yield_task, ptr_of(ctx->n - half));
	void *ok_a = NULL, *ok_b = NULL;
	crew_join(a, &ok_a); /* NULL handles make crew_join return -EINVAL */
	crew_join(b, &ok_b);
	if (!a || !b)
		ctx->failed = "yield: crew_spawn failed";
	else if (!u64_of(ok_a) || !u64_of(ok_b))
		ctx->failed = "yield: crew_yield failed";
	return NULL;
}


/* ---- fork-join: fib-serial, pfor, pfor-serial ---------------------------- */

/* The serial baseline: the same recursion as a plain C function. noinline and
 * the empty asm keep the compiler from turning it into a loop. */
__attribute__((noinline)) static uint64_t fib_plain(uint64_t n)
{
	__asm__ volatile("");
	return n < 2 ? n : fib_plain(n - 1) + fib_plain(n - 2);
}

static void *fib_serial_main(void *arg)
{
	struct bench_ctx *ctx = enter(arg);
	if (fib_plain(ctx->n) != fib_iterative(ctx->n))
		ctx->failed = "fib-serial: wrong result";
	return NULL;
}

/* pfor: n element visits, as n / 2^20 passes over an array of 2^20 uint64
 * (8 MiB); each pass sums the array with crew_parallel_for (each piece adds
 * its partial sum with one atomic add). pfor-serial: the plain loop. */
#define PFOR_LEN (1u << 20)

struct pfor_ctx {
	const uint64_t *a;
	uint64_t sum; /* atomic add per piece */
};

static void pfor_body(size_t lo, size_t hi, void *p)
{
	struct pfor_ctx *c = p;
	uint64_t s = 0;
	for (size_t i = lo; i < hi; i++)
		s += c->a[i];
	__atomic_fetch_add(&c->sum, s, __ATOMIC_RELAXED);
}

static void *pfor_common(void *arg, bool parallel)
{
	struct bench_ctx *ctx = enter(arg);
	uint64_t *a = malloc(PFOR_LEN * sizeof *a);
	if (!a) {
		ctx->failed = "pfor: out of memory";
		return NULL;
	}
	for (size_t i = 0; i < PFOR_LEN; i++)
		a[i] = i & 0xff;
	uint64_t want = 0, got = 0, passes = ctx->n / PFOR_LEN;
	for (size_t i = 0; i < PFOR_LEN; i++)
		want += a[i];
	for (uint64_t p = 0; p < passes; p++) {
		struct pfor_ctx c = { a, 0 };
		if (parallel) {
			if (crew_parallel_for(0, PFOR_LEN, 0, pfor_body, &c) != 0)
				ctx->failed = "pfor: crew_parallel_for failed";
		} else {
			pfor_body(0, PFOR_LEN, &c);
		}
		got += c.sum;
	}
	if (got != want * passes)
		ctx->failed = "pfor: wrong sum";
	free(a);
	return NULL;
}

static void *pfor_main(void *arg) { return pfor_common(arg, true); }
static void *pfor_serial_main(void *arg) { return pfor_common(arg, false); }

/* ---- driver --------------------------------------------------------------- */

static const struct workload workloads[] = {
	{ "spawn", 1000000, spawn_main, false },
	{ "fib", 30, fib_main, false },
	{ "sleepers", 100000, sleepers_main, false },
	{ "live", 100000, live_main, false },
	{ "pingpong", 1000000, pingpong_main, false },
	{ "yield", 10000000, yield_main, true },
	{ "fib-serial", 30, fib_serial_main, false },
	{ "pfor", 200u << 20, pfor_main, false },
	{ "pfor-serial", 200u << 20, pfor_serial_main, false },
};

static void usage(void)
{
	fputs("usage: crew-bench <workload> [--workers N] [--n N] [--stack-kib K]"
	      " [--guard-madvise on|off]\n"
	      "workloads:", stderr);
	for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
		fprintf(stderr, " %s (n=%" PRIu64 ")", workloads[i].name,
			workloads[i].default_n);
	fputs("\n--workers 0 and --stack-kib 0 (the defaults) let crew choose\n", stderr);
	exit(2);
}

static const struct workload *find_workload(const char *name)
{
	for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
		if (strcmp(workloads[i].name, name) == 0)
			return &workloads[i];
	return NULL;
}

/* Parses a whole decimal number no larger than `max`, or exits with usage. */
static uint64_t parse_count(const char *flag, const char *text, uint64_t max)
{
	char *end = NULL;
	errno = 0;
	unsigned long long v = text ? strtoull(text, &end, 10) : 0;
	if (!text || !*text || *end || errno || text[0] == '-' || v > max) {
		fprintf(stderr, "crew-bench: %s needs a number <= %" PRIu64 ", got '%s'\n",
			flag, max, text ? text : "");
		usage();
	}
	return v;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static double peak_rss_mb(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0.0;
	return (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (batch_handles(argc, argv)) /* bench/batch.c: nqueens, uts-t1, ..., --runtime serial */
		return batch_main(argc, argv);
	const struct workload *w = find_workload(argv[1]);
	if (!w) {
		fprintf(stderr, "crew-bench: unknown workload '%s'\n", argv[1]);
		usage();
	}
	uint64_t n = w->default_n;
	unsigned workers = 0;
	size_t stack_kib = 0;
	bool guard_madvise = true;
	for (int i = 2; i < argc; i += 2) {
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(argv[i], "--workers") == 0)
			workers = (unsigned)parse_count("--workers", value, 1024);
		else if (strcmp(argv[i], "--n") == 0)
			n = parse_count("--n", value, UINT64_MAX / 2);
		else if (strcmp(argv[i], "--stack-kib") == 0)
			stack_kib = parse_count("--stack-kib", value, 1024 * 1024);
		else if (strcmp(argv[i], "--guard-madvise") == 0 && value &&
			 (strcmp(value, "on") == 0 || strcmp(value, "off") == 0))
			guard_madvise = strcmp(value, "on") == 0;
		else {
			fprintf(stderr, "crew-bench: unknown option '%s'\n", argv[i]);
			usage();
		}
	}
	/* fib(93) is the last that fits in 64 bits; a task per call makes anything
	 * near it run for ages anyway. */
	if (strcmp(w->name, "fib") == 0 && n > 60) {
		fputs("crew-bench: fib needs --n <= 60\n", stderr);
		usage();
	}

	if (!guard_madvise && crewt_block_guard_madvise() != 0) {
		fprintf(stderr, "crew-bench: seccomp filter: %s\n", strerror(errno));
		return 1;
	}
	struct bench_ctx ctx = { .n = n };
	crew_config cfg = { .workers = workers, .stack_size = stack_kib * 1024 };
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = crew_run_with(&cfg, w->main, &ctx, NULL);
	double seconds = seconds_since(&t0);
	if (rc != 0) {
		fprintf(stderr, "crew-bench: crew_run_with: %s\n", strerror(-rc));
		return 1;
	}
	if (ctx.failed) {
		fprintf(stderr, "crew-bench: %s\n", ctx.failed);
		return 1;
	}

	printf("{\"bench\":\"%s\",\"runtime\":\"crew\",\"workers\":%u,\"n\":%" PRIu64
	       ",\"seconds\":%.6f,\"rss_mb\":%.1f",
	       w->name, ctx.workers, n, seconds, peak_rss_mb());
	if (w->per_switch)
		printf(",\"ns_per_switch\":%.2f", n ? seconds * 1e9 / (double)n : 0.0);
	puts("}");
	return 0;
}
