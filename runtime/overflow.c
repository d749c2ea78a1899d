/*
 * overflow.c - turning a fiber stack overflow into a clear message.
 *
 * Each worker thread runs a SIGSEGV handler on its own alternate signal stack
 * (the faulting fiber's stack is exhausted). A fault whose address lies in
 * the guard region of any crew stack (the running fiber's, or another one's:
 * a frame larger than the guard, a child running inline) is an overflow of
 * the task running on this thread: the handler prints its name and the stack
 * size and aborts.
 *
 * Any other fault belongs to the application: the handler passes it on to
 * the disposition that was there when crew_run started (a function is
 * called; SIG_DFL, and SIG_IGN for a real fault, which the kernel would not
 * let it ignore, are reset and the signal raised again). Crew's handler stays
 * installed for the whole run. At the end it is replaced by the old one only
 * if it is still installed: a handler the application set during the run is
 * left alone.
 * Only async-signal-safe calls (write, sigaction, sigprocmask, raise, abort).
 */
#include "internal.h"
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CREW_ALTSTACK_SIZE (64 * 1024)

/* Written before our handler is installed, read by it afterwards. */
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

static void overflow_report(crew__runtime *rt, crew_task *t)
{
	char msg[512];
	size_t len = 0;
	put(msg, &len, "crew: stack overflow in task '");
	put(msg, &len, t && t->name ? t->name : "?");
	put(msg, &len, "' (stack size ");
	len += fmt_u64(msg + len, rt->stack_size);
	put(msg, &len, " bytes; raise crew_config.stack_size)\n");
	ssize_t rc = write(STDERR_FILENO, msg, len);
	(void)rc;
	abort();
}

/* Hand a fault that is not ours to the application's disposition. */
static void overflow_chain(int sig, siginfo_t *info, void *uctx)
{
	const struct sigaction *old = &crew__old_segv;
	/* sa_handler and sa_sigaction share storage: SIG_DFL and SIG_IGN are
	 * told apart through sa_handler whatever the flags say */
	if (old->sa_handler == SIG_IGN && info && info->si_code <= 0)
		return; /* sent with kill() or sigqueue(): ignored, as it would be */
	if (old->sa_handler != SIG_IGN && old->sa_handler != SIG_DFL) {
		sigset_t prev;
		sigprocmask(SIG_BLOCK, &old->sa_mask, &prev);
		if (old->sa_flags & SA_SIGINFO)
			old->sa_sigaction(sig, info, uctx);
		else
			old->sa_handler(sig);
		sigprocmask(SIG_SETMASK, &prev, NULL);
		return;
	}
	/* SIG_DFL: the default action, as without crew. The signal is blocked
	 * while we run: it is delivered (and kills) when we return. */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	raise(sig);
}

static void overflow_handler(int sig, siginfo_t *info, void *uctx)
{
	/* acquire: pairs with crew_run's release store of crew__rt (run.c);
	 * NULL once the run is over (a handler that chained to ours) */
	crew__runtime *rt = crew__load_acquire_ptr(&crew__rt);
	/* si_code > 0: raised by the kernel for this access, not sent */
	if (rt && info && info->si_code > 0 && crew__stack_in_guard(rt, info->si_addr)) {
		crew__worker *w = crew__tls_worker;
		overflow_report(rt, w ? w->current : NULL);
	}
	overflow_chain(sig, info, uctx);
}

/* Before the workers start. 0, or -errno (and a message). */
int crew__overflow_install(void)
{
	struct sigaction sa;
	/* the old disposition is complete before our handler can read it */
	if (sigaction(SIGSEGV, NULL, &crew__old_segv) != 0)
		goto fail;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = overflow_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, NULL) != 0)
		goto fail;
	crew__segv_installed = true;
	return 0;
fail:;
	int e = errno;
	crew__error("cannot install the SIGSEGV handler (%s): stack overflows will not be reported",
		    strerror(e));
	return -e;
}

/* After the workers stopped: restore the old disposition unless the
 * application replaced ours meanwhile. */
void crew__overflow_uninstall(void)
{
	struct sigaction cur;
	if (crew__segv_installed && sigaction(SIGSEGV, NULL, &cur) == 0 &&
	    (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == overflow_handler)
		sigaction(SIGSEGV, &crew__old_segv, NULL);
	crew__segv_installed = false;
}

/* On the worker thread. 0, or -errno (and a message): without an alternate
 * stack an overflow on this worker kills the process without a message. */
int crew__overflow_thread_init(crew__worker *w)
{
	w->altstack = malloc(CREW_ALTSTACK_SIZE);
	int e = ENOMEM;
	if (w->altstack) {
		stack_t ss = { .ss_sp = w->altstack, .ss_size = CREW_ALTSTACK_SIZE, .ss_flags = 0 };
		if (sigaltstack(&ss, NULL) == 0)
			return 0;
		e = errno;
		free(w->altstack);
		w->altstack = NULL;
	}
	crew__error("worker %u: no signal stack (%s): a stack overflow on it will not be reported",
		    w->id, strerror(e));
	return -e;
}

void crew__overflow_thread_fini(crew__worker *w)
{
	if (!w->altstack)
		return;
	stack_t ss = { .ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE };
	sigaltstack(&ss, NULL);
	free(w->altstack);
	w->altstack = NULL;
}
