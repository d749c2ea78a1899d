/* reactor_uring_setup.c - creating and destroying a worker's ring. */
#include "reactor_uring.h"
#include "nowait.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

uint32_t crew__uring_force_emulate;

_Static_assert(CREW_IO_KINDS <= 32, "crew__uring.emulated holds a bit per kind");

/* The kinds this ring runs as emulated ops (reactor_uring.c): sendfile, which
 * has no opcode; splice, whose opcode waits in io_uring's worker thread
 * holding the pipe's lock (a pipe-to-socket splice waiting for room in the
 * socket), so that a write to that pipe, which io_uring issues inline, put
 * the worker thread itself to sleep in io_uring_enter, for ever when the
 * task that drains the socket ran on that worker; and those whose opcode
 * the kernel lacks (Linux 5.10 has no SHUTDOWN; no probe at all: assume
 * none of them). */
static uint32_t uring_emulated_kinds(struct io_uring *ring)
{
	static const struct {
		crew__io_kind kind;
		int opcode;
	} ops[] = {
		{ CREW_IO_FSYNC, IORING_OP_FSYNC },       { CREW_IO_RECVMSG, IORING_OP_RECVMSG },
		{ CREW_IO_SENDMSG, IORING_OP_SENDMSG },   { CREW_IO_SHUTDOWN, IORING_OP_SHUTDOWN },
		{ CREW_IO_STATX, IORING_OP_STATX },
	};
	uint32_t kinds = 1u << CREW_IO_SENDFILE | 1u << CREW_IO_SPLICE;
	struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!probe || !io_uring_opcode_supported(probe, ops[i].opcode))
			kinds |= 1u << ops[i].kind;
	if (probe)
		io_uring_free_probe(probe);
	for (unsigned k = 0; k < CREW_IO_KINDS; k++)
		if ((crew__uring_force_emulate & (1u << k)) && crew__io_nowait_kind((crew__io_kind)k))
			kinds |= 1u << k;
	return kinds;
}

int crew__uring_init(crew__reactor *r, unsigned entries, int wake_fd, bool loud)
{
	crew__uring *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->wake_fd = wake_fd;
	u->entries = entries;
	u->armed_deadline = UINT64_MAX;
	/* COOP_TASKRUN (5.19+): completions are posted when the worker next
	 * enters the kernel instead of by interrupting it (an IPI each), and
	 * TASKRUN_FLAG tells it when it should enter for them: uring_poll then
	 * does, so a busy worker's fairness tick still reaps them. Measured:
	 * http-server 69k -> 91k req/s at 64 connections, 72k -> 112k at 256.
	 * Older kernels (EINVAL): a plain ring. */
	unsigned coop = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
	int rc = -EINVAL;
	const char *exp = getenv("CREW_URING_SETUP");
	if (!exp || strcmp(exp, "coop") != 0) {
		rc = io_uring_queue_init(entries, &u->ring,
					 coop | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
						 IORING_SETUP_R_DISABLED);
		u->defer = rc == 0;
	}
	if (rc == -EINVAL)
		rc = io_uring_queue_init(entries, &u->ring, coop);
	/* COOP_TASKRUN came with 5.19, as did IORING_RECVSEND_POLL_FIRST */
	u->poll_first = rc == 0 && !getenv("CREW_URING_NO_POLL_FIRST");
	if (rc == -EINVAL)
		rc = io_uring_queue_init(entries, &u->ring, 0);
	if (rc < 0) {
		if (loud)
			fprintf(stderr, "crew: io_uring_queue_init(%u) failed: %s%s\n", entries,
				strerror(-rc),
				rc == -ENOSYS || rc == -EPERM ?
					" (io_uring is unavailable here: an old kernel, or blocked by "
					"seccomp or kernel.io_uring_disabled)" :
				rc == -ENOMEM ? " (locked-memory limit too low? see ulimit -l)" : "");
		free(u);
		return rc;
	}
	/* A forked child must not share the ring with us (run.c, fork). Best
	 * effort: the child's crew calls fail without it anyway. */
	(void)io_uring_ring_dontfork(&u->ring);
	r->impl = u;
	return 0;
}

/* A ring made with R_DISABLED (init, on crew_run's thread) starts on the
 * worker's thread: SINGLE_ISSUER binds it to the thread that enables it. */
static void uring_enable(crew__uring *u)
{
	/* liburing 2.3 declares io_uring_enable_rings but does not export it */
	if (syscall(__NR_io_uring_register, u->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) == 0)
		return;
	/* cannot happen short of a kernel bug; stay usable: a plain ring */
	fprintf(stderr, "crew: io_uring_enable_rings failed: %s; using a ring without DEFER_TASKRUN\n",
		strerror(errno));
	io_uring_queue_exit(&u->ring);
	u->defer = u->poll_first = false;
	int rc = io_uring_queue_init(u->entries, &u->ring, 0);
	if (rc < 0) {
		fprintf(stderr, "crew: io_uring_queue_init failed: %s\n", strerror(-rc));
		abort();
	}
	(void)io_uring_ring_dontfork(&u->ring);
}

void crew__uring_start(crew__reactor *r)
{
	crew__uring *u = r->impl;
	if (u->defer)
		uring_enable(u);
	/* The ring's fd registered with this thread (5.18+): io_uring_enter
	 * then skips the fd lookup. Per thread, so here; EINVAL on older
	 * kernels is fine (liburing keeps using the plain fd). */
	if (!getenv("CREW_URING_NO_RING_FD"))
		(void)io_uring_register_ring_fd(&u->ring);
	/* probed here: the ring is enabled, by the thread that will issue on
	 * it (a SINGLE_ISSUER ring may refuse others), and final */
	u->emulated = uring_emulated_kinds(&u->ring);
}

void crew__uring_fini(crew__reactor *r)
{
	crew__uring *u = r->impl;
	if (!u)
		return;
	io_uring_queue_exit(&u->ring);
	free(u->cancel_keys);
	free(u);
	r->impl = NULL;
}
