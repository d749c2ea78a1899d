/*
 * crew_splice and crew_sendfile on every backend (io_uring always runs both
 * as emulated ops; IO_TEST_EMUL's forced emulation changes nothing for them):
 * a file copied file -> pipe -> file with offsets and with file positions,
 * splices that wait for data or for room (blocking and O_NONBLOCK pipes), a
 * file sent to a socket whose reader compares the bytes, a sendfile that
 * waits for room.
 */
#include "internal.h" /* first: it defines _GNU_SOURCE */
#include "io_helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FILE_LEN (CREWT_SIZE(4u << 20, 1u << 20) + 4321)

/* An unlinked temporary file holding `len` bytes of data (NULL: empty). */
static int tmp_file(const unsigned char *data, size_t len)
{
	char path[] = "/tmp/crew-test-splice-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	for (size_t done = 0; done < len;) {
		ssize_t n = pwrite(fd, data + done, len - done, (off_t)done);
		if (n <= 0) {
			close(fd);
			return n < 0 ? -errno : -EIO;
		}
		done += (size_t)n;
	}
	return fd;
}

/* The checksum of fd's first len bytes (plain preads); 0 when short. */
static uint64_t file_sum(int fd, size_t len)
{
	unsigned char *buf = malloc(len ? len : 1);
	size_t got = 0;
	ssize_t n = 1;
	while (buf && got < len && (n = pread(fd, buf + got, len - got, (off_t)got)) > 0)
		got += (size_t)n;
	uint64_t sum = buf && got == len ? crewt_checksum(buf, len) : 0;
	free(buf);
	return sum;
}

static unsigned char *random_data(size_t len, unsigned seed)
{
	unsigned char *p = malloc(len);
	if (p)
		crewt_fill(p, len, seed);
	return p;
}

/* ---- file -> pipe -> file ---- */

static void *splice_copy(void *arg)
{
	(void)arg;
	size_t len = FILE_LEN;
	unsigned char *data = random_data(len, 3);
	CHECK(data, "malloc");
	uint64_t sum = crewt_checksum(data, len);
	int src = tmp_file(data, len), dst = tmp_file(NULL, 0), dst2 = tmp_file(NULL, 0), p[2];
	free(data);
	CHECK(src >= 0 && dst >= 0 && dst2 >= 0, "temporary files");
	CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe");
	/* with offsets: they advance, the file positions do not */
	off_t in = 0, out = 0;
	while ((size_t)in < len) {
		ssize_t n = crew_splice(src, &in, p[1], NULL, len - (size_t)in, SPLICE_F_MOVE);
		CHECK(n > 0, "splice file -> pipe at %lld: %zd", (long long)in, n);
		for (ssize_t moved = 0; moved < n;) {
			ssize_t m = crew_splice(p[0], NULL, dst, &out, (size_t)(n - moved), 0);
			CHECK(m > 0, "splice pipe -> file at %lld: %zd", (long long)out, m);
			moved += m;
		}
	}
	CHECK((size_t)in == len && (size_t)out == len, "offsets %lld, %lld, expected %zu", (long long)in,
	      (long long)out, len);
	CHECK(lseek(src, 0, SEEK_CUR) == 0 && lseek(dst, 0, SEEK_CUR) == 0,
	      "a splice with offsets moved a file position");
	CHECK(file_sum(dst, len) == sum, "the copy differs");
	/* at the end of the input: 0 */
	off_t end = (off_t)len;
	ssize_t n = crew_splice(src, &end, p[1], NULL, 100, 0);
	CHECK(n == 0 && end == (off_t)len, "splice at end of file: %zd", n);
	/* without offsets: the file positions are used and advance */
	CHECK(lseek(src, 1000, SEEK_SET) == 1000, "lseek");
	CHECK((n = crew_splice(src, NULL, p[1], NULL, 3000, 0)) == 3000, "splice from the position: %zd", n);
	CHECK((n = crew_splice(p[0], NULL, dst2, NULL, 3000, 0)) == 3000, "splice to the position: %zd", n);
	CHECK(lseek(src, 0, SEEK_CUR) == 4000 && lseek(dst2, 0, SEEK_CUR) == 3000,
	      "file positions %lld, %lld, expected 4000, 3000", (long long)lseek(src, 0, SEEK_CUR),
	      (long long)lseek(dst2, 0, SEEK_CUR));
	unsigned char *want = random_data(len, 3);
	CHECK(want, "malloc");
	uint64_t want_sum = crewt_checksum(want + 1000, 3000);
	free(want);
	CHECK(file_sum(dst2, 3000) == want_sum, "the bytes spliced from the position differ");
	/* neither fd a pipe; an offset for a pipe */
	off_t zero = 0;
	CHECK((n = crew_splice(src, NULL, dst, NULL, 10, 0)) == -EINVAL, "file -> file: %zd", n);
	CHECK((n = crew_splice(p[0], &zero, dst, NULL, 10, 0)) == -ESPIPE, "offset for a pipe: %zd", n);
	close(src);
	close(dst);
	close(dst2);
	close(p[0]);
	close(p[1]);
	return NULL;
}

