/*
 * wl_matmul.c - C = A*B for n x n doubles (n = 1024) by divide and conquer
 * (bench/batch/kern.h: split the largest dimension; the two halves of m or p
 * are independent tasks, the two halves of the inner n run one after the
 * other). Small integer entries make the check C*x == A*(B*x) exact.
 */
#include "batch.h"
#include "batch/kern.h"

#include <errno.h>
#include <stdlib.h>

struct mm_in {
	double *A, *B, *C;
};

struct marg {
	const double *A, *B;
	double *C;
	int m, n, p, ld;
};

static int mm_prepare(struct batch_run *r)
{
	if (r->n < 1 || r->n > 16384)
		return -EINVAL;
	struct mm_in *in = malloc(sizeof *in);
	size_t sz = (size_t)r->n * r->n * sizeof(double);
	if (!in)
		return -ENOMEM;
	in->A = malloc(sz);
	in->B = malloc(sz);
	in->C = malloc(sz);
	r->in = in;
	if (!in->A || !in->B || !in->C)
		return -ENOMEM;
	kern_mm_input(in->A, in->B, in->C, (int)r->n);
	return 0;
}

static void mm_cleanup(struct batch_run *r)
{
	struct mm_in *in = r->in;
	if (!in)
		return;
	free(in->A);
	free(in->B);
	free(in->C);
	free(in);
}

static void mm_serial(struct batch_run *r)
{
	struct mm_in *in = r->in;
	int n = (int)r->n;
	kern_mm(in->A, in->B, in->C, n, n, n, n);
}

static const char *mm_check(struct batch_run *r)
{
	struct mm_in *in = r->in;
	if (r->result == BATCH_ERROR)
		return "a spawn or join failed";
	return kern_mm_check(in->A, in->B, in->C, (int)r->n) ? NULL : "wrong product";
}

/* One step of the divide and conquer, whatever forks it: MM_LEAF (the
 * block was multiplied here), MM_IN_TURN (the inner dimension was halved:
 * x and y add into the same C, one after the other), or MM_TOGETHER (x and
 * y write disjoint halves of C and may run in parallel). */
enum mm_step { MM_LEAF, MM_IN_TURN, MM_TOGETHER };

static enum mm_step mm_split(const struct marg *a, struct marg *x, struct marg *y)
{
	int m = a->m, n = a->n, p = a->p, ld = a->ld;
	if (m <= KERN_MM_LEAF && n <= KERN_MM_LEAF && p <= KERN_MM_LEAF) {
		kern_mm_leaf(a->A, a->B, a->C, m, n, p, ld);
		return MM_LEAF;
	}
	*x = *a;
	*y = *a;
	if (!(m >= n && m >= p) && n >= p) { /* the inner dimension */
		x->n = n / 2;
		y->n = n - n / 2;
		y->A += x->n;
		y->B += (long)x->n * ld;
		return MM_IN_TURN;
	}
	if (m >= p) {
		x->m = m / 2;
		y->m = m - m / 2;
		y->A += (long)x->m * ld;
		y->C += (long)x->m * ld;
	} else {
		x->p = p / 2;
		y->p = p - p / 2;
		y->B += x->p;
		y->C += x->p;
	}
	return MM_TOGETHER;
}

static void *mm_task(void *arg)
{
	struct marg x, y;
	switch (mm_split(arg, &x, &y)) {
	case MM_LEAF:
		return NULL;
	case MM_IN_TURN: {
		void *e1 = mm_task(&x), *e2 = mm_task(&y);
		return e1 ? e1 : e2;
	}
	case MM_TOGETHER:
		break;
	}
	crew_task *t = crew_spawn(mm_task, &x);
	if (!t)
		return batch_ptr(BATCH_ERROR);
	void *e2 = mm_task(&y), *e1 = NULL;
	if (crew_join(t, &e1) != 0)
		return batch_ptr(BATCH_ERROR);
	return e1 ? e1 : e2;
}

static void *mm_main(void *arg)
{
	struct batch_run *r = arg;
	struct mm_in *in = r->in;
	int n = (int)r->n;
	struct marg root = { in->A, in->B, in->C, n, n, n, n };
	r->result = batch_u64(mm_task(&root));
	return NULL;
}

#ifdef CREW_HAVE_FORK /* ---- crew_fork/crew_sync ---- */
static void *mm_fork_task(void *arg)
{
	struct marg x, y;
	switch (mm_split(arg, &x, &y)) {
	case MM_LEAF:
		return NULL;
	case MM_IN_TURN:
		mm_fork_task(&x);
		mm_fork_task(&y);
		return NULL;
	case MM_TOGETHER:
		break;
	}
	crew_frame f;
	crew_fork(&f, mm_fork_task, &x);
	mm_fork_task(&y);
	crew_sync(&f);
	return NULL;
}

static void *mm_fork_main(void *arg)
{
	struct batch_run *r = arg;
	struct mm_in *in = r->in;
	int n = (int)r->n;
	struct marg root = { in->A, in->B, in->C, n, n, n, n };
	mm_fork_task(&root);
	return NULL;
}
#define MM_FORK mm_fork_main
#else
#define MM_FORK NULL
#endif

const struct batch_workload wl_matmul = {
	.name = "matmul", .default_n = 1024, .prepare = mm_prepare, .serial = mm_serial,
	.crew = mm_main, .fork = MM_FORK, .check = mm_check, .cleanup = mm_cleanup,
};
