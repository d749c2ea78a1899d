/*
 * Deadline scopes (crew_deadline_push) over I/O on every backend (IO_TEST,
 * io_helpers.h).
 */
#include "internal.h" /* first: it defines _GNU_SOURCE; task states */
#include "io_helpers.h"

#include <errno.h>
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
