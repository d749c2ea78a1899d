/*
 * minicrit runner (see minicrit.h): runs every registered test in a forked
 * child, up to --jobs at a time, kills those over their timeout, and exits
 * non-zero when one failed, crashed or timed out.
 * Options: --jobs=N / -jN, --filter=GLOB (on "suite/name"), --verbose, --list.
 */
#define _GNU_SOURCE
#include "minicrit.h"

#include <errno.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct mc_test *tests, **tests_tail = &tests;
static int failures;   /* in a test's child */
static bool verbose;

void mc_register(struct mc_test *t)
{
	*tests_tail = t; /* keep the order of the source file */
	tests_tail = &t->next;
}

void mc_check(bool ok, bool fatal, const char *file, int line, const char *expr,
              const char *fmt, ...)
{
	if (ok)
		return;
	char msg[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "[----] %s:%d: Assertion failed: %s\n", file, line, expr);
	if (msg[0] && msg[1]) /* the message comes with one leading space */
		fprintf(stderr, "[----]  %s\n", msg);
	failures++;
	if (fatal) {
		fflush(NULL);
		exit(1);
	}
}

void mc_log(const char *fmt, ...)
{
	if (!verbose)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "[----] ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct slot {
	pid_t pid;
	struct mc_test *t;
	double start;
	bool killed;
} slot;

static void finish(slot *s, int status, int *passed, int *failed)
{
	double took = now_s() - s->start;
	const char *what = NULL;
	char buf[96];
	if (s->killed) {
		what = "TIMEOUT";
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		what = NULL;
	} else if (WIFEXITED(status)) {
		snprintf(buf, sizeof buf, "FAIL (exit %d%s)", WEXITSTATUS(status),
		         WEXITSTATUS(status) == 66 ? ": ThreadSanitizer report" : "");
		what = buf;
	} else if (WIFSIGNALED(status)) {
		snprintf(buf, sizeof buf, "CRASH (signal %d, %s)", WTERMSIG(status),
		         strsignal(WTERMSIG(status)));
		what = buf;
	}
	if (what) {
		fprintf(stderr, "[%s] %s::%s: (%.2fs)\n", what, s->t->suite, s->t->name, took);
		(*failed)++;
	} else {
		if (verbose)
			fprintf(stderr, "[PASS] %s::%s: (%.2fs)\n", s->t->suite, s->t->name, took);
		(*passed)++;
	}
	s->pid = 0;
}

int main(int argc, char **argv)
{
	long jobs = sysconf(_SC_NPROCESSORS_ONLN);
	const char *filter = NULL;
	bool list = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strncmp(a, "--jobs=", 7))
			jobs = atol(a + 7);
		else if (!strcmp(a, "--jobs") && i + 1 < argc)
			jobs = atol(argv[++i]);
		else if (!strncmp(a, "-j", 2) && a[2])
			jobs = atol(a + 2);
		else if (!strncmp(a, "--filter=", 9))
			filter = a + 9;
		else if (!strcmp(a, "--filter") && i + 1 < argc)
			filter = argv[++i];
		else if (!strncmp(a, "--verbose", 9))
			verbose = true;
		else if (!strcmp(a, "--list") || !strcmp(a, "-l"))
			list = true;
		else {
			fprintf(stderr, "usage: %s [--jobs=N] [--filter=GLOB] [--verbose] [--list]\n",
			        argv[0]);
			return 2;
		}
	}
	if (jobs < 1)
		jobs = 1;
	if (jobs > 64)
		jobs = 64;

	slot slots[64] = {{0}};
	int passed = 0, failed = 0, running = 0;
	struct mc_test *next = tests;
	fflush(NULL);
	for (;;) {
		/* Start tests while there are free slots. */
		while (next && running < jobs) {
			struct mc_test *t = next;
			next = next->next;
			char full[512];
			snprintf(full, sizeof full, "%s/%s", t->suite, t->name);
			if (filter && fnmatch(filter, full, 0) != 0)
				continue;
			if (list) {
				printf("%s\n", full);
				continue;
			}
			if (verbose)
				fprintf(stderr, "[RUN ] %s::%s\n", t->suite, t->name);
			int k = 0;
			while (slots[k].pid)
				k++;
			fflush(NULL);
			pid_t pid = fork();
			if (pid < 0) {
				perror("fork");
				return 2;
			}
			if (pid == 0) {
				t->fn();
				fflush(NULL);
				exit(failures ? 1 : 0);
			}
			slots[k] = (slot){pid, t, now_s(), false};
			running++;
		}
		if (running == 0)
			break;
		/* Reap one, or kill those over their timeout. */
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid > 0) {
			for (int k = 0; k < jobs; k++)
				if (slots[k].pid == pid) {
					finish(&slots[k], status, &passed, &failed);
					running--;
				}
			continue;
		}
		double now = now_s();
		for (int k = 0; k < jobs; k++)
			if (slots[k].pid && !slots[k].killed && slots[k].t->opts.timeout > 0 &&
			    now - slots[k].start > slots[k].t->opts.timeout) {
				kill(slots[k].pid, SIGKILL);
				slots[k].killed = true;
			}
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (!list)
		fprintf(stderr, "[====] Synthesis: Tested: %d | Passing: %d | Failing: %d\n",
		        passed + failed, passed, failed);
	return failed ? 1 : 0;
}
