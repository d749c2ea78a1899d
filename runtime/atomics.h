/*
 * atomics.h - the one place where crew touches shared-memory primitives.
 *
 * Overview: every shared word in crew is read and written through these
 * functions. Normal builds use Concurrency Kit (ck_pr_*), whose fences compile
 * to nothing where the memory model already gives the ordering (x86 is TSO:
 * only store->load needs a fence). ThreadSanitizer cannot see CK's inline
 * assembly, so under CREW_TSAN the same functions use the compiler's __atomic
 * builtins with the equivalent ordering, and TSan checks the real protocol
 * instead of reporting false races.
 *
 * Names: _relaxed (atomic, no ordering), _acquire (later accesses stay after
 * it), _release (earlier accesses stay before it). Read-modify-writes
 * (cas, fas, faa) are full barriers in both mappings: x86's lock prefix, and
 * acquire/release fences around CK's RMW on weaker models. crew__fence() is
 * the store->load fence of Dekker-style handshakes (parking, see idle.c).
 *
 * Typed by suffix: _32 (uint32_t), _64 (int64_t/uint64_t), _ptr (pointers).
 */
#ifndef CREW_ATOMICS_H
#define CREW_ATOMICS_H

#include <ck_pr.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- 32-bit ---- */
static inline uint32_t crew__load_32(const uint32_t *p)
{
#if defined(CREW_TSAN)
	return __atomic_load_n(p, __ATOMIC_RELAXED);
#else
	return ck_pr_load_32(p);
#endif
}
static inline uint32_t crew__load_acquire_32(const uint32_t *p)
{
#if defined(CREW_TSAN)
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
#else
	uint32_t v = ck_pr_load_32(p);
	ck_pr_fence_acquire();
	return v;
#endif
}
static inline void crew__store_32(uint32_t *p, uint32_t v)
{
#if defined(CREW_TSAN)
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
#else
	ck_pr_store_32(p, v);
#endif
}
static inline void crew__store_release_32(uint32_t *p, uint32_t v)
{
#if defined(CREW_TSAN)
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
#else
	ck_pr_fence_release();
	ck_pr_store_32(p, v);
#endif
}
/* Compare-and-swap; on failure *expected gets the value seen. */
static inline bool crew__cas_32(uint32_t *p, uint32_t *expected, uint32_t desired)
{
#if defined(CREW_TSAN)
	return __atomic_compare_exchange_n(p, expected, desired, false, __ATOMIC_SEQ_CST,
					   __ATOMIC_SEQ_CST);
#else
	ck_pr_fence_release();
	bool ok = ck_pr_cas_32_value(p, *expected, desired, expected);
	ck_pr_fence_acquire();
	return ok;
#endif
}
static inline uint32_t crew__faa_32(uint32_t *p, uint32_t d)
{
#if defined(CREW_TSAN)
	return __atomic_fetch_add(p, d, __ATOMIC_SEQ_CST);
#else
	ck_pr_fence_release();
	uint32_t old = ck_pr_faa_32(p, d);
	ck_pr_fence_acquire();
	return old;
#endif
}

/* ---- 64-bit ---- */
static inline int64_t crew__load_64(const int64_t *p)
{
#if defined(CREW_TSAN)
	return __atomic_load_n(p, __ATOMIC_RELAXED);
#else
	return (int64_t)ck_pr_load_64((const uint64_t *)p);
#endif
}
static inline int64_t crew__load_acquire_64(const int64_t *p)
{
#if defined(CREW_TSAN)
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
#else
	int64_t v = (int64_t)ck_pr_load_64((const uint64_t *)p);
	ck_pr_fence_acquire();
	return v;
#endif
}
static inline void crew__store_64(int64_t *p, int64_t v)
{
#if defined(CREW_TSAN)
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
#else
	ck_pr_store_64((uint64_t *)p, (uint64_t)v);
#endif
}
static inline void crew__store_release_64(int64_t *p, int64_t v)
{
#if defined(CREW_TSAN)
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
#else
	ck_pr_fence_release();
	ck_pr_store_64((uint64_t *)p, (uint64_t)v);
#endif
}
static inline bool crew__cas_64(int64_t *p, int64_t expected, int64_t desired)
{
#if defined(CREW_TSAN)
	return __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_SEQ_CST,
					   __ATOMIC_SEQ_CST);
#else
	ck_pr_fence_release();
	bool ok = ck_pr_cas_64((uint64_t *)p, (uint64_t)expected, (uint64_t)desired);
	ck_pr_fence_acquire();
	return ok;
