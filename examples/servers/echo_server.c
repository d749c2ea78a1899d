/*
 * echo-server - a TCP echo server on crew: a task per connection.
 *
 *   echo-server [--host H] [--port P] [--workers N] [--help]
 *
 * --port 0 picks a free port; the first line on stdout says which:
 *   echo-server: listening on 127.0.0.1 port 40123 (2 workers, io_uring)
 * SIGINT or SIGTERM stop it gracefully: it stops accepting, every
 * connection finishes echoing what it already read (its reading side is shut
 * down, so an idle connection sees end of file at once), and it exits 0.
 */
#include <crew.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS 65536

struct server {
	const char *host;
	unsigned port;
	int lfd;
	crew_task *acceptor;
	atomic_bool open[MAX_FDS]; /* connections still being served */
	atomic_int live;           /* connection tasks running */
	crew_future *all_closed;   /* set when live drops to 0 after the stop */
	atomic_bool stopping;
};

static struct server srv;

static void *serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[16384];
	ssize_t n;
	while ((n = crew_recv(fd, buf, sizeof buf, 0)) > 0)
		if (crew_send_all(fd, buf, (size_t)n, MSG_NOSIGNAL) < 0)
			break;
	atomic_store(&srv.open[fd], false);
	crew_close(fd);
	if (atomic_fetch_sub(&srv.live, 1) == 1 && atomic_load(&srv.stopping))
		crew_future_set(srv.all_closed, NULL); /* -EALREADY is fine */
	return NULL;
}

static void *accept_loop(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = crew_accept(srv.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -ECANCELED)
			return NULL; /* stopping */
		if (fd < 0) {
			if (fd != -ECONNABORTED && fd != -EINTR)
				fprintf(stderr, "echo-server: accept: %s\n", strerror(-fd));
			if (fd == -EMFILE || fd == -ENFILE)
				crew_sleep(10 * 1000000ull); /* out of fds: let connections close */
			continue;
		}
		if (fd >= MAX_FDS) {
			crew_close(fd);
			continue;
		}
		atomic_store(&srv.open[fd], true);
		atomic_fetch_add(&srv.live, 1);
		crew_task *t = crew_spawn(serve, (void *)(intptr_t)fd);
		if (!t) {
			atomic_store(&srv.open[fd], false);
			atomic_fetch_sub(&srv.live, 1);
			crew_close(fd);
			continue;
		}
		crew_detach(t);
	}
}

static void *main_task(void *arg)
{
	(void)arg;
	srv.lfd = crew_tcp_listen(srv.host, (uint16_t)srv.port, 1024);
	if (srv.lfd < 0) {
		fprintf(stderr, "echo-server: listen on %s port %u: %s\n", srv.host, srv.port,
			strerror(-srv.lfd));
		return (void *)1;
	}
	printf("echo-server: listening on %s port %d (%u workers, %s)\n", srv.host,
	       crew_tcp_port(srv.lfd), crew_workers(), crew_backend_name());
	fflush(stdout);
	srv.all_closed = crew_future_new();
	srv.acceptor = crew_spawn(accept_loop, NULL);
	if (!srv.all_closed || !srv.acceptor)
		return (void *)1;

	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	int sig = crew_signal_wait(&stop);
	fprintf(stderr, "echo-server: %s, stopping\n", sig > 0 ? strsignal(sig) : strerror(-sig));

	/* 1. stop accepting */
	atomic_store(&srv.stopping, true);
	crew_cancel(srv.acceptor);
	crew_join(srv.acceptor, NULL);
	crew_close(srv.lfd);
	/* 2. every connection finishes what it read, then sees end of file */
	for (int fd = 0; fd < MAX_FDS; fd++)
		if (atomic_load(&srv.open[fd]))
			shutdown(fd, SHUT_RD);
	if (atomic_load(&srv.live) > 0)
		crew_future_await(srv.all_closed, NULL);
	crew_future_release(srv.all_closed);
	return NULL;
}

static void usage(FILE *to)
{
	fprintf(to, "usage: echo-server [--host H] [--port P] [--workers N] [--help]\n"
		    "  --host H     address or name to listen on (default 127.0.0.1; \"\" for all)\n"
		    "  --port P     TCP port (default 7000; 0 picks a free one and prints it)\n"
		    "  --workers N  worker threads (default: CREW_WORKERS, else one per CPU)\n"
		    "SIGINT/SIGTERM stop it gracefully.\n");
}

int main(int argc, char **argv)
{
	crew_config cfg = {0};
	srv.host = "127.0.0.1";
	srv.port = 7000;
	for (int i = 1; i < argc; i++) {
		char *end = NULL;
		if (!strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--host") && i + 1 < argc) {
			srv.host = argv[++i];
		} else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
			unsigned long v = strtoul(argv[++i], &end, 10);
			if (*end || v > 65535)
				goto bad;
			srv.port = (unsigned)v;
		} else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
			unsigned long v = strtoul(argv[++i], &end, 10);
			if (*end || v < 1 || v > 1024)
				goto bad;
			cfg.workers = (unsigned)v;
		} else {
			goto bad;
		}
	}
	/* crew_signal_wait reads SIGINT/SIGTERM: block them before the workers
	 * start (they inherit this thread's mask) */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	void *res = NULL;
	int rc = crew_run_with(&cfg, main_task, NULL, &res);
	if (rc != 0) {
		fprintf(stderr, "echo-server: crew_run: %s\n", strerror(-rc));
		return 1;
	}
	return res ? 1 : 0;
bad:
	usage(stderr);
	return 2;
}
