/*
 * The asyncio blog programs print exactly what the blog shows.
 *
 * Every program runs with CREW_WORKERS=1. Those whose output cannot depend on
 * scheduling also run with 2 and 4 workers:
 *   1, 2, 3: one task prints everything (2 and 3 await a coroutine: a call).
 * Not 4 and 5: the new task may start on another worker before main prints
 * "Hello World". Not 6: at second 5 main's 5 s sleep and the child's fifth
 * 1 s sleep end within microseconds of each other; with several workers the
 * child may have started (on another worker) before main began its sleep and
 * the two timers are on different threads, so "5" may come before "Finish".
 *
 * The variants of one program run at the same time (they mostly sleep), and
 * Criterion runs the programs in parallel (--jobs in tests/CMakeLists.txt).
 */
#include "helpers.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#ifndef EXAMPLES_DIR
#error "EXAMPLES_DIR must be defined by the build"
#endif

typedef struct run {
	const char *name;
	unsigned workers;
	uint64_t expect_ns; /* how long the program sleeps in all */
	crewt_proc proc;
	int rc;
	uint64_t elapsed;
} run;

static void *run_thread(void *p)
{
	run *r = p;
	char path[4096], env_workers[32];
	snprintf(path, sizeof path, "%s/%s", EXAMPLES_DIR, r->name);
	snprintf(env_workers, sizeof env_workers, "CREW_WORKERS=%u", r->workers);
	char *env[] = {env_workers, NULL};
	uint64_t t0 = crew_now();
	r->rc = crewt_exec_capture(path, NULL, env, r->expect_ns + 30 * CREWT_SEC, &r->proc);
	r->elapsed = crew_now() - t0;
	return NULL;
}

static void check_example(const char *name, const char *expected, uint64_t expect_ns,
                          const unsigned *workers, size_t nworkers)
{
	run runs[8];
	pthread_t th[8];
	cr_assert(nworkers <= 8);
	for (size_t i = 0; i < nworkers; i++) {
		runs[i] = (run){.name = name, .workers = workers[i], .expect_ns = expect_ns};
		cr_assert_eq(pthread_create(&th[i], NULL, run_thread, &runs[i]), 0);
	}
	for (size_t i = 0; i < nworkers; i++)
		pthread_join(th[i], NULL);

	/* Startup and shutdown are fast; sanitizers make them slower. */
	const uint64_t slack = CREWT_SIZE(2, 5) * CREWT_SEC;
	for (size_t i = 0; i < nworkers; i++) {
		run *r = &runs[i];
		cr_assert_eq(r->rc, 0, "%s: could not start: %s", name, strerror(-r->rc));
		cr_expect(!r->proc.timed_out, "%s (CREW_WORKERS=%u) timed out", name, r->workers);
		cr_expect(WIFEXITED(r->proc.status) && WEXITSTATUS(r->proc.status) == 0,
		          "%s (CREW_WORKERS=%u): %s; stderr:\n%s", name, r->workers,
		          crewt_status_str(r->proc.status), r->proc.err);
		cr_expect_str_eq(r->proc.out, expected,
		                 "%s (CREW_WORKERS=%u) printed:\n%s\nexpected:\n%s", name,
		                 r->workers, r->proc.out, expected);
		cr_expect_str_empty(r->proc.err, "%s (CREW_WORKERS=%u) wrote on stderr:\n%s", name,
		                    r->workers, r->proc.err);
		cr_expect_geq(r->elapsed, expect_ns,
		              "%s (CREW_WORKERS=%u) took %.3f s, less than its sleeps (%.3f s)", name,
		              r->workers, r->elapsed / 1e9, expect_ns / 1e9);
		cr_expect_lt(r->elapsed, expect_ns + slack,
		             "%s (CREW_WORKERS=%u) took %.3f s, sleeps are %.3f s", name, r->workers,
		             r->elapsed / 1e9, expect_ns / 1e9);
		crewt_proc_free(&r->proc);
	}
}

static const unsigned one_worker[] = {1};
static const unsigned any_workers[] = {1, 2, 4};
#define N(a) (sizeof(a) / sizeof((a)[0]))

Test(examples, print_something)
{
	check_example("asyncio_1_print_something", "Hey Ash!\n", 0, any_workers, N(any_workers));
}

Test(examples, await_coroutine)
{
	check_example("asyncio_2_await_coroutine",
	              "Hey Ash\n0\n1\n2\n3\n4\n5\n6\n7\n8\n9\nHello World\n", 10 * CREWT_SEC,
	              any_workers, N(any_workers));
}

Test(examples, await_then_print)
{
	check_example("asyncio_3_await_then_print", "0\n1\n2\n3\n4\nHello World\n",
	              5 * CREWT_SEC, any_workers, N(any_workers));
}

Test(examples, create_task_no_await)
{
	/* The task's first sleep is cancelled at shutdown: no 1 s wait. */
	check_example("asyncio_4_create_task_no_await", "Hello World\n0\n", 0, one_worker,
	              N(one_worker));
}

Test(examples, create_task_then_await)
{
	check_example("asyncio_5_create_task_then_await", "Hello World\n0\n1\n2\n3\n4\n",
	              5 * CREWT_SEC, one_worker, N(one_worker));
}

Test(examples, print_numbers)
{
	check_example("asyncio_6_print_numbers",
	              "Hey Ash!\n0\n1\n2\n3\n4\nFinish\n5\n6\n7\n8\n9\n", 10 * CREWT_SEC,
	              one_worker, N(one_worker));
}
