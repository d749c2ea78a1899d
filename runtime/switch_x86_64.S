/*
 * crew__switch(void **save_sp, void *load_sp) - x86-64 System V.
 *
 * Saves the callee-saved registers (rbx, rbp, r12-r15), the SSE control word
 * (MXCSR) and the x87 control word on the current stack, stores the stack
 * pointer in *save_sp, loads load_sp and restores the same set from there.
 * Everything else is caller-saved, so the compiler already spilled it.
 *
 * A new fiber's stack is prepared by crew__fiber_init (fiber.c) to look like
 * a switched-out one whose return address is crew__fiber_trampoline.
 */
	.text
	.globl	crew__switch
	.hidden	crew__switch
	.type	crew__switch, @function
crew__switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)
	movq	%rsi, %rsp
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.cfi_endproc
	.size	crew__switch, .-crew__switch

/*
 * First code a new fiber runs: r12 = argument, r13 = C entry function
 * (set by crew__fiber_init). The entry function never returns.
 */
	.globl	crew__fiber_trampoline
	.hidden	crew__fiber_trampoline
	.type	crew__fiber_trampoline, @function
crew__fiber_trampoline:
	.cfi_startproc
	.cfi_undefined rip
	movq	%r12, %rdi
	callq	*%r13
	ud2
	.cfi_endproc
	.size	crew__fiber_trampoline, .-crew__fiber_trampoline

	.section .note.GNU-stack,"",@progbits
