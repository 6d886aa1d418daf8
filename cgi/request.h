/* SPDX-License-Identifier: MIT */
/* request.h: the CGI environment and body, checked before anything else. */
#ifndef PYEXEC_REQUEST_H
#define PYEXEC_REQUEST_H

#include <stddef.h>
#include "http.h"

struct request {
	char *body;	/* NUL-terminated, len bytes before the NUL */
	size_t len;
};

/*
 * Checks REQUEST_METHOD, CONTENT_TYPE and CONTENT_LENGTH (against
 * body_limit, before reading), then reads exactly CONTENT_LENGTH bytes
 * from fd within timeout_ms; without CONTENT_LENGTH, a chunked upload
 * (HTTP_TRANSFER_ENCODING) is read to end of file, at most body_limit
 * bytes. Returns 0, or -1 with e filled.
 * The caller frees req->body with request_release.
 */
int request_read(struct request *req, int fd, long body_limit,
		 long timeout_ms, struct http_error *e);
void request_release(struct request *req);

/*
 * Reads and drops the body CONTENT_LENGTH announces (a chunked one: to end
 * of file), at most
 * DISCARD_MAX_BYTES of it, within timeout_ms; for a request refused before
 * its body was read, once the answer is written. A server that gives the
 * CGI one socket as stdin and stdout (Apache's mod_cgid) loses the answer
 * when the CGI exits with bytes unread (the socket is reset), and fcgiwrap
 * answers 502 when it cannot write the whole body.
 */
void request_discard(int fd, long timeout_ms);

/* Exposed for the unit tests. */
int content_type_ok(const char *ct);

#endif
