/*
 * stack.c - fiber stacks: carved from slabs, guarded, pooled.
 *
 * Layout of a slab, low to high addresses:
 *   [pad: 1 page][stack 0][stack 1]...[stack CREW_STACK_SLAB-1]
 * and of one stack:
 *   [guard: CREW_GUARD_PAGES pages][usable stack: stack_size][header][canary of the next stack]
 * The header is the crew__stack (the fiber's saved state) at the top of the
 * stack's last page, so a stack costs no separate allocation and a task
 * that stays shallow touches a single page. The last CREW_CANARY_BYTES of
 * that page (and of the pad page, for stack 0) are the canary of the stack
 * just above, used only when that stack has no guard page (below). Slabs are
 * one mmap each (MAP_NORESERVE: only touched pages cost memory; adjacent
 * slabs merge into one VMA).
 *
 * Guards: MADV_GUARD_INSTALL (Linux 6.13+) marks the guard pages without
 * splitting the VMA, so a million live fibers stay far below vm.max_map_count.
 * A new slab gets all its guards in one system call: process_madvise(2) on
 * our own pidfd; where it refuses, one madvise per stack.
 * Where the kernel lacks MADV_GUARD_INSTALL (EINVAL, e.g. Debian 12's 6.1) we
 * fall back to mprotect(PROT_NONE), which splits the mapping: up to two map
 * entries per stack, against vm.max_map_count (65530 by default) for the
 * whole process. So only a budget of stacks gets an mprotect guard: a
 * quarter of the map entries left free when the first one is needed (read
 * once per crew_run from /proc/sys/vm/max_map_count and /proc/self/maps), so
 * that crew takes at most half of what is left and the application keeps the
 * rest. Later stacks (and any whose mprotect fails) get no guard but a
 * canary: CREW_CANARY_BYTES of a known pattern just below their guard region,
 * i.e. at the top of the neighbouring stack's header page, which is touched
 * anyway (no extra memory per stack). worker_run checks it each time a task
 * switches back to the scheduler (crew__stack_after_switch): an overflow
 * that ran through the whole 64 KiB gap below the stack (up to there it
 * damages nothing) is reported with the task's name, and aborts.
 *
 * Pools: a finished task's stack goes on its worker's hot list, pages and
 * all (no syscall on the hot path). When the worker is about to park it trims
 * the list to CREW_STACK_HOT: the extra stacks' pages go back to the OS
 * (MADV_DONTNEED) and the stacks join the global cold list for reuse. When
 * no stack can be had at all, stack_starve.c takes over.
 */
#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* Valgrind must be told where each fiber stack is, or it takes every switch
 * for a wild stack-pointer jump. The client requests cost nothing outside
 * valgrind; without the header (no valgrind installed) they are left out. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define CREW_VALGRIND 1
#endif
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13; Debian 12's headers predate it */
#endif

#define CREW_STACK_SLAB 64
#define CREW_GUARD_PAGES 16 /* 64 KiB: a large frame rarely jumps over it */
#define CREW_CANARY_BYTES 64
#define CREW_CANARY_WORDS (CREW_CANARY_BYTES / sizeof(uintptr_t))
#define CREW_CANARY 0x6372657763616e61ull /* "crewcana" */

_Static_assert(offsetof(crew__stack, fiber) == 0, "a task fiber is the start of its stack");

struct crew__stack_slab {
	struct crew__stack_slab *next; /* written before the slab is published */
	char *base;
	size_t len;
	size_t one;   /* bytes per stack: guard + usable + header */
};

/* What this kernel supports, learnt on the way. Several workers may learn
 * it at once; they learn the same thing, so relaxed atomics suffice. */
enum { GUARD_UNKNOWN, GUARD_MADVISE, GUARD_MPROTECT };
static uint32_t crew__guard_mode = GUARD_UNKNOWN;
static uint32_t crew__batch_guard = 1; /* process_madvise takes guards */
static int crew__self_pidfd = -1;      /* set before the workers start */

size_t crew__stack_guard_limit = SIZE_MAX;
size_t crew__stack_slab_limit = SIZE_MAX;
uint32_t crew__stack_canaries;

static size_t page_size(void)
{
	static size_t ps;
	if (!ps)
		ps = (size_t)sysconf(_SC_PAGESIZE);
	return ps;
}

size_t crew__stack_guard_size(void)
{
	return CREW_GUARD_PAGES * page_size();
}

