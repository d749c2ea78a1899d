/*
 * fiber.h - a stack plus saved registers, and the switch between two of them.
 *
 * Overview: every worker has a scheduler fiber (its pthread's own stack) and
 * switches to task fibers and back. A task fiber's stack comes from stack.c.
 * crew__fiber_switch wraps the assembly switch with the sanitizer fiber hooks
 * so that ASan and TSan follow execution across stacks:
 *   ASan: __sanitizer_start_switch_fiber before, ..._finish_... after;
 *   TSan: __tsan_switch_to_fiber before.
 */
#ifndef CREW_FIBER_H
#define CREW_FIBER_H

#include <stdbool.h>
#include <stddef.h>

#if defined(CREW_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(CREW_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

typedef struct crew__fiber {
	void *sp;          /* saved stack pointer while switched out */
	const void *lo;    /* lowest usable address of the stack */
	size_t size;       /* usable bytes */
	void *tsan;        /* TSan's fiber handle */
	void *asan_fake;   /* ASan's fake-stack save slot */
#if defined(CREW_TSAN)
	unsigned tsan_uses; /* entries since the handle was made (fiber.c) */
#endif
} crew__fiber;

void crew__switch(void **save_sp, void *load_sp);
void crew__fiber_trampoline(void);

/* Prepare `f` (whose lo/size are set) so that switching to it calls entry(arg). */
void crew__fiber_init(crew__fiber *f, void (*entry)(void *), void *arg);
/* Describe the calling thread's own stack as a fiber (the scheduler's). */
void crew__fiber_init_thread(crew__fiber *f);
/* First call in a new fiber's entry function (sanitizer bookkeeping). */
static inline void crew__fiber_started(void)
{
#if defined(CREW_ASAN)
	__sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
}

/* Switch from `from` (the running fiber) to `to`. `from_done`: `from` will
 * never run again (ASan may drop its fake stack). */
static inline void crew__fiber_switch(crew__fiber *from, crew__fiber *to, bool from_done)
{
#if defined(CREW_ASAN)
	__sanitizer_start_switch_fiber(from_done ? NULL : &from->asan_fake, to->lo, to->size);
#else
	(void)from_done;
#endif
#if defined(CREW_TSAN)
	__tsan_switch_to_fiber(to->tsan, 0);
#endif
	crew__switch(&from->sp, to->sp);
#if defined(CREW_ASAN)
	__sanitizer_finish_switch_fiber(from->asan_fake, NULL, NULL);
#endif
}

#endif /* CREW_FIBER_H */
