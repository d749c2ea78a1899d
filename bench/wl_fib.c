/*
 * wl_fib.c - fib with --runtime serial (plain recursion), crew (the same
 * spawn/call/join as crew-bench's own "fib" in crew_bench.c, which runs when
 * no --runtime is given) and crew-fork.
 */
#include "batch.h"
#include "batch/kern.h"

#include <errno.h>

static void fib_serial(struct batch_run *r) { r->result = kern_fib((unsigned)r->n); }

static int fib_prepare(struct batch_run *r) { return r->n <= 60 ? 0 : -EINVAL; }

static const char *fib_check(struct batch_run *r)
{
	return r->result == kern_fib_expected((unsigned)r->n) ? NULL : "wrong result";
}

static void *fib_task(void *arg)
{
	uint64_t n = batch_u64(arg);
	if (n < 2)
		return arg;
	crew_task *child = crew_spawn(fib_task, batch_ptr(n - 1));
	if (!child)
		return batch_ptr(BATCH_ERROR);
	uint64_t b = batch_u64(fib_task(batch_ptr(n - 2)));
	void *a = NULL;
	if (crew_join(child, &a) != 0 || batch_u64(a) == BATCH_ERROR || b == BATCH_ERROR)
		return batch_ptr(BATCH_ERROR);
	return batch_ptr(batch_u64(a) + b);
}

static void *fib_main(void *arg)
{
	struct batch_run *r = arg;
	r->result = batch_u64(fib_task(batch_ptr(r->n)));
	return NULL;
}

#ifdef CREW_HAVE_FORK /* ---- crew_fork/crew_sync ---- */
/* As knapsack's: the leaf test inlined where a call is visited, so a leaf
 * costs no call (the shape gcc gives Lace's fib); the forked call goes
 * through the crew_fn wrapper. */
static uint64_t fib_fork_inner(uint64_t n);

static inline __attribute__((always_inline)) uint64_t fib_fork_visit(uint64_t n)
{
	return n < 2 ? n : fib_fork_inner(n);
}

static void *fib_fork_task(void *arg) { return batch_ptr(fib_fork_visit(batch_u64(arg))); }

static uint64_t fib_fork_inner(uint64_t n)
{
	crew_frame f;
	crew_fork(&f, fib_fork_task, batch_ptr(n - 1));
	uint64_t b = fib_fork_visit(n - 2);
	return batch_u64(crew_sync(&f)) + b;
}

static void *fib_fork_main(void *arg)
{
	struct batch_run *r = arg;
	r->result = fib_fork_visit(r->n);
	return NULL;
}
#define FIB_FORK fib_fork_main
#else
#define FIB_FORK NULL
#endif

const struct batch_workload wl_fib = {
	.name = "fib", .default_n = 30, .prepare = fib_prepare, .serial = fib_serial, .crew = fib_main, .fork = FIB_FORK,
	.check = fib_check,
};
