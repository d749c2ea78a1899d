/*
 * crew-cp - copy a file as cp(1) does, with several reads and writes in
 * flight at once.
 *
 *   crew-cp [--workers N] [--depth D] [--block B] SRC DST
 *
 * D copier tasks share the file: each takes the next block of B bytes (an
 * atomic counter), crew_preads it and crew_pwrites it at the same offset,
 * until the end of the source, so up to D reads and writes are in flight
 * together (with io_uring, the tasks' submissions go to the kernel in
 * batches). Then the copy is crew_fsync'ed and closed: once crew-cp exits
 * 0, the data is on disk.
 *
 * DST may be a directory: the copy is DST/<name of SRC>. An existing DST is
 * truncated (and keeps its mode); a new one gets SRC's permission bits. SRC
 * must be a regular file. The size copied is SRC's when the copy begins.
 * Exit status: 0; 1 when the copy failed (a message names the file and the
 * error; a partial DST is left, as cp leaves it); 2 for bad usage.
 */
#define _GNU_SOURCE
#include <crew.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME "crew-cp"
#define MAX_DEPTH 4096
#define MIN_BLOCK 512
#define MAX_BLOCK (256u << 20)

typedef struct copy {
	const char *src_path, *dst_path;
	unsigned depth;
	size_t block;
	int src, dst;
	uint64_t size;          /* SRC's size when the copy began */
	atomic_uint_fast64_t next; /* the next block to copy */
	atomic_int err;         /* the first copier's error (-errno), or 0 */
	const char *err_what, *err_path; /* what failed, on which file: its copier's */
	char dst_buf[PATH_MAX];
} copy;

/* A copier's error: the first one is kept (the others stop at their next
 * block). */
static void copier_fail(copy *c, int err, const char *what, const char *path)
{
	int none = 0;
	/* relaxed: only one copier may win; err_what and err_path are read after
	 * every copier was joined, and crew_join orders that */
	if (atomic_compare_exchange_strong_explicit(&c->err, &none, err, memory_order_relaxed,
						    memory_order_relaxed)) {
		c->err_what = what;
		c->err_path = path;
	}
}

/* Copy block after block until none is left or a copier failed. */
static void *copier(void *arg)
{
	copy *c = arg;
	char *buf = malloc(c->block);
	if (!buf) {
		copier_fail(c, -ENOMEM, "cannot copy", c->src_path);
		return NULL;
	}
	/* relaxed, both: err is a hint to stop early; the counter only hands each
	 * block to one copier (the bytes travel through the files, not memory) */
	while (!atomic_load_explicit(&c->err, memory_order_relaxed)) {
		uint64_t off = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed) * c->block;
		if (off >= c->size)
			break;
		size_t want = c->size - off < c->block ? (size_t)(c->size - off) : c->block, got = 0;
		while (got < want) {
			ssize_t n = crew_pread(c->src, buf + got, want - got, (off_t)(off + got));
			if (n < 0) {
				copier_fail(c, (int)n, "error reading", c->src_path);
				goto out;
			}
			if (n == 0)
				break; /* SRC shrank meanwhile: copy what there is */
			got += (size_t)n;
		}
		for (size_t put = 0; put < got;) {
			ssize_t n = crew_pwrite(c->dst, buf + put, got - put, (off_t)(off + put));
			if (n <= 0) {
				copier_fail(c, n ? (int)n : -EIO, "error writing", c->dst_path);
				goto out;
			}
			put += (size_t)n;
		}
	}
out:
	free(buf);
	return NULL;
}

static void *failed(const char *what, const char *path, int err)
{
	fprintf(stderr, NAME ": %s '%s': %s\n", what, path, strerror(-err));
	return (void *)1;
}

/* Open SRC (a regular file); *st gets what statx says of it. */
static void *open_src(copy *c, struct statx *st)
{
	c->src = crew_openat(AT_FDCWD, c->src_path, O_RDONLY | O_CLOEXEC, 0);
	if (c->src < 0)
		return failed("cannot open", c->src_path, c->src);
	int rc = crew_statx(c->src, "", AT_EMPTY_PATH, STATX_TYPE | STATX_MODE | STATX_SIZE | STATX_INO, st);
	if (rc < 0)
		return failed("cannot stat", c->src_path, rc);
	if (S_ISDIR(st->stx_mode))
		return failed("cannot copy", c->src_path, -EISDIR);
	if (!S_ISREG(st->stx_mode)) {
		fprintf(stderr, NAME ": cannot copy '%s': not a regular file\n", c->src_path);
		return (void *)1;
	}
	c->size = st->stx_size;
	return NULL;
}

/* Open DST for writing (DST/<name of SRC> when DST is a directory), and
 * truncate it unless it is SRC itself. */
