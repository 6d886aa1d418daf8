/* SPDX-License-Identifier: MIT */
/* jsonscan.c: depth, \u0000 and stray-byte check over raw JSON, and the
 * byte span of a top-level member's value (see jsonscan.h). The syntax
 * itself is left to cJSON: this pass only needs to know, for each byte,
 * whether it is inside a string. */
#include <string.h>
#include "jsonscan.h"
#include "limits.h"
#include "banned.h"

static int digit(char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 8259 number at s[i]: returns the index after it, or 0. */
static size_t number_end(const char *s, size_t i, size_t n)
{
	if (i < n && s[i] == '-')
		i++;
	if (i < n && s[i] == '0')
		i++;
	else if (i < n && digit(s[i]))
		while (i < n && digit(s[i]))
			i++;
	else
		return 0;
	if (i < n && s[i] == '.') {
		if (++i >= n || !digit(s[i]))
			return 0;
		while (i < n && digit(s[i]))
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || !digit(s[i]))
			return 0;
		while (i < n && digit(s[i]))
			i++;
	}
	if (i < n && (digit(s[i]) || s[i] == '.' || s[i] == 'e' ||
		      s[i] == 'E' || s[i] == '+' || s[i] == '-'))
		return 0;	/* "01", "1.2.3" */
	return i;
}

static int json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Outside strings cJSON skips every byte up to 0x20 as whitespace and a
 * UTF-8 byte order mark at the start, where Python's json (and RFC 8259)
 * accept only these four and no mark: such bytes are refused here, so
 * that what the broker accepts the child decodes the same. */
static enum scan_result stray_byte(const char *s, size_t i)
{
	unsigned char c = (unsigned char)s[i];

	if (c == 0xef && i == 0)
		return SCAN_BOM;
	if ((c < 0x20 && !json_space((char)c)) || c >= 0x7f)
		return SCAN_CONTROL;
	return SCAN_OK;
}

enum scan_result json_scan(const char *s, size_t n, int max_depth)
{
	int depth = 0, in_str = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		enum scan_result stray;

		if (in_str) {
			if ((unsigned char)c < 0x20)
				return SCAN_SYNTAX;	/* must be escaped */
			if (c == '"')
				in_str = 0;
			else if (c == '\\' && i + 1 < n) {
				if (s[i + 1] == 'u' && n - i >= 6 &&
				    memcmp(s + i + 2, "0000", 4) == 0)
					return SCAN_NUL;
				i++;	/* the escaped character */
			}
			continue;
		}
		if ((stray = stray_byte(s, i)) != SCAN_OK)
			return stray;
		if (c == '"')
			in_str = 1;
		else if (c == '-' || digit(c)) {
			size_t end = number_end(s, i, n);
			if (!end)
				return SCAN_SYNTAX;
			i = end - 1;
		} else if (c == '{' || c == '[') {
			if (++depth > max_depth)
				return SCAN_TOO_DEEP;
		} else if (c == '}' || c == ']')
			depth--;
	}
	return SCAN_OK;
}

static size_t skip_space(const char *s, size_t i, size_t n)
{
	while (i < n && json_space(s[i]))
		i++;
	return i;
}

/* The index after the string that opens at s[i]. */
static size_t string_end(const char *s, size_t i, size_t n)
{
	for (i++; i < n && s[i] != '"'; i++)
		if (s[i] == '\\')
			i++;
	return i < n ? i + 1 : n;
}

/* The index after the value that starts at s[i]: a string, a container
 * (with its strings skipped whole) or a scalar up to the next delimiter. */
static size_t value_end(const char *s, size_t i, size_t n)
{
	size_t depth = 0;

	if (i < n && s[i] == '"')
		return string_end(s, i, n);
	if (i < n && s[i] != '{' && s[i] != '[') {
		while (i < n && !json_space(s[i]) && s[i] != ',' &&
		       s[i] != '}' && s[i] != ']')
			i++;
		return i;
	}
	while (i < n) {
		if (s[i] == '"') {
			i = string_end(s, i, n);
			continue;
		}
		if (s[i] == '{' || s[i] == '[')
			depth++;
		else if ((s[i] == '}' || s[i] == ']') && --depth == 0)
			return i + 1;
		i++;
	}
	return n;
}

int json_member_span(const char *s, size_t n, size_t index,
		     size_t *off, size_t *len)
{
	size_t i = skip_space(s, 0, n);

	if (i >= n || s[i] != '{')
		return -1;
	for (size_t k = 0;; k++) {
		i = skip_space(s, i + 1, n);	/* past '{' or ',' */
		if (i >= n || s[i] != '"')
			return -1;
		i = skip_space(s, string_end(s, i, n), n);
		if (i >= n || s[i] != ':')
			return -1;
		i = skip_space(s, i + 1, n);
		*off = i;
		i = value_end(s, i, n);
		if (k == index) {
			*len = i - *off;
			return *len ? 0 : -1;
		}
		i = skip_space(s, i, n);
		if (i >= n || s[i] != ',')
			return -1;
	}
}

#define S_(x) #x
#define S(x) S_(x)

const char *json_scan_problem(enum scan_result r)
{
	switch (r) {
	case SCAN_TOO_DEEP:
		return "JSON nested deeper than " S(JSON_MAX_DEPTH) " levels";
	case SCAN_NUL:
		return "JSON strings must not contain \\u0000";
	case SCAN_SYNTAX:
		return "request body is not valid JSON";
	case SCAN_BOM:
		return "request body starts with a byte order mark: send JSON "
		       "without one";
	case SCAN_CONTROL:
		return "request body has a byte outside strings that JSON does "
		       "not allow (only space, tab, CR and LF separate its "
		       "tokens)";
	case SCAN_OK:
		break;
	}
	return NULL;
}
