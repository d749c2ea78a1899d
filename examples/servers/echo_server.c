/*
 * echo-server - a TCP echo server on crew: a task per connection echoes
 * what it reads; a client that does not read what comes back within 10 s is
 * disconnected. Options and the graceful stop: server.h.
 *
 *   echo-server [--host H] [--port P] [--workers N] [--help]
 */
#include "server.h"

#include <sys/socket.h>

static void echo(int fd)
{
	char buf[16384];
	ssize_t n;
	while ((n = crew_recv(fd, buf, sizeof buf, 0)) > 0)
		if (server_send_all(fd, buf, (size_t)n) < 0)
			break;
}

int main(int argc, char **argv)
{
	static const server_def def = { "echo-server", 7000, echo, NULL };
	return server_main(&def, argc, argv);
}
