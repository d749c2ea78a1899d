/*
 * Misuse gets a clear error, never silent corruption: -EPERM outside a task,
 * -EINVAL for NULL and bad arguments, -EBUSY for a nested crew_run, a message
 * and abort() for a stack overflow.
 */
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *nothing(void *arg) { return arg; }

/* ---- outside any runtime ---- */

Test(misuse, suspending_calls_outside_a_task)
{
	cr_expect_eq(crew_sleep(CREWT_MS), -EPERM);
	cr_expect_eq(crew_sleep(0), -EPERM);
	cr_expect_eq(crew_sleep_until(crew_now() + CREWT_MS), -EPERM);
	cr_expect_eq(crew_yield(), -EPERM);
	/* Both rules apply (NULL argument, outside a task); arguments are
	 * checked first (crew.h, crew_join), as crew_spawn(NULL) without a
	 * runtime and crew_run(NULL) inside a task do. */
	cr_expect_eq(crew_join(NULL, NULL), -EINVAL, "crew_join(NULL) outside a task");
}

/* A real handle, joined from a plain thread while the runtime runs: the only
 * thing wrong is the context, so -EPERM; the handle is not consumed. */
typedef struct outside_join {
	crew_future *go;
	crew_task *t;
	int rc;
} outside_join;

static void *wait_for_go(void *p)
{
	outside_join *oj = p;
	crew_future_await(oj->go, NULL);
	return (void *)5;
}

static void *join_from_thread(void *p)
{
	outside_join *oj = p;
	oj->rc = crew_join(oj->t, NULL);
	return NULL;
}

static void *outside_join_main(void *p)
{
	outside_join *oj = p;
	oj->t = crew_spawn(wait_for_go, oj);
	if (!oj->t)
		return (void *)1;
	pthread_t th;
	if (pthread_create(&th, NULL, join_from_thread, oj) != 0)
		return (void *)2;
	pthread_join(th, NULL); /* blocks this worker briefly: crew_join returns at once */
	crew_future_set(oj->go, NULL);
	void *r = NULL;
	if (crew_join(oj->t, &r) != 0 || r != (void *)5) /* still ours to join */
		return (void *)3;
	return NULL;
}

Test(misuse, join_from_a_plain_thread, .timeout = CREWT_TIMEOUT(30))
{
	outside_join oj = {.go = crew_future_new(), .rc = 1};
	cr_assert_not_null(oj.go);
	void *res = (void *)-1;
	cr_assert_eq(crewt_run(2, outside_join_main, &oj, &res), 0);
	cr_expect_null(res, "failed at step %p", res);
	cr_expect_eq(oj.rc, -EPERM, "crew_join from a plain thread: %d", oj.rc);
	crew_future_release(oj.go);
}

Test(misuse, identity_outside)
{
	cr_expect_eq(crew_worker_id(), -1);
	cr_expect_null(crew_self());
	cr_expect_eq(crew_workers(), 0u);
	cr_expect_null(crew_task_name(NULL));
	cr_expect_gt(crew_now(), 0u);
}

Test(misuse, spawn_without_runtime)
{
	errno = 0;
	cr_expect_null(crew_spawn(nothing, NULL));
	cr_expect_eq(errno, EPERM, "errno %d (%s)", errno, strerror(errno));
}

Test(misuse, null_arguments)
{
	cr_expect_eq(crew_run(NULL, NULL, NULL), -EINVAL);
	crew_config cfg = {.workers = 1};
	cr_expect_eq(crew_run_with(&cfg, NULL, NULL, NULL), -EINVAL);
	cr_expect_eq(crew_cancel(NULL), -EINVAL);
	cr_expect_eq(crew_future_set(NULL, NULL), -EINVAL);
	cr_expect_eq(crew_future_await(NULL, NULL), -EINVAL);
	cr_expect_eq(crew_future_await_until(NULL, 0, NULL), -EINVAL);
	cr_expect(!crew_future_done(NULL));
	crew_detach(NULL); /* ignored */
}

