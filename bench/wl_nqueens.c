/*
 * wl_nqueens.c - count the solutions of n-queens (n 12..14: 14200, 73712,
 * 365596), a task per valid placement, each child with its own copy of the
 * board (as in BOTS and Cilk); no cut-off, like Lace's queens.
 */
#include "batch.h"
#include "batch/kern.h"

#include <errno.h>

#define QMAX 20

struct qarg {
	int n, row;
	unsigned char b[QMAX];
};

static void q_serial(struct batch_run *r)
{
	unsigned char b[QMAX];
	r->result = kern_queens(b, (int)r->n, 0);
}

static const char *q_check(struct batch_run *r)
{
	uint64_t want = kern_queens_expected((unsigned)r->n);
	if (!want)
		return "no tabulated answer for this n (4..16)";
	return r->result == want ? NULL : "wrong number of solutions";
}

static int q_prepare(struct batch_run *r) { return r->n >= 4 && r->n <= 16 ? 0 : -EINVAL; }

static void *q_task(void *arg)
{
	const struct qarg *a = arg;
	if (a->row == a->n)
		return batch_ptr(1);
	struct qarg kids[QMAX];
	crew_task *t[QMAX];
	int k = 0;
	for (int col = 0; col < a->n; col++)
		if (kern_queens_ok(a->b, a->row, col)) {
			kids[k] = *a;
			kids[k].b[a->row] = (unsigned char)col;
			kids[k].row = a->row + 1;
			k++;
		}
	uint64_t sum = 0;
	int spawned = 0;
	for (; spawned < k - 1; spawned++)
		if (!(t[spawned] = crew_spawn(q_task, &kids[spawned])))
			break;
	bool bad = spawned < k - 1;
	if (!bad && k > 0) {
		uint64_t v = batch_u64(q_task(&kids[k - 1]));
		bad = v == BATCH_ERROR;
		sum += v;
	}
	for (int i = 0; i < spawned; i++) {
		void *v = NULL;
		if (crew_join(t[i], &v) != 0 || batch_u64(v) == BATCH_ERROR)
			bad = true;
		sum += batch_u64(v);
	}
	return batch_ptr(bad ? BATCH_ERROR : sum);
}

static void *q_main(void *arg)
{
	struct batch_run *r = arg;
	struct qarg root = { .n = (int)r->n, .row = 0 };
	r->result = batch_u64(q_task(&root));
	return NULL;
}

#ifdef CREW_HAVE_FORK /* ---- crew_fork/crew_sync ---- */
static void *q_fork_task(void *arg)
{
	const struct qarg *a = arg;
	if (a->row == a->n)
		return batch_ptr(1);
	struct qarg kids[QMAX];
	crew_frame f[QMAX];
	int k = 0;
	for (int col = 0; col < a->n; col++)
		if (kern_queens_ok(a->b, a->row, col)) {
			kids[k] = *a;
			kids[k].b[a->row] = (unsigned char)col;
			kids[k].row = a->row + 1;
			crew_fork(&f[k], q_fork_task, &kids[k]);
			k++;
		}
	uint64_t sum = 0;
	while (k-- > 0) /* syncs in reverse order of the forks */
		sum += batch_u64(crew_sync(&f[k]));
	return batch_ptr(sum);
}

static void *q_fork_main(void *arg)
{
	struct batch_run *r = arg;
	struct qarg root = { .n = (int)r->n, .row = 0 };
	r->result = batch_u64(q_fork_task(&root));
	return NULL;
}
#define Q_FORK q_fork_main
#else
#define Q_FORK NULL
#endif

const struct batch_workload wl_nqueens = {
	.name = "nqueens", .default_n = 13, .prepare = q_prepare, .serial = q_serial,
	.crew = q_main, .fork = Q_FORK, .check = q_check,
};
