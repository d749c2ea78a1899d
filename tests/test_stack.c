/*
 * Fiber stacks: running out of memory for them, guards without
 * MADV_GUARD_INSTALL (Linux < 6.13, simulated with a seccomp filter), canaries
 * on stacks without guard, frames larger than the guard, and the SIGSEGV
 * handler living beside the application's.
 *
 * Every scenario runs in a forked child (crewt_fork_capture): they change
 * process-wide things (rlimits, seccomp, signal dispositions) or abort.
 * This file is built with -fstack-clash-protection (tests/CMakeLists.txt).
 */
#define _GNU_SOURCE
#include "helpers.h"
#include "sim_kernel.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KIB 1024u
#define GUARD (64 * KIB) /* CREW_GUARD_PAGES * 4 KiB */

/* Test hooks of stack.c: at most this many stacks get an mprotect guard,
 * at most this many slabs of 64 stacks are mapped per run. */
extern size_t crew__stack_guard_limit;
extern size_t crew__stack_slab_limit;

/* ---- a kernel without MADV_GUARD_INSTALL, simulated (sim_kernel.c) ---- */


static void child_block_guards(void)
{
	int rc = crewt_block_guard_madvise();
	if (rc != 0) {
		printf("seccomp failed: %d\n", rc);
		_exit(4);
	}
}

/* ---- live sleepers: all started, all asleep at once, then joined ---- */

typedef struct live {
	unsigned n;
	atomic_uint started;
	crew_future *all_started, *gate;
} live;

static void *live_sleeper(void *arg)
{
	live *l = arg;
	if (atomic_fetch_add(&l->started, 1) + 1 == l->n)
		crew_future_set(l->all_started, NULL);
	return (void *)(uintptr_t)(crew_future_await(l->gate, NULL) == 0);
}

static void *live_main(void *arg)
{
	live *l = arg;
	crew_task **t = malloc(l->n * sizeof *t);
	l->all_started = crew_future_new();
	l->gate = crew_future_new();
	if (!t || !l->all_started || !l->gate)
		return NULL;
	unsigned spawned = 0;
	while (spawned < l->n && (t[spawned] = crew_spawn(live_sleeper, l)))
		spawned++;
	if (spawned == l->n)
		crew_future_await(l->all_started, NULL); /* every one holds its stack now */
	unsigned alive = atomic_load(&l->started);
	crew_future_set(l->gate, NULL);
	uintptr_t ok = 0;
	for (unsigned i = 0; i < spawned; i++) {
		void *r = NULL;
		crew_join(t[i], &r);
		ok += (uintptr_t)r;
	}
	printf("spawned %u alive %u ok %lu\n", spawned, alive, (unsigned long)ok);
	free(t);
	crew_future_release(l->all_started);
	crew_future_release(l->gate);
	return NULL;
}

#if defined(CREW_TSAN)
#define LIVE_N 4000u /* TSan counts each fiber as a thread: at most 8128 */
#else
#define LIVE_N CREWT_SIZE(100000u, 40000u)
#endif

static void live_child(void *arg)
{
	(void)arg;
	child_block_guards();
	live l = {.n = LIVE_N};
	int rc = crewt_run(2, live_main, &l, NULL);
	printf("run %d\n", rc);
}

/* More live fibers than mprotect guards can cover (vm.max_map_count 65530:
 * about 32k): the budget guards some, canaries cover the rest. */
Test(stack, live_sleepers_without_guard_madvise, .timeout = CREWT_TIMEOUT(120))
{
	crewt_proc p;
	cr_assert_eq(crewt_fork_capture(live_child, NULL, CREWT_TIMEOUT(100) * CREWT_SEC, &p), 0);
	char want[80];
	snprintf(want, sizeof want, "spawned %u alive %u ok %u\nrun 0\n", LIVE_N, LIVE_N, LIVE_N);
	cr_expect(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0, "child %s; stderr:\n%s",
	          crewt_status_str(p.status), p.err);
	cr_expect_str_eq(p.out, want, "stdout:\n%s\nstderr:\n%s", p.out, p.err);
	crewt_proc_free(&p);
}

