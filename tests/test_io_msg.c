/*
 * Messages and shutdown on every backend, and on io_uring emulating them
 * (IO_TEST_EMUL, io_helpers.h): crew_sendmsg/crew_recvmsg with several
 * iovecs and an fd passed with SCM_RIGHTS, a datagram's sender address,
 * MSG_WAITALL gathering a message that comes in parts, and crew_shutdown
 * seen by the peer as end of file.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE */
#include "io_helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* A receiver: 10 bytes into three iovecs of 4, 3 and 8 bytes, and room for
 * one fd of ancillary data. */
typedef struct rcv {
	crewt_blocked b; /* first: crewt_spawn_blocked's argument */
	char x[4], y[3], z[8];
	struct iovec iov[3];
	/* not a union with struct cmsghdr: its flexible array member would make
	 * this a variable-sized field (clang's -Wgnu) */
	_Alignas(struct cmsghdr) char ctl[CMSG_SPACE(sizeof(int))];
	struct msghdr msg;
	int flags;
} rcv;

static void rcv_init(rcv *r, int fd, int flags)
{
	memset(r, 0, sizeof *r);
	r->b.fd = fd;
	r->flags = flags;
	r->iov[0] = (struct iovec){ r->x, sizeof r->x };
	r->iov[1] = (struct iovec){ r->y, sizeof r->y };
	r->iov[2] = (struct iovec){ r->z, sizeof r->z };
	r->msg = (struct msghdr){ .msg_iov = r->iov, .msg_iovlen = 3, .msg_control = r->ctl,
				  .msg_controllen = sizeof r->ctl };
}

static void *rcv_task(void *p)
{
	rcv *r = p;
	atomic_store(&r->b.calling, 1);
	r->b.rc = crew_recvmsg(r->b.fd, &r->msg, r->flags);
	return NULL;
}

/* Send "abc" "defgh" "ij" in one message, with `pass` as SCM_RIGHTS. */
static ssize_t send_with_fd(int fd, int pass)
{
	char a[] = "abc", b[] = "defgh", c[] = "ij";
	struct iovec iov[3] = { { a, 3 }, { b, 5 }, { c, 2 } };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	memset(&ctl, 0, sizeof ctl);
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 3, .msg_control = ctl.buf,
			    .msg_controllen = sizeof ctl.buf };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &pass, sizeof pass);
	return crew_sendmsg(fd, &m, MSG_NOSIGNAL);
}

/* What r received: the 10 bytes spread over its iovecs, and an fd that is
 * the write end of pipe p (close-on-exec). NULL, or what is wrong. */
static void *check_rcv(rcv *r, int p[2])
{
	CHECK(r->b.rc == 10, "crew_recvmsg: %zd, expected 10", r->b.rc);
	CHECK(!memcmp(r->x, "abcd", 4) && !memcmp(r->y, "efg", 3) && !memcmp(r->z, "hij", 3),
	      "the bytes are not spread over the iovecs in order");
	CHECK(!(r->msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)), "msg_flags %#x", r->msg.msg_flags);
	struct cmsghdr *cm = CMSG_FIRSTHDR(&r->msg);
	CHECK(cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		      cm->cmsg_len == CMSG_LEN(sizeof(int)),
	      "no SCM_RIGHTS message (controllen %zu)", (size_t)r->msg.msg_controllen);
	int got;
	memcpy(&got, CMSG_DATA(cm), sizeof got);
	CHECK(got >= 0 && got != p[1], "passed fd %d", got);
	int fdfl = fcntl(got, F_GETFD);
	CHECK(fdfl >= 0 && (fdfl & FD_CLOEXEC), "MSG_CMSG_CLOEXEC not applied: %d", fdfl);
	char in[4];
	ssize_t n = crew_write(got, "via", 3);
	close(got);
	CHECK(n == 3, "write to the passed fd: %zd", n);
	CHECK((n = crew_read(p[0], in, sizeof in)) == 3 && !memcmp(in, "via", 3),
	      "the passed fd is not the pipe's: %zd", n);
	return NULL;
}

