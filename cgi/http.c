/* SPDX-License-Identifier: MIT */
/* http.c: status codes, their reasons and their error_type names. */
#include <stdio.h>
#include "http.h"
#include "banned.h"

static const struct {
	int status;
	const char *reason, *type;
} statuses[] = {
	{ 200, "OK", NULL },
	{ 202, "Accepted", NULL },
	{ 400, "Bad Request", "BadRequest" },
	{ 405, "Method Not Allowed", "MethodNotAllowed" },
	{ 408, "Request Timeout", "RequestTimeout" },
	{ 411, "Length Required", "LengthRequired" },
	{ 413, "Content Too Large", "PayloadTooLarge" },
	{ 401, "Unauthorized", "Unauthorized" },
	{ 403, "Forbidden", "Forbidden" },
	{ 406, "Not Acceptable", "NotAcceptable" },
	{ 415, "Unsupported Media Type", "UnsupportedMediaType" },
	{ 429, "Too Many Requests", "RateLimited" },
	{ 500, "Internal Server Error", "InternalError" },
	{ 503, "Service Unavailable", "ServiceUnavailable" },
};

static int find(int status)
{
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (statuses[i].status == status)
			return (int)i;
	return -1;
}

const char *http_reason(int status)
{
	int i = find(status);

	return i < 0 ? "Error" : statuses[i].reason;
}

int http_fail(struct http_error *e, int status, const char *fmt, ...)
{
	va_list ap;
	int i = find(status);

	e->status = status;
	e->type = i < 0 || !statuses[i].type ? "Error" : statuses[i].type;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}
