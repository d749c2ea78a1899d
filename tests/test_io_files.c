/*
 * Regular files on every backend (IO_TEST, io_helpers.h): write, fsync,
 * read back.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE; task states */
#include "io_helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
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
