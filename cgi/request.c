/* SPDX-License-Identifier: MIT */
/*
 * request.c: method, media type and length are checked from the CGI
 * environment before a byte of the body is read; the body is then read
 * exactly, with a deadline, into a buffer sized by our limit. A chunked
 * upload has no length: the server (Apache, nginx with its request
 * buffering off) hands the CGI the decoded body and then end of file, so
 * it is read to the end, under the same limit and deadline.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "request.h"
#include "config.h"
#include "limits.h"
#include "banned.h"

static const char *skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* application/json, optionally with charset=utf-8 (quoted or not). */
int content_type_ok(const char *ct)
{
	static const char media[] = "application/json";
	const char *p;

	if (!ct || strncasecmp(ct, media, sizeof(media) - 1) != 0)
		return 0;
	p = skip_ws(ct + sizeof(media) - 1);
	if (*p == 0)
		return 1;
	if (*p++ != ';')
		return 0;
	p = skip_ws(p);
	if (strncasecmp(p, "charset=", 8) != 0)
		return *p == 0;	/* "application/json;" */
	p += 8;
	if (strncasecmp(p, "utf-8", 5) == 0)
		p += 5;
	else if (strncasecmp(p, "\"utf-8\"", 7) == 0)
		p += 7;
	else
		return 0;
	return *skip_ws(p) == 0;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether the body comes chunked: no length, the server says where it
 * ends (end of file). */
static int chunked(void)
{
	const char *te = getenv("HTTP_TRANSFER_ENCODING");

	return te && strcasestr(te, "chunked") != NULL;
}

/* Waits until fd is readable or the deadline passes: 1, 0 (timed out). */
static int readable(int fd, long deadline)
{
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		long left = deadline - now_ms();
		int ready = left > 0 ? poll(&p, 1, (int)left) : 0;

		if (ready < 0 && errno == EINTR)
			continue;
		return ready > 0;
	}
}

/* A chunked body: to end of file, at most body_limit bytes. */
static int read_to_eof(struct request *req, int fd, long body_limit,
		       long timeout_ms, struct http_error *e)
{
	long deadline = now_ms() + timeout_ms;
	size_t cap = 0;

	for (;;) {
		ssize_t n;

		if (req->len == cap) {
			size_t want = cap ? 2 * cap : 65536;
			char *p;
			if (cap > (size_t)body_limit)
				return http_fail(e, 413, "request body is over "
						 "the limit of %ld bytes",
						 body_limit);
			if (want > (size_t)body_limit + 1)
				want = (size_t)body_limit + 1;
			if (!(p = realloc(req->body, want + 1)))
				return http_fail(e, 500, "out of memory");
			req->body = p;
			cap = want;
		}
		if (!readable(fd, deadline))
			return http_fail(e, 408, "request body not received "
					 "within %ld ms", timeout_ms);
		n = read(fd, req->body + req->len, cap - req->len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return http_fail(e, 400, "request body unreadable");
		if (n == 0)
			break;
		req->len += (size_t)n;
	}
	if (req->len > (size_t)body_limit)
		return http_fail(e, 413, "request body is over the limit of %ld "
				 "bytes", body_limit);
	if (req->len == 0)
		return http_fail(e, 400, "request body is empty");
	req->body[req->len] = 0;
	return 0;
}

static int read_body(struct request *req, int fd, long timeout_ms,
		     struct http_error *e)
{
	long deadline = now_ms() + timeout_ms;
	size_t got = 0;

	while (got < req->len) {
		struct pollfd p = { fd, POLLIN, 0 };
		long left = deadline - now_ms();
		int ready = left > 0 ? poll(&p, 1, (int)left) : 0;
		ssize_t n;

		if (ready < 0 && errno == EINTR)
			continue;
		if (ready <= 0)
			return http_fail(e, 408, "request body not received "
					 "within %ld ms", timeout_ms);
		n = read(fd, req->body + got, req->len - got);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return http_fail(e, 400, "request body is shorter than "
					 "Content-Length (%zu of %zu bytes)",
					 got, req->len);
		got += (size_t)n;
	}
	req->body[got] = 0;
	return 0;
}

int request_read(struct request *req, int fd, long body_limit,
		 long timeout_ms, struct http_error *e)
{
	const char *method = getenv("REQUEST_METHOD");
	const char *cl = getenv("CONTENT_LENGTH");
	long len;

	memset(req, 0, sizeof(*req));
	if (!method || strcmp(method, "POST") != 0)
		return http_fail(e, 405, "method %s not allowed: use POST",
				 method && *method && strlen(method) < 16 ?
				 method : "(none)");
	if (!content_type_ok(getenv("CONTENT_TYPE")))
		return http_fail(e, 415, "Content-Type must be application/json");
	if ((!cl || !*cl) && chunked())
		return read_to_eof(req, fd, body_limit, timeout_ms, e);
	if (!cl || !*cl)
		return http_fail(e, 411, "Content-Length is required");
	if (parse_long(cl, 0, 0x7fffffffffffffffL, &len) != 0)
		return http_fail(e, 400, "Content-Length is not a number");
	if (len > body_limit)
		return http_fail(e, 413, "request body of %ld bytes is over the "
				 "limit of %ld bytes", len, body_limit);
	if (len == 0)
		return http_fail(e, 400, "request body is empty");
	req->len = (size_t)len;
	req->body = malloc(req->len + 1);
	if (!req->body)
		return http_fail(e, 500, "out of memory");
	return read_body(req, fd, timeout_ms, e);
}

void request_discard(int fd, long timeout_ms)
{
	const char *cl = getenv("CONTENT_LENGTH");
	long deadline = now_ms() + timeout_ms, left;
	char buf[16384];

	if ((!cl || !*cl) && chunked())
		left = DISCARD_MAX_BYTES;	/* to end of file */
	else if (!cl || parse_long(cl, 0, 0x7fffffffffffffffL, &left) != 0)
		return;		/* no length: nothing is known to follow */
	if (left > DISCARD_MAX_BYTES)
		left = DISCARD_MAX_BYTES;
	while (left > 0) {
		struct pollfd p = { fd, POLLIN, 0 };
		long wait = deadline - now_ms();
		int ready = wait > 0 ? poll(&p, 1, (int)wait) : 0;
		ssize_t n;

		if (ready < 0 && errno == EINTR)
			continue;
		if (ready <= 0)
			return;
		n = read(fd, buf, (size_t)left < sizeof(buf) ? (size_t)left : sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return;
		left -= n;
	}
}

void request_release(struct request *req)
{
	free(req->body);
	req->body = NULL;
}
