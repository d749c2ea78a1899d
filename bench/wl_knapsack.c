/*
 * wl_knapsack.c - 0/1 knapsack by branch and bound (n = 30 items of the
 * deterministic subset-sum generator in bench/batch/kern.h). Each node forks
 * "without the item" and calls "with the item" (as Cilk/BOTS/Lace do); the
 * incumbent best is one shared relaxed atomic (a stale read only prunes less).
 * The answer is checked against a dynamic programme over the capacity.
 * Lace's knapsack program (the lace peer) ships with its pruning commented
 * out; tools/build-peers.sh puts it back, so that it computes the same bound
 * per node. On this input the bound prunes no node: every runtime searches
 * the same tree of 205M nodes.
 */
#include "batch.h"
#include "batch/kern.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

struct ks_in {
	struct kern_item items[64];
	int cap;
};

struct karg {
	const struct kern_item *e;
	int c, n, v;
};

static _Atomic int best_so_far;

static void raise_best(int v)
{
	int b = atomic_load_explicit(&best_so_far, memory_order_relaxed);
	while (v > b && !atomic_compare_exchange_weak_explicit(&best_so_far, &b, v, memory_order_relaxed,
							       memory_order_relaxed))
		;
}

static int ks_prepare(struct batch_run *r)
{
	if (r->n < 1 || r->n > 64)
		return -EINVAL;
	struct ks_in *in = malloc(sizeof *in);
	if (!in)
		return -ENOMEM;
	in->cap = kern_knapsack_input(in->items, (int)r->n);
	r->in = in;
	return 0;
}

static void ks_cleanup(struct batch_run *r) { free(r->in); }

static void ks_serial(struct batch_run *r)
{
	struct ks_in *in = r->in;
	kern_knapsack_best_serial = 0;
	r->result = (uint64_t)kern_knapsack(in->items, in->cap, (int)r->n, 0);
}

static const char *ks_check(struct batch_run *r)
{
	struct ks_in *in = r->in;
	int want = kern_knapsack_dp(in->items, (int)r->n, in->cap);
	return want >= 0 && r->result == (uint64_t)want ? NULL : "wrong best value";
}

/* Results are values >= -1 shifted by one (0: infeasible) or BATCH_ERROR. */

/* A node's leaf tests: true with *leaf set when it is infeasible or
 * complete. */
static inline __attribute__((always_inline)) bool ks_leaf(int c, int n, int v, uint64_t *leaf)
{
	if (c < 0) {
		*leaf = 0;
		return true;
	}
	if (n == 0 || c == 0) {
		*leaf = (uint64_t)v + 1;
		return true;
	}
	return false;
}

/* One node, whatever forks its branches: true with *leaf set when it has
 * none (infeasible, complete, or pruned by the bound), else its two
 * branches. */
static bool ks_expand(const struct karg *a, struct karg *without, struct karg *with, uint64_t *leaf)
{
	if (ks_leaf(a->c, a->n, a->v, leaf))
		return true;
	if (!kern_knapsack_bound_ok(a->e, a->c, a->v,
				    atomic_load_explicit(&best_so_far, memory_order_relaxed))) {
		*leaf = 0;
		return true;
	}
	*without = (struct karg){ a->e + 1, a->c, a->n - 1, a->v };
	*with = (struct karg){ a->e + 1, a->c - a->e->weight, a->n - 1, a->v + a->e->value };
	return false;
}

/* The better branch, published as the best so far. */
static uint64_t ks_best(uint64_t w, uint64_t wo)
{
	uint64_t best = w > wo ? w : wo;
	if (best > 0)
		raise_best((int)best - 1);
	return best;
}

static void *ks_task(void *arg)
{
	struct karg without, with;
	uint64_t leaf;
	if (ks_expand(arg, &without, &with, &leaf))
		return batch_ptr(leaf);
	crew_task *t = crew_spawn(ks_task, &without);
	if (!t)
		return batch_ptr(BATCH_ERROR);
	uint64_t w = batch_u64(ks_task(&with));
	void *wo = NULL;
	if (crew_join(t, &wo) != 0 || w == BATCH_ERROR || batch_u64(wo) == BATCH_ERROR)
		return batch_ptr(BATCH_ERROR);
	return batch_ptr(ks_best(w, batch_u64(wo)));
}

static void *ks_main(void *arg)
{
	struct batch_run *r = arg;
	struct ks_in *in = r->in;
	atomic_store(&best_so_far, 0);
	struct karg root = { in->items, in->cap, (int)r->n, 0 };
	uint64_t v = batch_u64(ks_task(&root));
	r->result = v == BATCH_ERROR || v == 0 ? BATCH_ERROR : v - 1;
	return NULL;
}

#ifdef CREW_HAVE_FORK /* ---- crew_fork/crew_sync ---- */
/* Plain arguments, and a node's leaf tests inlined where it is visited, so
 * that a leaf costs no call: what gcc makes of Lace's TASK macros, whose
 * CALL passes the arguments in registers and whose SYNC calls the task's
 * function directly (its leaf tests inlined too). The forked "without"
 * packs its arguments into a struct for the crew_fn wrapper. */
static uint64_t ks_fork_inner(const struct kern_item *e, int c, int n, int v);

static inline __attribute__((always_inline)) uint64_t ks_fork_visit(const struct kern_item *e, int c,
								     int n, int v)
{
	uint64_t leaf;
	return ks_leaf(c, n, v, &leaf) ? leaf : ks_fork_inner(e, c, n, v);
}

static void *ks_fork_task(void *arg)
{
	const struct karg *a = arg;
	return batch_ptr(ks_fork_visit(a->e, a->c, a->n, a->v));
}

/* A node with items left and room: bound, then its two branches. */
static uint64_t ks_fork_inner(const struct kern_item *e, int c, int n, int v)
{
	if (!kern_knapsack_bound_ok(e, c, v, atomic_load_explicit(&best_so_far, memory_order_relaxed)))
		return 0;
	struct karg without = { e + 1, c, n - 1, v };
	crew_frame f;
	crew_fork(&f, ks_fork_task, &without);
	uint64_t w = ks_fork_visit(e + 1, c - e->weight, n - 1, v + e->value);
	return ks_best(w, batch_u64(crew_sync(&f)));
}

static void *ks_fork_main(void *arg)
{
	struct batch_run *r = arg;
	struct ks_in *in = r->in;
	atomic_store(&best_so_far, 0);
	uint64_t v = ks_fork_visit(in->items, in->cap, (int)r->n, 0);
	r->result = v == 0 ? BATCH_ERROR : v - 1;
	return NULL;
}
#define KS_FORK ks_fork_main
#else
#define KS_FORK NULL
#endif

const struct batch_workload wl_knapsack = {
	.name = "knapsack", .default_n = 30, .prepare = ks_prepare, .serial = ks_serial,
	.crew = ks_main, .fork = KS_FORK, .check = ks_check, .cleanup = ks_cleanup,
};