/* ---- splices that wait ---- */

typedef struct waiter {
	crewt_blocked b; /* first: crewt_spawn_blocked's argument; b.fd: in */
	int out;
	off_t in_off, out_off;
	bool in_has_off, out_has_off;
} waiter;

static void *splice_waiter(void *p)
{
	waiter *w = p;
	atomic_store(&w->b.calling, 1);
	w->b.rc = crew_splice(w->b.fd, w->in_has_off ? &w->in_off : NULL, w->out,
			      w->out_has_off ? &w->out_off : NULL, 4096, 0);
	return NULL;
}

static void *splice_waits(void *arg)
{
	(void)arg;
	unsigned char data[4096];
	crewt_fill(data, sizeof data, 9);
	for (int nonblock = 0; nonblock < 2; nonblock++) {
		int p[2], f = tmp_file(data, sizeof data);
		CHECK(f >= 0, "temporary file");
		CHECK(pipe2(p, O_CLOEXEC | (nonblock ? O_NONBLOCK : 0)) == 0, "pipe");
		/* the input waits: an empty pipe, then data */
		waiter w = { .b.fd = p[0], .out = f, .out_has_off = true, .out_off = 100 };
		crew_task *t = crewt_spawn_blocked(splice_waiter, &w.b);
		CHECK(t, "%s pipe: the splice from an empty pipe did not wait (%zd)",
		      nonblock ? "O_NONBLOCK" : "blocking", w.b.rc);
		CHECK(write(p[1], "spliced", 7) == 7, "write");
		crew_join(t, NULL);
		char got[8] = { 0 };
		CHECK(w.b.rc == 7 && w.out_off == 107, "splice from the pipe: %zd (offset %lld)", w.b.rc,
		      (long long)w.out_off);
		CHECK(pread(f, got, 7, 100) == 7 && !memcmp(got, "spliced", 7), "the file holds other bytes");
		memcpy(data + 100, "spliced", 7); /* the file's bytes now */
		/* the output waits: a full pipe, then a reader */
		CHECK(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 4096, "F_SETPIPE_SZ");
		int fill = fcntl(p[1], F_GETPIPE_SZ);
		char *junk = calloc(1, (size_t)fill);
		CHECK(junk, "calloc");
		ssize_t put = write(p[1], junk, (size_t)fill);
		free(junk);
		CHECK(put == fill, "filling the pipe: %zd of %d", put, fill);
		w = (waiter){ .b.fd = f, .in_has_off = true, .in_off = 0, .out = p[1] };
		CHECK((t = crewt_spawn_blocked(splice_waiter, &w.b)), "the splice into a full pipe did not wait (%zd)",
		      w.b.rc);
		char *drain = malloc((size_t)fill);
		ssize_t got_n = drain ? read(p[0], drain, (size_t)fill) : -1;
		free(drain);
		crew_join(t, NULL);
		CHECK(got_n == fill, "draining the pipe: %zd", got_n);
		CHECK(w.b.rc > 0 && w.in_off == w.b.rc, "splice into the pipe: %zd (offset %lld)", w.b.rc,
		      (long long)w.in_off);
		unsigned char back[4096];
		ssize_t n = read(p[0], back, (size_t)w.b.rc);
		CHECK(n == w.b.rc && !memcmp(back, data, (size_t)n), "the pipe holds other bytes: %zd", n);
		close(f);
		close(p[0]);
		close(p[1]);
	}
	return NULL;
}

/* ---- file -> socket ---- */

typedef struct sink {
	int fd;
	size_t len, got;
	uint64_t sum;
	ssize_t rc;
} sink;