static void *msg_scm_rights(void *arg)
{
	(void)arg;
	int sv[2], p[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe");
	/* round 0: the message is there before the receive; round 1: the
	 * receiver waits first (through the reactor) */
	for (int round = 0; round < 2; round++) {
		rcv r;
		rcv_init(&r, sv[1], MSG_CMSG_CLOEXEC);
		crew_task *t = NULL;
		if (round == 1)
			CHECK((t = crewt_spawn_blocked(rcv_task, &r.b)), "the receiver did not wait");
		ssize_t n = send_with_fd(sv[0], p[1]);
		CHECK(n == 10, "crew_sendmsg: %zd", n);
		if (t)
			crew_join(t, NULL);
		else
			rcv_task(&r);
		void *err = check_rcv(&r, p);
		if (err)
			FAIL("round %d: %s", round, (char *)err);
	}
	close(sv[0]);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
	return NULL;
}

/* A datagram's sender address comes back in msg_name. */
static void *msg_udp_name(void *arg)
{
	(void)arg;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(s >= 0 && r >= 0, "socket");
	struct sockaddr_in ra = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) }, sa = ra;
	socklen_t len = sizeof ra;
	CHECK(bind(r, (struct sockaddr *)&ra, len) == 0 && getsockname(r, (struct sockaddr *)&ra, &len) == 0, "bind r");
	CHECK(bind(s, (struct sockaddr *)&sa, len) == 0 && getsockname(s, (struct sockaddr *)&sa, &len) == 0, "bind s");
	char one[] = "dat", two[] = "agram";
	struct iovec out[2] = { { one, 3 }, { two, 5 } };
	struct msghdr m = { .msg_name = &ra, .msg_namelen = sizeof ra, .msg_iov = out, .msg_iovlen = 2 };
	ssize_t n = crew_sendmsg(s, &m, 0);
	CHECK(n == 8, "crew_sendmsg to an address: %zd", n);
	char buf[16] = { 0 };
	struct sockaddr_in from;
	memset(&from, 0, sizeof from);
	struct iovec in = { buf, sizeof buf };
	struct msghdr rm = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &in, .msg_iovlen = 1 };
	n = crew_recvmsg(r, &rm, 0);
	CHECK(n == 8 && !memcmp(buf, "datagram", 8), "crew_recvmsg: %zd", n);
	CHECK(rm.msg_namelen == sizeof from && from.sin_port == sa.sin_port &&
		      from.sin_addr.s_addr == htonl(INADDR_LOOPBACK),
	      "sender address: len %u port %u", (unsigned)rm.msg_namelen, ntohs(from.sin_port));
	close(s);
	close(r);
	return NULL;
}

/* crew_recv with MSG_WAITALL on a datagram socket returns the first
 * datagram, as recv(2) and io_uring do (only streams gather): on epoll it
 * used to wait for more. */
static void *recv_waitall_dgram(void *arg)
{
	(void)arg;
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	CHECK(write(sv[1], "short", 5) == 5, "write");
	char buf[64];
	crew_deadline d;
	crew_deadline_push(&d, crew_now() + 5 * CREWT_SEC);
	ssize_t n = crew_recv(sv[0], buf, sizeof buf, MSG_WAITALL);
	crew_deadline_pop(&d);
	close(sv[0]);
	close(sv[1]);
	CHECK(n == 5 && !memcmp(buf, "short", 5), "MSG_WAITALL on a datagram: %zd", n);
	return NULL;
}

/* Yield until fd has no unread bytes (the receiver took them). */
static bool drained(int fd)
{
	int unread = 1;
	while (ioctl(fd, FIONREAD, &unread) == 0 && unread > 0)
		if (crew_yield() != 0)
			return false;
	return unread == 0;
}

/* MSG_WAITALL gathers 10 bytes sent in two parts, the receiver waiting
 * between them with the first part in its iovecs; at end of file it returns
 * the part it has. */