/* ---- out of memory for stacks: tasks wait for one ---- */

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;
	for (const char *s = hay; (s = strstr(s, needle)); s += strlen(needle))
		n++;
	return n;
}

/* One slab of stacks fits, a second does not: tasks beyond its stacks wait for one. */
typedef struct starve_ctx {
	crew_future *gate;
	atomic_uint ran;
} starve_ctx;

static void *gated(void *arg)
{
	starve_ctx *s = arg;
	crew_future_await(s->gate, NULL);
	atomic_fetch_add(&s->ran, 1);
	return (void *)1;
}

static void *nothing(void *arg)
{
	return arg;
}

#define STARVE_MAX 10000u

static void *starve_main(void *arg)
{
	starve_ctx *s = arg;
	s->gate = crew_future_new();
	crew_task **t = calloc(STARVE_MAX, sizeof *t);
	if (!s->gate || !t)
		return NULL;
	/* Spawn and let each task start (it takes a stack and waits at the
	 * gate) until the stacks run out and crew_spawn says so. */
	unsigned n = 0;
	int spawn_errno = 0;
	while (n < STARVE_MAX) {
		errno = 0;
		if (!(t[n] = crew_spawn(gated, s))) {
			spawn_errno = errno;
			break;
		}
		n++;
		crew_yield();
	}
	unsigned before_gate = atomic_load(&s->ran);
	crew_future_set(s->gate, NULL);
	uintptr_t ok = 0;
	for (unsigned i = 0; i < n; i++) {
		void *r = NULL;
		crew_join(t[i], &r);
		ok += (uintptr_t)r;
	}
	/* every starved task ran; the pressure is over: spawn works again */
	crew_task *after = crew_spawn(nothing, (void *)7);
	void *r = NULL;
	int join = after ? crew_join(after, &r) : -1;
	printf("spawn errno %s, ran before gate %u, all ran %d, spawn after %s\n",
	       spawn_errno == ENOMEM ? "ENOMEM" : strerror(spawn_errno), before_gate,
	       ok == n && atomic_load(&s->ran) == n && n < STARVE_MAX,
	       join == 0 && r == (void *)7 ? "ok" : "failed");
	free(t);
	crew_future_release(s->gate);
	return NULL;
}

static void *starve_run(size_t stack_size)
{
	starve_ctx s = {0};
	int rc = crewt_run_stack(2, stack_size, starve_main, &s, NULL);
	printf("run %d\n", rc);
	return NULL;
}

static void expect_starved_tasks_ran(void (*child)(void *))
{
	crewt_proc p;
	cr_assert_eq(crewt_fork_capture(child, NULL, CREWT_TIMEOUT(50) * CREWT_SEC, &p), 0);
	cr_expect(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0, "child %s; stderr:\n%s",
	          crewt_status_str(p.status), p.err);
	cr_expect_str_eq(p.out,
	                 "spawn errno ENOMEM, ran before gate 0, all ran 1, spawn after ok\nrun 0\n",
	                 "stdout:\n%s\nstderr:\n%s", p.out, p.err);
	cr_expect_eq(count(p.err, "out of memory for fiber stacks"), 1u,
	             "expected one message on stderr:\n%s", p.err);
	crewt_proc_free(&p);
}

static void slab_limit_child(void *arg)
{
	(void)arg;
	crew__stack_slab_limit = 1; /* the slab crew_run maps first, no other */
	starve_run(0);
}

/* The same as tasks_wait_for_a_stack below with a real address-space limit,
 * but with the test hook: runs under the sanitizers too. */
Test(stack, tasks_wait_for_a_stack_slab_limit, .timeout = CREWT_TIMEOUT(60))
{
	expect_starved_tasks_ran(slab_limit_child);
}

