/* Shared helpers for the crew tests. */
#ifndef CREW_TEST_HELPERS_H
#define CREW_TEST_HELPERS_H

#include <crew.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The test harness: Criterion, or its stand-in where Criterion cannot run
 * (ThreadSanitizer builds, see minicrit.h). */
#ifdef CREWT_MINICRIT
#include "minicrit.h"
#else
#include <criterion/criterion.h>
#include <criterion/logging.h>
#endif

#if defined(CREW_ASAN) || defined(CREW_TSAN)
#define CREWT_SANITIZER 1
#else
#define CREWT_SANITIZER 0
#endif

/* Pick a size: the first in normal builds, the second under a sanitizer. */
#define CREWT_SIZE(normal, sanitized) (CREWT_SANITIZER ? (sanitized) : (normal))

/* Criterion per-test timeouts (seconds), scaled under sanitizers. */
#if defined(CREW_TSAN)
#define CREWT_TIMEOUT(s) ((s) * 6.0)
#elif defined(CREW_ASAN)
#define CREWT_TIMEOUT(s) ((s) * 3.0)
#else
#define CREWT_TIMEOUT(s) ((s) * 1.0)
#endif

#define CREWT_MS 1000000ull
#define CREWT_SEC 1000000000ull

/* What a child process did. */
typedef struct crewt_proc {
	int status;       /* waitpid() status */
	bool timed_out;   /* killed with SIGKILL after the timeout */
	char *out;        /* its stdout, NUL-terminated (never NULL after success) */
	size_t out_len;
	char *err;        /* its stderr, NUL-terminated */
	size_t err_len;
} crewt_proc;

/*
 * Run the program `path` with `argv` (NULL: just the path) and the current
 * environment plus `env` ("NAME=value" strings, NULL-terminated, may be NULL),
 * capture its stdout and stderr, kill it after `timeout_ns`.
 * Returns 0, or -errno when it could not be started. Thread-safe.
 */
int crewt_exec_capture(const char *path, char *const argv[], char *const env[],
                       uint64_t timeout_ns, crewt_proc *p);

/*
 * Run `fn(arg)` in a forked child with stdout and stderr on pipes; the child
 * exits with status 0 when fn returns. Captures both, kills it after
 * `timeout_ns`. Core dumps are disabled in the child.
 * Returns 0, or -errno when fork failed.
 */
int crewt_fork_capture(void (*fn)(void *), void *arg, uint64_t timeout_ns,
                       crewt_proc *p);

void crewt_proc_free(crewt_proc *p);

/* "exit 0", "killed by SIGABRT", ...: for assertion messages (static buffer). */
const char *crewt_status_str(int status);

/* Run `main` as crew_run's main on 1 worker in a forked child; expect the
 * child to abort (SIGABRT) with `needle` on stderr. `what` names the case
 * in the assertion messages. */
void crewt_expect_abort(crew_fn main, const char *what, const char *needle);

/* crew_run_with a number of workers (everything else default). */
int crewt_run(unsigned workers, crew_fn fn, void *arg, void **result);

/* crew_run_with a number of workers and a stack size. */
int crewt_run_stack(unsigned workers, size_t stack_size, crew_fn fn, void *arg,
                    void **result);

/* Sort `n` values and return the median. */
uint64_t crewt_median(uint64_t *v, size_t n);

/* A task body that recurses (512 bytes a frame) until its stack overflows. */
void *crewt_deep_recursion_task(void *arg);

/* The kernel thread id of the calling thread. */
long crewt_gettid(void);

/*
 * From a task: yield until task `t` is suspended, i.e. its state word shows
 * neither RUNNING nor SCHEDULED: it started, switched out at a suspension
 * point and waits for a wake (a task that yielded stays RUNNING, one not yet
 * started is SCHEDULED). Which suspension point it waits at is the caller's to
 * know: make it the only one t can reach (e.g. after a flag t sets).
 * Returns true then; false when t finished instead, or when the caller cannot
 * yield (cancelled, or not a task). `t` must be a live handle.
 */
bool crewt_wait_suspended(crew_task *t);

#endif