static void *open_dst(copy *c, const struct statx *src_st)
{
	struct statx st;
	if (crew_statx(AT_FDCWD, c->dst_path, 0, STATX_TYPE, &st) == 0 && S_ISDIR(st.stx_mode)) {
		char name[PATH_MAX];
		snprintf(name, sizeof name, "%s", c->src_path);
		int n = snprintf(c->dst_buf, sizeof c->dst_buf, "%s/%s", c->dst_path, basename(name));
		if (n < 0 || (size_t)n >= sizeof c->dst_buf)
			return failed("cannot create", c->dst_path, -ENAMETOOLONG);
		c->dst_path = c->dst_buf;
	}
	/* no O_TRUNC yet: DST may be SRC under another name */
	c->dst = crew_openat(AT_FDCWD, c->dst_path, O_WRONLY | O_CREAT | O_CLOEXEC,
			     src_st->stx_mode & 0777);
	if (c->dst < 0)
		return failed("cannot create", c->dst_path, c->dst);
	int rc = crew_statx(c->dst, "", AT_EMPTY_PATH, STATX_INO, &st);
	if (rc < 0)
		return failed("cannot stat", c->dst_path, rc);
	if (st.stx_ino == src_st->stx_ino && st.stx_dev_major == src_st->stx_dev_major &&
	    st.stx_dev_minor == src_st->stx_dev_minor) {
		fprintf(stderr, NAME ": '%s' and '%s' are the same file\n", c->src_path, c->dst_path);
		return (void *)1;
	}
	/* a metadata call that does not wait for the disk: run it here */
	if (ftruncate(c->dst, 0) != 0)
		return failed("cannot truncate", c->dst_path, -errno);
	return NULL;
}

/* Run the copiers; join them all. */
static void *copy_blocks(copy *c)
{
	uint64_t blocks = (c->size + c->block - 1) / c->block;
	unsigned n = blocks < c->depth ? (unsigned)blocks : c->depth;
	crew_task **t = calloc(n ? n : 1, sizeof(*t));
	if (!t)
		return failed("cannot copy", c->src_path, -ENOMEM);
	unsigned started = 0;
	while (started < n && (t[started] = crew_spawn(copier, c)))
		started++;
	if (started < n)
		copier_fail(c, -errno, "cannot copy", c->src_path);
	for (unsigned i = 0; i < started; i++)
		crew_join(t[i], NULL);
	free(t);
	int err = atomic_load_explicit(&c->err, memory_order_relaxed); /* the copiers were joined */
	return err ? failed(c->err_what, c->err_path, err) : NULL;
}

static void *copy_main(void *arg)
{
	copy *c = arg;
	struct statx src_st;
	void *res = open_src(c, &src_st);
	if (!res)
		res = open_dst(c, &src_st);
	if (!res)
		res = copy_blocks(c);
	int rc;
	if (!res && (rc = crew_fsync(c->dst)) < 0)
		res = failed("cannot sync", c->dst_path, rc);
	if (c->dst >= 0 && (rc = crew_close(c->dst)) < 0 && !res)
		res = failed("cannot close", c->dst_path, rc);
	if (c->src >= 0)
		crew_close(c->src);
	return res;
}

static void usage(FILE *to)
{
	fprintf(to,
		"usage: " NAME " [--workers N] [--depth D] [--block B] SRC DST\n"
		"Copy the regular file SRC to DST (or into DST when it is a directory),\n"
		"with D reads and writes of B bytes in flight at once, then fsync it.\n"
		"  --workers N  worker threads (default: CREW_WORKERS, else one per CPU)\n"
		"  --depth D    blocks in flight (1 to %d, default 8)\n"
		"  --block B    block size in bytes, K or M suffix (%d to %uM, default 128K)\n"
		"  --help       this text\n"
		"Exit status: 0 copied, 1 failed (with a message), 2 bad usage.\n",
		MAX_DEPTH, MIN_BLOCK, MAX_BLOCK >> 20);
}

/* A size with an optional K or M suffix (powers of 1024); 0 when bad. */
static size_t parse_size(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return 0;
	unsigned shift = *end == 'K' || *end == 'k' ? 10 : *end == 'M' || *end == 'm' ? 20 : 0;
	if (shift)
		end++;
	if (*end || v > (MAX_BLOCK >> shift))
		return 0;
	return (size_t)(v << shift);
}

int main(int argc, char **argv)
{
	crew_config cfg = { 0 };
	copy c = { .depth = 8, .block = 128 << 10, .src = -1, .dst = -1 };
	const char *paths[2];
	int npaths = 0;
	bool options = true;
	for (int i = 1; i < argc; i++) {
		char *end = NULL;
		const char *a = argv[i];
		if (options && !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (options && !strcmp(a, "--workers") && i + 1 < argc) {
			unsigned long v = strtoul(argv[++i], &end, 10);
			if (*end || v < 1 || v > 1024)
				goto bad;
			cfg.workers = (unsigned)v;
		} else if (options && !strcmp(a, "--depth") && i + 1 < argc) {
			unsigned long v = strtoul(argv[++i], &end, 10);
			if (*end || v < 1 || v > MAX_DEPTH)
				goto bad;
			c.depth = (unsigned)v;
		} else if (options && !strcmp(a, "--block") && i + 1 < argc) {
			c.block = parse_size(argv[++i]);
			if (c.block < MIN_BLOCK)
				goto bad;
		} else if (options && !strcmp(a, "--")) {
			options = false;
		} else if ((options && a[0] == '-' && a[1]) || npaths == 2) {
			goto bad;
		} else {
			paths[npaths++] = a;
		}
	}
	if (npaths != 2)
		goto bad;
	c.src_path = paths[0];
	c.dst_path = paths[1];
	void *res = NULL;
	int rc = crew_run_with(&cfg, copy_main, &c, &res);
	if (rc != 0) {
		fprintf(stderr, NAME ": crew_run: %s\n", strerror(-rc));
		return 1;
	}
	return res ? 1 : 0;
bad:
	usage(stderr);
	return 2;
}