/* The overflow tests need crew's SIGSEGV handler, which sanitizer builds
 * leave out (ASan) or which runs under the sanitizer's own (TSan); an
 * address-space limit is incompatible with their shadow memory. */
#if !CREWT_SANITIZER

static bool killed_by(const crewt_proc *p, int sig)
{
	return WIFSIGNALED(p->status) && WTERMSIG(p->status) == sig;
}

/* ---- overflows ---- */

/* Writes every byte of the stack from here down to `end`, then returns. */
__attribute__((noinline)) static void dig(uintptr_t end)
{
	char pad[256];
	memset(pad, 0x5a, sizeof pad);
	__asm__ volatile("" ::"r"(pad) : "memory");
	if ((uintptr_t)pad > end)
		dig(end);
	__asm__ volatile("" ::"r"(pad) : "memory");
}

/* An overflow that runs through the 64 KiB gap under its stack and stops a
 * few hundred bytes below it, in the (mapped) page underneath. The usable
 * stack is stack_size rounded up to include its last page (which holds the
 * header), so this frame sits about stack + 4 KiB above the gap. */
static void *dig_task(void *arg)
{
	size_t stack = (size_t)(uintptr_t)arg;
	dig((uintptr_t)__builtin_frame_address(0) - (stack + 4 * KIB) - GUARD - 512);
	return NULL;
}

/* 330 KiB of locals on a 256 KiB stack: without stack-clash protection the
 * frame starts below the 64 KiB guard, in the neighbouring stack. */
__attribute__((noinline)) static int big_frame(void)
{
	char big[330 * KIB];
	big[0] = 1;
	__asm__ volatile("" ::"r"(big) : "memory");
	return big[0];
}

static void *big_frame_task(void *arg)
{
	(void)arg;
	return (void *)(uintptr_t)big_frame();
}

int crewt_frame_over_neighbour(void); /* stack_noclash.c */

static void *frame_over_neighbour_task(void *arg)
{
	(void)arg;
	return (void *)(uintptr_t)crewt_frame_over_neighbour();
}

typedef struct overflow_case {
	crew_fn fn;
	size_t stack;
	unsigned workers;
	bool seccomp;      /* no MADV_GUARD_INSTALL: mprotect guards */
	size_t guard_limit; /* crew__stack_guard_limit */
} overflow_case;

/* main starts the task on a stack of its own (the yield switches to it; a
 * join would run it inline on main's stack) and joins it. */
static void *overflow_main(void *arg)
{
	const overflow_case *c = arg;
	crew_task *t = crew_spawn_named(c->fn, (void *)(uintptr_t)c->stack, "overflowing_task");
	crew_yield();
	crew_join(t, NULL);
	return NULL;
}

static void overflow_child(void *arg)
{
	overflow_case *c = arg;
	if (c->seccomp)
		child_block_guards();
	crew__stack_guard_limit = c->guard_limit;
	crewt_run_stack(c->workers, c->stack, overflow_main, c, NULL);
	_exit(3); /* must not get here */
}

/* Returns the child's stderr (static copy). */
static const char *expect_overflow_message(overflow_case *c, const char *what)
{
	static char err[4096];
	crewt_proc p;
	cr_assert_eq(crewt_fork_capture(overflow_child, c, 20 * CREWT_SEC, &p), 0);
	cr_expect(killed_by(&p, SIGABRT), "%s: child %s, expected SIGABRT; stdout:\n%s\nstderr:\n%s",
	          what, crewt_status_str(p.status), p.out, p.err);
	cr_expect_not_null(strstr(p.err, "stack overflow in task 'overflowing_task'"),
	                   "%s: stderr does not name the task:\n%s", what, p.err);
	char size[64];
	snprintf(size, sizeof size, "stack size %zu bytes", c->stack);
	cr_expect_not_null(strstr(p.err, size), "%s: stderr does not say '%s':\n%s", what, size,
	                   p.err);
	snprintf(err, sizeof err, "%s", p.err);
	crewt_proc_free(&p);
	return err;
}

