/*
 * build/examples/crew-cp as a user runs it, on each backend: a
 * multi-megabyte file of random bytes (fixed seed) copied with several block
 * sizes and depths, compared by checksum; into a directory; over a larger
 * file; an empty file; and the failures (a missing source, a destination
 * that cannot be created, the same file, a directory as the source, bad
 * usage), each a message and a nonzero exit status.
 */
#include "io_helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CP EXAMPLES_DIR "/crew-cp"
#define SRC_LEN ((6u << 20) + 12345)

static char dir[64];

/* A fresh directory for the test's files (removed by `cleanup`). */
static void make_dir(void)
{
	snprintf(dir, sizeof dir, "/tmp/crew-test-cp-XXXXXX");
	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

static void cleanup(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		cr_log_info("could not remove %s", dir);
}

static const char *in_dir(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", dir, name);
	return buf;
}

/* Write `len` bytes of seed's random data to path; their checksum. */
static uint64_t write_random(const char *path, size_t len, unsigned seed)
{
	unsigned char *p = malloc(len ? len : 1);
	cr_assert_not_null(p);
	crewt_fill(p, len, seed);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	for (size_t done = 0; done < len;) {
		ssize_t n = write(fd, p + done, len - done);
		cr_assert_gt(n, 0, "write: %s", strerror(errno));
		done += (size_t)n;
	}
	close(fd);
	uint64_t sum = crewt_checksum(p, len);
	free(p);
	return sum;
}

/* The checksum and size of a file; false when it cannot be read. */
static bool file_sum(const char *path, uint64_t *sum, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return false;
	size_t cap = 1 << 20, n = 0;
	unsigned char *p = malloc(cap);
	size_t got;
	while (p && (got = fread(p + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			unsigned char *q = realloc(p, cap *= 2);
			if (!q) {
				free(p);
				p = NULL;
			}
			p = q;
		}
	}
	fclose(f);
	if (!p)
		return false;
	*sum = crewt_checksum(p, n);
	*len = n;
	free(p);
	return true;
}

/* Run crew-cp with `args` (NULL-terminated) on `backend`. */
static crewt_proc run_cp(const char *backend, const char *const *args)
{
	char *argv[16] = { "crew-cp" };
	int n = 1;
	while (args[n - 1] && n < 15) {
		argv[n] = (char *)args[n - 1];
		n++;
	}
	argv[n] = NULL;
	char env[64];
	snprintf(env, sizeof env, "CREW_BACKEND=%s", backend);
	char *envv[] = { env, NULL };
	crewt_proc p;
	cr_assert_eq(crewt_exec_capture(CP, argv, envv, 60 * CREWT_SEC, &p), 0, "cannot run %s", CP);
	return p;
}

static void expect_exit(const crewt_proc *p, int code, const char *what)
{
	cr_expect(WIFEXITED(p->status) && WEXITSTATUS(p->status) == code, "%s: %s, expected exit %d; stderr: %s",
		  what, crewt_status_str(p->status), code, p->err);
}

static void copies(const char *backend)
{
	make_dir();
	char src[128], dst[128];
	in_dir(src, sizeof src, "src.bin");
	in_dir(dst, sizeof dst, "dst.bin");
	uint64_t want = write_random(src, SRC_LEN, 42);
	static const char *const opts[][6] = {
		{ NULL },                                          /* the defaults */
		{ "--depth", "16", "--block", "64K", "--workers", "2" },
		{ "--depth", "1", "--block", "4096", NULL },       /* one block at a time */
		{ "--depth", "5", "--block", "1M", "--workers", "1" }, /* a short last block */
	};
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
		const char *args[10];
		int n = 0;
		for (int k = 0; k < 6 && opts[i][k]; k++)
			args[n++] = opts[i][k];
		args[n++] = src;
		args[n++] = dst;
		args[n] = NULL;
		unlink(dst);
		crewt_proc p = run_cp(backend, args);
		expect_exit(&p, 0, "copy");
		cr_expect_str_empty(p.err, "%s: stderr: %s", backend, p.err);
		crewt_proc_free(&p);
		uint64_t sum = 0;
		size_t len = 0;
		cr_expect(file_sum(dst, &sum, &len), "%s: no copy", backend);
		cr_expect(len == SRC_LEN && sum == want, "%s: options %zu: copied %zu of %u bytes, %s", backend, i,
			  len, SRC_LEN, sum == want ? "same" : "differ");
	}
	/* over a larger file: truncated first */
	write_random(dst, SRC_LEN * 2, 7);
	crewt_proc p = run_cp(backend, (const char *const[]){ src, dst, NULL });
	expect_exit(&p, 0, "copy over a larger file");
	crewt_proc_free(&p);
	uint64_t sum = 0;
	size_t len = 0;
	cr_expect(file_sum(dst, &sum, &len) && len == SRC_LEN && sum == want, "%s: over a larger file: %zu bytes",
		  backend, len);
	/* into a directory */
	char sub[128], into[160];
	in_dir(sub, sizeof sub, "sub");
	cr_assert_eq(mkdir(sub, 0755), 0);
	p = run_cp(backend, (const char *const[]){ src, sub, NULL });
	expect_exit(&p, 0, "copy into a directory");
	crewt_proc_free(&p);
	snprintf(into, sizeof into, "%s/src.bin", sub);
	cr_expect(file_sum(into, &sum, &len) && len == SRC_LEN && sum == want, "%s: into a directory: %zu bytes",
		  backend, len);
	/* an empty file */
	char empty[128], empty_copy[128];
	write_random(in_dir(empty, sizeof empty, "empty"), 0, 1);
	p = run_cp(backend, (const char *const[]){ empty, in_dir(empty_copy, sizeof empty_copy, "empty2"), NULL });
	expect_exit(&p, 0, "copy of an empty file");
	crewt_proc_free(&p);
	struct stat st;
	cr_expect(stat(empty_copy, &st) == 0 && st.st_size == 0, "%s: the empty copy", backend);
	cleanup();
}

Test(crew_cp, copies_io_uring, .timeout = CREWT_TIMEOUT(120)) { copies("io_uring"); }
Test(crew_cp, copies_epoll, .timeout = CREWT_TIMEOUT(120)) { copies("epoll"); }

/* Run crew-cp with args on backend; expect exit `code` and `msg` on stderr. */
static void expect_failure(const char *backend, const char *const *args, int code, const char *msg)
{
	crewt_proc p = run_cp(backend, args);
	expect_exit(&p, code, msg);
	cr_expect(strstr(p.err, msg), "%s: stderr has no \"%s\": %s", backend, msg, p.err);
	crewt_proc_free(&p);
}

static void failures(const char *backend)
{
	make_dir();
	char src[128], missing[128], dst[128], in_missing[160], under_file[160];
	uint64_t want = write_random(in_dir(src, sizeof src, "src.bin"), 100000, 3);
	in_dir(missing, sizeof missing, "missing");
	in_dir(dst, sizeof dst, "dst.bin");
	snprintf(in_missing, sizeof in_missing, "%s/no-such-dir/x", dir);
	snprintf(under_file, sizeof under_file, "%s/x", src);
	expect_failure(backend, (const char *const[]){ missing, dst, NULL }, 1, "No such file or directory");
	cr_expect(access(dst, F_OK) != 0, "%s: a destination was created for a missing source", backend);
	expect_failure(backend, (const char *const[]){ src, in_missing, NULL }, 1, "cannot create");
	expect_failure(backend, (const char *const[]){ src, under_file, NULL }, 1, "Not a directory");
	expect_failure(backend, (const char *const[]){ src, src, NULL }, 1, "are the same file");
	uint64_t sum = 0;
	size_t len = 0;
	cr_expect(file_sum(src, &sum, &len) && len == 100000 && sum == want, "%s: copying onto itself damaged it",
		  backend);
	expect_failure(backend, (const char *const[]){ dir, dst, NULL }, 1, "Is a directory");
	expect_failure(backend, (const char *const[]){ "/dev/null", dst, NULL }, 1, "not a regular file");
	cleanup();
}

Test(crew_cp, failures_io_uring, .timeout = CREWT_TIMEOUT(60)) { failures("io_uring"); }
Test(crew_cp, failures_epoll, .timeout = CREWT_TIMEOUT(60)) { failures("epoll"); }

Test(crew_cp, usage, .timeout = CREWT_TIMEOUT(60))
{
	crewt_proc p = run_cp("io_uring", (const char *const[]){ "--help", NULL });
	expect_exit(&p, 0, "--help");
	cr_expect(strstr(p.out, "usage: crew-cp") && strstr(p.out, "--depth"), "--help: %s", p.out);
	crewt_proc_free(&p);
	static const char *const bad[][4] = {
		{ "only-one", NULL },
		{ "a", "b", "c", NULL },
		{ "--depth", "0", "a", "b" },
		{ "--block", "12", "a", "b" },
		{ "--block", "1G", "a", "b" },
		{ "--workers", "x", "a", "b" },
		{ "--bogus", "a", "b", NULL },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *args[5] = { bad[i][0], bad[i][1], bad[i][2], bad[i][3], NULL };
		p = run_cp("io_uring", args);
		expect_exit(&p, 2, bad[i][0]);
		cr_expect(strstr(p.err, "usage: crew-cp"), "%s: no usage on stderr: %s", bad[i][0], p.err);
		crewt_proc_free(&p);
	}
}
