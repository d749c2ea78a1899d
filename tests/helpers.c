#define _GNU_SOURCE
#include "helpers.h"
#include "internal.h" /* crewt_wait_suspended reads a task's state word */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

typedef struct buf {
	char *p;
	size_t len, cap;
} buf;

static int buf_read(buf *b, int fd)
{
	if (b->cap - b->len < 4097) {
		size_t cap = b->cap ? b->cap * 2 : 8192;
		char *p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	ssize_t n = read(fd, b->p + b->len, b->cap - b->len - 1);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : -errno;
	b->len += (size_t)n;
	b->p[b->len] = '\0';
	return n == 0 ? 0 : 1;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Read both pipes until EOF (or timeout: kill), then reap the child. */
static int collect(pid_t pid, int outfd, int errfd, uint64_t timeout_ns, crewt_proc *p)
{
	buf out = {0}, err = {0};
	int fds[2] = {outfd, errfd};
	buf *bufs[2] = {&out, &err};
	bool open_[2] = {true, true};
	uint64_t deadline = mono_ns() + timeout_ns;
	bool killed = false;

	while (open_[0] || open_[1]) {
		struct pollfd pfd[2];
		int n = 0, idx[2];
		for (int i = 0; i < 2; i++)
			if (open_[i]) {
				pfd[n].fd = fds[i];
				pfd[n].events = POLLIN;
				pfd[n].revents = 0;
				idx[n++] = i;
			}
		uint64_t now = mono_ns();
		int ms = now >= deadline ? 0 : (int)((deadline - now) / 1000000u) + 1;
		int r = poll(pfd, (nfds_t)n, killed ? 1000 : ms);
		if (r < 0 && errno != EINTR)
			break;
		if (r == 0) {
			if (killed)
				break; /* a grandchild holds the pipe: give up */
			kill(pid, SIGKILL);
			killed = true;
			continue;
		}
		for (int k = 0; k < n; k++) {
			if (!pfd[k].revents)
				continue;
			int i = idx[k];
			int rr = buf_read(bufs[i], fds[i]);
			if (rr <= 0)
				open_[i] = false;
		}
	}
	close(outfd);
	close(errfd);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	p->status = status;
	p->timed_out = killed;
	if (!out.p)
		out.p = calloc(1, 1);
	if (!err.p)
		err.p = calloc(1, 1);
	p->out = out.p;
	p->out_len = out.len;
	p->err = err.p;
	p->err_len = err.len;
	return 0;
}

/* Two pipes (the child's stdout and stderr), then fork. Returns the pid in
 * the parent, 0 in the child, or -errno with nothing left open. */
static pid_t fork_with_pipes(int po[2], int pe[2], int flags)
{
	if (pipe2(po, flags) < 0)
		return -errno;
	if (pipe2(pe, flags) < 0) {
		int e = errno;
		close(po[0]);
		close(po[1]);
		return -e;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(po[0]);
		close(po[1]);
		close(pe[0]);
		close(pe[1]);
		return -e;
	}
	return pid;
}

int crewt_exec_capture(const char *path, char *const argv[], char *const env[],
                       uint64_t timeout_ns, crewt_proc *p)
{
	memset(p, 0, sizeof(*p));
	/* Build everything before fork: the child may only call async-signal-safe
	 * functions (other threads of the parent may hold locks). */
	size_t nenv = 0, nextra = 0;
	while (environ && environ[nenv])
		nenv++;
	while (env && env[nextra])
		nextra++;
	char **envp = calloc(nenv + nextra + 1, sizeof(char *));
	if (!envp)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < nenv; i++) {
		bool overridden = false;
		for (size_t j = 0; j < nextra; j++) {
			const char *eq = strchr(env[j], '=');
			size_t len = eq ? (size_t)(eq - env[j]) + 1 : strlen(env[j]);
			if (strncmp(environ[i], env[j], len) == 0)
				overridden = true;
		}
		if (!overridden)
			envp[k++] = environ[i];
	}
	for (size_t j = 0; j < nextra; j++)
		envp[k++] = env[j];
	envp[k] = NULL;
	char *const default_argv[] = {(char *)path, NULL};
	if (!argv)
		argv = default_argv;

	int po[2], pe[2];
	pid_t pid = fork_with_pipes(po, pe, O_CLOEXEC);
	if (pid < 0) {
		free(envp);
		return pid;
	}
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		execve(path, argv, envp);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	free(envp);
	return collect(pid, po[0], pe[0], timeout_ns, p);
}

int crewt_fork_capture(void (*fn)(void *), void *arg, uint64_t timeout_ns, crewt_proc *p)
{
	memset(p, 0, sizeof(*p));
	int po[2], pe[2];
	fflush(NULL);
	pid_t pid = fork_with_pipes(po, pe, 0);
	if (pid < 0)
		return pid;
	if (pid == 0) {
		struct rlimit no_core = {0, 0};
		setrlimit(RLIMIT_CORE, &no_core);
		close(po[0]);
		close(pe[0]);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[1]);
		close(pe[1]);
		setvbuf(stdout, NULL, _IOLBF, 0);
		setvbuf(stderr, NULL, _IONBF, 0);
		fn(arg);
		fflush(NULL);
		_exit(0);
	}
	close(po[1]);
	close(pe[1]);
	return collect(pid, po[0], pe[0], timeout_ns, p);
}

