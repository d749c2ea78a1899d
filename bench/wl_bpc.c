/*
 * wl_bpc.c - bouncing producer-consumer (the pattern of Lace's "bpc"
 * benchmark, written here from its description): a chain of n producers
 * (default 40000); producer k spawns producer k-1 first, then
 * KERN_BPC_CONSUMERS consumers of KERN_BPC_WORK mixing rounds each, joins
 * the consumers, then the next producer. The next producer is the oldest
 * task of its worker's deque, which is what a thief takes, so the chain keeps
 * bouncing between workers while consumers are spawned behind it. Checked
 * against the serial sum (tabulated for the default n).
 */
#include "batch.h"
#include "batch/kern.h"

#define BPC_DEFAULT_SUM 20974501628ULL /* kern_bpc(40000) */

struct carg {
	uint64_t k, j;
};

static uint64_t bpc_expected(uint64_t n) { return n == 40000 ? BPC_DEFAULT_SUM : kern_bpc(n); }

static void bpc_serial(struct batch_run *r) { r->result = kern_bpc(r->n); }

static const char *bpc_check(struct batch_run *r)
{
	if (r->result == BATCH_ERROR)
		return "a spawn or join failed";
	return r->result == bpc_expected(r->n) ? NULL : "wrong sum";
}

static void *consumer_task(void *arg)
{
	const struct carg *c = arg;
	return batch_ptr(kern_bpc_consume(c->k, c->j));
}

static void *producer_task(void *arg)
{
	uint64_t k = batch_u64(arg);
	if (k == 0)
		return batch_ptr(0);
	crew_task *next = crew_spawn(producer_task, batch_ptr(k - 1));
	if (!next)
		return batch_ptr(BATCH_ERROR);
	struct carg c[KERN_BPC_CONSUMERS];
	crew_task *t[KERN_BPC_CONSUMERS];
	int spawned = 0;
	for (; spawned < KERN_BPC_CONSUMERS; spawned++) {
		c[spawned] = (struct carg){ k, (uint64_t)spawned };
		if (!(t[spawned] = crew_spawn(consumer_task, &c[spawned])))
			break;
	}
	bool bad = spawned < KERN_BPC_CONSUMERS;
	uint64_t sum = 0;
	while (spawned-- > 0) {
		void *v = NULL;
		if (crew_join(t[spawned], &v) != 0)
			bad = true;
		sum += batch_u64(v);
	}
	void *rest = NULL;
	if (crew_join(next, &rest) != 0 || batch_u64(rest) == BATCH_ERROR)
		bad = true;
	return batch_ptr(bad ? BATCH_ERROR : sum + batch_u64(rest));
}

static void *bpc_main(void *arg)
{
	struct batch_run *r = arg;
	r->result = batch_u64(producer_task(batch_ptr(r->n)));
	return NULL;
}

#ifdef CREW_HAVE_FORK /* ---- crew_fork/crew_sync ---- */
static void *producer_fork_task(void *arg)
{
	uint64_t k = batch_u64(arg);
	if (k == 0)
		return batch_ptr(0);
	crew_frame next, f[KERN_BPC_CONSUMERS];
	struct carg c[KERN_BPC_CONSUMERS];
	crew_fork(&next, producer_fork_task, batch_ptr(k - 1));
	for (int j = 0; j < KERN_BPC_CONSUMERS; j++) {
		c[j] = (struct carg){ k, (uint64_t)j };
		crew_fork(&f[j], consumer_task, &c[j]);
	}
	uint64_t sum = 0;
	for (int j = KERN_BPC_CONSUMERS - 1; j >= 0; j--)
		sum += batch_u64(crew_sync(&f[j]));
	return batch_ptr(sum + batch_u64(crew_sync(&next)));
}

static void *bpc_fork_main(void *arg)
{
	struct batch_run *r = arg;
	r->result = batch_u64(producer_fork_task(batch_ptr(r->n)));
	return NULL;
}
#define BPC_FORK bpc_fork_main
#else
#define BPC_FORK NULL
#endif

const struct batch_workload wl_bpc = {
	.name = "bpc", .default_n = 40000, .serial = bpc_serial, .crew = bpc_main, .fork = BPC_FORK,
	.check = bpc_check,
};
