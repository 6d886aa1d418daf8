/* SPDX-License-Identifier: MIT */
/* http.h: a refusal of the request, as status, machine name and message. */
#ifndef PYEXEC_HTTP_H
#define PYEXEC_HTTP_H

#include <stdarg.h>

struct http_error {
	int status;		/* 400, 405, ... */
	const char *type;	/* error_type in the response: "BadRequest" */
	char msg[256];
};

/* Fills e and returns -1, so a check can end in `return http_fail(...)`. */
int http_fail(struct http_error *e, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "OK", "Bad Request", ... */
const char *http_reason(int status);

#endif