Test(stack, canary_catches_overflow_on_unguarded_stack, .timeout = CREWT_TIMEOUT(30))
{
	/* one worker: the task's neighbour is not resumed before the check */
	overflow_case c = {dig_task, 64 * KIB, 1, true, 0};
	const char *how = expect_overflow_message(&c, "unguarded stack");
	cr_expect_not_null(strstr(how, "canary"), "not found by the canary:\n%s", how);
}

Test(stack, mprotect_guard_catches_overflow, .timeout = CREWT_TIMEOUT(30))
{
	overflow_case c = {crewt_deep_recursion_task, 64 * KIB, 2, true, SIZE_MAX};
	expect_overflow_message(&c, "mprotect guard");
}

Test(stack, frame_larger_than_guard_hits_it, .timeout = CREWT_TIMEOUT(30))
{
	overflow_case c = {big_frame_task, 256 * KIB, 2, false, SIZE_MAX};
	expect_overflow_message(&c, "330 KiB frame, native guards");
}

/* Code built without stack-clash protection: a fault in another stack's
 * guard is still recognised as this task's overflow. The task gets the
 * fourth stack of the first slab (stacks 0 and 1 are the workers' reserves,
 * 2 is main's), so there is a stack below it. */
Test(stack, fault_in_neighbour_guard_is_an_overflow, .timeout = CREWT_TIMEOUT(30))
{
	overflow_case c = {frame_over_neighbour_task, 16 * KIB, 2, false, SIZE_MAX};
	expect_overflow_message(&c, "frame over the neighbour's guard");
}

Test(stack, frame_larger_than_guard_hits_mprotect_guard, .timeout = CREWT_TIMEOUT(30))
{
	overflow_case c = {big_frame_task, 256 * KIB, 2, true, SIZE_MAX};
	expect_overflow_message(&c, "330 KiB frame, mprotect guards");
}

/* ---- out of memory for stacks ---- */

/* Limit the address space to what is mapped now plus `extra` bytes. */
static void limit_address_space(size_t extra)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long kib = 0;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmSize: %lu kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	struct rlimit rl;
	rl.rlim_cur = rl.rlim_max = (rlim_t)kib * 1024 + extra;
	if (!kib || setrlimit(RLIMIT_AS, &rl) != 0) {
		printf("cannot limit the address space\n");
		_exit(4);
	}
}

#define BIG_STACK ((size_t)64 << 20) /* a slab of 64 stacks: about 4 GiB */
#define SLAB_BYTES (64 * (BIG_STACK + GUARD + 4 * KIB) + 4 * KIB)

static atomic_int main_ran;

static void *note_main(void *arg)
{
	(void)arg;
	atomic_store(&main_ran, 1);
	return NULL;
}

static void no_slab_child(void *arg)
{
	(void)arg;
	limit_address_space((size_t)1 << 30); /* less than one slab */
	int rc = crewt_run_stack(2, BIG_STACK, note_main, NULL, NULL);
	printf("run %d main %d\n", rc, atomic_load(&main_ran));
}

Test(stack, run_returns_enomem_without_a_stack, .timeout = CREWT_TIMEOUT(30))
{
	crewt_proc p;
	cr_assert_eq(crewt_fork_capture(no_slab_child, NULL, 20 * CREWT_SEC, &p), 0);
	cr_expect(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0, "child %s; stderr:\n%s",
	          crewt_status_str(p.status), p.err);
	cr_expect_str_eq(p.out, "run -12 main 0\n", "expected -ENOMEM, main not run; stdout:\n%s",
	                 p.out);
	crewt_proc_free(&p);
}

static void starve_child(void *arg)
{
	(void)arg;
	limit_address_space(SLAB_BYTES + ((size_t)1 << 30));
	starve_run(BIG_STACK);
}

Test(stack, tasks_wait_for_a_stack, .timeout = CREWT_TIMEOUT(60))
{
	expect_starved_tasks_ran(starve_child);
}

