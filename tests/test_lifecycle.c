/*
 * The runtime's life cycle at its edges:
 *  - a plain thread spawning (and cancelling, detaching) while crew_run ends:
 *    every spawn that succeeded runs its body exactly once, every one that
 *    failed says EPERM, nothing crashes;
 *  - a worker thread that cannot be created: crew_run fails with the error
 *    before main ran, and a later crew_run works (pthread_create is
 *    interposed below: the test program links the static library);
 *  - fork() in a task: crew calls in the child fail with EPERM instead of
 *    touching the parent's rings, the parent goes on; fork+exec works.
 */
#define _GNU_SOURCE
#include "helpers.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- pthread_create that fails on demand ---- */

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *),
                                 void *);
static atomic_int pc_fail_at; /* fail the Nth call counted from arming; 0: never */
static atomic_int pc_calls;

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	static _Atomic(pthread_create_fn) real;
	pthread_create_fn f = atomic_load(&real);
	if (!f) {
		f = (pthread_create_fn)dlsym(RTLD_NEXT, "pthread_create");
		atomic_store(&real, f);
	}
	int n = atomic_load(&pc_fail_at);
	if (n > 0 && atomic_fetch_add(&pc_calls, 1) + 1 == n)
		return EAGAIN;
	return f(t, attr, fn, arg);
}

static void pc_arm(int n)
{
	atomic_store(&pc_calls, 0);
	atomic_store(&pc_fail_at, n);
}

/* ---- a worker that cannot be started ---- */

static void *main_mark(void *p)
{
	atomic_fetch_add((atomic_int *)p, 1);
	return p;
}

Test(lifecycle, worker_start_failure, .timeout = CREWT_TIMEOUT(60))
{
	/* Fail the last worker's creation: the others have started by then and
	 * would run main if it had been queued before them. Repeated, since
	 * whether a started worker gets to main first is a race. */
	for (int round = 0; round < 20; round++) {
		for (unsigned workers = 1; workers <= 3; workers++) {
			atomic_int ran = 0;
			pc_arm((int)workers);
			int rc = crewt_run(workers, main_mark, &ran, NULL);
			pc_arm(0);
			cr_assert_eq(rc, -EAGAIN, "workers=%u: crew_run returned %d", workers, rc);
			cr_assert_eq(atomic_load(&ran), 0, "workers=%u: main ran although crew_run failed",
			             workers);
		}
	}
	atomic_int ran = 0;
	void *res = NULL;
	cr_assert_eq(crewt_run(3, main_mark, &ran, &res), 0);
	cr_assert_eq(atomic_load(&ran), 1);
	cr_assert_eq(res, (void *)&ran);
}

/* ---- a plain thread spawning while crew_run ends ---- */

#define SPAWN_MAX 20000

typedef struct race {
	atomic_int runs[SPAWN_MAX]; /* body runs per spawn attempt */
	int ok;                     /* spawns that returned a handle */
	int fail_errno;             /* errno of the first failed spawn */
	int bad_cancel;             /* a crew_cancel result outside 0/-EALREADY/-EPERM */
	unsigned yields;            /* main's yields before it returns */
	unsigned delay;             /* the plain thread's spins before spawning */
	pthread_t thread;
	atomic_int thread_started;
} race;

static void *count_body(void *p)
{
	atomic_fetch_add((atomic_int *)p, 1);
	return NULL;
}

/* A plain thread: spawn until a spawn fails (the runtime ended) or
 * SPAWN_MAX; cancel and detach each handle, also racing the end. */
static void *plain_spawner(void *p)
{
	race *r = p;
	atomic_store(&r->thread_started, 1);
	for (volatile unsigned i = 0; i < r->delay; i++)
		;
	for (int i = 0; i < SPAWN_MAX; i++) {
		crew_task *t = crew_spawn(count_body, &r->runs[i]);
		if (!t) {
			r->fail_errno = errno;
			break;
		}
		r->ok++;
		if (i % 3 == 0) {
			int rc = crew_cancel(t);
			if (rc != 0 && rc != -EALREADY && rc != -EPERM)
				r->bad_cancel = rc;
		}
		crew_detach(t);
	}
	return NULL;
}

static void *race_main(void *p)
{
	race *r = p;
	if (pthread_create(&r->thread, NULL, plain_spawner, r) != 0)
		return (void *)1;
	while (!atomic_load(&r->thread_started))
		crew_yield();
	for (unsigned i = 0; i < r->yields; i++)
		crew_yield();
	return NULL;
}

