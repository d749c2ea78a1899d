/*
 * batch.h - the parallel batch workloads of crew-bench (the issue "Parallel
 * batch jobs at Lace's speed"): nqueens, uts-t1, uts-t3, knapsack, matmul,
 * cilksort, skew, bpc, and the serial baseline of fib. Each lives in its own
 * file (bench/wl_<name>.c) and registers a struct batch_workload; bench/batch.c
 * runs them:
 *
 *   crew-bench <workload> [--workers N] [--n N] [--runtime serial|crew|crew-fork]
 *
 * runtime "serial" is the plain C program (no runtime at all), "crew" the
 * crew_spawn/crew_join version, "crew-fork" the crew_fork/crew_sync version
 * (built only with -DCREW_HAVE_FORK, once that API exists). Every version
 * checks its answer and exits 1 when it is wrong. The kernels shared with the
 * peers are in bench/batch/kern.h.
 *
 * "seconds" covers the computation only for "serial", and for crew the whole
 * crew_run_with() call (start-up and shutdown of the workers included), as for
 * every other crew-bench workload; input generation and the answer check are
 * outside the timed span for every runtime.
 */
#ifndef CREW_BENCH_BATCH_H
#define CREW_BENCH_BATCH_H

#include <crew.h>
#include <stdint.h>

struct batch_run {
	uint64_t n;
	void *in;           /* the workload's input (prepare/cleanup) */
	uint64_t result;    /* what the computation returns, checked afterwards */
	const char *failed; /* NULL, or why the run failed */
};

struct batch_workload {
	const char *name;
	uint64_t default_n;
	int (*prepare)(struct batch_run *r);    /* optional; 0 or -errno */
	void (*serial)(struct batch_run *r);    /* sets r->result */
	crew_fn crew;                           /* task main; arg: struct batch_run * */
	crew_fn fork;                           /* NULL unless CREW_HAVE_FORK */
	const char *(*check)(struct batch_run *r); /* NULL when right, else why not */
	void (*cleanup)(struct batch_run *r);   /* optional */
};

extern const struct batch_workload wl_fib, wl_nqueens, wl_uts_t1, wl_uts_t3, wl_knapsack,
	wl_matmul, wl_cilksort, wl_skew, wl_bpc;

/* True when crew-bench's own table should hand this command line to
 * batch_main: a batch workload, or --runtime given for one that has a batch
 * entry (fib's serial baseline). */
bool batch_handles(int argc, char **argv);
int batch_main(int argc, char **argv);

static inline void *batch_ptr(uint64_t v) { return (void *)(uintptr_t)v; }
static inline uint64_t batch_u64(void *p) { return (uint64_t)(uintptr_t)p; }

/* A task's spawn or join failed: its result is this, and the check fails. */
#define BATCH_ERROR UINT64_MAX

#endif
