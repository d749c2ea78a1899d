/*
 * stats.c - per-worker counters: crew_stats, and CREW_STATS=1's report.
 *
 * Each worker counts in its own private part (crew__stats in internal.h)
 * with relaxed loads and stores, never a read-modify-write: no cache line is
 * shared on the hot paths. Readers on other threads see each counter whole,
 * but the set of them at no single instant. When crew_run ends (workers
 * joined) the numbers are copied to a snapshot that crew_stats returns until
 * the next run starts, and printed on stderr when CREW_STATS=1.
 */
#include "internal.h"
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* The last run's numbers: written by crew_run's thread at its end, read by
 * crew_stats outside any run (see crew.h: not concurrently with crew_run). */
static crew_worker_stats *stats_last;
static unsigned stats_last_n;

static void stats_read(crew__worker *w, crew_worker_stats *o)
{
	const crew__stats *c = &w->stats;
#define RD(x) ((uint64_t)crew__load_64((const int64_t *)&(x)))
	*o = (crew_worker_stats){
		.tasks_spawned = RD(w->spawned),
		.tasks_run = RD(c->tasks_run),
		.forks = RD(c->forks),
		.steals = RD(c->steals),
		.steal_attempts = RD(c->steal_attempts),
		.parks = RD(c->parks),
		.inject_pops = RD(c->inject_pops),
		.overflows = RD(c->overflows),
		.idle_ns = RD(c->idle_ns),
	};
#undef RD
}

int crew_stats(crew_worker_stats *out, unsigned max)
{
	if (!out && max)
		return -EINVAL;
	crew__worker *w = crew__worker_current();
	if (w) {
		crew__runtime *rt = crew__rt;
		if (w->current) /* the caller's own forks so far (frames.h) */
			crew__fq_count_forks(w, w->fq);
		for (unsigned i = 0; i < rt->nworkers && i < max; i++)
			stats_read(&rt->workers[i], &out[i]);
		return (int)rt->nworkers;
	}
	if (!stats_last)
		return -EPERM;
	for (unsigned i = 0; i < stats_last_n && i < max; i++)
		out[i] = stats_last[i];
	return (int)stats_last_n;
}

CREW_COLD static void stats_print(const crew_worker_stats *s, unsigned n)
{
	fprintf(stderr, "crew stats: %-6s %10s %10s %10s %10s %10s %8s %8s %8s %10s\n", "worker",
		"spawned", "run", "forks", "steals", "attempts", "parks", "inject", "overflow",
		"idle_ms");
	for (unsigned i = 0; i < n; i++)
		fprintf(stderr,
			"crew stats: %-6u %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64
			" %10" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %10.1f\n",
			i, s[i].tasks_spawned, s[i].tasks_run, s[i].forks, s[i].steals,
			s[i].steal_attempts, s[i].parks, s[i].inject_pops, s[i].overflows,
			(double)s[i].idle_ns / 1e6);
}

/* crew_run's thread, after every worker was joined. */
void crew__stats_end(crew__runtime *rt)
{
	crew_worker_stats *s = calloc(rt->nworkers, sizeof(*s));
	if (s)
		for (unsigned i = 0; i < rt->nworkers; i++)
			stats_read(&rt->workers[i], &s[i]);
	free(stats_last);
	stats_last = s;
	stats_last_n = s ? rt->nworkers : 0;
	const char *env = getenv("CREW_STATS");
	if (s && env && strcmp(env, "1") == 0)
		stats_print(s, rt->nworkers);
}

/* The last run's numbers live until the process ends: free them then, so
 * that leak checkers see nothing left behind. */
__attribute__((destructor)) static void stats_free_last(void)
{
	free(stats_last);
	stats_last = NULL;
	stats_last_n = 0;
}
