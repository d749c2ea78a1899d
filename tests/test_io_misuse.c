/*
 * I/O calls given bad input, or called where they cannot run: errors, never
 * a crash (IO_TEST, io_helpers.h).
 */
#include "internal.h" /* first: it defines _GNU_SOURCE; task states */
#include "io_helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- errors ---- */

static void *errors(void *arg)
{
	(void)arg;
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	close(p[0]);
	close(p[1]);
	char buf[4];
	ssize_t n = crew_read(p[0], buf, sizeof buf);
	CHECK(n == -EBADF, "read of a closed fd: %zd", n);
	int fd = crew_openat(AT_FDCWD, "/nonexistent-crew-dir/missing", O_RDONLY, 0);
	CHECK(fd == -ENOENT, "open of a missing file: %d", fd);
	return NULL;
}

IO_TEST(errors, 1, errors, NULL)

/* Outside a task: -EPERM, nothing done. A bad CREW_BACKEND: -EINVAL. */
Test(io, outside_a_task)
{
	char buf[4];
	cr_expect_eq(crew_read(0, buf, sizeof buf), -EPERM);
	cr_expect_eq(crew_write(1, buf, 0), -EPERM);
	cr_expect_eq(crew_accept(0, NULL, NULL, 0), -EPERM);
	cr_expect_eq(crew_close(12345), -EPERM);
	cr_expect_eq(crew_poll(0, POLLIN), -EPERM);
	crew_deadline d;
	cr_expect_eq(crew_deadline_push(&d, 0), -EPERM);
	cr_expect_null(crew_backend_name());
}

Test(io, bad_backend_name)
{
	setenv("CREW_BACKEND", "kqueue", 1);
	cr_expect_eq(crewt_run(1, crewt_check_backend, "epoll", NULL), -EINVAL);
}
