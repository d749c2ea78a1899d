/*
 * server.h - what the example servers share: options, the listening socket,
 * a task per connection, and a graceful stop on SIGINT/SIGTERM.
 *
 * A server gives its name and a function serving one connection; server_main
 * parses --host/--port/--workers/--help, listens, prints the port, accepts
 * until SIGINT or SIGTERM, then stops accepting, lets every connection finish
 * what it already read (its reading side is shut down, so an idle connection
 * sees end of file at once), and returns 0 once all are closed. A connection
 * still open 10 s after the signal, or at a second signal, is shut down in
 * both directions (a send to a client that does not read fails).
 */
#ifndef CREW_EXAMPLE_SERVER_H
#define CREW_EXAMPLE_SERVER_H

#include <crew.h>

typedef struct server_def {
	const char *name;          /* "echo-server" */
	unsigned default_port;
	void (*serve)(int fd);     /* serve one connection (a task); the fd is closed after */
	const char *extra_help;    /* more lines for --help, or NULL */
} server_def;

/* The process's exit status: 0, 1 (could not start), 2 (usage). */
int server_main(const server_def *def, int argc, char **argv);

/* crew_send_all (MSG_NOSIGNAL) within SERVER_SEND_NS: a client that does not
 * read cannot hold a connection, nor the graceful stop, for ever. */
#define SERVER_SEND_NS (10 * 1000000000ull)
ssize_t server_send_all(int fd, const void *buf, size_t len);

#endif
