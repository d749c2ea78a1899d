/*
 * overflow.c - turning a fiber stack overflow into a clear message.
 *
 * Each worker thread runs a SIGSEGV handler on its own alternate signal stack
 * (the faulting fiber's stack is exhausted). The handler checks whether the
 * fault address lies in the guard region below the stack of the fiber this
 * worker is running; if so it prints the task's name and the stack size and
 * aborts. Any other fault restores the previous disposition and returns, so
 * the fault repeats and is handled as it would have been without crew.
 * Only async-signal-safe calls (write, sigaction, abort) are used.
 */
#include "internal.h"
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CREW_ALTSTACK_SIZE (64 * 1024)

static struct sigaction crew__old_segv;
static bool crew__segv_installed;

static size_t fmt_u64(char *buf, uint64_t v)
{
	char tmp[24];
	size_t n = 0, k = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n)
		buf[k++] = tmp[--n];
	return k;
}

static void put(char *buf, size_t *len, const char *s)
{
	size_t n = strlen(s);
	if (*len + n > 480)
		n = 480 - *len;
	memcpy(buf + *len, s, n);
	*len += n;
}

static void overflow_handler(int sig, siginfo_t *info, void *uctx)
{
	(void)uctx;
	crew__worker *w = crew__tls_worker;
	crew_task *t = w ? w->current : NULL;
	if (t && t->fiber && info) {
		const char *addr = info->si_addr;
		const char *lo = t->fiber->lo;
		size_t guard = crew__stack_guard_size();
		if (addr < lo && addr >= lo - guard) {
			char msg[512];
			size_t len = 0;
			put(msg, &len, "crew: stack overflow in task '");
			put(msg, &len, t->name ? t->name : "?");
			put(msg, &len, "' (stack size ");
			len += fmt_u64(msg + len, crew__rt->stack_size);
			put(msg, &len, " bytes; raise crew_config.stack_size)\n");
			ssize_t rc = write(STDERR_FILENO, msg, len);
			(void)rc;
			abort();
		}
	}
	/* not ours: fall back to what was there before, and let it re-fault */
	sigaction(sig, &crew__old_segv, NULL);
}

int crew__overflow_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = overflow_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &crew__old_segv) != 0)
		return -1;
	crew__segv_installed = true;
	return 0;
}

void crew__overflow_uninstall(void)
{
	if (crew__segv_installed)
		sigaction(SIGSEGV, &crew__old_segv, NULL);
	crew__segv_installed = false;
}

int crew__overflow_thread_init(crew__worker *w)
{
	w->altstack = malloc(CREW_ALTSTACK_SIZE);
	if (!w->altstack)
		return -1;
	stack_t ss = { .ss_sp = w->altstack, .ss_size = CREW_ALTSTACK_SIZE, .ss_flags = 0 };
	return sigaltstack(&ss, NULL);
}

void crew__overflow_thread_fini(crew__worker *w)
{
	stack_t ss = { .ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE };
	sigaltstack(&ss, NULL);
	free(w->altstack);
	w->altstack = NULL;
}