/* ---- the mprotect guard budget ---- */

/* A number from a /proc file, or `dflt`. */
static long proc_long(const char *path, long dflt)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return dflt;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return dflt;
	buf[n] = '\0';
	char *end;
	long v = strtol(buf, &end, 10);
	return end == buf ? dflt : v;
}

/* Map entries of this process now (lines of /proc/self/maps), or -1. */
static long map_count(void)
{
	char buf[4096];
	long lines = 0;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		for (ssize_t i = 0; i < n; i++)
			lines += buf[i] == '\n';
	close(fd);
	return n < 0 ? -1 : lines;
}

CREW_COLD static size_t guard_budget_compute(void)
{
	long max = proc_long("/proc/sys/vm/max_map_count", 65530);
	long used = map_count();
	if (used < 0)
		used = max / 2; /* unknown: assume the application uses half */
	long spare = max > used ? max - used : 0;
	/* up to two entries per guarded stack; crew takes half of what is spare */
	size_t budget = (size_t)spare / 4;
	return budget < crew__stack_guard_limit ? budget : crew__stack_guard_limit;
}

/* Claim up to `want` mprotect guards from this run's budget. */
static unsigned guard_budget_take(crew__runtime *rt, unsigned want)
{
	pthread_mutex_lock(&rt->stack_lock);
	if (!rt->guard_budget_known) {
		rt->guard_budget = guard_budget_compute();
		rt->guard_budget_known = true;
	}
	unsigned k = rt->guard_budget < want ? (unsigned)rt->guard_budget : want;
	rt->guard_budget -= k;
	pthread_mutex_unlock(&rt->stack_lock);
	return k;
}

static void guard_budget_drop(crew__runtime *rt)
{
	pthread_mutex_lock(&rt->stack_lock);
	rt->guard_budget = 0;
	pthread_mutex_unlock(&rt->stack_lock);
}

bool crew__under_valgrind;

/* Before the workers start: the page size (cached once, then only read) and
 * the pidfd process_madvise needs (-1: none). */
void crew__stack_init(void)
{
	page_size();
#if defined(CREW_VALGRIND)
	crew__under_valgrind = RUNNING_ON_VALGRIND;
#endif
	/* valgrind 3.19 knows no pidfd_open: one madvise per stack there */
	crew__self_pidfd = crew__under_valgrind ? -1 : (int)syscall(SYS_pidfd_open, getpid(), 0);
}

/* One process_madvise over `n` ranges of our own memory; false if refused. */
static bool madvise_batch(struct iovec *iov, int n, int advice)
{
	if (crew__self_pidfd < 0)
		return false;
	size_t want = 0;
	for (int i = 0; i < n; i++)
		want += iov[i].iov_len;
	return syscall(SYS_process_madvise, crew__self_pidfd, iov, (size_t)n, advice, 0) ==
	       (long)want;
}

/* Guard the stacks of a new slab (guard region i at base + i * one).
 * Returns how many of them, from stack 0 on, have a guard. */
static unsigned slab_guard(crew__runtime *rt, char *base, size_t one, size_t guard)
{
	struct iovec iov[CREW_STACK_SLAB];
	unsigned i = 0;
	uint32_t mode = crew__load_32(&crew__guard_mode);
	if (crew__load_32(&crew__batch_guard) && mode != GUARD_MPROTECT) {
		for (int k = 0; k < CREW_STACK_SLAB; k++)
			iov[k] = (struct iovec){ base + (size_t)k * one, guard };
		if (madvise_batch(iov, CREW_STACK_SLAB, MADV_GUARD_INSTALL)) {
			crew__store_32(&crew__guard_mode, GUARD_MADVISE);
			return CREW_STACK_SLAB;
		}
		crew__store_32(&crew__batch_guard, 0);
	}
	for (; i < CREW_STACK_SLAB && mode != GUARD_MPROTECT; i++) {
		if (madvise(base + (size_t)i * one, guard, MADV_GUARD_INSTALL) != 0) {
			mode = GUARD_MPROTECT; /* EINVAL: not supported here */
			break;
		}
		mode = GUARD_MADVISE;
	}
	crew__store_32(&crew__guard_mode, mode);
	if (mode == GUARD_MADVISE)
		return CREW_STACK_SLAB;
	unsigned n = i + guard_budget_take(rt, CREW_STACK_SLAB - i);
	for (; i < n; i++) {
		if (mprotect(base + (size_t)i * one, guard, PROT_NONE) != 0) {
			/* ENOMEM: out of map entries after all; the unused budget is
			 * of no use any more. The stacks from here on get canaries. */
			guard_budget_drop(rt);
			break;
		}
	}
	return i;
}