#endif
}
/* Exchange with full (seq_cst) ordering: the store->load fence of the deque pop. */
static inline int64_t crew__fas_64(int64_t *p, int64_t v)
{
#if defined(CREW_TSAN)
	return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
#else
	int64_t old = (int64_t)ck_pr_fas_64((uint64_t *)p, (uint64_t)v);
#if !defined(CK_MD_TSO)
	ck_pr_fence_memory(); /* x86's xchg is a full fence by itself */
#endif
	return old;
#endif
}
static inline uint64_t crew__faa_u64(uint64_t *p, uint64_t d)
{
#if defined(CREW_TSAN)
	return __atomic_fetch_add(p, d, __ATOMIC_SEQ_CST);
#else
	ck_pr_fence_release();
	uint64_t old = ck_pr_faa_64(p, d);
	ck_pr_fence_acquire();
	return old;
#endif
}
static inline uint64_t crew__load_acquire_u64(const uint64_t *p)
{
	return (uint64_t)crew__load_acquire_64((const int64_t *)p);
}

/* ---- pointers ---- */
static inline void *crew__load_ptr(const void *p)
{
#if defined(CREW_TSAN)
	return __atomic_load_n((void *const *)p, __ATOMIC_RELAXED);
#else
	return ck_pr_md_load_ptr(p);
#endif
}
static inline void *crew__load_acquire_ptr(const void *p)
{
#if defined(CREW_TSAN)
	return __atomic_load_n((void *const *)p, __ATOMIC_ACQUIRE);
#else
	void *v = ck_pr_md_load_ptr(p);
	ck_pr_fence_acquire();
	return v;
#endif
}
static inline void crew__store_ptr(void *p, void *v)
{
#if defined(CREW_TSAN)
	__atomic_store_n((void **)p, v, __ATOMIC_RELAXED);
#else
	ck_pr_store_ptr((void **)p, v);
#endif
}
static inline void crew__store_release_ptr(void *p, void *v)
{
#if defined(CREW_TSAN)
	__atomic_store_n((void **)p, v, __ATOMIC_RELEASE);
#else
	ck_pr_fence_release();
	ck_pr_store_ptr((void **)p, v);
#endif
}
static inline bool crew__cas_ptr(void *p, void *expected, void *desired)
{
#if defined(CREW_TSAN)
	return __atomic_compare_exchange_n((void **)p, &expected, desired, false,
					   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
#else
	ck_pr_fence_release();
	bool ok = ck_pr_cas_ptr(p, expected, desired);
	ck_pr_fence_acquire();
	return ok;
#endif
}
static inline void *crew__fas_ptr(void *p, void *v)
{
#if defined(CREW_TSAN)
	return __atomic_exchange_n((void **)p, v, __ATOMIC_SEQ_CST);
#else
	ck_pr_fence_release();
	void *old = ck_pr_fas_ptr(p, v);
	ck_pr_fence_acquire();
	return old;
#endif
}

/* Store->load fence: the seq_cst fence of a Dekker handshake. */
#if defined(CREW_TSAN)
/* TSan does not model fences (and gcc refuses them under -Werror=tsan): a
 * seq_cst read-modify-write on one shared word orders both sides of every
 * handshake instead, and TSan sees the synchronisation it creates. */
extern uint32_t crew__tsan_fence_word;
#endif
static inline void crew__fence(void)
{
#if defined(CREW_TSAN)
	__atomic_fetch_add(&crew__tsan_fence_word, 0, __ATOMIC_SEQ_CST);
#else
	ck_pr_fence_memory();
#endif
}

static inline void crew__cpu_relax(void)
{
	ck_pr_stall();
}

/* ---- a small spinlock, for critical sections of a few dozen instructions
 * that are rarely contended (timer sets, due queues) ---- */
void crew__spin_wait(unsigned *spins); /* relax, then sched_yield (atomics.c) */
static inline void crew__spin_lock(uint32_t *l)
{
	unsigned spins = 0;
	for (;;) {
		uint32_t free_ = 0;
		/* full barrier (cas): the critical section stays after it */
		if (crew__load_32(l) == 0 && crew__cas_32(l, &free_, 1))
			return;
		crew__spin_wait(&spins);
	}
}
static inline void crew__spin_unlock(uint32_t *l)
{
	/* release: the critical section's writes before the lock is seen free */
	crew__store_release_32(l, 0);
}

#endif /* CREW_ATOMICS_H */