Test(misuse, bad_config)
{
	static const struct {
		crew_config cfg;
		const char *what;
	} bad[] = {
		{{.workers = 1025}, "workers 1025"},
		{{.workers = 100000}, "workers 100000"},
		{{.workers = 1, .stack_size = 1}, "stack_size 1"},
		{{.workers = 1, .stack_size = 16 * 1024 - 1}, "stack_size 16 KiB - 1"},
		{{.workers = 1, .stack_size = (size_t)1 << 30 << 1}, "stack_size 2 GiB"},
		{{.workers = 1, .stack_size = ((size_t)1 << 30) + 1}, "stack_size 1 GiB + 1"},
		{{.workers = 1, .ring_entries = 32769}, "ring_entries 32769"},
		{{.workers = 1, .ring_entries = 1u << 20}, "ring_entries 1 Mi"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = crew_run_with(&bad[i].cfg, nothing, NULL, NULL);
		cr_expect_eq(rc, -EINVAL, "crew_run_with(%s): %d", bad[i].what, rc);
	}
	/* The limits themselves are fine. */
	crew_config ok = {.workers = 1, .stack_size = 16 * 1024};
	void *r = NULL;
	cr_expect_eq(crew_run_with(&ok, nothing, (void *)7, &r), 0, "stack_size 16 KiB");
	cr_expect_eq(r, (void *)7);
	cr_expect_eq(crew_run_with(NULL, nothing, (void *)8, &r), 0, "NULL config: defaults");
	cr_expect_eq(r, (void *)8);
}

/* ---- inside a task ---- */

typedef struct inside {
	int join_null, join_self, cancel_null, nested_run, nested_run_with;
	crew_task *spawn_null;
	int spawn_null_errno;
	int set_null, await_null;
	int busy_from_thread;
} inside;

static void *busy_thread(void *p)
{
	inside *in = p;
	in->busy_from_thread = crew_run(nothing, NULL, NULL);
	return NULL;
}

static void *inside_main(void *p)
{
	inside *in = p;
	in->join_null = crew_join(NULL, NULL);
	in->join_self = crew_join(crew_self(), NULL);
	in->cancel_null = crew_cancel(NULL);
	in->nested_run = crew_run(nothing, NULL, NULL);
	crew_config cfg = {.workers = 1};
	in->nested_run_with = crew_run_with(&cfg, nothing, NULL, NULL);
	errno = 0;
	in->spawn_null = crew_spawn(NULL, NULL);
	in->spawn_null_errno = errno;
	in->set_null = crew_future_set(NULL, NULL);
	in->await_null = crew_future_await(NULL, NULL);
	/* Another crew_run from a plain thread while this one runs: -EBUSY. */
	pthread_t th;
	if (pthread_create(&th, NULL, busy_thread, in) == 0)
		pthread_join(th, NULL); /* returns at once: -EBUSY */
	return (void *)1;
}

Test(misuse, inside_a_task, .timeout = CREWT_TIMEOUT(30))
{
	inside in;
	memset(&in, 0x55, sizeof in);
	void *res = NULL;
	cr_assert_eq(crewt_run(2, inside_main, &in, &res), 0);
	cr_expect_eq(res, (void *)1, "main did not return normally after the misuse");
	cr_expect_eq(in.join_null, -EINVAL);
	cr_expect_eq(in.join_self, -EINVAL, "crew_join on itself: %d", in.join_self);
	cr_expect_eq(in.cancel_null, -EINVAL);
	cr_expect_eq(in.nested_run, -EBUSY, "crew_run inside a task: %d", in.nested_run);
	cr_expect_eq(in.nested_run_with, -EBUSY, "crew_run_with inside a task: %d",
	             in.nested_run_with);
	cr_expect_null(in.spawn_null);
	cr_expect_eq(in.spawn_null_errno, EINVAL, "crew_spawn(NULL): errno %d", in.spawn_null_errno);
	cr_expect_eq(in.set_null, -EINVAL);
	cr_expect_eq(in.await_null, -EINVAL);
	cr_expect_eq(in.busy_from_thread, -EBUSY, "a second crew_run from a plain thread: %d",
	             in.busy_from_thread);
	/* The failed calls left nothing behind: the runtime works again. */
	cr_expect_eq(crewt_run(1, nothing, (void *)3, &res), 0);
	cr_expect_eq(res, (void *)3);
}

/* ---- stack overflow ---- */

#if !(defined(CREW_ASAN) || defined(CREW_TSAN))

static void *overflow_main(void *arg)
{
	(void)arg;
	crew_task *t = crew_spawn(crewt_deep_recursion_task, NULL);
	crew_join(t, NULL);
	return NULL;
}

static void overflow_child(void *arg)
{
	(void)arg;
	crewt_run_stack(2, 64 * 1024, overflow_main, NULL, NULL);
	_exit(3); /* must not get here */
}

Test(misuse, stack_overflow_aborts_with_message, .timeout = CREWT_TIMEOUT(30))
{
	crewt_proc p;
	cr_assert_eq(crewt_fork_capture(overflow_child, NULL, 20 * CREWT_SEC, &p), 0);
	cr_expect(WIFSIGNALED(p.status) && WTERMSIG(p.status) == SIGABRT,
	          "stack overflow: child %s, expected SIGABRT; stderr:\n%s",
	          crewt_status_str(p.status), p.err);
	cr_expect_not_null(strstr(p.err, "crewt_deep_recursion_task"),
	                   "stderr does not name the task:\n%s", p.err);
	/* The stack size, in bytes or in KiB. */
	bool size = strstr(p.err, "65536") || strstr(p.err, "64 KiB") || strstr(p.err, "64KiB") ||
	            strstr(p.err, "64 kB") || strstr(p.err, "64K") || strstr(p.err, "64 K");
	cr_expect(size, "stderr does not give the stack size (64 KiB):\n%s", p.err);
	crewt_proc_free(&p);
}

#endif

/* ---- consumed handles (debug builds only) ---- */

#ifdef CREWT_DEBUG_BUILD
static void *join_twice_main(void *arg)
{
	(void)arg;
	crew_task *t = crew_spawn(nothing, NULL);
	crew_join(t, NULL);
	crew_join(t, NULL); /* consumed: must abort with a message */
	return NULL;
}

Test(misuse, join_after_consumed_aborts, .timeout = CREWT_TIMEOUT(30))
{
	crewt_expect_abort(join_twice_main, "join of a consumed handle", "joined or detached");
}

/* crew_cancel of a joined handle whose slot a new task took: it cancelled
 * that task silently; now it aborts with a message. A detached task may
 * still cancel itself. */
static void *sleep_a_little(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)crew_sleep(CREWT_MS);
}

static void *self_cancel(void *arg)
{
	(void)arg;
	crew_cancel(crew_self());
	return (void *)crew_task_name(crew_self());
}

static void *cancel_stale_main(void *arg)
{
	(void)arg;
	crew_detach(crew_spawn(self_cancel, NULL)); /* allowed: its own handle */
	crew_task *a = crew_spawn(nothing, NULL);
	crew_join(a, NULL);
	crew_task *b = crew_spawn(sleep_a_little, NULL); /* may reuse a's slot */
	crew_cancel(a); /* consumed: must abort with a message */
	crew_join(b, NULL);
	return NULL;
}

Test(misuse, cancel_after_consumed_aborts, .timeout = CREWT_TIMEOUT(30))
{
	crewt_expect_abort(cancel_stale_main, "cancel of a consumed handle", "crew_cancel");
}
#endif