/* ---- canaries ---- */

/* The canary of stack s: the CREW_CANARY_BYTES just below its guard region
 * (the top of the previous stack's header page, or of the slab's pad). */
static uintptr_t *stack_canary(const crew__stack *s)
{
	return (uintptr_t *)(s->guard - CREW_CANARY_BYTES);
}

static uintptr_t canary_word(const uintptr_t *at)
{
	return (uintptr_t)CREW_CANARY ^ (uintptr_t)at; /* not one value repeated */
}

static void canary_set(crew__stack *s)
{
	uintptr_t *c = stack_canary(s);
	for (size_t k = 0; k < CREW_CANARY_WORDS; k++)
		c[k] = canary_word(&c[k]);
}

static bool canary_intact(const crew__stack *s)
{
	const uintptr_t *c = stack_canary(s);
	uintptr_t diff = 0;
	for (size_t k = 0; k < CREW_CANARY_WORDS; k++)
		diff |= c[k] ^ canary_word(&c[k]);
	return diff == 0;
}

CREW_COLD static void stack_overflow_abort(const char *name, const char *how)
{
	crew__error("stack overflow in task '%s' (stack size %zu bytes; raise "
		    "crew_config.stack_size): %s",
		    name ? name : "?", crew__rt->stack_size, how);
	abort();
}

/* After a switch back to the scheduler, with canaries in use: check the
 * stack that just switched out (the exited task's, or the running task's). */
__attribute__((noinline)) void crew__stack_check_slow(crew__worker *w)
{
	crew__stack *s;
	const char *name;
	if (w->switch_reason == CREW_SWITCH_EXIT) {
		s = w->dead_stack; /* NULL: the parking fiber, no stack of its own */
		if (!s)
			return;
		name = s->owner; /* the task itself may be freed by now */
	} else {
		crew_task *t = w->current; /* t, or a child t ran inline */
		s = (crew__stack *)t->fiber;
		name = t->name;
	}
	if (!s->unguarded)
		return;
	if (!canary_intact(s))
		stack_overflow_abort(name, "it wrote below its stack and the gap beneath "
					   "(canary of a stack without guard page)");
	if (w->switch_reason != CREW_SWITCH_EXIT && (const char *)s->fiber.sp < (const char *)s->fiber.lo)
		stack_overflow_abort(name, "it suspended below the end of its stack "
					   "(stack without guard page)");
}

/* ---- slabs ---- */

/* Map and prepare a new slab without holding any lock (mmap and two
 * process_madvise calls take a while). Its stacks go straight to worker w's
 * hot list (the cold list when w is NULL: before the workers start); only
 * the slab record is linked under rt->stack_lock. */
