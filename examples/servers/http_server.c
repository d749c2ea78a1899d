/*
 * http-server - a small HTTP/1.1 server on crew: a task per connection.
 *
 *   http-server [--host H] [--port P] [--workers N] [--help]
 *
 * What a client can rely on:
 * - GET or HEAD / answers 200 with "Hello, World!" (text/plain, with
 *   Content-Length); any other path 404; another method 405 (with Allow).
 * - Keep-alive (HTTP/1.1's default; HTTP/1.0 only with "Connection:
 *   keep-alive", which the response then carries) and pipelining: responses
 *   to requests that arrived together go out together, in order, and each
 *   as soon as no complete request is left to answer with it. A "close" in
 *   any Connection header ends the connection after the response.
 * - The target may be in origin form ("/") or absolute form
 *   ("http://host/"). HTTP/1.1 requests need exactly one Host header.
 * - A malformed request (a bad request line, a header without a colon or
 *   with whitespace before it, a folded header line, a NUL byte, no or two
 *   Host headers in HTTP/1.1) gets 400, a request line or header block over
 *   8 KiB gets 431, a request with a body gets 413 (this server takes none),
 *   and the connection is closed after each of them.
 * - Timeouts: a request line must arrive within 10 s (of the connection
 *   or of the previous response: the keep-alive idle timeout), and the
 *   header lines after it within 5 s (slow-headers attacks); otherwise the
 *   connection is closed without a response.
 * - A response that cannot be sent within 10 s (a client that does not
 *   read) ends the connection.
 * - SIGINT/SIGTERM: stop accepting, finish the requests in flight, close
 *   idle connections, exit 0 (server.h).
 */
#define _GNU_SOURCE /* strcasestr */
#include "server.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define HEADER_LIMIT 8192
#define IDLE_NS (10 * 1000000000ull)
#define HEADERS_NS (5 * 1000000000ull)
#define OUT_CAP 16384

typedef struct request {
	bool head, keep_alive, has_body, http10;
	bool closed; /* a Connection header said close: sticky */
	int hosts;   /* Host headers seen */
	int status; /* 0: well-formed so far */
	char target[64];
	bool target_too_long;
	bool get;
} request;

typedef struct out_buf {
	char data[OUT_CAP];
	size_t len;
} out_buf;

static int flush(int fd, out_buf *o)
{
	ssize_t n = o->len ? server_send_all(fd, o->data, o->len) : 0;
	o->len = 0;
	return n < 0 ? (int)n : 0;
}

static int respond(int fd, out_buf *o, const request *q)
{
	static const char body[] = "Hello, World!";
	int status = q->status ? q->status : !q->get ? 405 : strcmp(q->target, "/") == 0 ? 200 : 404;
	const char *reason = status == 200 ? "OK" : status == 404 ? "Not Found" :
			     status == 405 ? "Method Not Allowed" : status == 413 ? "Payload Too Large" :
			     status == 431 ? "Request Header Fields Too Large" : "Bad Request";
	bool close = !q->keep_alive || q->status;
	if (OUT_CAP - o->len < 512 && flush(fd, o) < 0)
		return -1;
	int n = snprintf(o->data + o->len, OUT_CAP - o->len,
			 "HTTP/1.1 %d %s\r\nServer: crew\r\nContent-Type: text/plain\r\n"
			 "Content-Length: %zu\r\n%s%s\r\n%s",
			 status, reason, status == 200 ? sizeof(body) - 1 : strlen(reason),
			 status == 405 ? "Allow: GET, HEAD\r\n" : "",
			 close ? "Connection: close\r\n" : q->http10 ? "Connection: keep-alive\r\n" : "",
			 q->head ? "" : status == 200 ? body : reason);
	o->len += (size_t)n;
	return close ? 1 : 0;
}

/* The line without its CRLF (or LF); false when it holds a NUL byte. */
static bool strip_line(char *line, size_t *len)
{
	while (*len && (line[*len - 1] == '\n' || line[*len - 1] == '\r'))
		line[--*len] = 0;
	return memchr(line, 0, *len) == NULL;
}

/* "GET /path HTTP/1.1\r\n", the path maybe as "http://host/path" */
static void parse_request_line(char *line, size_t len, request *q)
{
	if (!strip_line(line, &len)) {
		q->status = 400;
		return;
	}
	char *sp1 = memchr(line, ' ', len);
	char *sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line)) : NULL;
	if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
	    (sp2[8] != '0' && sp2[8] != '1') || sp2[9] != 0) {
		q->status = 400;
		return;
	}
	*sp1 = *sp2 = 0;
	q->get = !strcmp(line, "GET") || !strcmp(line, "HEAD");
	q->head = !strcmp(line, "HEAD");
	q->http10 = sp2[8] == '0';
	q->keep_alive = !q->http10; /* HTTP/1.1: keep-alive unless told */
	char *target = sp1 + 1;
	/* absolute form (RFC 9112 3.2.2): the path after the authority */
	if (!strncasecmp(target, "http://", 7) || !strncasecmp(target, "https://", 8)) {
		char *slash = strchr(target + (target[4] == ':' ? 7 : 8), '/');
		target = slash ? slash : (char *)"/";
	}
	size_t tlen = strlen(target);
	if (tlen >= sizeof(q->target))
		q->target_too_long = true; /* not "/": a 404 either way */
	else
		memcpy(q->target, target, tlen + 1);
}

/* "Name: value": a name of token characters right before the colon (RFC
 * 9112 5.1: whitespace there, or a folded line, is a 400, as a field that a
 * server reads differently from a proxy smuggles requests). */