void crewt_proc_free(crewt_proc *p)
{
	free(p->out);
	free(p->err);
	p->out = p->err = NULL;
}

const char *crewt_status_str(int status)
{
	static __thread char s[64];
	if (WIFEXITED(status))
		snprintf(s, sizeof s, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(s, sizeof s, "killed by signal %d (%s)", WTERMSIG(status),
		         strsignal(WTERMSIG(status)));
	else
		snprintf(s, sizeof s, "status 0x%x", status);
	return s;
}

int crewt_run(unsigned workers, crew_fn fn, void *arg, void **result)
{
	crew_config cfg = {.workers = workers};
	return crew_run_with(&cfg, fn, arg, result);
}

int crewt_run_stack(unsigned workers, size_t stack_size, crew_fn fn, void *arg,
                    void **result)
{
	crew_config cfg = {.workers = workers, .stack_size = stack_size};
	return crew_run_with(&cfg, fn, arg, result);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

uint64_t crewt_median(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_u64);
	return v[n / 2];
}

long crewt_gettid(void)
{
	return (long)syscall(SYS_gettid);
}

bool crewt_wait_suspended(crew_task *t)
{
	for (;;) {
		/* acquire: pairs with the worker's CAS that cleared RUNNING after
		 * the switch, so what t did before suspending is visible here */
		uint32_t s = crew__load_acquire_32(&t->state);
		if (s & CREW_T_DONE)
			return false;
		if (!(s & (CREW_T_RUNNING | CREW_T_SCHEDULED)))
			return true;
		if (crew_yield() != 0)
			return false; /* cancelled, or not a task: no way to let t run */
	}
}

/* ---- a task that overflows its stack ---- */

/* volatile: the compiler cannot see that the recursion never ends */
static volatile unsigned depth_limit = 1u << 30;

__attribute__((noinline)) static unsigned recurse_deeply(unsigned n)
{
	volatile char pad[512];
	pad[0] = (char)n;
	pad[511] = (char)n;
	if (n >= depth_limit)
		return n;
	return recurse_deeply(n + 1) + (unsigned)pad[0] + (unsigned)pad[511];
}

void *crewt_deep_recursion_task(void *arg)
{
	(void)arg;
	return (void *)(uintptr_t)recurse_deeply(0);
}

static void abort_child(void *main)
{
	crewt_run(1, (crew_fn)main, NULL, NULL);
	_exit(3);
}

void crewt_expect_abort(crew_fn main, const char *what, const char *needle)
{
	crewt_proc p;
	cr_assert_eq(crewt_fork_capture(abort_child, (void *)main, 20 * CREWT_SEC, &p), 0);
	cr_expect(WIFSIGNALED(p.status) && WTERMSIG(p.status) == SIGABRT, "%s: child %s; stderr:\n%s",
		  what, crewt_status_str(p.status), p.err);
	cr_expect(strstr(p.err, needle) != NULL, "%s: no message with '%s':\n%s", what, needle, p.err);
	crewt_proc_free(&p);
}
