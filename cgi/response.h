/* SPDX-License-Identifier: MIT */
/*
 * response.h: the only writer of stdout. Every response has the same JSON
 * shape: success, output, error, execution_time_ms always present.
 */
#ifndef PYEXEC_RESPONSE_H
#define PYEXEC_RESPONSE_H

#include "http.h"
#include "jsonw.h"
#include "../sandbox/sandbox.h"

/* What every response carries besides the body: the request id and extra
 * header lines (rate limit, Retry-After, WWW-Authenticate). */
struct reply {
	char run_id[33];
	char headers[512];
	size_t hlen;
	const char *profile;	/* the run's modules: "seed", "compute", ... */
};

/* Appends one header line ("Name: value", no newline) to r. */
void reply_header(struct reply *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A refused request: status from e, success false, empty output. */
void respond_refusal(const struct http_error *e, const struct reply *r);

/* A run, whatever its outcome (200, or 500 for SB_INTERNAL). */
void respond_result(const struct sb_result *res, const struct reply *r);

/* A 200 that is not a run's answer (/metrics): body as content_type;
 * only the headers for a HEAD. */
void respond_text(const char *content_type, const char *body, size_t len,
		  int head_only, const struct reply *r);
/* The HTTP status respond_result uses for res. */
int result_status(const struct sb_result *res);

/* The REST answers' JSON objects, begun in w and left open (jw_finish
 * closes them): the MCP front end embeds them in its own answers. */
void refusal_object(const struct http_error *e, const struct reply *r,
		    struct jw *w);
void result_object(const struct sb_result *res, const struct reply *r,
		   struct jw *w);

/* Writes status, the reply's headers and w's text as it is (jw_raw
 * only, no jw_begin: an empty w sends no body); releases w. */
void respond_raw(int status, const struct reply *r, struct jw *w);

#endif
