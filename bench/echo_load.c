/*
 * echo-load - a load generator for TCP echo servers, written on crew (the
 * client side of tools/echo-bench.sh).
 *
 *   echo-load --port P [--host H] [--conns N] [--size S] [--duration SEC]
 *             [--workers W] [--warmup SEC]
 *
 * N connections, each a task that sends S bytes, waits until all S came back
 * (checking them), and starts over, for SEC seconds after a warm-up. Prints
 * one JSON line: messages per second (round trips), MB/s each way, and the
 * round-trip latency's median, p99 and max in microseconds. Closed-loop like
 * wrk: a slower server gets fewer messages, not a queue.
 */
#define _GNU_SOURCE
#include <crew.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Latency histogram: 64 powers of two, each cut into 16 linear steps
 * (at most 1/16 = 6% error). Counts per connection, merged at the end. */
#define SUB 16
#define NBUCKET (64 * SUB)

static struct {
	const char *host;
	unsigned port, conns, workers;
	size_t size;
	double duration, warmup;
	uint64_t start, stop; /* crew_now(): measure from start to stop */
	atomic_uint_fast64_t msgs, hist[NBUCKET];
	atomic_int failed;
	atomic_uint connected;
} L = { .host = "127.0.0.1", .conns = 64, .size = 64, .duration = 10, .warmup = 1, .workers = 1 };

static unsigned bucket(uint64_t ns)
{
	if (ns < SUB)
		return (unsigned)ns;
	unsigned top = 63u - (unsigned)__builtin_clzll(ns); /* >= 4 */
	unsigned sub = (unsigned)(ns >> (top - 4)) & (SUB - 1);
	return (top - 3) * SUB + sub;
}

static uint64_t bucket_value(unsigned b)
{
	if (b < SUB)
		return b;
	unsigned top = b / SUB + 3, sub = b % SUB;
	return ((uint64_t)(SUB + sub) << (top - 4)) + ((1ull << (top - 4)) >> 1); /* the middle */
}

static void *connection(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	char *out = malloc(L.size), *in = malloc(L.size);
	uint32_t *hist = calloc(NBUCKET, sizeof(*hist));
	int fd = -1;
	if (!out || !in || !hist)
		goto fail;
	for (size_t i = 0; i < L.size; i++)
		out[i] = (char)('a' + (id + i) % 26);
	fd = crew_tcp_connect(L.host, (uint16_t)L.port);
	if (fd < 0) {
		fprintf(stderr, "echo-load: connect to %s port %u: %s\n", L.host, L.port, strerror(-fd));
		goto fail;
	}
	atomic_fetch_add(&L.connected, 1);
	uint64_t msgs = 0;
	for (;;) {
		uint64_t t0 = crew_now();
		if (t0 >= L.stop)
			break;
		ssize_t n = crew_send_all(fd, out, L.size, MSG_NOSIGNAL);
		if (n < 0) {
			fprintf(stderr, "echo-load: send: %s\n", strerror((int)-n));
			goto fail;
		}
		for (size_t got = 0; got < L.size; got += (size_t)n) {
			n = crew_recv(fd, in + got, L.size - got, 0);
			if (n <= 0) {
				fprintf(stderr, "echo-load: recv: %s\n", n ? strerror((int)-n) : "connection closed");
				goto fail;
			}
		}
		if (memcmp(in, out, L.size) != 0) {
			fprintf(stderr, "echo-load: the echo differs from what was sent\n");
			goto fail;
		}
		uint64_t t1 = crew_now();
		if (t0 >= L.start && t1 <= L.stop) {
			msgs++;
			hist[bucket(t1 - t0)]++;
		}
	}
	atomic_fetch_add(&L.msgs, msgs);
	for (unsigned b = 0; b < NBUCKET; b++)
		if (hist[b])
			atomic_fetch_add(&L.hist[b], hist[b]);
	goto done;
fail:
	atomic_store(&L.failed, 1);
done:
	if (fd >= 0)
		crew_close(fd);
	free(out);
	free(in);
	free(hist);
	return NULL;
}

static uint64_t percentile(uint64_t total, double p)
{
	uint64_t want = p >= 1 ? total - 1 : (uint64_t)(p * (double)total), seen = 0;
	if (!total)
		return 0;
	for (unsigned b = 0; b < NBUCKET; b++) {
		seen += atomic_load(&L.hist[b]);
		if (seen > want)
			return bucket_value(b);
	}
	return 0;
}

static void *main_task(void *arg)
{
	(void)arg;
	uint64_t now = crew_now();
	L.start = now + (uint64_t)(L.warmup * 1e9);
	L.stop = L.start + (uint64_t)(L.duration * 1e9);
	crew_task **t = calloc(L.conns, sizeof(*t));
	if (!t)
		return (void *)1;
	for (unsigned i = 0; i < L.conns; i++)
		if (!(t[i] = crew_spawn(connection, (void *)(uintptr_t)i)))
			return (void *)1;
	for (unsigned i = 0; i < L.conns; i++)
		crew_join(t[i], NULL);
	free(t);
	return NULL;
}

static void usage(FILE *to)
{
	fprintf(to, "usage: echo-load --port P [--host H] [--conns N] [--size BYTES] [--duration SEC]\n"
		    "                 [--warmup SEC] [--workers W]\n"
		    "  defaults: host 127.0.0.1, 64 connections, 64-byte messages, 10 s after a 1 s\n"
		    "  warm-up, 1 worker. Prints a JSON line: msgs_per_s, mb_per_s, p50_us, p99_us.\n");
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end = NULL;
		if (!strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		}
		if (!v)
			goto bad;
		i++;
		if (!strcmp(a, "--host"))
			L.host = v;
		else if (!strcmp(a, "--port"))
			L.port = (unsigned)strtoul(v, &end, 10);
		else if (!strcmp(a, "--conns"))
			L.conns = (unsigned)strtoul(v, &end, 10);
		else if (!strcmp(a, "--size"))
			L.size = strtoul(v, &end, 10);
		else if (!strcmp(a, "--duration"))
			L.duration = strtod(v, &end);
		else if (!strcmp(a, "--warmup"))
			L.warmup = strtod(v, &end);
		else if (!strcmp(a, "--workers"))
			L.workers = (unsigned)strtoul(v, &end, 10);
		else
			goto bad;
		if (end && *end)
			goto bad;
	}
	if (!L.port || L.port > 65535 || !L.conns || !L.size || L.duration <= 0 || L.warmup < 0 ||
	    !L.workers)
		goto bad;
	crew_config cfg = { .workers = L.workers };
	void *res = NULL;
	int rc = crew_run_with(&cfg, main_task, NULL, &res);
	if (rc != 0) {
		fprintf(stderr, "echo-load: crew_run: %s\n", strerror(-rc));
		return 1;
	}
	if (res || atomic_load(&L.failed))
		return 1;
	uint64_t n = atomic_load(&L.msgs);
	printf("{\"conns\": %u, \"size\": %zu, \"msgs_per_s\": %.0f, \"mb_per_s\": %.1f, "
	       "\"p50_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f}\n",
	       L.conns, L.size, (double)n / L.duration, (double)n * (double)L.size / L.duration / 1e6,
	       (double)percentile(n, 0.5) / 1e3, (double)percentile(n, 0.99) / 1e3,
	       (double)percentile(n, 1.0) / 1e3);
	return 0;
bad:
	usage(stderr);
	return 2;
}