/* Read `len` bytes (or until end of file) and checksum them. */
static void *sink_task(void *p)
{
	sink *s = p;
	unsigned char *buf = malloc(s->len);
	if (!buf) {
		s->rc = -ENOMEM;
		return NULL;
	}
	while (s->got < s->len) {
		ssize_t n = crew_read(s->fd, buf + s->got, s->len - s->got);
		if (n <= 0) {
			s->rc = n;
			break;
		}
		s->got += (size_t)n;
	}
	s->sum = crewt_checksum(buf, s->got);
	free(buf);
	return NULL;
}

static void *sendfile_socket(void *arg)
{
	(void)arg;
	size_t len = FILE_LEN;
	unsigned char *data = random_data(len, 5);
	CHECK(data, "malloc");
	uint64_t sum = crewt_checksum(data, len);
	int src = tmp_file(data, len);
	CHECK(src >= 0, "temporary file");
	/* round 0: a blocking socket, round 1: O_NONBLOCK */
	for (int round = 0; round < 2; round++) {
		int sv[2];
		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (round ? SOCK_NONBLOCK : 0), 0, sv) == 0,
		      "socketpair");
		int small = 16384;
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
		sink s = { .fd = sv[1], .len = len };
		crew_task *t = crew_spawn(sink_task, &s);
		CHECK(t, "spawn");
		off_t off = 0;
		ssize_t n = 0;
		while ((size_t)off < len && (n = crew_sendfile(sv[0], src, &off, len - (size_t)off)) > 0)
			;
		if ((size_t)off < len)
			shutdown(sv[0], SHUT_RDWR); /* failed: the reader must not wait for the rest */
		crew_join(t, NULL);
		CHECK((size_t)off == len, "round %d: crew_sendfile at %lld: %zd", round, (long long)off, n);
		CHECK(s.got == len && s.sum == sum, "round %d: the reader got %zu of %zu bytes (%zd), %s", round,
		      s.got, len, s.rc, s.sum == sum ? "same" : "differ");
		CHECK(lseek(src, 0, SEEK_CUR) == 0, "a sendfile with an offset moved the file position");
		int fl = fcntl(sv[0], F_GETFL);
		CHECK(!(fl & O_NONBLOCK) == !round, "the socket's O_NONBLOCK changed: %#x", fl);
		/* without an offset: from the file position, which advances */
		CHECK(lseek(src, 100, SEEK_SET) == 100, "lseek");
		CHECK((n = crew_sendfile(sv[0], src, NULL, 50)) == 50, "crew_sendfile from the position: %zd", n);
		CHECK(lseek(src, 0, SEEK_CUR) == 150, "file position %lld, expected 150",
		      (long long)lseek(src, 0, SEEK_CUR));
		unsigned char back[50];
		CHECK((n = crew_recv(sv[1], back, 50, MSG_WAITALL)) == 50 && !memcmp(back, data + 100, 50),
		      "the reader got other bytes: %zd", n);
		CHECK(lseek(src, 0, SEEK_SET) == 0, "lseek");
		close(sv[0]);
		close(sv[1]);
	}
	free(data);
	/* at end of file: 0 */
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	off_t end = (off_t)len;
	ssize_t n = crew_sendfile(sv[0], src, &end, 10);
	close(sv[0]);
	close(sv[1]);
	close(src);
	CHECK(n == 0 && end == (off_t)len, "sendfile at end of file: %zd", n);
	return NULL;
}

/* ---- sendfile that waits for room ---- */

typedef struct sender {
	crewt_blocked b; /* first; b.fd: the socket */
	int src;
	off_t off;
} sender;

static void *sendfile_waiter(void *p)
{
	sender *s = p;
	atomic_store(&s->b.calling, 1);
	s->b.rc = crew_sendfile(s->b.fd, s->src, &s->off, 1000);
	return NULL;
}

