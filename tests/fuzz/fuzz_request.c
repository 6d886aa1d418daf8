/* SPDX-License-Identifier: MIT */
/*
 * fuzz_request.c: libFuzzer harness for the request path, from the CGI
 * environment and body to a validated job (request_read, then job_parse),
 * aborting when a documented invariant breaks.
 *
 * Input layout: byte 0 picks the method, byte 1 the Content-Type, byte 2
 * how Content-Length relates to the body and which limits apply (the
 * defaults, or small ones so that every limit is reachable); when byte 2
 * asks for a literal Content-Length, the bytes up to the first newline are
 * that value. The rest is the body, given as a memfd (read to its end, a
 * short body is refused at once, never after a timeout).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "../../cgi/request.h"
#include "../../cgi/job.h"
#include "../../cgi/utf8.h"
#include "../../cgi/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const methods[] = {
	"POST", "GET", NULL, "", "post", "PUT", "POST ", "A-very-long-method-name"
};
static const char *const types[] = {
	"application/json", "application/json; charset=utf-8",
	"application/json;charset=\"utf-8\"", "APPLICATION/JSON", NULL, "",
	"text/plain", "application/json; charset=latin-1", "application/json;",
	"application/jsonx", "application/json ; charset=UTF-8 ",
	"application/json; charset=utf-8; x=y",
};
#define N(a) (sizeof(a) / sizeof((a)[0]))

static void fail(const char *what, const struct http_error *e)
{
	fprintf(stderr, "invariant broken: %s (status %d, type %s, msg '%s')\n",
		what, e ? e->status : 0, e && e->type ? e->type : "-",
		e ? e->msg : "");
	abort();
}

/* A refusal must name a known status, its type, and say something. */
static void check_refusal(const struct http_error *e, const int *ok, size_t n)
{
	size_t i;

	for (i = 0; i < n && ok[i] != e->status; i++)
		;
	if (i == n)
		fail("unexpected status", e);
	if (!e->type || strcmp(e->type, "Error") == 0)
		fail("status without an error_type", e);
	if (!e->msg[0] || !memchr(e->msg, 0, sizeof(e->msg)))
		fail("empty or unterminated message", e);
	if (!utf8_valid(e->msg, strlen(e->msg)))
		fail("message is not UTF-8", e);
}

/* What the child gets: input_data's bytes within the body, which parse
 * alone (JSON whitespace around them only) to the value cJSON found. */
static void check_input(const struct job *j, const char *body, size_t len)
{
	const cJSON *in = cJSON_GetObjectItemCaseSensitive(j->root, "input_data");
	const char *end = NULL;
	cJSON *alone;

	if (j->input_empty)
		return;
	if (!in || !j->input || j->input < body ||
	    j->input_len > len - (size_t)(j->input - body))
		fail("input_data's bytes are not in the body", NULL);
	alone = cJSON_ParseWithLengthOpts(j->input, j->input_len, &end, 0);
	if (!alone || end != j->input + j->input_len ||
	    !cJSON_Compare(alone, in, 1))
		fail("input_data's bytes do not parse to its value", NULL);
	cJSON_Delete(alone);
}

static void check_job(const struct job *j, const struct settings *cfg)
{
	if (!j->root || !cJSON_IsObject(j->root) || !j->code)
		fail("accepted job without an object and code", NULL);
	if (memchr(j->code, 0, j->code_len) || j->code[j->code_len] != 0)
		fail("code length disagrees with its NUL", NULL);
	if (!utf8_valid(j->code, j->code_len))
		fail("accepted code is not valid UTF-8", NULL);
	if ((long)j->code_len > cfg->code_bytes)
		fail("accepted code over the limit", NULL);
	if (!j->input_empty && (long)j->input_len > cfg->input_bytes)
		fail("accepted input_data over the limit", NULL);
	if (j->token && !utf8_valid(j->token, strlen(j->token)))
		fail("accepted token is not valid UTF-8", NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int read_ok[] = { 400, 405, 411, 413, 415 };
	static const int parse_ok[] = { 400 };
	struct settings cfg;
	struct http_error e;
	struct request req;
	struct job job;
	char cl[64];
	const uint8_t *body;
	size_t blen;
	int fd, rc, mode;

	if (size < 3)
		return 0;
	settings_defaults(&cfg);
	mode = data[2];
	if (mode & 0x80) {	/* small limits: every one of them reachable */
		cfg.body_bytes = 256;
		cfg.code_bytes = 16;
		cfg.input_bytes = 16;
	}
	body = data + 3;
	blen = size - 3;
	switch (mode & 7) {
	case 0: case 1: case 2:	/* the usual case: exact */
		snprintf(cl, sizeof(cl), "%zu", blen);
		break;
	case 3:			/* announces more than it sends */
		snprintf(cl, sizeof(cl), "%zu", blen + 1 + (mode >> 3 & 15));
		break;
	case 4:			/* announces less: the rest is not read */
		snprintf(cl, sizeof(cl), "%zu", blen / 2);
		break;
	case 5:			/* missing */
		cl[0] = 0;
		break;
	default: {		/* literal, up to the first newline */
		const uint8_t *nl = memchr(body, '\n', blen);
		size_t k = nl ? (size_t)(nl - body) : 0;
		if (k >= sizeof(cl))
			k = sizeof(cl) - 1;
		memcpy(cl, body, k);
		cl[k] = 0;
		if (nl) {
			blen -= (size_t)(nl + 1 - body);
			body = nl + 1;
		}
		if (memchr(cl, 0, k))	/* an environment value ends at NUL */
			cl[strlen(cl)] = 0;
	}
	}

	if (methods[data[0] % N(methods)])
		setenv("REQUEST_METHOD", methods[data[0] % N(methods)], 1);
	else
		unsetenv("REQUEST_METHOD");
	if (types[data[1] % N(types)])
		setenv("CONTENT_TYPE", types[data[1] % N(types)], 1);
	else
		unsetenv("CONTENT_TYPE");
	if ((mode & 7) == 5)
		unsetenv("CONTENT_LENGTH");
	else
		setenv("CONTENT_LENGTH", cl, 1);

	fd = memfd_create("body", MFD_CLOEXEC);
	if (fd < 0 || (blen && write(fd, body, blen) != (ssize_t)blen) ||
	    lseek(fd, 0, SEEK_SET) != 0) {
		perror("memfd");
		abort();
	}
	memset(&e, 0, sizeof(e));
	rc = request_read(&req, fd, cfg.body_bytes, 1000, &e);
	close(fd);
	if (rc != 0) {
		if (rc != -1)
			fail("request_read returned neither 0 nor -1", &e);
		check_refusal(&e, read_ok, N(read_ok));
		request_release(&req);
		return 0;
	}
	if (!req.body || (long)req.len > cfg.body_bytes || req.len == 0 ||
	    req.body[req.len] != 0 || req.len > blen ||
	    memcmp(req.body, body, req.len) != 0)
		fail("request body differs from what was sent", NULL);

	memset(&e, 0, sizeof(e));
	rc = job_parse(&job, req.body, req.len, &cfg, &e);
	if (rc == 0) {
		check_job(&job, &cfg);
		check_input(&job, req.body, req.len);
	}
	else if (rc == -1)
		check_refusal(&e, parse_ok, N(parse_ok));
	else
		fail("job_parse returned neither 0 nor -1", &e);
	job_release(&job);
	request_release(&req);
	return 0;
}
