/*
 * reactor.h - the small interface between the scheduler and its I/O backend.
 *
 * One reactor per worker, used only by that worker's thread (except
 * crew__reactor_wake, any thread). The backend (reactor_uring.c) keeps a read
 * armed on the worker's eventfd so that a parked worker can be woken, and arms
 * one timeout for the earliest timer of the worker's heap before it blocks.
 * A second backend (epoll) would implement the same five functions.
 */
#ifndef CREW_REACTOR_H
#define CREW_REACTOR_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct crew__reactor {
	struct io_uring ring;
	int wake_fd;
	uint64_t wake_buf;          /* target of the armed eventfd read */
	bool wake_armed;
	uint64_t armed_deadline;    /* earliest timeout in flight, UINT64_MAX: none */
	struct __kernel_timespec ts;
} crew__reactor;

/* 0, or a negative errno with a message on stderr (io_uring unavailable...). */
int crew__reactor_init(crew__reactor *r, unsigned entries, int wake_fd);
void crew__reactor_fini(crew__reactor *r);
/* Reap completions; when `block`, first wait until one arrives (a wake-up, or
 * the timeout armed for `deadline`, UINT64_MAX for none). Returns the number of
 * completions reaped. */
int crew__reactor_poll(crew__reactor *r, bool block, uint64_t deadline);
/* Any thread: make the reactor's next (or current) blocking poll return. */
void crew__reactor_wake(int wake_fd);
const char *crew__reactor_name(void);

#endif
