/*
 * crew__switch(void **save_sp, void *load_sp) - AArch64 AAPCS64.
 *
 * Saves x19-x30 (x29 frame pointer, x30 link register), d8-d15 and FPCR on
 * the current stack, stores sp in *save_sp, loads load_sp and restores the
 * same set, then returns to the restored x30.
 */
	.text
	.globl	crew__switch
	.hidden	crew__switch
	.type	crew__switch, %function
crew__switch:
	sub	sp, sp, #176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x9, fpcr
	str	x9, [sp, #160]
	mov	x9, sp
	str	x9, [x0]
	mov	sp, x1
	ldr	x9, [sp, #160]
	msr	fpcr, x9
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #176
	ret
	.size	crew__switch, .-crew__switch

/* First code of a new fiber: x19 = argument, x20 = C entry (never returns). */
	.globl	crew__fiber_trampoline
	.hidden	crew__fiber_trampoline
	.type	crew__fiber_trampoline, %function
crew__fiber_trampoline:
	mov	x0, x19
	blr	x20
	brk	#0
	.size	crew__fiber_trampoline, .-crew__fiber_trampoline

	.section .note.GNU-stack,"",%progbits
