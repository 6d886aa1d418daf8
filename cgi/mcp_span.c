/* SPDX-License-Identifier: MIT */
/*
 * mcp_span.c: the raw text of a member of a JSON object, for what must
 * pass through exactly as sent: a JSON-RPC id (a number cJSON would round)
 * and a tool call's arguments (the child reads input_data from them, as it
 * reads it from a REST body). Runs on text json_scan and cJSON accepted.
 */
#include <string.h>
#include "mcp.h"
#include "banned.h"

/* Whitespace as cJSON reads it (any byte 1..32); json_scan has already
 * refused all but JSON's four on the request path. */
static int is_ws(char c)
{
	return c && (unsigned char)c <= 32;
}

static const char *ws(const char *p, const char *end)
{
	while (p < end && is_ws(*p))
		p++;
	return p;
}

/* Past the string starting at p (on its opening quote). */
static const char *skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return end;
}

/* Past the value starting at p. */
static const char *skip_value(const char *p, const char *end)
{
	int depth = 0;

	if (p < end && *p == '"')
		return skip_string(p, end);
	if (p < end && *p != '{' && *p != '[') {
		while (p < end && !is_ws(*p) && !strchr(",}]", *p))
			p++;
		return p;
	}
	while (p < end) {
		if (*p == '"') {
			p = skip_string(p, end);
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if ((*p == '}' || *p == ']') && --depth == 0)
			return p + 1;
		p++;
	}
	return end;
}

int json_member(const char *s, size_t n, const char *key,
		const char **v, size_t *vn)
{
	const char *end = s + n, *p = ws(s, end);
	size_t kl = strlen(key);

	if (p >= end || *p++ != '{')
		return -1;
	for (;;) {
		const char *k, *ke;

		p = ws(p, end);
		if (p >= end || *p != '"')
			return -1;	/* '}': the object ends */
		k = p + 1;
		ke = skip_string(p, end);
		p = ws(ke, end);
		if (p >= end || *p++ != ':')
			return -1;
		p = ws(p, end);
		if ((size_t)(ke - 1 - k) == kl && memcmp(k, key, kl) == 0) {
			*v = p;
			*vn = (size_t)(skip_value(p, end) - p);
			return 0;
		}
		p = ws(skip_value(p, end), end);
		if (p >= end || *p++ != ',')
			return -1;
	}
}
