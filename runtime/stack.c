/*
 * stack.c - fiber stacks: carved from slabs, guarded, pooled.
 *
 * Layout of one stack, low to high addresses:
 *   [guard: CREW_GUARD_PAGES pages][usable stack: stack_size][header]
 * The header is the crew__stack (the fiber's saved state) at the very top of
 * the stack's last page, so a stack costs no separate allocation and a task
 * that stays shallow touches a single page. Stacks come from slabs of CREW_STACK_SLAB
 * stacks, one mmap each (MAP_NORESERVE: only touched pages cost memory;
 * adjacent slabs merge into one VMA).
 *
 * A new slab gets all its guards in one system call, not one per stack:
 * process_madvise(2) on our own pidfd. Where it refuses, we fall back to one
 * madvise per stack. (Prefaulting each stack's top page in the same way,
 * MADV_POPULATE_WRITE, measured no faster than taking the faults.)
 *
 * Guards: MADV_GUARD_INSTALL (Linux 6.13+) marks the guard pages without
 * splitting the VMA, so a million live fibers stay far below vm.max_map_count.
 * Where the kernel lacks it (EINVAL) we fall back to mprotect(PROT_NONE),
 * which splits the mapping (two VMAs per stack, so about 32k live fibers by
 * default); when mprotect runs out of map entries (ENOMEM) further stacks go
 * unguarded, with one warning.
 *
 * Pools: a finished task's stack goes on its worker's hot list, pages and
 * all (no syscall on the hot path). When the worker is about to park it trims
 * the list to CREW_STACK_HOT: the extra stacks' pages go back to the OS
 * (MADV_DONTNEED) and the stacks join the global cold list for reuse.
 */
#include "internal.h"
#include <errno.h>
#include <stdlib.h>
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

struct crew__stack_slab {
	struct crew__stack_slab *next;
	void *base;
	size_t len;
};

/* What this kernel supports, learnt on the way. Several workers may learn
 * it at once; they learn the same thing, so relaxed atomics suffice. */
enum { GUARD_UNKNOWN, GUARD_MADVISE, GUARD_MPROTECT, GUARD_NONE };
static uint32_t crew__guard_mode = GUARD_UNKNOWN;
static uint32_t crew__batch_guard = 1; /* process_madvise takes guards */
static int crew__self_pidfd = -1;      /* set before the workers start */

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

static void stack_guard(char *guard, size_t len)
{
	uint32_t mode = crew__load_32(&crew__guard_mode);
	if (mode == GUARD_UNKNOWN || mode == GUARD_MADVISE) {
		if (madvise(guard, len, MADV_GUARD_INSTALL) == 0) {
			crew__store_32(&crew__guard_mode, GUARD_MADVISE);
			return;
		}
		mode = GUARD_MPROTECT; /* EINVAL: not supported here */
		crew__store_32(&crew__guard_mode, mode);
	}
	if (mode == GUARD_MPROTECT && mprotect(guard, len, PROT_NONE) != 0) {
		uint32_t was = GUARD_MPROTECT;
		if (crew__cas_32(&crew__guard_mode, &was, GUARD_NONE)) /* warn once */
			crew__error("mprotect of a stack guard failed (%s): further fiber stacks "
				    "have no guard page (raise vm.max_map_count, or use Linux >= 6.13)",
				    errno == ENOMEM ? "vm.max_map_count reached" : "error");
	}
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

static void slab_guard(char *base, size_t one, size_t guard)
{
	struct iovec iov[CREW_STACK_SLAB];
	uint32_t mode = crew__load_32(&crew__guard_mode);
	if (crew__load_32(&crew__batch_guard) && (mode == GUARD_UNKNOWN || mode == GUARD_MADVISE)) {
		for (int i = 0; i < CREW_STACK_SLAB; i++)
			iov[i] = (struct iovec){ base + (size_t)i * one, guard };
		if (madvise_batch(iov, CREW_STACK_SLAB, MADV_GUARD_INSTALL)) {
			crew__store_32(&crew__guard_mode, GUARD_MADVISE);
			return;
		}
		crew__store_32(&crew__batch_guard, 0);
	}
	for (int i = 0; i < CREW_STACK_SLAB; i++)
		stack_guard(base + (size_t)i * one, guard);
}

/* Map and prepare a new slab without holding any lock (mmap and two
 * process_madvise calls take a while); its stacks go straight to worker w's
 * hot list, and only the slab record is linked under rt->stack_lock. */
static int stack_slab_new(crew__runtime *rt, crew__worker *w)
{
	size_t ps = page_size(), guard = crew__stack_guard_size();
	/* the header takes the top of the stack's last page */
	size_t usable = (rt->stack_size + sizeof(crew__stack) + ps - 1) & ~(ps - 1);
	size_t one = guard + usable;
	size_t len = one * CREW_STACK_SLAB;
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
	pthread_mutex_lock(&rt->stack_lock);
	slab->next = rt->stack_slabs;
	rt->stack_slabs = slab;
	pthread_mutex_unlock(&rt->stack_lock);
	slab_guard(base, one, guard);
	for (int i = CREW_STACK_SLAB - 1; i >= 0; i--) {
		char *g = base + (size_t)i * one;
		crew__stack *s = (crew__stack *)(g + one) - 1;
		s->guard = g;
		s->fiber.lo = g + guard;
		s->fiber.size = (size_t)((char *)s - (g + guard)) & ~(size_t)63;
		s->fiber.tsan = NULL;
#if defined(CREW_VALGRIND)
		s->valgrind_id = VALGRIND_STACK_REGISTER(s->fiber.lo, (char *)s->fiber.lo + s->fiber.size);
#endif
		s->next = w->stack_free;
		w->stack_free = s;
		w->stack_free_count++;
	}
	return 0;
}

crew__stack *crew__stack_get(crew__worker *w)
{
	crew__stack *s = w->stack_free;
	if (CREW_LIKELY(s)) {
		w->stack_free = s->next;
		w->stack_free_count--;
		return s;
	}
	crew__runtime *rt = crew__rt;
	if (crew__load_ptr(&rt->stack_cold)) { /* racy hint; checked under the lock */
		pthread_mutex_lock(&rt->stack_lock);
		s = rt->stack_cold;
		if (s)
			crew__store_ptr(&rt->stack_cold, s->next);
		pthread_mutex_unlock(&rt->stack_lock);
		if (s)
			return s;
	}
	if (stack_slab_new(rt, w) != 0)
		return NULL;
	return crew__stack_get(w);
}

void crew__stack_put(crew__worker *w, crew__stack *s)
{
	s->next = w->stack_free;
	w->stack_free = s;
	w->stack_free_count++;
}

/* Keep at most `keep` hot stacks; the rest give their pages back (all but
 * the last page, which holds the header) and go to the cold list. */
void crew__stack_trim(crew__worker *w, unsigned keep)
{
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

/* A stopping worker forgets its hot list: the slabs are unmapped next. */
void crew__stack_drop_all(crew__worker *w)
{
#if defined(CREW_TSAN)
	stack_list_tsan_destroy(w->stack_free);
#endif
	w->stack_free = NULL;
	w->stack_free_count = 0;
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
#if defined(CREW_VALGRIND)
		size_t one = slab->len / CREW_STACK_SLAB;
		for (int i = 0; i < CREW_STACK_SLAB; i++) {
			crew__stack *s = (crew__stack *)((char *)slab->base + (size_t)(i + 1) * one) - 1;
			VALGRIND_STACK_DEREGISTER(s->valgrind_id);
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
