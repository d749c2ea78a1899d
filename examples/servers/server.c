/* server.c - the example servers' shared part (see server.h). */
#include "server.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_FDS 65536
#define STOP_GRACE_NS (10 * 1000000000ull)

static struct {
	const server_def *def;
	const char *host;
	unsigned port;
	int lfd;
	crew_task *acceptor;
	atomic_bool open[MAX_FDS]; /* connections being served */
	/* connection tasks running, plus one for main until the stop: whoever
	 * takes it to 0 sets all_closed, so main releases the future only after
	 * its await returned (or when nobody will ever set it) */
	atomic_int live;
	crew_future *all_closed;   /* set by the last connection after the stop */
} srv;

ssize_t server_send_all(int fd, const void *buf, size_t len)
{
	crew_deadline d;
	crew_deadline_push(&d, crew_now() + SERVER_SEND_NS);
	ssize_t n = crew_send_all(fd, buf, len, MSG_NOSIGNAL);
	crew_deadline_pop(&d);
	return n;
}

static void *connection(void *arg)
{
	int fd = (int)(intptr_t)arg;
	srv.def->serve(fd);
	atomic_store(&srv.open[fd], false);
	crew_close(fd);
	if (atomic_fetch_sub(&srv.live, 1) == 1) /* the stop has begun: main waits */
		crew_future_set(srv.all_closed, NULL);
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
				fprintf(stderr, "%s: accept: %s\n", srv.def->name, strerror(-fd));
			if (fd == -EMFILE || fd == -ENFILE)
				crew_sleep(10 * 1000000ull); /* out of fds: let some close */
			continue;
		}
		if (fd >= MAX_FDS) {
			crew_close(fd);
			continue;
		}
		atomic_store(&srv.open[fd], true);
		atomic_fetch_add(&srv.live, 1);
		crew_task *t = crew_spawn(connection, (void *)(intptr_t)fd);
		if (!t) { /* out of memory: refuse this one */
			atomic_store(&srv.open[fd], false);
			atomic_fetch_sub(&srv.live, 1);
			crew_close(fd);
			continue;
		}
		crew_detach(t);
	}
}

static void stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
}

/* Shut every open connection down in both directions: its reads see end of
 * file, its sends fail (EPIPE). */
static void shut_all(int how)
{
	for (int fd = 0; fd < MAX_FDS; fd++)
		if (atomic_load(&srv.open[fd]))
			shutdown(fd, how);
}

/* A second SIGINT/SIGTERM during the stop: do not wait for the grace. */
static void *second_signal(void *arg)
{
	sigset_t *stop = arg;
	if (crew_signal_wait(stop) > 0) {
		fprintf(stderr, "%s: second signal, closing every connection\n", srv.def->name);
		shut_all(SHUT_RDWR);
	}
	return NULL;
}

static void *main_task(void *arg)
{
	(void)arg;
	srv.lfd = crew_tcp_listen(srv.host, (uint16_t)srv.port, 4096);
	if (srv.lfd < 0) {
		fprintf(stderr, "%s: listen on %s port %u: %s\n", srv.def->name, srv.host, srv.port,
			strerror(-srv.lfd));
		return (void *)1;
	}
	printf("%s: listening on %s port %d (%u workers, %s)\n", srv.def->name, srv.host,
	       crew_tcp_port(srv.lfd), crew_workers(), crew_backend_name());
	fflush(stdout);
	srv.all_closed = crew_future_new();
	atomic_store(&srv.live, 1); /* main's share (see srv.live) */
	srv.acceptor = crew_spawn(accept_loop, NULL);
	if (!srv.all_closed || !srv.acceptor)
		return (void *)1;

	sigset_t stop;
	stop_signals(&stop);
	int sig = crew_signal_wait(&stop);
	fprintf(stderr, "%s: %s, stopping\n", srv.def->name, sig > 0 ? strsignal(sig) : strerror(-sig));

	/* 1. stop accepting */
	crew_cancel(srv.acceptor);
	crew_join(srv.acceptor, NULL);
	crew_close(srv.lfd);
	/* 2. every connection finishes what it read, then sees end of file */
	shut_all(SHUT_RD);
	/* 3. wait until all are closed: within the grace, or until a second
	 * signal; then whatever is left is shut down both ways */
	crew_task *again = crew_spawn(second_signal, &stop);
	if (atomic_fetch_sub(&srv.live, 1) != 1) { /* a connection will set it */
		crew_deadline grace;
		crew_deadline_push(&grace, crew_now() + STOP_GRACE_NS);
		int rc = crew_future_await(srv.all_closed, NULL);
		crew_deadline_pop(&grace);
		if (rc == -ETIMEDOUT) {
			fprintf(stderr, "%s: connections still open after 10 s, closing them\n",
				srv.def->name);
			shut_all(SHUT_RDWR);
			crew_future_await(srv.all_closed, NULL);
		}
	}
	if (again) {
		crew_cancel(again);
		crew_join(again, NULL);
	}
	crew_future_release(srv.all_closed);
	return NULL;
}

static void usage(FILE *to)
{
	const server_def *d = srv.def;
	fprintf(to,
		"usage: %s [--host H] [--port P] [--workers N] [--help]\n"
		"  --host H     address or name to listen on (default 127.0.0.1; \"\" for all)\n"
		"  --port P     TCP port (default %u; 0 picks a free one and prints it)\n"
		"  --workers N  worker threads (default: CREW_WORKERS, else one per CPU)\n"
		"SIGINT/SIGTERM stop it gracefully.\n%s",
		d->name, d->default_port, d->extra_help ? d->extra_help : "");
}

int server_main(const server_def *def, int argc, char **argv)
{
	crew_config cfg = {0};
	srv.def = def;
	srv.host = "127.0.0.1";
	srv.port = def->default_port;
	for (int i = 1; i < argc; i++) {
		char *end = NULL;
		if (!strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--host") && i + 1 < argc) {
			srv.host = argv[++i];
		} else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
			const char *text = argv[++i];
			unsigned long v = strtoul(text, &end, 10);
			if (!*text || *end || v > 65535)
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
	stop_signals(&stop);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	void *res = NULL;
	int rc = crew_run_with(&cfg, main_task, NULL, &res);
	if (rc != 0) {
		fprintf(stderr, "%s: crew_run: %s\n", def->name, strerror(-rc));
		return 1;
	}
	return res ? 1 : 0;
bad:
	usage(stderr);
	return 2;
}
