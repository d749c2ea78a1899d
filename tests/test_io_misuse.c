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
#include <sys/socket.h>
#include <sys/stat.h>
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

/* ---- the message, shutdown, sync, statx, splice and sendfile calls ---- */

/* Each with a closed fd, then with -1, in each fd argument: -EBADF. */
static void *bad_fds(void *arg)
{
	(void)arg;
	int p[2], q[2], sv[2];
	CHECK(pipe(p) == 0 && pipe2(q, O_CLOEXEC) == 0, "pipe");
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	char path[] = "/tmp/crew-test-misuse-XXXXXX";
	int file = mkostemp(path, O_CLOEXEC);
	CHECK(file >= 0, "mkstemp");
	unlink(path);
	CHECK(write(file, "data", 4) == 4, "write");
	close(p[0]);
	close(p[1]);
	for (int i = 0; i < 2; i++) {
		int bad = i ? -1 : p[0];
		char buf[4];
		struct iovec iov = { buf, sizeof buf };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
		struct statx st;
		off_t off = 0;
		long rc;
		CHECK((rc = crew_recvmsg(bad, &m, 0)) == -EBADF, "recvmsg(%d): %ld", bad, rc);
		CHECK((rc = crew_sendmsg(bad, &m, MSG_NOSIGNAL)) == -EBADF, "sendmsg(%d): %ld", bad, rc);
		CHECK((rc = crew_shutdown(bad, SHUT_RDWR)) == -EBADF, "shutdown(%d): %ld", bad, rc);
		CHECK((rc = crew_fdatasync(bad)) == -EBADF, "fdatasync(%d): %ld", bad, rc);
		CHECK((rc = crew_statx(bad, "relative", 0, STATX_SIZE, &st)) == -EBADF, "statx(%d): %ld", bad, rc);
		CHECK((rc = crew_splice(bad, NULL, q[1], NULL, 4, 0)) == -EBADF, "splice(%d, pipe): %ld", bad, rc);
		CHECK((rc = crew_splice(q[0], NULL, bad, NULL, 4, 0)) == -EBADF, "splice(pipe, %d): %ld", bad, rc);
		CHECK((rc = crew_sendfile(bad, file, &off, 4)) == -EBADF, "sendfile(%d, file): %ld", bad, rc);
		CHECK((rc = crew_sendfile(sv[0], bad, &off, 4)) == -EBADF, "sendfile(socket, %d): %ld", bad, rc);
		CHECK(off == 0, "a failed sendfile moved its offset");
	}
	close(q[0]);
	close(q[1]);
	close(sv[0]);
	close(sv[1]);
	close(file);
	return NULL;
}

/* NULL pointers, negative offsets, unknown flags: -EINVAL, nothing done. */
static void *bad_input(void *arg)
{
	(void)arg;
	int p[2], sv[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe");
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	struct msghdr no_iov = { .msg_iov = NULL, .msg_iovlen = 2 };
	struct statx st;
	off_t neg = -1;
	long rc;
	CHECK((rc = crew_recvmsg(sv[0], NULL, 0)) == -EINVAL, "recvmsg(NULL): %ld", rc);
	CHECK((rc = crew_sendmsg(sv[0], NULL, 0)) == -EINVAL, "sendmsg(NULL): %ld", rc);
	CHECK((rc = crew_recvmsg(sv[0], &no_iov, 0)) == -EINVAL, "recvmsg without iovecs: %ld", rc);
	CHECK((rc = crew_sendmsg(sv[0], &no_iov, 0)) == -EINVAL, "sendmsg without iovecs: %ld", rc);
	CHECK((rc = crew_statx(AT_FDCWD, NULL, 0, STATX_SIZE, &st)) == -EINVAL, "statx(NULL path): %ld", rc);
	CHECK((rc = crew_statx(AT_FDCWD, "/", 0, STATX_SIZE, NULL)) == -EINVAL, "statx(NULL out): %ld", rc);
	CHECK((rc = crew_splice(p[0], &neg, sv[0], NULL, 4, 0)) == -EINVAL, "splice(off_in -1): %ld", rc);
	CHECK((rc = crew_splice(sv[0], NULL, p[1], &neg, 4, 0)) == -EINVAL, "splice(off_out -1): %ld", rc);
	CHECK((rc = crew_splice(sv[0], NULL, p[1], NULL, 4, 0x80000000u)) == -EINVAL, "splice flags: %ld", rc);
	CHECK((rc = crew_sendfile(sv[0], p[0], &neg, 4)) == -EINVAL, "sendfile(offset -1): %ld", rc);
	CHECK(neg == -1, "a refused call changed the offset");
	CHECK((rc = crew_shutdown(sv[0], 3)) == -EINVAL, "shutdown(how 3): %ld", rc);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

IO_TEST_EMUL(bad_fds, 1, bad_fds, NULL)
IO_TEST_EMUL(bad_input, 1, bad_input, NULL)

Test(io, outside_a_task_new_calls)
{
	char buf[4];
	struct iovec iov = { buf, sizeof buf };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct statx st;
	off_t off = 0;
	cr_expect_eq(crew_recvmsg(0, &m, 0), -EPERM);
	cr_expect_eq(crew_sendmsg(1, &m, 0), -EPERM);
	cr_expect_eq(crew_shutdown(0, SHUT_RDWR), -EPERM);
	cr_expect_eq(crew_fdatasync(1), -EPERM);
	cr_expect_eq(crew_statx(AT_FDCWD, "/", 0, STATX_SIZE, &st), -EPERM);
	cr_expect_eq(crew_splice(0, NULL, 1, NULL, 4, 0), -EPERM);
	cr_expect_eq(crew_sendfile(1, 0, &off, 4), -EPERM);
	cr_expect_eq(off, 0);
}