/* A fork/sync chain deeper than the stacks that can be mapped: each sync on
 * a low stack runs its frame on a fiber of its own, and once no stack can be
 * had it must not leave that frame waiting for one (every stack is held by
 * a sync waiting for such a frame: it hung for good). It runs on what is
 * left of the stack instead, which here overflows: reported, not a hang. */
static void *oom_chain(void *arg)
{
	long n = (long)arg;
	if (n == 0)
		return NULL;
	crew_frame f;
	crew_fork(&f, oom_chain, (void *)(n - 1));
	long r = (long)crew_sync(&f);
	__asm__ volatile("" ::: "memory"); /* not a tail call */
	return (void *)(r + 1);
}

#define OOM_CHAIN 20000000L

static void oom_chain_child(void *arg)
{
	(void)arg;
	limit_address_space((size_t)256 << 20);
	void *r = NULL;
	int rc = crewt_run_stack(1, 16 * KIB, oom_chain, (void *)OOM_CHAIN, &r);
	printf("run %d depth %ld\n", rc, (long)r);
}

Test(stack, deep_fork_chain_without_stacks_does_not_hang, .timeout = CREWT_TIMEOUT(60))
{
	crewt_proc p;
	cr_assert_eq(crewt_fork_capture(oom_chain_child, NULL, 40 * CREWT_SEC, &p), 0);
	cr_expect(!p.timed_out, "the chain hung; stderr:\n%s", p.err);
	bool done = WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0 &&
		    strstr(p.out, "run 0 depth 20000000\n");
	bool reported = WIFSIGNALED(p.status) && WTERMSIG(p.status) == SIGABRT &&
			strstr(p.err, "stack overflow");
	cr_expect(done || reported, "child %s; stdout:\n%s\nstderr:\n%s", crewt_status_str(p.status),
		  p.out, p.err);
	crewt_proc_free(&p);
}

/* Thieves under stack pressure: a parallel_for whose body sleeps, once no
 * second slab of (64 MiB) stacks can be mapped. A stolen half needs a task
 * with a stack; if a thief took it anyway, that task waited for a stack
 * while its forker held one waiting for it in crew_sync, and once every
 * stack was held so, the run hung for good (on 4 workers, 3 runs of 3). A
 * thief now steals only with a stack in hand, and not while tasks wait for
 * one: the halves nobody took run at their syncs. */
static atomic_long pressure_pieces;

static void pressure_body(size_t lo, size_t hi, void *ctx)
{
	(void)ctx;
	for (size_t i = lo; i < hi; i++) {
		atomic_fetch_add(&pressure_pieces, 1);
		crew_sleep(CREWT_MS / 5);
	}
}

static void *pressure_main(void *arg)
{
	(void)arg;
	limit_address_space((size_t)512 << 20); /* the first slab is mapped by now */
	return (void *)(intptr_t)crew_parallel_for(0, 4096, 1, pressure_body, NULL);
}

static void pressure_child(void *arg)
{
	(void)arg;
	void *r = (void *)1;
	int rc = crewt_run_stack(4, BIG_STACK, pressure_main, NULL, &r);
	printf("run %d for %ld pieces %ld\n", rc, (long)(intptr_t)r, atomic_load(&pressure_pieces));
}

/* child, in a process of its own, must end (not hang) and print `want`. */
static void expect_child_prints(void (*child)(void *), const char *want)
{
	crewt_proc p;
	cr_assert_eq(crewt_fork_capture(child, NULL, 40 * CREWT_SEC, &p), 0);
	cr_expect(!p.timed_out, "hung; stdout:\n%s\nstderr:\n%s", p.out, p.err);
	cr_expect(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0, "child %s; stderr:\n%s",
	          crewt_status_str(p.status), p.err);
	cr_expect_str_eq(p.out, want, "stdout:\n%s", p.out);
	crewt_proc_free(&p);
}

