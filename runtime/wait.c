/*
 * wait.c - deadline scopes (crew_deadline_push/pop); the wait protocol
 * itself is inline, in wait.h (its hot path is every suspension's).
 *
 * The innermost crew_deadline of a task is t->scope (sharing storage with
 * t->result, which is written only when the body returned); its `effective`
 * field is the earliest deadline of it and all enclosing scopes, and every
 * wait arms the earlier of its own deadline and that (crew__wait_begin).
 * Scopes are the task's own: only the task reads and writes them.
 */
#include "wait.h"

int crew_deadline_push(crew_deadline *scope, uint64_t deadline_ns)
{
	if (!scope)
		return -EINVAL;
	crew__worker *w = crew__worker_current();
	crew_task *t = w ? w->current : NULL;
	if (!t)
		return -EPERM;
	uint64_t outer = crew__wait_scope_deadline(t);
	scope->prev = t->scope;
	scope->at = deadline_ns;
	/* nested scopes: the earliest rules */
	scope->effective = deadline_ns < outer ? deadline_ns : outer;
	t->scope = scope;
	return 0;
}

int crew_deadline_pop(crew_deadline *scope)
{
	if (!scope)
		return -EINVAL;
	crew__worker *w = crew__worker_current();
	crew_task *t = w ? w->current : NULL;
	if (!t)
		return -EPERM;
	if (t->scope != scope)
		return -EINVAL; /* not the innermost scope of this task */
	t->scope = scope->prev; /* the enclosing scope's deadline applies again */
	return 0;
}

bool crew_deadline_expired(const crew_deadline *scope)
{
	return scope && crew_now() >= scope->at;
}
