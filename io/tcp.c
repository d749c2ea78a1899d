/*
 * tcp.c - crew_tcp_listen, crew_tcp_connect, crew_tcp_port: the TCP set-up
 * every server and client repeats, on top of crew/io.h.
 *
 * Names are resolved with getaddrinfo on the offload pool (crew_offload): it
 * blocks, and must not hold a worker. Sockets are made non-blocking and
 * close-on-exec (what the epoll backend wants, harmless for io_uring).
 */
#define _GNU_SOURCE
#include "internal.h"
#include <crew.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct resolve {
	const char *host;
	char port[8];
	int passive;
	struct addrinfo *res;
	int gai;
	int err; /* errno of the offload thread, for EAI_SYSTEM */
};

static void *resolve_fn(void *arg)
{
	struct resolve *r = arg;
	struct addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (r->passive ? AI_PASSIVE : 0);
	r->gai = getaddrinfo(r->host, r->port, &hints, &r->res);
	r->err = errno; /* errno is this thread's: the task reads it from here */
	return NULL;
}

/* getaddrinfo's codes as errnos: no errno says "no such host" exactly. */
static int gai_errno(int gai, int err)
{
	switch (gai) {
	case EAI_NONAME:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
	case EAI_FAIL:
		return -ENOENT;
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SYSTEM:
		return err ? -err : -EIO;
	default:
		return -EINVAL;
	}
}

/* Resolve on the offload pool. 0 with *res (freeaddrinfo it), or -errno. */
static int tcp_resolve(const char *host, uint16_t port, bool passive, struct addrinfo **res)
{
	struct resolve r = { .host = host, .passive = passive };
	snprintf(r.port, sizeof(r.port), "%u", (unsigned)port);
	int rc = crew_offload(resolve_fn, &r, NULL);
	if (rc == -ECANCELED && r.gai == 0) {
		freeaddrinfo(r.res); /* resolved, but the task was cancelled meanwhile */
		return rc;
	}
	if (rc)
		return rc;
	if (r.gai)
		return gai_errno(r.gai, r.err);
	*res = r.res;
	return 0;
}

static int tcp_socket(const struct addrinfo *ai)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);
	return fd < 0 ? -errno : fd;
}

/* One address: bind and listen; the fd, or -errno. */
static int tcp_listen_one(const struct addrinfo *ai, bool dual, int backlog)
{
	int fd = tcp_socket(ai);
	if (fd < 0)
		return fd;
	int one = 1, zero = 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* no host: one socket for IPv6 and IPv4 (mapped addresses) */
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual ? &zero : &one, sizeof(int));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, backlog) != 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

int crew_tcp_listen(const char *host, uint16_t port, int backlog)
{
	if (!crew_self())
		return -EPERM;
	if (host && !*host)
		host = NULL;
	struct addrinfo *res;
	int rc = tcp_resolve(host, port, true, &res);
	if (rc)
		return rc;
	if (backlog <= 0)
		backlog = SOMAXCONN;
	rc = -EADDRNOTAVAIL;
	/* no host: the IPv6 wildcard first (it takes IPv4 too), else IPv4 */
	for (int pass = 0; pass < 2 && rc < 0; pass++)
		for (struct addrinfo *ai = res; ai && rc < 0; ai = ai->ai_next)
			if (!host ? (ai->ai_family == AF_INET6) == (pass == 0) : pass == 0)
				rc = tcp_listen_one(ai, !host, backlog);
	freeaddrinfo(res);
	return rc;
}

int crew_tcp_connect(const char *host, uint16_t port)
{
	if (!host || !*host || port == 0)
		return -EINVAL;
	if (!crew_self())
		return -EPERM;
	struct addrinfo *res;
	int rc = tcp_resolve(host, port, false, &res);
	if (rc)
		return rc;
	rc = -EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = tcp_socket(ai);
		if (fd < 0) {
			rc = fd;
			continue;
		}
		rc = crew_connect(fd, ai->ai_addr, ai->ai_addrlen);
		if (rc == 0) {
			rc = fd;
			break;
		}
		close(fd);
		if (rc == -ECANCELED || rc == -ETIMEDOUT)
			break; /* the task's own state: no other address helps */
	}
	freeaddrinfo(res);
	return rc;
}

int crew_tcp_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -EAFNOSUPPORT;
}