Test(stack, thieves_under_stack_pressure_do_not_hang_fork_join, .timeout = CREWT_TIMEOUT(60))
{
	expect_child_prints(pressure_child, "run 0 for 0 pieces 4096\n");
}

/* spawn/join recursion with the stacks of one slab: a task that joins a
 * child waiting for a stack holds its own, and once every stack was held so
 * nothing was ever released (the run hung about one time in four). The
 * joiner now runs such a child inline. A failed spawn (ENOMEM: tasks wait
 * for stacks) computes the child here. */
static uint64_t fib_plain(unsigned n) { return n < 2 ? n : fib_plain(n - 1) + fib_plain(n - 2); }

static void *fib_spawned(void *arg)
{
	unsigned n = (unsigned)(uintptr_t)arg;
	if (n < 8)
		return (void *)(uintptr_t)fib_plain(n);
	crew_task *a = crew_spawn(fib_spawned, (void *)(uintptr_t)(n - 1));
	crew_task *b = crew_spawn(fib_spawned, (void *)(uintptr_t)(n - 2));
	uint64_t sum = 0;
	void *r = NULL;
	if (a && crew_join(a, &r) == 0)
		sum += (uintptr_t)r;
	else if (!a)
		sum += fib_plain(n - 1);
	if (b && crew_join(b, &r) == 0)
		sum += (uintptr_t)r;
	else if (!b)
		sum += fib_plain(n - 2);
	return (void *)(uintptr_t)sum;
}

#define STARVED_JOIN_RUNS 100

static void starved_join_child(void *arg)
{
	(void)arg;
	crew__stack_slab_limit = 1;
	int right = 0;
	for (int i = 0; i < STARVED_JOIN_RUNS; i++) {
		void *r = NULL;
		if (crewt_run(2, fib_spawned, (void *)(uintptr_t)22, &r) == 0 &&
		    (uintptr_t)r == fib_plain(22))
			right++;
	}
	printf("right %d of %d\n", right, STARVED_JOIN_RUNS);
}

Test(stack, joins_of_tasks_waiting_for_a_stack_do_not_hang, .timeout = CREWT_TIMEOUT(60))
{
	expect_child_prints(starved_join_child, "right 100 of 100\n");
}

/* ---- the SIGSEGV handler beside the application's ---- */

static char *trap_page;
static size_t trap_len;
static volatile sig_atomic_t app_faults;

/* The application's handler: repairs faults on its trap page, and treats
 * anything else as unexpected. */
static void app_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	char *a = si->si_addr;
	if (a >= trap_page && a < trap_page + trap_len) {
		mprotect(trap_page, trap_len, PROT_READ | PROT_WRITE);
		app_faults++;
		return;
	}
	static const char msg[] = "app handler: unexpected fault\n";
	ssize_t rc = write(2, msg, sizeof msg - 1);
	(void)rc;
	_exit(7);
}

static void *fault_then_overflow_main(void *arg)
{
	overflow_case *c = arg;
	*(volatile char *)trap_page = 1; /* the application's fault: its handler repairs it */
	printf("app faults %d\n", (int)app_faults);
	return overflow_main(c);
}