static void *msg_waitall(void *arg)
{
	(void)arg;
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	rcv r;
	rcv_init(&r, sv[1], MSG_WAITALL);
	r.msg.msg_control = NULL;
	r.msg.msg_controllen = 0;
	r.iov[2].iov_len = 3; /* 4 + 3 + 3: 10 bytes */
	crew_task *t = crewt_spawn_blocked(rcv_task, &r.b);
	CHECK(t, "the receiver did not wait");
	CHECK(crew_send(sv[0], "abcde", 5, MSG_NOSIGNAL) == 5, "send abcde");
	CHECK(drained(sv[1]), "the first part was not taken");
	CHECK(crewt_wait_suspended(t), "the receiver returned after a part: %zd", r.b.rc);
	CHECK(crew_send(sv[0], "fghij", 5, MSG_NOSIGNAL) == 5, "send fghij");
	crew_join(t, NULL);
	CHECK(r.b.rc == 10 && !memcmp(r.x, "abcd", 4) && !memcmp(r.y, "efg", 3) && !memcmp(r.z, "hij", 3),
	      "MSG_WAITALL: %zd", r.b.rc);
	/* end of file after a part: the part */
	rcv_init(&r, sv[1], MSG_WAITALL);
	CHECK((t = crewt_spawn_blocked(rcv_task, &r.b)), "the receiver did not wait");
	CHECK(crew_send(sv[0], "klmnop", 6, MSG_NOSIGNAL) == 6, "send klmnop");
	CHECK(drained(sv[1]), "the part was not taken");
	CHECK(crew_shutdown(sv[0], SHUT_WR) == 0, "crew_shutdown");
	crew_join(t, NULL);
	CHECK(r.b.rc == 6 && !memcmp(r.x, "klmn", 4) && !memcmp(r.y, "op", 2),
	      "MSG_WAITALL at end of file: %zd, expected the 6 bytes", r.b.rc);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

/* A connected pair: a socketpair (tcp false) or TCP over 127.0.0.1. */
static int connected_pair(bool tcp, int sv[2])
{
	if (!tcp)
		return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0 ? 0 : -errno;
	struct sockaddr_in addr;
	int lfd = crewt_tcp_listener(&addr, 4);
	if (lfd < 0)
		return lfd;
	sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = sv[0] < 0 ? -errno : crew_connect(sv[0], (struct sockaddr *)&addr, sizeof addr);
	sv[1] = rc ? rc : crew_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
	close(lfd);
	return sv[1] < 0 ? sv[1] : 0;
}

/* SHUT_WR: the peer, waiting in a receive, gets end of file; the other way
 * still works; sending after it fails. */
static void *shutdown_eof(void *arg)
{
	(void)arg;
	for (int tcp = 0; tcp < 2; tcp++) {
		int sv[2];
		int rc = connected_pair(tcp, sv);
		CHECK(rc == 0, "%s pair: %s", tcp ? "tcp" : "unix", strerror(-rc));
		crewt_blocked b = { .fd = sv[1] };
		crew_task *t = crewt_spawn_blocked(crewt_recv_blocked, &b);
		CHECK(t, "the reader did not wait");
		CHECK((rc = crew_shutdown(sv[0], SHUT_WR)) == 0, "crew_shutdown: %d", rc);
		crew_join(t, NULL);
		CHECK(b.rc == 0, "%s: the peer read %zd, expected end of file", tcp ? "tcp" : "unix", b.rc);
		char in[8];
		ssize_t n = crew_send(sv[1], "back", 4, MSG_NOSIGNAL);
		CHECK(n == 4, "send the other way: %zd", n);
		CHECK((n = crew_recv(sv[0], in, 4, MSG_WAITALL)) == 4 && !memcmp(in, "back", 4),
		      "receive on the shut-down side: %zd", n);
		CHECK((n = crew_send(sv[0], "x", 1, MSG_NOSIGNAL)) == -EPIPE, "send after SHUT_WR: %zd", n);
		CHECK((rc = crew_shutdown(sv[0], 12345)) == -EINVAL, "bad how: %d", rc);
		close(sv[0]);
		close(sv[1]);
	}
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(s >= 0, "socket");
	int rc = crew_shutdown(s, SHUT_RDWR);
	close(s);
	CHECK(rc == -ENOTCONN, "shutdown of an unconnected socket: %d", rc);
	return NULL;
}

IO_TEST_EMUL(msg_scm_rights, 2, msg_scm_rights, NULL)
IO_TEST_EMUL(msg_udp_name, 2, msg_udp_name, NULL)
IO_TEST_EMUL(msg_waitall, 2, msg_waitall, NULL)
IO_TEST(recv_waitall_dgram, 2, recv_waitall_dgram, NULL)
IO_TEST_EMUL(shutdown_eof, 2, shutdown_eof, NULL)
