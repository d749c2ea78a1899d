/* fiber.c - preparing a fresh fiber stack for its first switch. */
#define _GNU_SOURCE
#include "fiber.h"
#include <pthread.h>
#include <stdint.h>
#include <string.h>

void crew__fiber_init(crew__fiber *f, void (*entry)(void *), void *arg)
{
	uintptr_t top = ((uintptr_t)f->lo + f->size) & ~(uintptr_t)15;
	uint64_t *sp = (uint64_t *)top;
#if defined(__x86_64__)
	/* crew__switch pops: control words, r15, r14, r13, r12, rbx, rbp, then
	 * returns into the trampoline with rsp = top (16-aligned), so the call
	 * in the trampoline enters `entry` with the ABI's rsp % 16 == 8: the
	 * return address must sit at top - 8. */
	uint32_t mxcsr;
	uint16_t fpucw;
	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(fpucw));
	*--sp = (uint64_t)(uintptr_t)crew__fiber_trampoline;
	*--sp = 0;                                   /* rbp */
	*--sp = 0;                                   /* rbx */
	*--sp = (uint64_t)(uintptr_t)arg;            /* r12 */
	*--sp = (uint64_t)(uintptr_t)entry;          /* r13 */
	*--sp = 0;                                   /* r14 */
	*--sp = 0;                                   /* r15 */
	*--sp = (uint64_t)mxcsr | ((uint64_t)fpucw << 32);
	f->sp = sp;
#elif defined(__aarch64__)
	uint64_t fpcr;
	__asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
	sp -= 22; /* 176 bytes, the frame crew__switch restores */
	memset(sp, 0, 176);
	sp[0] = (uint64_t)(uintptr_t)arg;                    /* x19 */
	sp[1] = (uint64_t)(uintptr_t)entry;                  /* x20 */
	sp[11] = (uint64_t)(uintptr_t)crew__fiber_trampoline; /* x30 */
	sp[20] = fpcr;
	f->sp = sp;
#else
#error "crew: no fiber support for this architecture"
#endif
#if defined(CREW_TSAN)
	/* A task that ends switches away from inside its entry function, whose
	 * call TSan then never sees return: a TSan fiber kept across reuses of
	 * the stack grew TSan's shadow call stack by a frame per task,
	 * and TSan crashed at 64Ki frames (65,536 tasks run one after another
	 * on one stack). So the handle is made anew every 1024 entries: made
	 * anew for every task, it cost two system calls each, and the TSan
	 * test suite took 281 s instead of 29. The fiber being prepared is not
	 * the running one (its task ended, or it never ran). */
	if (f->tsan && ++f->tsan_uses >= 1024) {
		__tsan_destroy_fiber(f->tsan);
		f->tsan = NULL;
	}
	if (!f->tsan) {
		f->tsan = __tsan_create_fiber(0);
		f->tsan_uses = 0;
	}
#endif
}

void crew__fiber_init_thread(crew__fiber *f)
{
	memset(f, 0, sizeof(*f));
	pthread_attr_t attr;
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		void *lo;
		size_t size;
		if (pthread_attr_getstack(&attr, &lo, &size) == 0) {
			f->lo = lo;
			f->size = size;
		}
		pthread_attr_destroy(&attr);
	}
#if defined(CREW_TSAN)
	f->tsan = __tsan_get_current_fiber();
#endif
}