static void *sendfile_waits(void *arg)
{
	(void)arg;
	unsigned char data[1000];
	crewt_fill(data, sizeof data, 13);
	int sv[2], src = tmp_file(data, sizeof data);
	CHECK(src >= 0, "temporary file");
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	int small = 4096;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	/* fill the socket until it takes no more */
	char junk[1024] = { 0 };
	size_t filled = 0;
	ssize_t n;
	while ((n = send(sv[0], junk, sizeof junk, MSG_DONTWAIT)) > 0)
		filled += (size_t)n;
	CHECK(n < 0 && errno == EAGAIN && filled > 0, "filling the socket: %s", strerror(errno));
	sender s = { .b.fd = sv[0], .src = src };
	crew_task *t = crewt_spawn_blocked(sendfile_waiter, &s.b);
	CHECK(t, "the sendfile to a full socket did not wait (%zd)", s.b.rc);
	/* s.off is not read while the call runs: it is the call's until it
	 * returns (a look here raced with its update once the drain below let
	 * it go on, which TSan reports: the kernel's socket orders them, and
	 * TSan cannot see that). The join orders the check at the end. */
	/* the reader drains the filler: the sendfile goes on */
	size_t drained = 0;
	char buf[1024];
	while (drained < filled && (n = crew_read(sv[1], buf, sizeof buf < filled - drained ? sizeof buf : filled - drained)) > 0)
		drained += (size_t)n;
	crew_join(t, NULL);
	CHECK(drained == filled, "drained %zu of %zu bytes", drained, filled);
	CHECK(s.b.rc > 0 && s.off == s.b.rc, "crew_sendfile: %zd (offset %lld)", s.b.rc, (long long)s.off);
	unsigned char back[1000];
	n = crew_recv(sv[1], back, (size_t)s.b.rc, MSG_WAITALL);
	CHECK(n == s.b.rc && !memcmp(back, data, (size_t)n), "the reader got other bytes: %zd", n);
	close(sv[0]);
	close(sv[1]);
	close(src);
	return NULL;
}

/* A task splices a pipe into a socket that nobody drains yet, while another
 * task of the same worker writes that pipe and drains the socket (its waits
 * bounded by 20 ms deadlines). io_uring's splice waited for room in its own
 * worker thread holding the pipe's lock; the write, issued inline, then put
 * crew's worker thread to sleep in io_uring_enter for ever. */
#define BESIDE_TOTAL (1u << 20)
static int beside_pipe[2], beside_sock[2];

static void *beside_splicer(void *arg)
{
	(void)arg;
	size_t moved = 0;
	while (moved < BESIDE_TOTAL) {
		ssize_t n = crew_splice(beside_pipe[0], NULL, beside_sock[1], NULL, BESIDE_TOTAL - moved, 0);
		if (n <= 0)
			return (void *)(intptr_t)(n ? n : -EIO);
		moved += (size_t)n;
	}
	return NULL;
}

static void *splice_beside_writes(void *arg)
{
	(void)arg;
	static char buf[65536];
	memset(buf, 'x', sizeof buf);
	CHECK(pipe2(beside_pipe, O_CLOEXEC) == 0, "pipe");
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, beside_sock) == 0, "socketpair");
	crew_task *t = crew_spawn(beside_splicer, NULL);
	CHECK(t, "spawn");
	size_t written = 0, got = 0;
	while (got < BESIDE_TOTAL) {
		crew_deadline d;
		bool wrote = false;
		if (written < BESIDE_TOTAL) {
			size_t len = BESIDE_TOTAL - written < sizeof buf ? BESIDE_TOTAL - written : sizeof buf;
			crew_deadline_push(&d, crew_now() + 20 * CREWT_MS);
			ssize_t n = crew_write(beside_pipe[1], buf, len);
			crew_deadline_pop(&d);
			CHECK(n > 0 || n == -ETIMEDOUT, "write: %zd", n);
			if (n > 0) {
				written += (size_t)n;
				wrote = true;
			}
		}
		if (wrote && written - got < 400000)
			continue; /* let data pile up: the socket fills, the splice waits */
		crew_deadline_push(&d, crew_now() + 20 * CREWT_MS);
		ssize_t n = crew_read(beside_sock[0], buf, sizeof buf);
		crew_deadline_pop(&d);
		CHECK(n > 0 || n == -ETIMEDOUT, "read: %zd", n);
		if (n > 0)
			got += (size_t)n;
	}
	void *r = (void *)1;
	CHECK(crew_join(t, &r) == 0 && r == NULL, "the splicer ended with %zd", (ssize_t)(intptr_t)r);
	for (int i = 0; i < 2; i++) {
		close(beside_pipe[i]);
		close(beside_sock[i]);
	}
	return NULL;
}

IO_TEST_EMUL(splice_beside_writes, 1, splice_beside_writes, NULL)
IO_TEST_EMUL(splice_copy, 2, splice_copy, NULL)
IO_TEST_EMUL(splice_waits, 2, splice_waits, NULL)
IO_TEST_EMUL(sendfile_socket, 2, sendfile_socket, NULL)
IO_TEST_EMUL(sendfile_waits, 2, sendfile_waits, NULL)
