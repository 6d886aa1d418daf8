/* SPDX-License-Identifier: MIT */
/* jsonscan.c: depth and \u0000 check over raw JSON (see jsonscan.h). The
 * syntax itself is left to cJSON: this pass only needs to know, for each
 * byte, whether it is inside a string. */
#include <string.h>
#include "jsonscan.h"
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

enum scan_result json_scan(const char *s, size_t n, int max_depth)
{
	int depth = 0, in_str = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

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
