/*
 * server.h - what the example servers share: options, the listening socket,
 * a task per connection, and a graceful stop on SIGINT/SIGTERM.
 *
 * A server gives its name and a function serving one connection; server_main
 * parses --host/--port/--workers/--help, listens, prints the port, accepts
 * until SIGINT or SIGTERM, then stops accepting, lets every connection finish
 * what it already read (its reading side is shut down, so an idle connection
 * sees end of file at once), and returns 0 once all are closed.
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

#endif
