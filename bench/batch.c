/*
 * batch.c - runs the batch workloads of bench/batch.h: parses the command
 * line, prepares the input, times the serial, crew_spawn/join or crew_fork
 * version, checks the answer and prints crew-bench's JSON line.
 */
#include "batch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const struct batch_workload *const table[] = {
	&wl_fib, &wl_nqueens, &wl_uts_t1, &wl_uts_t3, &wl_knapsack,
	&wl_matmul, &wl_cilksort, &wl_skew, &wl_bpc,
};

static const struct batch_workload *find(const char *name)
{
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (strcmp(table[i]->name, name) == 0)
			return table[i];
	return NULL;
}

static const char *runtime_arg(int argc, char **argv)
{
	for (int i = 2; i + 1 < argc; i += 2)
		if (strcmp(argv[i], "--runtime") == 0)
			return argv[i + 1];
	return NULL;
}

bool batch_handles(int argc, char **argv)
{
	const struct batch_workload *w = argc >= 2 ? find(argv[1]) : NULL;
	if (!w)
		return false;
	/* fib without --runtime stays crew-bench's own fib (crew_bench.c) */
	return strcmp(w->name, "fib") != 0 || runtime_arg(argc, argv);
}

static void usage(void)
{
	fputs("usage: crew-bench <workload> [--workers N] [--n N] [--runtime serial|crew|crew-fork]\n"
	      "                 [--stack-kib K] (crew_config.stack_size; 0: crew's default)\n"
	      "batch workloads:", stderr);
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		fprintf(stderr, " %s (n=%" PRIu64 ")", table[i]->name, table[i]->default_n);
	fputc('\n', stderr);
	exit(2);
}

static uint64_t parse_u64(const char *flag, const char *text, uint64_t max)
{
	char *end = NULL;
	errno = 0;
	unsigned long long v = text ? strtoull(text, &end, 10) : 0;
	if (!text || !*text || *end || errno || text[0] == '-' || v > max) {
		fprintf(stderr, "crew-bench: %s needs a number <= %" PRIu64 ", got '%s'\n", flag, max,
			text ? text : "");
		usage();
	}
	return v;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int batch_main(int argc, char **argv)
{
	const struct batch_workload *w = find(argv[1]);
	if (!w)
		usage();
	struct batch_run r = { .n = w->default_n };
	unsigned workers = 0;
	size_t stack_kib = 0;
	const char *runtime = "crew";
	for (int i = 2; i < argc; i += 2) {
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(argv[i], "--workers") == 0)
			workers = (unsigned)parse_u64("--workers", value, 1024);
		else if (strcmp(argv[i], "--n") == 0)
			r.n = parse_u64("--n", value, UINT64_MAX / 2);
		else if (strcmp(argv[i], "--stack-kib") == 0)
			stack_kib = (size_t)parse_u64("--stack-kib", value, 1u << 20);
		else if (strcmp(argv[i], "--runtime") == 0 && value)
			runtime = value;
		else {
			fprintf(stderr, "crew-bench: unknown option '%s'\n", argv[i]);
			usage();
		}
	}
	crew_fn task = NULL;
	if (strcmp(runtime, "crew") == 0)
		task = w->crew;
	else if (strcmp(runtime, "crew-fork") == 0)
		task = w->fork;
	else if (strcmp(runtime, "serial") != 0) {
		fprintf(stderr, "crew-bench: unknown runtime '%s'\n", runtime);
		usage();
	}
	if (strcmp(runtime, "serial") != 0 && !task) {
		fprintf(stderr, "crew-bench: %s has no %s version in this build%s\n", w->name, runtime,
			strcmp(runtime, "crew-fork") == 0 ? " (needs -DCREW_HAVE_FORK)" : "");
		return 3;
	}
	if (w->prepare) {
		int rc = w->prepare(&r);
		if (rc != 0 || r.failed) {
			fprintf(stderr, "crew-bench: %s: %s\n", w->name,
				r.failed ? r.failed : strerror(-rc));
			return 1;
		}
	}
	double t0 = now();
	if (task) {
		crew_config cfg = { .workers = workers, .stack_size = stack_kib * 1024 };
		int rc = crew_run_with(&cfg, task, &r, NULL);
		if (rc != 0) {
			fprintf(stderr, "crew-bench: crew_run_with: %s\n", strerror(-rc));
			return 1;
		}
	} else {
		w->serial(&r);
		workers = 1;
	}
	double seconds = now() - t0;
	if (task && workers == 0) {
		/* the runtime's own choice: CREW_WORKERS or the CPU count */
		const char *env = getenv("CREW_WORKERS");
		workers = env && atoi(env) > 0 ? (unsigned)atoi(env) : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	}
	const char *why = r.failed ? r.failed : w->check(&r);
	if (w->cleanup)
		w->cleanup(&r);
	if (why) {
		fprintf(stderr, "crew-bench: %s (%s, n=%" PRIu64 "): %s\n", w->name, runtime, r.n, why);
		return 1;
	}
	struct rusage ru;
	double rss = getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : 0.0;
	printf("{\"bench\":\"%s\",\"runtime\":\"%s\",\"workers\":%u,\"n\":%" PRIu64
	       ",\"seconds\":%.6f,\"rss_mb\":%.1f}\n",
	       w->name, runtime, workers, r.n, seconds, rss);
	return 0;
}
