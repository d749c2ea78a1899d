/*
 * Deep spawn/join chains: crew_join runs a not-yet-started child inline on the
 * joiner's stack, but only while a quarter of that stack is free (task.c,
 * task_stack_room); past that the child runs on a fiber of its own. A chain in
 * which every task spawns a child and joins it, without ever suspending, must
 * therefore complete at any depth with the default stack.
 *
 * Each body also checks the bound from the inside: it measures how much of
 * the stack it runs on is free (its frame address minus the running fiber's
 * lowest address, through runtime/internal.h) and records the smallest value.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE */
#include "helpers.h"

#include <stdatomic.h>

#define DEPTH CREWT_SIZE(100000, 20000)
#define DEFAULT_STACK ((size_t)256 * 1024) /* crew.h: stack_size 0 */
/* The frames between the join's check and the child body's first line
 * (task_run_inline, crew__task_run_body, the call): far below this. */
#define FRAME_SLACK 2048

typedef struct chain {
	size_t min_free;  /* atomic: least free stack any body started with */
	size_t stack;     /* atomic: the usable stack size the fibers report */
	atomic_int failed;
} chain;

typedef struct chain_arg {
	chain *c;
	uintptr_t left;
} chain_arg;

static void note_free_stack(chain *c)
{
	crew_task *self = crew_self();
	uintptr_t here = (uintptr_t)__builtin_frame_address(0);
	size_t free_now = here - (uintptr_t)self->fiber->lo;
	__atomic_store_n(&c->stack, self->fiber->size, __ATOMIC_RELAXED);
	size_t seen = __atomic_load_n(&c->min_free, __ATOMIC_RELAXED);
	/* relaxed: a minimum only, read after crew_run returned (joins order it) */
	while (free_now < seen &&
	       !__atomic_compare_exchange_n(&c->min_free, &seen, free_now, true, __ATOMIC_RELAXED,
	                                    __ATOMIC_RELAXED))
		;
}

/* Spawns the next link and joins it at once: no suspension anywhere, unless
 * the join decides to leave the child to the worker. Returns the depth below. */
static void *chain_link(void *p)
{
	chain_arg *l = p;
	note_free_stack(l->c);
	if (l->left == 0)
		return (void *)0;
	chain_arg next = {l->c, l->left - 1};
	crew_task *t = crew_spawn(chain_link, &next);
	if (!t) {
		atomic_fetch_add(&l->c->failed, 1);
		return (void *)0;
	}
	void *below = NULL;
	if (crew_join(t, &below) != 0)
		atomic_fetch_add(&l->c->failed, 1);
	return (void *)((uintptr_t)below + 1);
}

static void run_chain(unsigned workers, size_t stack, uintptr_t depth)
{
	chain c = {.min_free = SIZE_MAX};
	chain_arg first = {&c, depth};
	void *res = NULL;
	/* stack 0: the default (crewt_run_stack passes it on as it is) */
	cr_assert_eq(crewt_run_stack(workers, stack, chain_link, &first, &res), 0);
	/* usable size: the configured one, plus the rest of the header's page */
	cr_expect_geq(c.stack, stack ? stack : DEFAULT_STACK, "fiber size %zu", c.stack);
	stack = c.stack;
	cr_expect_eq(atomic_load(&c.failed), 0, "workers=%u: %d spawns or joins failed", workers,
	             atomic_load(&c.failed));
	cr_expect_eq((uintptr_t)res, depth, "workers=%u stack=%zu: chain of %lu returned depth %lu",
	             workers, stack, (unsigned long)depth, (unsigned long)(uintptr_t)res);
	/* The bound itself: every body, inline or not, started with at least a
	 * quarter of its stack free (less the frames of the inline call). */
	cr_expect_geq(c.min_free + FRAME_SLACK, stack / 4,
	              "workers=%u stack=%zu: a body started with only %zu bytes of stack free",
	              workers, stack, c.min_free);
	cr_log_info("workers=%u stack=%zu depth=%lu: least free stack %zu bytes", workers, stack,
	            (unsigned long)depth, c.min_free);
}

Test(join_depth, chain_100k_default_stack_1_worker, .timeout = CREWT_TIMEOUT(60))
{
	run_chain(1, 0, DEPTH);
}

Test(join_depth, chain_100k_default_stack_2_workers, .timeout = CREWT_TIMEOUT(60))
{
	run_chain(2, 0, DEPTH);
}

/* The smallest stack crew accepts: the bound scales with it. */
Test(join_depth, chain_small_stack, .timeout = CREWT_TIMEOUT(60))
{
	run_chain(1, 16 * 1024, DEPTH / 10);
	run_chain(2, 16 * 1024, DEPTH / 10);
}