static int stack_slab_new(crew__runtime *rt, crew__worker *w)
{
	size_t ps = page_size(), guard = crew__stack_guard_size();
	/* the header and the next stack's canary take the top of the last page */
	size_t usable = (rt->stack_size + sizeof(crew__stack) + CREW_CANARY_BYTES + ps - 1) & ~(ps - 1);
	size_t one = guard + usable;
	size_t len = ps + one * CREW_STACK_SLAB;
	if (CREW_UNLIKELY(crew__stack_slab_limit != SIZE_MAX)) { /* tests: out of memory at will */
		pthread_mutex_lock(&rt->stack_lock);
		bool full = rt->stack_nslabs >= crew__stack_slab_limit;
		pthread_mutex_unlock(&rt->stack_lock);
		if (full)
			return -ENOMEM;
	}
	struct crew__stack_slab *slab = malloc(sizeof(*slab));
	if (!slab)
		return -ENOMEM;
	char *base = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (base == MAP_FAILED) {
		free(slab);
		return -ENOMEM;
	}
	slab->base = base;
	slab->len = len;
	slab->one = one;
	char *first = base + ps; /* above the pad page */
	unsigned guarded = slab_guard(rt, first, one, guard);
	/* Relaxed: these stacks reach another worker only through the cold
	 * list, whose mutex orders this store before that worker's use. */
	if (guarded < CREW_STACK_SLAB)
		crew__store_32(&crew__stack_canaries, 1);
	crew__stack *head = NULL, *tail = NULL;
	for (int i = CREW_STACK_SLAB - 1; i >= 0; i--) {
		char *g = first + (size_t)i * one;
		crew__stack *s = (crew__stack *)(g + one - CREW_CANARY_BYTES) - 1;
		s->guard = g;
		s->fiber.lo = g + guard;
		s->fiber.size = (size_t)((char *)s - (g + guard)) & ~(size_t)63;
		s->fiber.tsan = NULL;
		s->owner = NULL;
		crew__store_ptr(&s->frames, NULL); /* relaxed: a canceller may read it (fork.c) */
		s->forks = 0;
#if defined(CREW_DEBUG)
		s->dbg_cap = 0;
		s->dbg_frames = NULL;
#endif
		s->unguarded = (unsigned)i >= guarded;
		if (s->unguarded)
			canary_set(s);
#if defined(CREW_VALGRIND)
		s->valgrind_id = VALGRIND_STACK_REGISTER(s->fiber.lo, (char *)s->fiber.lo + s->fiber.size);
#endif
		if (w) {
			crew__stack_push_hot(w, s);
		} else {
			s->next = head;
			head = s;
			if (!tail)
				tail = s;
		}
	}
	pthread_mutex_lock(&rt->stack_lock);
	rt->stack_nslabs++;
	slab->next = rt->stack_slabs;
	/* release: the slab's fields before the SIGSEGV handler's acquire
	 * load of the list head (crew__stack_in_guard) */
	crew__store_release_ptr(&rt->stack_slabs, slab);
	if (!w) {
		tail->next = rt->stack_cold;
		crew__store_ptr(&rt->stack_cold, head);
	}
	pthread_mutex_unlock(&rt->stack_lock);
	return 0;
}

/* True when addr lies in the guard region of any stack of the running
 * runtime. Async-signal-safe: reads the slab list lock-free (slabs are
 * only freed after the workers stopped). */
bool crew__stack_in_guard(crew__runtime *rt, const void *addr)
{
	const char *a = addr;
	size_t ps = page_size(), guard = crew__stack_guard_size();
	for (struct crew__stack_slab *slab = crew__load_acquire_ptr(&rt->stack_slabs); slab;
	     slab = slab->next) {
		const char *first = slab->base + ps;
		if (a < first || a >= slab->base + slab->len)
			continue;
		return (size_t)(a - first) % slab->one < guard;
	}
	return false;
}

/* crew_run, before main is queued: map the first slab(s), enough for one
 * stack per worker in reserve (stack_starve.c) and one for main, so that a
 * runtime that cannot have a single stack fails here with -ENOMEM. */
int crew__stack_prepare(crew__runtime *rt)
{
	crew__store_32(&crew__stack_canaries, 0); /* no worker runs yet */
	for (unsigned have = 0; have < rt->nworkers + 1; have += CREW_STACK_SLAB)
		if (stack_slab_new(rt, NULL) != 0) {
			crew__error("out of memory for fiber stacks (%zu bytes each)", rt->stack_size);
			return -ENOMEM;
		}
	for (unsigned i = 0; i < rt->nworkers; i++)
		rt->workers[i].stack_reserve = crew__stack_pop_cold(rt);
	return 0;
}

/* ---- pools ---- */

void crew__stack_push_hot(crew__worker *w, crew__stack *s)
{
	s->next = w->stack_free;
	w->stack_free = s;
	w->stack_free_count++;
}

crew__stack *crew__stack_pop_cold(crew__runtime *rt)
{
	crew__stack *s = NULL;
	if (crew__load_ptr(&rt->stack_cold)) { /* racy hint; checked under the lock */
		pthread_mutex_lock(&rt->stack_lock);
		s = rt->stack_cold;
		if (s)
			crew__store_ptr(&rt->stack_cold, s->next);
		pthread_mutex_unlock(&rt->stack_lock);
	}
	return s;
}

/* A stack for a task starting on w, or NULL when none can be had (the
 * caller parks the task: stack_starve.c). */
crew__stack *crew__stack_get(crew__worker *w)
{
	crew__stack *s = w->stack_free;
	if (CREW_LIKELY(s)) {
		w->stack_free = s->next;
		w->stack_free_count--;
		return s;
	}
	crew__runtime *rt = crew__rt;
	if ((s = crew__stack_pop_cold(rt)))
		return s;
	if (stack_slab_new(rt, w) != 0)
		return NULL;
	/* memory again: tasks that waited for a stack get theirs first */
	crew__stack_feed_starved(w, 1);
	return crew__stack_get(w);
}

