/*
 * An operation belongs to the worker that submitted it (io/io.c), on every
 * backend (IO_TEST, io_helpers.h): a task doing I/O on one worker, then on
 * another; a cancel that must travel to the op's home worker.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE; task states */
#include "io_helpers.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- a task that moves between workers between operations ---- */

/*
 * Each round, the mover M spawns a holder H and holds its own worker until
 * the other worker took H; H holds that one until M waits on a future, then
 * sets it: M lands in H's LIFO slot and runs there once H returns. So M
 * does I/O on one worker, moves, and does I/O on the other. (An idle worker
 * may take M over from H's LIFO slot if it saw H's worker stuck for the
 * grace period, keeping M where it was in that round: migrations are
 * counted over the rounds, not asserted for each.)
 */
#define MOVE_ROUNDS 8

typedef struct mover {
	int sv[2];
	crew_future *go;
	atomic_int holder_runs, mover_waits;
	crew_task *mover;
	int migrations;
	const char *err;
} mover;

static void *mover_holder(void *p)
{
	mover *m = p;
	atomic_store(&m->holder_runs, 1);
	/* hold this worker (no suspension) until the mover waits */
	while (!atomic_load(&m->mover_waits))
		sched_yield();
	for (;;) { /* until M is switched out in its await */
		uint32_t st = crew__load_acquire_32(&m->mover->state);
		if (!(st & (CREW_T_RUNNING | CREW_T_SCHEDULED)))
			break;
		sched_yield();
	}
	crew_future_set(m->go, NULL); /* the mover lands in our LIFO slot */
	return NULL;
}

static bool mover_io(mover *m)
{
	char buf[8];
	return crew_send(m->sv[0], "abcd", 4, MSG_NOSIGNAL) == 4 &&
	       crew_recv(m->sv[1], buf, sizeof buf, 0) == 4 && !memcmp(buf, "abcd", 4);
}

static void *mover_task(void *p)
{
	mover *m = p;
	m->mover = crew_self();
	for (int k = 0; k < MOVE_ROUNDS && !m->err; k++) {
		atomic_store(&m->holder_runs, 0);
		atomic_store(&m->mover_waits, 0);
		if (!(m->go = crew_future_new())) {
			m->err = "future";
			break;
		}
		crew_task *h = crew_spawn(mover_holder, m);
		if (!h) {
			m->err = "spawn";
			break;
		}
		while (!atomic_load(&m->holder_runs)) /* the other worker takes h */
			sched_yield();
		if (!mover_io(m))
			m->err = "I/O before the move failed";
		int before = crew_worker_id();
		atomic_store(&m->mover_waits, 1);
		crew_future_await(m->go, NULL);
		int after = crew_worker_id();
		if (!mover_io(m))
			m->err = "I/O after the move failed";
		m->migrations += after != before;
		crew_join(h, NULL);
		crew_future_release(m->go);
	}
	return NULL;
}

static void *moves(void *arg)
{
	mover *m = arg;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, m->sv) == 0, "socketpair");
	crew_task *t = crew_spawn(mover_task, m);
	CHECK(t, "spawn");
	crew_join(t, NULL);
	close(m->sv[0]);
	close(m->sv[1]);
	CHECK(!m->err, "%s", m->err);
	CHECK(m->migrations > 0, "the mover never moved in %d rounds", MOVE_ROUNDS);
	return NULL;
}

/* ---- a cancel that must travel to the op's home worker ---- */

/*
 * R blocks in a recv on worker X (its home). The canceller C runs on the
 * other worker Y, which it holds (no suspension) until R waits: the cancel's
 * wake puts R in Y's LIFO slot, and when C finishes R runs on Y, from where
 * its cancel request goes through X's queue and eventfd (io.c).
 */
typedef struct remote {
	int sv[2];
	atomic_int c_runs;
	crew_task *r;         /* atomic */
	crewt_blocked b;
	int home, canceller, cancel_rc;
} remote;

static void *remote_reader(void *p)
{
	remote *m = p;
	m->home = crew_worker_id();
	atomic_store(&m->b.calling, 1);
	m->b.rc = crew_recv(m->b.fd, m->b.buf, sizeof m->b.buf, 0);
	memset(m->b.buf, 'K', sizeof m->b.buf); /* the canary */
	return NULL;
}

static void *remote_canceller(void *p)
{
	remote *m = p;
	m->canceller = crew_worker_id();
	atomic_store(&m->c_runs, 1);
	crew_task *r;
	while (!(r = __atomic_load_n(&m->r, __ATOMIC_ACQUIRE)) || !atomic_load(&m->b.calling))
		sched_yield(); /* hold this worker */
	for (;;) { /* until R is switched out in its recv (its only suspension) */
		uint32_t st = crew__load_acquire_32(&r->state);
		if (!(st & (CREW_T_RUNNING | CREW_T_SCHEDULED)))
			break;
		sched_yield();
	}
	m->cancel_rc = crew_cancel(r);
	return NULL;
}

static void *cancel_remote(void *arg)
{
	remote *m = arg;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, m->sv) == 0, "socketpair");
	m->b.fd = m->sv[0];
	crew_task *c = crew_spawn(remote_canceller, m);
	CHECK(c, "spawn");
	while (!atomic_load(&m->c_runs)) /* hold our worker: the other one takes c */
		sched_yield();
	crew_task *r = crew_spawn(remote_reader, m);
	CHECK(r, "spawn");
	__atomic_store_n(&m->r, r, __ATOMIC_RELEASE);
	int jr = crew_join(r, NULL); /* r runs here, on our worker */
	crew_join(c, NULL);
	CHECK(m->home != m->canceller, "reader and canceller both on worker %d", m->home);
	CHECK(m->cancel_rc == 0 && jr == -ECANCELED, "cancel %d, join %d", m->cancel_rc, jr);
	CHECK(m->b.rc == -ECANCELED, "recv returned %zd, expected -ECANCELED", m->b.rc);
	CHECK(write(m->sv[1], "data", 4) == 4, "write");
	char in[8];
	ssize_t n = crew_read(m->sv[0], in, sizeof in);
	CHECK(n == 4 && !memcmp(in, "data", 4), "read after the cancel: %zd", n);
	for (size_t i = 0; i < sizeof m->b.buf; i++)
		CHECK(m->b.buf[i] == 'K', "the buffer was written after the call returned");
	close(m->sv[0]);
	close(m->sv[1]);
	return NULL;
}

static remote the_remote;
IO_TEST(cancel_reaches_home_worker, 2, cancel_remote, &the_remote)

static mover the_mover;
IO_TEST(moves_between_workers, 2, moves, &the_mover)