static void parse_header(char *line, size_t len, request *q)
{
	char *colon = strip_line(line, &len) ? memchr(line, ':', len) : NULL;
	if (!colon || colon == line || colon[-1] == ' ' || colon[-1] == '\t' || line[0] == ' ' ||
	    line[0] == '\t') {
		q->status = 400;
		return;
	}
	*colon = 0;
	char *v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	char *end = v + strlen(v);
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = 0;
	if (!strcasecmp(line, "Connection")) {
		if (strcasestr(v, "close"))
			q->closed = true; /* whatever other Connection headers say */
		else if (strcasestr(v, "keep-alive"))
			q->keep_alive = true;
	} else if (!strcasecmp(line, "Content-Length")) {
		if (strcmp(v, "0") != 0)
			q->has_body = true;
	} else if (!strcasecmp(line, "Transfer-Encoding")) {
		q->has_body = true;
	} else if (!strcasecmp(line, "Host")) {
		q->hosts++;
	}
}

/* Read one request's head. 1: a request (maybe with q->status set), 0: the
 * connection ended or timed out (nothing to answer), -1: an error. */
static int read_request(crew_reader *r, request *q)
{
	memset(q, 0, sizeof(*q));
	char *line;
	/* waiting for a request: the keep-alive idle timeout */
	crew_deadline idle;
	crew_deadline_push(&idle, crew_now() + IDLE_NS);
	ssize_t n;
	do /* tolerate empty lines between pipelined requests (RFC 9112 2.2) */
		n = crew_reader_read_until(r, '\n', &line);
	while (n > 0 && (n == 1 || (n == 2 && line[0] == '\r')));
	crew_deadline_pop(&idle);
	if (n == -EMSGSIZE) {
		q->status = 431;
		return 1;
	}
	if (n <= 0 || line[n - 1] != '\n')
		return n < 0 && n != -ETIMEDOUT && n != -ECANCELED ? -1 : 0;
	parse_request_line(line, (size_t)n, q);
	/* the headers: at most HEADER_LIMIT bytes and HEADERS_NS */
	crew_deadline hdr;
	crew_deadline_push(&hdr, crew_now() + HEADERS_NS);
	size_t total = (size_t)n;
	int rc = 1;
	for (;;) {
		n = crew_reader_read_until(r, '\n', &line);
		if (n == -EMSGSIZE || (n > 0 && (total += (size_t)n) > HEADER_LIMIT)) {
			q->status = 431;
			break;
		}
		if (n <= 0 || line[n - 1] != '\n') {
			rc = 0; /* ended or timed out mid-request: just close */
			break;
		}
		if (n == 1 || (n == 2 && line[0] == '\r'))
			break; /* end of the head */
		if (!q->status)
			parse_header(line, (size_t)n, q);
	}
	crew_deadline_pop(&hdr);
	if (q->closed)
		q->keep_alive = false;
	if (rc == 1 && !q->status && !q->http10 && q->hosts != 1)
		q->status = 400; /* RFC 9112 3.2: exactly one Host in HTTP/1.1 */
	if (rc == 1 && !q->status && q->has_body)
		q->status = 413;
	return rc;
}

/* Whether the bytes already read hold a whole request head (a blank line
 * after something): then its response can go out with this one. Otherwise
 * the next read may wait, and what is answered must not wait with it. */
static bool head_buffered(const crew_reader *r)
{
	const char *p;
	size_t n = crew_reader_peek(r, &p);
	while (n && (*p == '\r' || *p == '\n')) { /* empty lines between requests */
		p++;
		n--;
	}
	return n && (memmem(p, n, "\n\r\n", 3) || memmem(p, n, "\n\n", 2));
}

/* After an error response the client may still be sending (the rest of an
 * oversized head, a body): closing with unread data would reset the
 * connection and could destroy the response before the client read it. So
 * stop sending, read and drop what comes for up to a second, then close. */
static void linger(int fd, crew_reader *r)
{
	char drop[4096];
	crew_deadline d;
	shutdown(fd, SHUT_WR);
	crew_deadline_push(&d, crew_now() + 1000000000ull);
	for (size_t total = 0; total < (1u << 20);) {
		ssize_t n = crew_reader_read(r, drop, sizeof drop);
		if (n <= 0)
			break;
		total += (size_t)n;
	}
	crew_deadline_pop(&d);
}

static void http(int fd)
{
	crew_reader r;
	out_buf o; /* 16 KiB on the task's stack (256 KiB by default) */
	o.len = 0;
	if (crew_reader_init(&r, fd, HEADER_LIMIT) != 0)
		return;
	bool error = false;
	for (;;) {
		request q;
		int rc = read_request(&r, &q);
		if (rc <= 0)
			break;
		int closing = respond(fd, &o, &q);
		if (closing < 0)
			break;
		/* a complete pipelined request already here: answer it in the
		 * same send; otherwise send now */
		if (closing || !head_buffered(&r)) {
			if (flush(fd, &o) < 0 || closing) {
				error = q.status != 0;
				break;
			}
		}
	}
	flush(fd, &o);
	if (error)
		linger(fd, &r);
	crew_reader_fini(&r);
}

int main(int argc, char **argv)
{
	static const server_def def = {
		"http-server", 8080, http,
		"GET or HEAD / answers \"Hello, World!\"; other paths 404. Keep-alive and\n"
		"pipelining. A request line must come within 10 s (keep-alive idle timeout),\n"
		"its header lines within 5 s more; a head is at most 8 KiB.\n",
	};
	return server_main(&def, argc, argv);
}