/* t, not started yet, will start on s: its fiber set to enter crew__fiber_entry
 * (worker_prepare, a starved task given a stack, a stolen frame's task). */
void crew__stack_attach(crew_task *t, crew__stack *s)
{
	s->owner = t->name;
	t->stack = s;
	crew__store_ptr(&t->fiber, &s->fiber); /* relaxed: fork.c's fork_deque_of */
	crew__fiber_init(t->fiber, crew__fiber_entry, t);
}

void crew__stack_put(crew__worker *w, crew__stack *s)
{
	if (CREW_UNLIKELY(!s))
		return; /* the parking fiber exited: it has no stack of its own */
	if (CREW_UNLIKELY(crew__stack_pressure(crew__rt))) {
		crew__stack_give_starved(w, s); /* a waiting task gets it at once */
		return;
	}
	crew__stack_push_hot(w, s);
}

/* Keep at most `keep` hot stacks; the rest give their pages back (all but
 * the last page, which holds the header) and go to the cold list. Tasks
 * waiting for a stack get theirs first. */
void crew__stack_trim(crew__worker *w, unsigned keep)
{
	crew__stack_feed_starved(w, 0);
	if (w->stack_free_count <= keep)
		return;
	crew__stack *head = NULL, *tail = NULL;
	size_t ps = page_size();
	while (w->stack_free_count > keep) {
		crew__stack *s = w->stack_free;
		w->stack_free = s->next;
		w->stack_free_count--;
		uintptr_t top = (uintptr_t)s & ~(uintptr_t)(ps - 1);
		if (top > (uintptr_t)s->fiber.lo)
			madvise((void *)s->fiber.lo, top - (uintptr_t)s->fiber.lo, MADV_DONTNEED);
		s->next = head;
		head = s;
		if (!tail)
			tail = s;
	}
	crew__runtime *rt = crew__rt;
	pthread_mutex_lock(&rt->stack_lock);
	tail->next = rt->stack_cold;
	crew__store_ptr(&rt->stack_cold, head);
	pthread_mutex_unlock(&rt->stack_lock);
}

#if defined(CREW_TSAN)
static void stack_list_tsan_destroy(crew__stack *s)
{
	for (; s; s = s->next)
		if (s->fiber.tsan)
			__tsan_destroy_fiber(s->fiber.tsan);
}
#endif

/* A stopping worker forgets its hot list, its reserve and the stack it
 * kept for a stolen frame: the slabs are unmapped next. */
void crew__stack_drop_all(crew__worker *w)
{
#if defined(CREW_TSAN)
	stack_list_tsan_destroy(w->stack_free);
	if (w->stack_reserve && w->stack_reserve->fiber.tsan)
		__tsan_destroy_fiber(w->stack_reserve->fiber.tsan);
	if (w->steal_stack && w->steal_stack->fiber.tsan)
		__tsan_destroy_fiber(w->steal_stack->fiber.tsan);
#endif
	w->stack_free = NULL;
	w->stack_free_count = 0;
	w->stack_reserve = NULL;
	w->steal_stack = NULL;
}

/* After all workers stopped: unmap every slab. */
void crew__stack_free_all(crew__runtime *rt)
{
#if defined(CREW_TSAN)
	stack_list_tsan_destroy(rt->stack_cold);
#endif
	while (rt->stack_slabs) {
		struct crew__stack_slab *slab = rt->stack_slabs;
		rt->stack_slabs = slab->next;
#if defined(CREW_VALGRIND) || defined(CREW_DEBUG)
		char *first = slab->base + page_size();
		for (int i = 0; i < CREW_STACK_SLAB; i++) {
			crew__stack *s = (crew__stack *)(first + (size_t)(i + 1) * slab->one - CREW_CANARY_BYTES) - 1;
#if defined(CREW_VALGRIND)
			VALGRIND_STACK_DEREGISTER(s->valgrind_id);
#endif
#if defined(CREW_DEBUG)
			free(s->dbg_frames); /* fork.c's record of outstanding frames */
#endif
		}
#endif
		munmap(slab->base, slab->len);
		free(slab);
	}
	rt->stack_cold = NULL;
	if (crew__self_pidfd >= 0)
		close(crew__self_pidfd);
	crew__self_pidfd = -1;
}
