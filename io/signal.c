/*
 * signal.c - crew_signal_wait: a task waits for signals (asyncio's
 * loop.add_signal_handler, as a call that suspends).
 *
 * The signals are read from a signalfd made for the call, through the
 * reactor's readiness wait (crew_poll), so any backend serves them and the
 * wait is cancellable and obeys deadline scopes. A signalfd only sees
 * signals that are blocked (otherwise their handler or default action takes
 * them first): the caller's set must be blocked in the worker threads, which
 * inherit the signal mask of the thread that called crew_run.
 */
#define _GNU_SOURCE
#include "internal.h"
#include <crew.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

int crew_signal_wait(const sigset_t *set)
{
	if (!set)
		return -EINVAL;
	if (!crew_self())
		return -EPERM;
	sigset_t blocked;
	pthread_sigmask(SIG_BLOCK, NULL, &blocked);
	for (int sig = 1; sig < NSIG; sig++) {
		if (sigismember(set, sig) == 1 && sigismember(&blocked, sig) != 1) {
			crew__error("crew_signal_wait: signal %d is not blocked in the workers; block the "
				    "set (pthread_sigmask) in the thread that calls crew_run, before it",
				    sig);
			return -EINVAL;
		}
	}
	int fd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc;
	for (;;) {
		struct signalfd_siginfo si;
		ssize_t n = read(fd, &si, sizeof(si));
		if (n == (ssize_t)sizeof(si)) {
			rc = (int)si.ssi_signo;
			break;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			rc = -errno;
			break;
		}
		/* Nothing pending yet: wait for the fd (cancellable, deadlines) */
		if ((rc = crew_poll(fd, POLLIN)) < 0)
			break;
	}
	close(fd);
	return rc;
}
