/* deque.c - allocation of the per-worker deque; the protocol is in deque.h. */
#include "deque.h"
#include <errno.h>
#include <stdlib.h>

int crew__deque_init(crew__deque *d)
{
	d->top = 0;
	d->bottom = 0;
	d->slots = calloc(CREW_DEQUE_CAP, sizeof(*d->slots));
	return d->slots ? 0 : -ENOMEM;
}

void crew__deque_fini(crew__deque *d)
{
	free(d->slots);
	d->slots = NULL;
}
