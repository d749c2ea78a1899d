/*
 * reader.c - crew_reader: a small buffered reader over crew_read/crew_recv
 * for line- and delimiter-framed protocols (HTTP headers, RESP, text
 * protocols).
 *
 * The buffer holds [start, end) unread bytes. A read_until scans the
 * unread bytes for the delimiter, and reads more (into the free tail, after
 * sliding the unread bytes to the front) until it finds it, the peer
 * closes, or the buffer is full.
 */
#include <crew.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int crew_reader_init(crew_reader *r, int fd, size_t cap)
{
	if (!r || fd < 0 || cap == 0)
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	r->buf = malloc(cap);
	if (!r->buf)
		return -ENOMEM;
	r->fd = fd;
	r->cap = cap;
	/* sockets are read with crew_recv (its non-blocking first try) */
	int type;
	socklen_t len = sizeof(type);
	r->is_socket = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
	return 0;
}

void crew_reader_fini(crew_reader *r)
{
	if (!r)
		return;
	free(r->buf);
	r->buf = NULL;
	r->cap = r->start = r->end = 0;
}

/* Read more into the free tail; slide the unread bytes to the front first
 * when the tail is full. Returns the bytes read, 0 at end of file, -errno. */
static ssize_t reader_fill(crew_reader *r)
{
	if (r->end == r->cap && r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	if (r->end == r->cap)
		return -EMSGSIZE;
	ssize_t n = r->is_socket ? crew_recv(r->fd, r->buf + r->end, r->cap - r->end, 0) :
				   crew_read(r->fd, r->buf + r->end, r->cap - r->end);
	if (n > 0)
		r->end += (size_t)n;
	return n;
}

ssize_t crew_reader_read_until(crew_reader *r, int delim, char **out)
{
	if (!r || !r->buf || !out)
		return -EINVAL;
	size_t scanned = 0; /* bytes after start already known to hold no delim */
	for (;;) {
		char *from = r->buf + r->start + scanned;
		char *hit = memchr(from, delim, r->end - r->start - scanned);
		if (hit) {
			size_t len = (size_t)(hit - (r->buf + r->start)) + 1;
			*out = r->buf + r->start;
			r->start += len;
			return (ssize_t)len;
		}
		scanned = r->end - r->start; /* the fill may slide, not reorder */
		ssize_t n = reader_fill(r);
		if (n == 0) { /* end of file: what is left, without a delimiter */
			size_t len = r->end - r->start;
			*out = r->buf + r->start;
			r->start = r->end;
			return (ssize_t)len;
		}
		if (n < 0)
			return n; /* -EMSGSIZE: no delimiter within the buffer */
	}
}

ssize_t crew_reader_read(crew_reader *r, void *dst, size_t len)
{
	if (!r || !r->buf || (!dst && len))
		return -EINVAL;
	if (len == 0) /* as crew_read: nothing to wait for (it waited for data) */
		return 0;
	size_t have = r->end - r->start;
	if (have == 0) {
		if (len >= r->cap) /* large read: straight into dst */
			return r->is_socket ? crew_recv(r->fd, dst, len, 0) : crew_read(r->fd, dst, len);
		ssize_t n = reader_fill(r);
		if (n <= 0)
			return n;
		have = r->end - r->start;
	}
	size_t n = have < len ? have : len;
	memcpy(dst, r->buf + r->start, n);
	r->start += n;
	return (ssize_t)n;
}

size_t crew_reader_buffered(const crew_reader *r)
{
	return r ? r->end - r->start : 0;
}

size_t crew_reader_peek(const crew_reader *r, const char **data)
{
	if (!r || !data)
		return 0;
	*data = r->buf + r->start;
	return r->end - r->start;
}
