/*
 * Regular files on every backend (IO_TEST, io_helpers.h; the new calls also
 * on io_uring emulating them, IO_TEST_EMUL): write, fsync or fdatasync, read
 * back; statx of a file, by path, by fd and relative to a directory, and of
 * paths that do not resolve.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE; task states */
#include "io_helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- write, fsync, read back ---- */

static void *file_checksum(void *arg)
{
	(void)arg;
	char path[] = "/tmp/crew-test-io-XXXXXX";
	int tmp = mkstemp(path);
	CHECK(tmp >= 0, "mkstemp");
	close(tmp);
	int fd = crew_openat(AT_FDCWD, path, O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
	unlink(path);
	CHECK(fd >= 0, "crew_openat: %d", fd);
	size_t len = 1 << 20;
	unsigned char *out = malloc(len), *in = malloc(len);
	CHECK(out && in, "malloc");
	crewt_fill(out, len, 7);
	ssize_t n = crew_write_all(fd, out, len / 2);
	CHECK(n == (ssize_t)(len / 2), "crew_write_all: %zd", n);
	n = crew_pwrite(fd, out + len / 2, len / 2, (off_t)(len / 2));
	CHECK(n == (ssize_t)(len / 2), "crew_pwrite: %zd", n);
	CHECK(crew_fsync(fd) == 0, "crew_fsync");
	size_t got = 0;
	while (got < len) {
		n = crew_pread(fd, in + got, len - got, (off_t)got);
		CHECK(n > 0, "crew_pread at %zu: %zd", got, n);
		got += (size_t)n;
	}
	uint64_t a = crewt_checksum(out, len), b = crewt_checksum(in, len);
	free(out);
	free(in);
	CHECK(a == b, "read back differs");
	CHECK(crew_close(fd) == 0, "crew_close");
	return NULL;
}

IO_TEST(file_checksum, 2, file_checksum, NULL)

/* ---- fdatasync, then read back through another fd ---- */

static void *fdatasync_readback(void *arg)
{
	(void)arg;
	char path[] = "/tmp/crew-test-io-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp");
	size_t len = (256 << 10) + 123;
	unsigned char *out = malloc(len), *in = malloc(len);
	if (!out || !in) {
		free(out);
		free(in);
		unlink(path);
		FAIL("malloc");
	}
	crewt_fill(out, len, 11);
	size_t done = 0;
	ssize_t n = 0;
	while (done < len && (n = crew_pwrite(fd, out + done, len - done, (off_t)done)) > 0)
		done += (size_t)n;
	int rc = done == len ? crew_fdatasync(fd) : -EIO;
	crew_close(fd);
	int fd2 = crew_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
	unlink(path);
	size_t got = 0;
	while (fd2 >= 0 && got < len && (n = crew_pread(fd2, in + got, len - got, (off_t)got)) > 0)
		got += (size_t)n;
	uint64_t a = crewt_checksum(out, len), b = crewt_checksum(in, got);
	free(out);
	free(in);
	if (fd2 >= 0)
		crew_close(fd2);
	CHECK(done == len, "crew_pwrite after %zu bytes: %zd", done, n);
	CHECK(rc == 0, "crew_fdatasync: %d", rc);
	CHECK(fd2 >= 0, "reopen: %d", fd2);
	CHECK(got == len && a == b, "read back %zu of %zu bytes, %s", got, len, a == b ? "same" : "differ");
	/* an fd that cannot be synced */
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	rc = crew_fdatasync(p[0]);
	close(p[0]);
	close(p[1]);
	CHECK(rc == -EINVAL, "fdatasync of a pipe: %d, expected -EINVAL", rc);
	return NULL;
}

/* ---- statx ---- */

static void *statx_file(void *arg)
{
	(void)arg;
	char path[] = "/tmp/crew-test-io-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp");
	unsigned char data[12345];
	crewt_fill(data, sizeof data, 5);
	ssize_t n = write(fd, data, sizeof data);
	struct statx st;
	memset(&st, 0xa5, sizeof st);
	int rc = crew_statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, &st);
	struct statx byfd, rel;
	memset(&byfd, 0xa5, sizeof byfd);
	memset(&rel, 0xa5, sizeof rel);
	int rc_fd = crew_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &byfd);
	/* relative to a directory fd: the temporary file's name in /tmp */
	char copy[sizeof path];
	memcpy(copy, path, sizeof path);
	int dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc_rel = dir < 0 ? -errno : crew_statx(dir, basename(copy), 0, STATX_SIZE, &rel);
	char sub[sizeof path + 8];
	snprintf(sub, sizeof sub, "%s/x", path);
	struct statx none;
	int rc_notdir = crew_statx(AT_FDCWD, sub, 0, STATX_SIZE, &none);
	if (dir >= 0)
		close(dir);
	close(fd);
	unlink(path);
	CHECK(n == (ssize_t)sizeof data, "write: %zd", n);
	CHECK(rc == 0, "crew_statx by path: %d", rc);
	CHECK((st.stx_mask & STATX_SIZE) && st.stx_size == sizeof data, "size %llu (mask %#x), expected %zu",
	      (unsigned long long)st.stx_size, st.stx_mask, sizeof data);
	CHECK((st.stx_mask & STATX_TYPE) && S_ISREG(st.stx_mode), "mode %#o: not a regular file", st.stx_mode);
	CHECK(rc_fd == 0 && byfd.stx_size == sizeof data, "crew_statx by fd: %d, size %llu", rc_fd,
	      (unsigned long long)byfd.stx_size);
	CHECK(rc_rel == 0 && rel.stx_size == sizeof data, "crew_statx relative to /tmp: %d, size %llu",
	      rc_rel, (unsigned long long)rel.stx_size);
	CHECK(rc_notdir == -ENOTDIR, "a file used as a directory: %d, expected -ENOTDIR", rc_notdir);
	rc = crew_statx(AT_FDCWD, "/nonexistent-crew-dir/missing", 0, STATX_SIZE, &none);
	CHECK(rc == -ENOENT, "statx of a missing path: %d, expected -ENOENT", rc);
	return NULL;
}

IO_TEST_EMUL(fdatasync_readback, 2, fdatasync_readback, NULL)
IO_TEST_EMUL(statx_file, 2, statx_file, NULL)