static uint64_t rng_next(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

Test(lifecycle, stress_plain_spawn_vs_end, .timeout = CREWT_TIMEOUT(120))
{
	uint64_t seed = 0x6c696665ull; /* fixed: "life" */
	int iters = CREWT_SIZE(300, 40);
	race *r = malloc(sizeof(*r));
	cr_assert(r);
	for (int it = 0; it < iters; it++) {
		memset(r, 0, sizeof(*r));
		r->fail_errno = -1;
		r->yields = (unsigned)(rng_next(&seed) % 64);
		r->delay = (unsigned)(rng_next(&seed) % 2000);
		unsigned workers = 1 + (unsigned)(rng_next(&seed) % 2);
		void *res = NULL;
		int rc = crewt_run(workers, race_main, r, &res);
		cr_assert_eq(rc, 0, "iteration %d: crew_run returned %d", it, rc);
		cr_assert_null(res, "iteration %d: main could not start its thread", it);
		pthread_join(r->thread, NULL);
		for (int i = 0; i < r->ok; i++)
			cr_assert_eq(atomic_load(&r->runs[i]), 1,
			             "iteration %d: spawn %d of %d succeeded, its body ran %d times", it,
			             i, r->ok, atomic_load(&r->runs[i]));
		if (r->ok < SPAWN_MAX) {
			cr_assert_eq(r->fail_errno, EPERM, "iteration %d: a failed spawn said errno %d",
			             it, r->fail_errno);
			cr_assert_eq(atomic_load(&r->runs[r->ok]), 0,
			             "iteration %d: the failed spawn's body ran", it);
		}
		cr_assert_eq(r->bad_cancel, 0, "iteration %d: crew_cancel returned %d", it,
		             r->bad_cancel);
	}
	free(r);
}

/* Plain threads that spawn without pause: once main returned, their spawns
 * fail with EPERM, so crew_run returns. Before, the runtime stopped only
 * when no task was left, which never happened while they went on.
 *
 * The cap that ends the old behaviour's run counts only spawns made after
 * main said it was returning (main_leaving): a cap on all spawns let a
 * flooder finish before main's worker got the CPU back to return (CI, clang
 * build, ctest -j: two of three flooders made their 100k spawns while main
 * was still waiting for the third to start), and then it never saw EPERM.
 * Between main_leaving and the shutdown flag lie only main's return and its
 * finisher, a few hundred instructions, against FLOOD_CAP spawns. */
#define FLOOD_THREADS 3
#define FLOOD_CAP 300000

typedef struct flood {
	pthread_t thread[FLOOD_THREADS];
	int fail_errno[FLOOD_THREADS];
	atomic_int started;
	atomic_int main_leaving;
	atomic_long bodies;
} flood;

static flood *flood_of; /* the flooders' index comes from their argument */

static void *flood_body(void *arg)
{
	(void)arg;
	/* some microseconds of work: more than the spawners' pace, so the
	 * workers never run out of queued tasks while the spawners go on */
	for (volatile int i = 0; i < 20000; i++)
		;
	atomic_fetch_add_explicit(&flood_of->bodies, 1, memory_order_relaxed);
	return NULL;
}

static void *flooder(void *arg)
{
	int k = (int)(intptr_t)arg;
	atomic_fetch_add(&flood_of->started, 1);
	flood_of->fail_errno[k] = 0;
	for (long after = 0; after < FLOOD_CAP;) {
		/* read before the spawn: a spawn counted here began after main
		 * said it was leaving */
		bool leaving = atomic_load(&flood_of->main_leaving);
		crew_task *t = crew_spawn(flood_body, NULL);
		if (!t) {
			flood_of->fail_errno[k] = errno;
			if (errno != ENOMEM) /* ENOMEM: tasks wait for stacks; try again */
				break;
		} else {
			crew_detach(t);
		}
		after += leaving;
	}
	return NULL;
}

static void *flood_main(void *arg)
{
	flood *f = arg;
	for (int k = 0; k < FLOOD_THREADS; k++)
		if (pthread_create(&f->thread[k], NULL, flooder, (void *)(intptr_t)k) != 0)
			return (void *)1;
	/* not crew_yield: the queued tasks would run first, and main return
	 * only after the flooders were done */
	while (atomic_load(&f->started) < FLOOD_THREADS)
		;
	atomic_store(&f->main_leaving, 1);
	return NULL; /* the flooders go on */
}

Test(lifecycle, plain_spawners_cannot_hold_the_end, .timeout = CREWT_TIMEOUT(120))
{
	flood *f = calloc(1, sizeof(*f));
	cr_assert(f);
	flood_of = f;
	void *res = (void *)2;
	cr_assert_eq(crewt_run(2, flood_main, f, &res), 0);
	cr_assert_null(res, "main could not start the flooding threads");
	for (int k = 0; k < FLOOD_THREADS; k++) {
		pthread_join(f->thread[k], NULL);
		cr_expect_eq(f->fail_errno[k], EPERM,
			     "flooder %d: last spawn failure errno %d (0: it never failed, and held "
			     "crew_run until it stopped)",
			     k, f->fail_errno[k]);
	}
	free(f);
}

Test(lifecycle, plain_thread_without_runtime)
{
	errno = 0;
	cr_assert_null(crew_spawn(count_body, NULL));
	cr_assert_eq(errno, EPERM);
	cr_assert_eq(crew_workers(), 0u);
	crew_detach(NULL);
}

/* ---- fork() in a task ---- */

typedef struct child_report {
	int sleep_rc, spawn_null, spawn_errno, yield_rc, cancel_rc, run_rc, worker_id;
	int self_null;
} child_report;

static void *never_body(void *p)
{
	(void)p;
	return NULL;
}

static void *add_one(void *p)
{
	return (void *)((intptr_t)p + 1);
}

/* The parent's side after the fork: its runtime still works. */
static int parent_goes_on(void)
{
	if (crew_sleep(CREWT_MS) != 0)
		return 1;
	crew_task *t = crew_spawn(add_one, (void *)41);
	void *res = NULL;
	if (!t || crew_join(t, &res) != 0 || res != (void *)42)
		return 2;
	return crew_yield() == 0 ? 0 : 3;
}

static void *fork_main(void *p)
{
	(void)p;
	crew_task *sibling = crew_spawn(never_body, NULL);
	int fd[2];
	if (!sibling || pipe(fd) != 0)
		return (void *)100;
	pid_t pid = fork();
	if (pid < 0)
		return (void *)101;
	if (pid == 0) {
		/* the child: every crew call must fail without touching the
		 * parent's runtime; then report and _exit */
		child_report c;
		memset(&c, 0, sizeof c);
		c.sleep_rc = crew_sleep(CREWT_MS);
		errno = 0;
		crew_task *t = crew_spawn(never_body, NULL);
		c.spawn_null = t == NULL;
		c.spawn_errno = errno;
		c.yield_rc = crew_yield();
		c.cancel_rc = crew_cancel(sibling);
		c.run_rc = crew_run(never_body, NULL, NULL);
		c.worker_id = crew_worker_id();
		c.self_null = crew_self() == NULL;
		ssize_t n = write(fd[1], &c, sizeof c);
		_exit(n == (ssize_t)sizeof c ? 0 : 1);
	}
	close(fd[1]);
	child_report c;
	ssize_t n = read(fd[0], &c, sizeof c); /* blocks this worker: fine here */
	close(fd[0]);
	int status = 0;
	if (waitpid(pid, &status, 0) != pid)
		return (void *)102;
	if (n != (ssize_t)sizeof c)
		return (void *)103;
	printf("child: sleep=%d spawn_null=%d spawn_errno=%d yield=%d cancel=%d run=%d "
	       "worker=%d self_null=%d exit=%d\n",
	       c.sleep_rc, c.spawn_null, c.spawn_errno, c.yield_rc, c.cancel_rc, c.run_rc,
	       c.worker_id, c.self_null, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	crew_detach(sibling);
	return (void *)(intptr_t)parent_goes_on();
}

static void fork_scenario(void *arg)
{
	(void)arg;
	void *res = (void *)-1;
	int rc = crewt_run(2, fork_main, NULL, &res);
	printf("parent: run=%d main=%d\n", rc, (int)(intptr_t)res);
}

Test(lifecycle, fork_in_task, .timeout = CREWT_TIMEOUT(60))
{
	crewt_proc p;
	cr_assert_eq(crewt_fork_capture(fork_scenario, NULL, 20 * CREWT_SEC, &p), 0);
	cr_assert(!p.timed_out, "hung; output so far:\n%s%s", p.out, p.err);
	cr_assert(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0, "%s\n%s%s",
	          crewt_status_str(p.status), p.out, p.err);
	char want[512];
	snprintf(want, sizeof want,
	         "child: sleep=%d spawn_null=1 spawn_errno=%d yield=%d cancel=%d run=%d "
	         "worker=-1 self_null=1 exit=0\n"
	         "parent: run=0 main=0\n",
	         -EPERM, EPERM, -EPERM, -EPERM, -EPERM);
	cr_assert_str_eq(p.out, want, "got:\n%swant:\n%sstderr:\n%s", p.out, want, p.err);
	crewt_proc_free(&p);
}

static void *fork_exec_main(void *p)
{
	(void)p;
	pid_t pid = fork();
	if (pid < 0)
		return (void *)101;
	if (pid == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	int status = 0;
	if (waitpid(pid, &status, 0) != pid)
		return (void *)102;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return (void *)103;
	return (void *)(intptr_t)parent_goes_on();
}

Test(lifecycle, fork_exec_in_task, .timeout = CREWT_TIMEOUT(60))
{
	for (int i = 0; i < 10; i++) {
		void *res = (void *)-1;
		cr_assert_eq(crewt_run(2, fork_exec_main, NULL, &res), 0);
		cr_assert_eq(res, NULL, "round %d: main returned %d", i, (int)(intptr_t)res);
	}
}