static void chain_child(void *arg)
{
	(void)arg;
	trap_len = (size_t)sysconf(_SC_PAGESIZE);
	trap_page = mmap(NULL, trap_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = app_segv;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (trap_page == MAP_FAILED || sigaction(SIGSEGV, &sa, NULL) != 0)
		_exit(4);
	overflow_case c = {crewt_deep_recursion_task, 64 * KIB, 2, false, SIZE_MAX};
	crewt_run_stack(2, c.stack, fault_then_overflow_main, &c, NULL);
	_exit(3);
}

/* The application's handler sees its own fault, and crew's handler is still
 * there for the overflow that follows. */
Test(stack, segv_chains_to_application_handler, .timeout = CREWT_TIMEOUT(30))
{
	crewt_proc p;
	cr_assert_eq(crewt_fork_capture(chain_child, NULL, 20 * CREWT_SEC, &p), 0);
	cr_expect_str_eq(p.out, "app faults 1\n", "stdout:\n%s\nstderr:\n%s", p.out, p.err);
	cr_expect(killed_by(&p, SIGABRT), "child %s, expected SIGABRT; stderr:\n%s",
	          crewt_status_str(p.status), p.err);
	cr_expect_not_null(strstr(p.err, "stack overflow in task 'overflowing_task'"),
	                   "stderr:\n%s", p.err);
	crewt_proc_free(&p);
}

static void app_segv_2(int sig)
{
	(void)sig;
	_exit(8);
}

static void *install_handler_main(void *arg)
{
	(void)arg;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = app_segv_2;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	return NULL;
}

static bool segv_handler_is(void (*h)(int))
{
	struct sigaction cur;
	return sigaction(SIGSEGV, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) &&
	       cur.sa_handler == h;
}

static void keep_child(void *arg)
{
	(void)arg;
	int rc1 = crewt_run(2, install_handler_main, NULL, NULL);
	bool kept = segv_handler_is(app_segv_2);
	int rc2 = crewt_run(2, nothing, NULL, NULL); /* saves and restores it */
	bool restored = segv_handler_is(app_segv_2);
	printf("run %d %d kept %d restored %d\n", rc1, rc2, kept, restored);
}

Test(stack, handler_installed_during_run_is_kept, .timeout = CREWT_TIMEOUT(30))
{
	crewt_proc p;
	cr_assert_eq(crewt_fork_capture(keep_child, NULL, 20 * CREWT_SEC, &p), 0);
	cr_expect_str_eq(p.out, "run 0 0 kept 1 restored 1\n", "stdout:\n%s\nstderr:\n%s", p.out,
	                 p.err);
	crewt_proc_free(&p);
}

static void *null_deref_main(void *arg)
{
	return (void *)(uintptr_t)*(volatile int *)arg;
}

static void default_child(void *arg)
{
	(void)arg;
	crewt_run(2, null_deref_main, (void *)16, NULL);
	_exit(3);
}

/* No application handler: a fault that is not an overflow kills the process
 * with SIGSEGV, as it would without crew. */
Test(stack, segv_default_action, .timeout = CREWT_TIMEOUT(30))
{
	crewt_proc p;
	cr_assert_eq(crewt_fork_capture(default_child, NULL, 20 * CREWT_SEC, &p), 0);
	cr_expect(killed_by(&p, SIGSEGV), "child %s, expected SIGSEGV; stderr:\n%s",
	          crewt_status_str(p.status), p.err);
	crewt_proc_free(&p);
}

static void *raise_segv_main(void *arg)
{
	(void)arg;
	raise(SIGSEGV); /* sent, not a fault: SIG_IGN ignores it */
	printf("survived\n");
	return NULL;
}

static void ignore_child(void *arg)
{
	(void)arg;
	signal(SIGSEGV, SIG_IGN);
	crewt_run(2, raise_segv_main, NULL, NULL);
	crewt_run(2, null_deref_main, (void *)16, NULL); /* a real fault cannot be ignored */
	_exit(3);
}

/* SIG_IGN before crew_run: a sent SIGSEGV is ignored, a fault still kills. */
Test(stack, segv_ignored_only_when_sent, .timeout = CREWT_TIMEOUT(30))
{
	crewt_proc p;
	cr_assert_eq(crewt_fork_capture(ignore_child, NULL, 20 * CREWT_SEC, &p), 0);
	cr_expect_str_eq(p.out, "survived\n", "stdout:\n%s\nstderr:\n%s", p.out, p.err);
	cr_expect(killed_by(&p, SIGSEGV), "child %s, expected SIGSEGV; stderr:\n%s",
	          crewt_status_str(p.status), p.err);
	crewt_proc_free(&p);
}

#endif /* !CREWT_SANITIZER */
