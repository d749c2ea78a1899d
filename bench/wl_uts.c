/*
 * wl_uts.c - the Unbalanced Tree Search trees T1 (geometric, fixed branching
 * factor 4, depth n = 10: 4130071 nodes) and T3 (binomial, n = 2000 root
 * children, then 8 children with probability 0.124875: 4112897 nodes), built
 * with the reference SHA-1 splittable generator (bench/batch/kern.h), so that
 * the node counts are the published ones. A task per node: the node counts
 * its subtree, spawning all children but the last and calling the last.
 * Smaller trees for quick runs: uts-t1 --n 9 (1031269), uts-t3 --n 200 (2745281).
 */
#include "batch.h"
#include "batch/kern.h"

#include <errno.h>
#include <stdlib.h>

struct uarg {
	const struct kern_uts_tree *t;
	struct kern_uts_node node;
};

struct uts_in {
	struct kern_uts_tree t;
	int binomial;
};

#define KIDS_ON_STACK 16

static void *u_task(void *arg)
{
	const struct uarg *a = arg;
	int k = kern_uts_children(a->t, &a->node);
	if (k == 0)
		return batch_ptr(1);
	struct uarg kids_local[KIDS_ON_STACK];
	crew_task *t_local[KIDS_ON_STACK];
	struct uarg *kids = kids_local;
	crew_task **t = t_local;
	if (k > KIDS_ON_STACK) { /* T3's root: 2000 children */
		kids = malloc((size_t)k * sizeof *kids);
		t = malloc((size_t)k * sizeof *t);
		if (!kids || !t) {
			free(kids);
			free(t);
			return batch_ptr(BATCH_ERROR);
		}
	}
	for (int i = 0; i < k; i++) {
		kids[i].t = a->t;
		kern_uts_child(&a->node, i, &kids[i].node);
	}
	int spawned = 0;
	for (; spawned < k - 1; spawned++)
		if (!(t[spawned] = crew_spawn(u_task, &kids[spawned])))
			break;
	bool bad = spawned < k - 1;
	uint64_t sum = 1;
	if (!bad) {
		uint64_t v = batch_u64(u_task(&kids[k - 1]));
		bad = v == BATCH_ERROR;
		sum += v;
	}
	for (int i = 0; i < spawned; i++) {
		void *v = NULL;
		if (crew_join(t[i], &v) != 0 || batch_u64(v) == BATCH_ERROR)
			bad = true;
		sum += batch_u64(v);
	}
	if (kids != kids_local) {
		free(kids);
		free(t);
	}
	return batch_ptr(bad ? BATCH_ERROR : sum);
}

static int u_prepare(struct batch_run *r, int binomial)
{
	struct uts_in *in = malloc(sizeof *in);
	if (!in)
		return -ENOMEM;
	in->binomial = binomial;
	in->t = binomial ? kern_uts_t3((unsigned)r->n) : kern_uts_t1((unsigned)r->n);
	r->in = in;
	return 0;
}
static int u_prepare_t1(struct batch_run *r) { return r->n <= 20 ? u_prepare(r, 0) : -EINVAL; }
static int u_prepare_t3(struct batch_run *r) { return r->n <= 100000 ? u_prepare(r, 1) : -EINVAL; }
static void u_cleanup(struct batch_run *r) { free(r->in); }

static void u_serial(struct batch_run *r)
{
	struct uts_in *in = r->in;
	struct kern_uts_node root;
	kern_uts_root(&in->t, &root);
	r->result = kern_uts_count(&in->t, &root);
}

static void *u_main(void *arg)
{
	struct batch_run *r = arg;
	struct uts_in *in = r->in;
	struct uarg root = { .t = &in->t };
	kern_uts_root(&in->t, &root.node);
	r->result = batch_u64(u_task(&root));
	return NULL;
}

static const char *u_check(struct batch_run *r)
{
	struct uts_in *in = r->in;
	uint64_t want = kern_uts_expected(in->binomial, (unsigned)r->n);
	if (!want) { /* no published count for this n: the serial count is the answer */
		uint64_t got = r->result;
		u_serial(r);
		want = r->result;
		r->result = got;
	}
	return r->result == want ? NULL : "wrong node count";
}

#ifdef CREW_HAVE_FORK /* ---- crew_fork/crew_sync ---- */
static void *u_fork_task(void *arg)
{
	const struct uarg *a = arg;
	int k = kern_uts_children(a->t, &a->node);
	if (k == 0)
		return batch_ptr(1);
	/* Sized to the children: T3 is 1,572 levels deep, and 16-slot levels
	 * (1.5 KiB each) make a deep stack twice as large as 8-slot ones
	 * (0.8 KiB): T3 on 1 worker 0.365 -> 0.357 s. */
	int local = k <= KIDS_ON_STACK ? k : 1;
	struct uarg kids_local[local];
	crew_frame f_local[local];
	struct uarg *kids = kids_local;
	crew_frame *f = f_local;
	if (k > KIDS_ON_STACK) { /* T3's root: 2000 children */
		kids = malloc((size_t)k * sizeof *kids);
		f = malloc((size_t)k * sizeof *f);
		if (!kids || !f) {
			free(kids);
			free(f);
			return batch_ptr(BATCH_ERROR);
		}
	}
	for (int i = 0; i < k; i++) {
		kids[i].t = a->t;
		kern_uts_child(&a->node, i, &kids[i].node);
		crew_fork(&f[i], u_fork_task, &kids[i]);
	}
	uint64_t sum = 1;
	while (k-- > 0) /* syncs in reverse order of the forks */
		sum += batch_u64(crew_sync(&f[k]));
	if (kids != kids_local) {
		free(kids);
		free(f);
	}
	return batch_ptr(sum);
}

static void *u_fork_main(void *arg)
{
	struct batch_run *r = arg;
	struct uts_in *in = r->in;
	struct uarg root = { .t = &in->t };
	kern_uts_root(&in->t, &root.node);
	r->result = batch_u64(u_fork_task(&root));
	return NULL;
}
#define U_FORK u_fork_main
#else
#define U_FORK NULL
#endif

const struct batch_workload wl_uts_t1 = {
	.name = "uts-t1", .default_n = 10, .prepare = u_prepare_t1, .serial = u_serial,
	.crew = u_main, .fork = U_FORK, .check = u_check, .cleanup = u_cleanup,
};
const struct batch_workload wl_uts_t3 = {
	.name = "uts-t3", .default_n = 2000, .prepare = u_prepare_t3, .serial = u_serial,
	.crew = u_main, .fork = U_FORK, .check = u_check, .cleanup = u_cleanup,
};
