/*
 * wl_cilksort.c - Cilk's cilksort of n = 10M 64-bit keys (bench/batch/kern.h):
 * four quarters sorted in parallel, two merges in parallel, one last merge;
 * a large merge splits at the median of its longer run (binary search in the
 * other) into two independent merges. Checked: sorted, and the sum and a
 * hash-xor of the keys unchanged.
 */
#include "batch.h"
#include "batch/kern.h"

#include <errno.h>
#include <stdlib.h>

struct cs_in {
	kern_elm *a, *tmp;
	uint64_t sum, xr;
};

static int cs_prepare(struct batch_run *r)
{
	if (r->n < 1 || r->n > (1ULL << 32))
		return -EINVAL;
	struct cs_in *in = calloc(1, sizeof *in);
	if (!in)
		return -ENOMEM;
	r->in = in;
	in->a = malloc(r->n * sizeof(kern_elm));
	in->tmp = malloc(r->n * sizeof(kern_elm));
	if (!in->a || !in->tmp)
		return -ENOMEM;
	kern_sort_input(in->a, (long)r->n, &in->sum, &in->xr);
	return 0;
}

static void cs_cleanup(struct batch_run *r)
{
	struct cs_in *in = r->in;
	if (!in)
		return;
	free(in->a);
	free(in->tmp);
	free(in);
}

static void cs_serial(struct batch_run *r)
{
	struct cs_in *in = r->in;
	kern_cilksort(in->a, in->tmp, (long)r->n);
}

static const char *cs_check(struct batch_run *r)
{
	struct cs_in *in = r->in;
	if (r->result == BATCH_ERROR)
		return "a spawn or join failed";
	return kern_sort_check(in->a, (long)r->n, in->sum, in->xr) ? NULL : "not sorted or keys changed";
}

struct merge_arg {
	const kern_elm *a, *b;
	long na, nb;
	kern_elm *out;
};

struct sort_arg {
	kern_elm *a, *tmp;
	long n;
};

/* join_all: joins what was spawned; true when every spawn and join worked. */
static bool join_all(crew_task **t, int k, bool ok)
{
	for (int i = 0; i < k; i++) {
		void *v = NULL;
		if (crew_join(t[i], &v) != 0 || v)
			ok = false;
	}
	return ok;
}

/* A merge's divide step, whatever forks its halves: false when it was small
 * enough to merge here (done), else its two independent halves. */
static bool merge_split(const struct merge_arg *m, struct merge_arg *lo, struct merge_arg *hi)
{
	const kern_elm *a = m->a, *b = m->b;
	long na = m->na, nb = m->nb, ma, mb;
	if (!kern_merge_split(&a, &na, &b, &nb, m->out, &ma, &mb))
		return false;
	*lo = (struct merge_arg){ a, b, ma, mb, m->out };
	*hi = (struct merge_arg){ a + ma, b + mb, na - ma, nb - mb, m->out + ma + mb };
	return true;
}

/* A sort's divide step, whatever forks its parts: false when it was small
 * enough to sort here (done), else its four quarters (sorted in parallel)
 * and the merges after them: m[0] and m[1] in parallel, then m[2]. */
static bool sort_split(const struct sort_arg *s, struct sort_arg part[4], struct merge_arg m[3])
{
	long n = s->n;
	if (n <= KERN_SORT_QUICK) {
		kern_quicksort(s->a, n);
		return false;
	}
	long q = n / 4;
	for (int i = 0; i < 4; i++)
		part[i] = (struct sort_arg){ s->a + i * q, s->tmp + i * q, i == 3 ? n - 3 * q : q };
	m[0] = (struct merge_arg){ part[0].a, part[1].a, q, q, s->tmp };
	m[1] = (struct merge_arg){ part[2].a, part[3].a, q, n - 3 * q, s->tmp + 2 * q };
	m[2] = (struct merge_arg){ s->tmp, s->tmp + 2 * q, 2 * q, n - 2 * q, s->a };
	return true;
}

static void *merge_task(void *arg)
{
	struct merge_arg lo, hi;
	if (!merge_split(arg, &lo, &hi))
		return NULL;
	crew_task *t = crew_spawn(merge_task, &lo);
	if (!t)
		return batch_ptr(BATCH_ERROR);
	void *e = merge_task(&hi);
	return join_all(&t, 1, !e) ? NULL : batch_ptr(BATCH_ERROR);
}

static void *sort_task(void *arg)
{
	struct sort_arg part[4];
	struct merge_arg m[3];
	if (!sort_split(arg, part, m))
		return NULL;
	crew_task *t[3];
	int k = 0;
	for (; k < 3; k++)
		if (!(t[k] = crew_spawn(sort_task, &part[k])))
			break;
	bool ok = k == 3 && !sort_task(&part[3]);
	if (!join_all(t, k, ok))
		return batch_ptr(BATCH_ERROR);
	crew_task *mt = crew_spawn(merge_task, &m[0]);
	if (!mt)
		return batch_ptr(BATCH_ERROR);
	ok = !merge_task(&m[1]);
	if (!join_all(&mt, 1, ok))
		return batch_ptr(BATCH_ERROR);
	return merge_task(&m[2]);
}

static void *cs_main(void *arg)
{
	struct batch_run *r = arg;
	struct cs_in *in = r->in;
	struct sort_arg root = { in->a, in->tmp, (long)r->n };
	r->result = batch_u64(sort_task(&root));
	return NULL;
}

#ifdef CREW_HAVE_FORK /* ---- crew_fork/crew_sync ---- */
static void *merge_fork_task(void *arg)
{
	struct merge_arg lo, hi;
	if (!merge_split(arg, &lo, &hi))
		return NULL;
	crew_frame f;
	crew_fork(&f, merge_fork_task, &lo);
	merge_fork_task(&hi);
	crew_sync(&f);
	return NULL;
}

static void *sort_fork_task(void *arg)
{
	struct sort_arg part[4];
	struct merge_arg m[3];
	if (!sort_split(arg, part, m))
		return NULL;
	crew_frame f[3];
	for (int i = 0; i < 3; i++)
		crew_fork(&f[i], sort_fork_task, &part[i]);
	sort_fork_task(&part[3]);
	for (int i = 2; i >= 0; i--)
		crew_sync(&f[i]);
	crew_frame g;
	crew_fork(&g, merge_fork_task, &m[0]);
	merge_fork_task(&m[1]);
	crew_sync(&g);
	return merge_fork_task(&m[2]);
}

static void *cs_fork_main(void *arg)
{
	struct batch_run *r = arg;
	struct cs_in *in = r->in;
	struct sort_arg root = { in->a, in->tmp, (long)r->n };
	sort_fork_task(&root);
	return NULL;
}
#define CS_FORK cs_fork_main
#else
#define CS_FORK NULL
#endif

const struct batch_workload wl_cilksort = {
	.name = "cilksort", .default_n = 10000000, .prepare = cs_prepare, .serial = cs_serial,
	.crew = cs_main, .fork = CS_FORK, .check = cs_check, .cleanup = cs_cleanup,
};
