/*
 * Timers: the per-worker timer set (against a model), waits that end early
 * leave nothing behind, and tasks due while their worker is behind still run
 * in deadline order.
 */
#include "helpers.h"
#include "internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

/* ---- the timer set against a model: add, remove, expire ---- */

#define MODEL_SLOTS 512

static uint64_t rng_next(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

/* A node is live when model_deadline[i] != 0. Expiry must hand out the due
 * nodes by (deadline, insertion order), which the model finds by scanning. */
Test(timer, stress_set_matches_model, .timeout = CREWT_TIMEOUT(60))
{
	static crew__timer nodes[MODEL_SLOTS];
	static uint64_t deadline[MODEL_SLOTS], order[MODEL_SLOTS];
	crew__timer_set set;
	crew__timer_init(&set);
	memset(deadline, 0, sizeof deadline);
	uint64_t seed = 42, now = 1000, next_order = 0;
	size_t live = 0;
	crew__timer_due out[64];
	for (int step = 0; step < CREWT_SIZE(400000, 100000); step++) {
		unsigned i = (unsigned)(rng_next(&seed) % MODEL_SLOTS);
		unsigned op = (unsigned)(rng_next(&seed) % 8);
		if (op < 4 && !deadline[i]) { /* add: mostly in order (the run), some not (the heap) */
			uint64_t d = now + 1 + (op == 0 ? rng_next(&seed) % 1000 : (uint64_t)step % 97);
			cr_assert_eq(crew__timer_add(&set, &nodes[i], d, (crew_task *)(uintptr_t)(i + 1), (uint32_t)i), 0);
			deadline[i] = d;
			order[i] = next_order++;
			live++;
		} else if (op < 6 && deadline[i]) { /* remove */
			cr_assert(crew__timer_remove(&nodes[i]), "live node %u not removed", i);
			cr_assert_not(crew__timer_remove(&nodes[i]), "node %u removed twice", i);
			deadline[i] = 0;
			live--;
		} else if (op == 7) { /* expire what is due */
			now += rng_next(&seed) % 200;
			size_t n = crew__timer_expire(&set, now, out, 64);
			for (size_t k = 0; k < n; k++) {
				unsigned j = (unsigned)((uintptr_t)out[k].task - 1);
				/* the model's earliest live due node */
				unsigned best = MODEL_SLOTS;
				for (unsigned m = 0; m < MODEL_SLOTS; m++)
					if (deadline[m] && deadline[m] <= now &&
					    (best == MODEL_SLOTS || deadline[m] < deadline[best] ||
					     (deadline[m] == deadline[best] && order[m] < order[best])))
						best = m;
				cr_assert_eq(j, best, "step %d: expired node %u, model says %u", step, j, best);
				cr_assert_eq(out[k].wait_seq, j);
				cr_assert_not(crew__timer_remove(&nodes[j]), "an expired node was still in the set");
				deadline[j] = 0;
				live--;
			}
			if (n < 64) /* nothing due may be left behind */
				for (unsigned m = 0; m < MODEL_SLOTS; m++)
					cr_assert(!deadline[m] || deadline[m] > now, "node %u due but not expired", m);
		}
		cr_assert_eq(crew__timer_count(&set), live);
		uint64_t min = UINT64_MAX;
		for (unsigned m = 0; m < MODEL_SLOTS; m++)
			if (deadline[m] && deadline[m] < min)
				min = deadline[m];
		cr_assert_eq(crew__timer_next(&set), min);
	}
	crew__timer_fini(&set);
}

/* ---- waits that end early leave no timer behind ---- */

/* Live timers on every worker (called from a task: the other workers may be
 * running, the count takes each set's lock). */
static size_t timers_live(void)
{
	size_t n = 0;
	for (unsigned i = 0; i < crew__rt->nworkers; i++)
		n += crew__timer_count(&crew__rt->workers[i].timers);
	return n;
}

static void *set_it(void *f)
{
	crew_future_set(f, f);
	return NULL;
}

#define EARLY CREWT_SIZE(100000, 20000)

typedef struct early {
	int bad;        /* an await or a sleep did not return what it should */
	size_t live;    /* timers left at the end */
} early;

/* Awaits with a far deadline whose future is set at once (by a child that
 * runs while we wait): each arms a timer and completes long before it. */
static void *await_far_deadlines(void *p)
{
	early *e = p;
	for (int i = 0; i < EARLY; i++) {
		crew_future *f = crew_future_new();
		crew_task *t = f ? crew_spawn(set_it, f) : NULL;
		void *v = NULL;
		if (!t || crew_future_await_until(f, crew_now() + 3600 * CREWT_SEC, &v) != 0 || v != f)
			e->bad++;
		if (t)
			crew_join(t, NULL);
		crew_future_release(f);
	}
	e->live = timers_live();
	return NULL;
}

static void *sleep_an_hour(void *p)
{
	(void)p;
	return (void *)(intptr_t)crew_sleep(3600 * CREWT_SEC);
}

/* Sleeps of an hour, cancelled: each leaves the wait early. */
static void *cancel_long_sleeps(void *p)
{
	early *e = p;
	for (int i = 0; i < EARLY; i++) {
		crew_task *t = crew_spawn(sleep_an_hour, NULL);
		if (!t) {
			e->bad++;
			continue;
		}
		crew_yield(); /* most of the time it is asleep by now */
		crew_cancel(t);
		void *rc = NULL;
		crew_join(t, &rc);
		if ((intptr_t)rc != -ECANCELED)
			e->bad++;
	}
	e->live = timers_live();
	return NULL;
}

static void early_run(unsigned workers, crew_fn fn)
{
	early e = {0};
	cr_assert_eq(crewt_run(workers, fn, &e, NULL), 0);
	cr_expect_eq(e.bad, 0, "%d waits returned the wrong result", e.bad);
	cr_expect_eq(e.live, 0, "%zu timers left behind by waits that ended early", e.live);
}

Test(timer, await_completed_early_leaves_no_timer_1_worker, .timeout = CREWT_TIMEOUT(60))
{
	early_run(1, await_far_deadlines);
}

Test(timer, await_completed_early_leaves_no_timer_2_workers, .timeout = CREWT_TIMEOUT(60))
{
	early_run(2, await_far_deadlines);
}

Test(timer, cancelled_sleep_leaves_no_timer_1_worker, .timeout = CREWT_TIMEOUT(60))
{
	early_run(1, cancel_long_sleeps);
}

Test(timer, cancelled_sleep_leaves_no_timer_2_workers, .timeout = CREWT_TIMEOUT(60))
{
	early_run(2, cancel_long_sleeps);
}

/* ---- deadline order when the worker is behind ---- */

/* 300 tasks with deadlines 10 us apart, each doing 20 us of work after it
 * wakes: the worker falls further behind with every task, and later timers
 * come due while earlier tasks still wait to run. They must run in deadline
 * order all the same. */
#define BEHIND 300

typedef struct behind {
	uint64_t base;
	crew_future *go;
	atomic_int next, late;
	int order[BEHIND];
} behind;

typedef struct behind_arg {
	behind *b;
	int i;
} behind_arg;

static void *sleep_then_work(void *p)
{
	behind_arg *a = p;
	behind *b = a->b;
	if (crew_future_await(b->go, NULL) != 0) /* all start together */
		return NULL;
	uint64_t deadline = b->base + (uint64_t)a->i * 10000;
	if (crew_now() >= deadline)
		atomic_fetch_add(&b->late, 1); /* the setup was too slow: not a valid try */
	if (crew_sleep_until(deadline) != 0)
		return NULL;
	b->order[atomic_fetch_add(&b->next, 1)] = a->i;
	uint64_t until = crew_now() + 20000;
	while (crew_now() < until)
		;
	return NULL;
}

static int behind_try(behind *b, uint64_t margin)
{
	behind_arg args[BEHIND];
	crew_task *t[BEHIND];
	atomic_store(&b->next, 0);
	atomic_store(&b->late, 0);
	b->go = crew_future_new();
	if (!b->go)
		return -1;
	/* Spawned latest deadline first: the order must come from the deadlines. */
	for (int k = 0; k < BEHIND; k++) {
		args[k] = (behind_arg){b, BEHIND - 1 - k};
		t[k] = crew_spawn(sleep_then_work, &args[k]);
	}
	crew_yield(); /* one worker: they all await `go` now */
	b->base = crew_now() + margin;
	crew_future_set(b->go, NULL);
	int bad = 0;
	for (int k = 0; k < BEHIND; k++)
		if (!t[k] || crew_join(t[k], NULL) != 0)
			bad = 1;
	crew_future_release(b->go);
	if (bad || atomic_load(&b->next) != BEHIND)
		return -1;
	return atomic_load(&b->late) ? 1 : 0;
}

static void *behind_main(void *p)
{
	for (uint64_t margin = 2 * CREWT_MS; margin <= 2048 * CREWT_MS; margin *= 4) {
		int rc = behind_try(p, margin);
		if (rc <= 0)
			return (void *)(intptr_t)rc;
	}
	return (void *)1;
}

Test(timer, behind_worker_keeps_deadline_order, .timeout = CREWT_TIMEOUT(60))
{
	behind *b = calloc(1, sizeof *b);
	cr_assert_not_null(b);
	void *res = (void *)-2;
	cr_assert_eq(crewt_run(1, behind_main, b, &res), 0);
	cr_assert_eq((intptr_t)res, 0, "setup failed (%ld)", (long)(intptr_t)res);
	int inversions = 0, first = -1;
	for (int k = 0; k + 1 < BEHIND; k++)
		if (b->order[k] > b->order[k + 1] && inversions++ == 0)
			first = k;
	cr_expect_eq(inversions, 0, "%d inversions; first at #%d: deadline #%d ran before #%d",
	             inversions, first, first < 0 ? 0 : b->order[first],
	             first < 0 ? 0 : b->order[first + 1]);
	free(b);
}

/*
 * A sleep armed while malloc fails (the address space used up): its timer
 * still expires. The worker's scratch for due timers used to be allocated
 * at its first expiry; with malloc failing then, the timer stayed in the set
 * for ever and the worker spun on its past deadline. In a child: RLIMIT_AS
 * set to what is mapped, then every block malloc still gives is held across
 * the sleep. (Not under the sanitizers: their shadow memory needs the
 * address space, and their allocator reports instead of failing.)
 */
static void *sleep_without_memory(void *arg)
{
	(void)arg;
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long vm_kib = 0;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "VmSize:", 7))
			vm_kib = atol(line + 7);
	if (f)
		fclose(f);
	struct rlimit r = { (rlim_t)vm_kib * 1024, RLIM_INFINITY };
	if (vm_kib <= 0 || setrlimit(RLIMIT_AS, &r) != 0)
		return (void *)1;
	void **held = NULL;
	for (size_t size = 1 << 20; size >= 16; size /= 2)
		for (void **p; (p = malloc(size));) {
			*p = held;
			held = p;
		}
	int rc = crew_sleep(CREWT_MS);
	while (held) {
		void **next = *held;
		free(held);
		held = next;
	}
	printf("sleep %d\n", rc);
	return NULL;
}

static void sleep_without_memory_child(void *arg)
{
	(void)arg;
	void *res = (void *)1;
	int rc = crewt_run(1, sleep_without_memory, NULL, &res);
	fflush(stdout);
	_exit(rc == 0 && res == NULL ? 0 : 1);
}

Test(timer, sleep_expires_while_malloc_fails, .timeout = CREWT_TIMEOUT(60))
{
	if (CREWT_SANITIZER)
		return;
	crewt_proc p;
	cr_assert_eq(crewt_fork_capture(sleep_without_memory_child, NULL, 20 * CREWT_SEC, &p), 0);
	cr_expect(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0 && strstr(p.out, "sleep 0"),
		  "child: %s; out: %s; err: %s", crewt_status_str(p.status), p.out, p.err);
	crewt_proc_free(&p);
}
