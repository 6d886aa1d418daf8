/* SPDX-License-Identifier: MIT */
/*
 * textclean.c: what the audit log stores of the program's error and error
 * type. Both come from the child, which the program controls (it can write
 * its own records on the result pipe), so they are made valid UTF-8 with
 * every control escaped here, once, before they are stored: `logs`,
 * `logs show` and `logs --json` then print nothing a terminal would obey.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "textclean.h"
#include "../cgi/banned.h"

/* The code point of the valid UTF-8 sequence at s, its length in *len;
 * -1 when s does not start one (overlong, surrogate, past U+10FFFF,
 * truncated). */
static long decode(const unsigned char *s, size_t n, size_t *len)
{
	unsigned char c = s[0];
	size_t k = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 :
		   c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
	long cp;

	if (k == 0 || k > n)
		return -1;
	cp = k == 1 ? c : c & (0x7F >> k);
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((k == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
	    (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return -1;
	*len = k;
	return cp;
}

/* Characters shown escaped: controls (but tab and newline in lines of
 * text), DEL, C1, and the bidirectional embeddings, overrides and
 * isolates. */
static int escaped(long cp, int lines)
{
	return (cp < 0x20 && !(lines && (cp == '\t' || cp == '\n'))) ||
	       (cp >= 0x7F && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
	       (cp >= 0x2066 && cp <= 0x2069);
}

size_t text_clean(const char *s, size_t n, char *out, size_t cap,
		  int lines)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t used = 0, i = 0;

	while (i < n) {
		char esc[8];
		const char *unit = esc;
		size_t len = 1, ulen;
		long cp = decode(u + i, n - i, &len);

		if (cp < 0)
			ulen = (size_t)snprintf(esc, sizeof(esc), "\\x%02X", u[i]);
		else if (escaped(cp, lines))
			ulen = (size_t)snprintf(esc, sizeof(esc), "\\u%04lX", cp);
		else {
			unit = s + i;
			ulen = len;
		}
		if (ulen > cap - used)
			break;
		memcpy(out + used, unit, ulen);
		used += ulen;
		i += cp < 0 ? 1 : len;
	}
	return used;
}

size_t text_keep(const char *s, size_t n, size_t max)
{
	size_t keep = n < max ? n : max;

	while (keep > 0 && keep < n && ((unsigned char)s[keep] & 0xC0) == 0x80)
		keep--;
	return keep;
}
