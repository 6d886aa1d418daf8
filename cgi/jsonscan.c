/* SPDX-License-Identifier: MIT */
/* jsonscan.c: depth and \u0000 check over raw JSON (see jsonscan.h). The
 * syntax itself is left to cJSON: this pass only needs to know, for each
 * byte, whether it is inside a string. */
#include <string.h>
#include "jsonscan.h"
#include "banned.h"

enum scan_result json_scan(const char *s, size_t n, int max_depth)
{
	int depth = 0, in_str = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (in_str) {
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
		else if (c == '{' || c == '[') {
			if (++depth > max_depth)
				return SCAN_TOO_DEEP;
		} else if (c == '}' || c == ']')
			depth--;
	}
	return SCAN_OK;
}
