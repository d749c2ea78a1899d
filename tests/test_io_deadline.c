/*
 * Deadline scopes (crew_deadline_push) over I/O on every backend (IO_TEST,
 * io_helpers.h; recvmsg, splice and sendfile also on io_uring emulating
 * them, IO_TEST_EMUL).
 */
#include "internal.h" /* first: it defines _GNU_SOURCE; task states */
#include "io_helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- deadline scopes ---- */

static void *sleep_child(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)(crew_sleep(CREWT_MS) == 0);
}

static void *deadline_slow_peer(void *arg)
{
	(void)arg;
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	char buf[8];
	memset(buf, 'C', sizeof buf);
	crew_deadline outer, inner;
	uint64_t t0 = crew_now();
	CHECK(crew_deadline_push(&outer, t0 + 60 * CREWT_SEC) == 0, "push outer");
	CHECK(crew_deadline_push(&inner, t0 + 20 * CREWT_MS) == 0, "push inner");
	ssize_t n = crew_recv(sv[0], buf, sizeof buf, 0);
	uint64_t waited = crew_now() - t0;
	CHECK(n == -ETIMEDOUT, "recv past the scope's deadline: %zd", n);
	CHECK(waited >= 20 * CREWT_MS, "returned before the deadline (%llu ns)",
	      (unsigned long long)waited);
	CHECK(crew_deadline_expired(&inner) && !crew_deadline_expired(&outer), "expired()");
	/* the scope applies to sleeps and awaits too, and stays expired */
	CHECK(crew_sleep(30 * CREWT_SEC) == -ETIMEDOUT, "sleep in an expired scope");
	crew_future *f = crew_future_new();
	CHECK(f, "future");
	CHECK(crew_future_await(f, NULL) == -ETIMEDOUT, "await in an expired scope");
	/* crew_join is not a cancellation point: the scope does not end it, and
	 * the child does not inherit it */
	crew_task *child = crew_spawn(sleep_child, NULL);
	CHECK(child, "spawn");
	void *cr = NULL;
	CHECK(crew_join(child, &cr) == 0 && cr == (void *)1, "join in an expired scope: child %p", cr);
	CHECK(crew_deadline_pop(&outer) == -EINVAL, "pop of the outer scope first");
	CHECK(crew_deadline_pop(&inner) == 0, "pop inner");
	/* the outer, far deadline applies again: a short sleep ends normally */
	CHECK(crew_sleep(CREWT_MS) == 0, "sleep under the outer scope");
	/* the cancelled recv did not take the data now sent, nor touch buf */
	CHECK(write(sv[1], "late", 4) == 4, "write");
	char again[8] = { 0 };
	CHECK((n = crew_recv(sv[0], again, sizeof again, 0)) == 4 && !memcmp(again, "late", 4),
	      "recv after the timed-out one: %zd", n);
	for (size_t i = 0; i < sizeof buf; i++)
		CHECK(buf[i] == 'C', "the timed-out recv wrote into its buffer");
	CHECK(crew_deadline_pop(&outer) == 0, "pop outer");
	crew_future_set(f, NULL);
	crew_future_release(f);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

IO_TEST(deadline_slow_peer, 2, deadline_slow_peer, NULL)

/* A recvmsg on an empty socket, a splice from an empty pipe, a sendfile to a
 * full socket: each ends with -ETIMEDOUT at its scope's deadline, having
 * taken nothing (what comes later is still there). */
static void *deadline_waiting_calls(void *arg)
{
	(void)arg;
	int sv[2], full[2], p[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, full) == 0, "socketpair");
	CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe");
	char junk[1024] = { 0 };
	while (send(full[0], junk, sizeof junk, MSG_DONTWAIT) > 0)
		;
	char path[] = "/tmp/crew-test-deadline-XXXXXX";
	int src = mkostemp(path, O_CLOEXEC), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	CHECK(src >= 0 && null >= 0, "files");
	unlink(path);
	CHECK(write(src, junk, sizeof junk) == (ssize_t)sizeof junk, "write");
	for (int which = 0; which < 3; which++) {
		static const char *const names[] = { "recvmsg", "splice", "sendfile" };
		char buf[16];
		struct iovec iov = { buf, sizeof buf };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
		off_t off = 0;
		crew_deadline d;
		uint64_t t0 = crew_now();
		CHECK(crew_deadline_push(&d, t0 + 20 * CREWT_MS) == 0, "push");
		ssize_t n = which == 0 ? crew_recvmsg(sv[0], &m, 0) :
			    which == 1 ? crew_splice(p[0], NULL, null, NULL, sizeof buf, 0) :
					 crew_sendfile(full[0], src, &off, sizeof junk);
		uint64_t waited = crew_now() - t0;
		CHECK(crew_deadline_pop(&d) == 0, "pop");
		CHECK(n == -ETIMEDOUT, "%s past the scope's deadline: %zd", names[which], n);
		CHECK(waited >= 20 * CREWT_MS, "%s returned before the deadline (%llu ns)", names[which],
		      (unsigned long long)waited);
		CHECK(off == 0, "the timed-out sendfile moved its offset");
	}
	char in[8];
	CHECK(write(sv[1], "late", 4) == 4 && write(p[1], "late", 4) == 4, "write");
	ssize_t n = crew_recv(sv[0], in, sizeof in, 0);
	CHECK(n == 4 && !memcmp(in, "late", 4), "recv after the timed-out recvmsg: %zd", n);
	n = crew_read(p[0], in, sizeof in);
	CHECK(n == 4 && !memcmp(in, "late", 4), "read after the timed-out splice: %zd", n);
	close(sv[0]);
	close(sv[1]);
	close(full[0]);
	close(full[1]);
	close(p[0]);
	close(p[1]);
	close(src);
	close(null);
	return NULL;
}

IO_TEST_EMUL(deadline_waiting_calls, 2, deadline_waiting_calls, NULL)
