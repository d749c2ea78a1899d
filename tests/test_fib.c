/*
 * fib(n) with a task per call, at 1..8 workers: the fork-join paths (inline
 * join of the newest child, join of an older child that may have been stolen,
 * join that has to wait).
 */
#include "helpers.h"

#include <stdint.h>

#define FIB_N CREWT_SIZE(25, 18)

static uintptr_t fib_seq(unsigned n)
{
	uintptr_t a = 0, b = 1;
	for (unsigned i = 0; i < n; i++) {
		uintptr_t c = a + b;
		a = b;
		b = c;
	}
	return a;
}

#define FAIL ((void *)UINTPTR_MAX)

/* fib(n): spawn fib(n-1), compute fib(n-2) in this task, join. */
static void *fib_one(void *arg)
{
	uintptr_t n = (uintptr_t)arg;
	if (n < 2)
		return (void *)n;
	crew_task *t = crew_spawn(fib_one, (void *)(n - 1));
	if (!t)
		return FAIL;
	void *b = fib_one((void *)(n - 2));
	void *a = NULL;
	if (crew_join(t, &a) != 0 || a == FAIL || b == FAIL)
		return FAIL;
	return (void *)((uintptr_t)a + (uintptr_t)b);
}

/* fib(n): spawn both fib(n-1) and fib(n-2), join the older first (it is not
 * the newest in the queue, so the join may have to wait), then the newer. */
static void *fib_both(void *arg)
{
	uintptr_t n = (uintptr_t)arg;
	if (n < 2)
		return (void *)n;
	crew_task *t1 = crew_spawn(fib_both, (void *)(n - 1));
	crew_task *t2 = crew_spawn(fib_both, (void *)(n - 2));
	void *a = FAIL, *b = FAIL;
	int r1 = t1 ? crew_join(t1, &a) : -1;
	int r2 = t2 ? crew_join(t2, &b) : -1;
	if (r1 != 0 || r2 != 0 || a == FAIL || b == FAIL)
		return FAIL;
	return (void *)((uintptr_t)a + (uintptr_t)b);
}

static void run_fib(crew_fn fn, const char *what)
{
	uintptr_t expect = fib_seq(FIB_N);
	for (unsigned w = 1; w <= 8; w++) {
		void *res = NULL;
		cr_assert_eq(crewt_run(w, fn, (void *)(uintptr_t)FIB_N, &res), 0);
		cr_expect_eq((uintptr_t)res, expect, "%s(%d) at %u workers: %lu, expected %lu", what,
		             FIB_N, w, (unsigned long)(uintptr_t)res, (unsigned long)expect);
	}
}

Test(fib, spawn_one_join, .timeout = CREWT_TIMEOUT(120)) { run_fib(fib_one, "fib_one"); }
Test(fib, spawn_both_join_oldest_first, .timeout = CREWT_TIMEOUT(120)) { run_fib(fib_both, "fib_both"); }
