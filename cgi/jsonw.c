/* SPDX-License-Identifier: MIT */
/* jsonw.c: the response encoder (see jsonw.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jsonw.h"
#include "utf8.h"
#include "banned.h"

static void put(struct jw *w, const char *s, size_t n)
{
	if (w->failed)
		return;
	if (n > w->cap - w->len) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap - w->len < n) {
			if (cap > ((size_t)-1) / 2) {
				w->failed = 1;
				return;
			}
			cap *= 2;
		}
		char *p = realloc(w->buf, cap);
		if (!p) {
			w->failed = 1;
			return;
		}
		w->buf = p;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

void jw_raw(struct jw *w, const char *s, size_t n)
{
	put(w, s, n);
}

void jw_escape(struct jw *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0;

	while (i < n) {
		unsigned char c = p[i];
		size_t k = c < 0x80 ? 1 : utf8_seq(p + i, n - i);
		char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };

		if (k && c >= 0x20 && c != '"' && c != '\\') {
			run += k;	/* copy plain runs in one go */
			i += k;
			continue;
		}
		put(w, (const char *)p + i - run, run);
		run = 0;
		if (!k)
			put(w, "\\ufffd", 6);
		else if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			put(w, esc, 2);
		} else if (c == '\n')
			put(w, "\\n", 2);
		else if (c == '\t')
			put(w, "\\t", 2);
		else if (c == '\r')
			put(w, "\\r", 2);
		else
			put(w, esc, 6);
		i++;
	}
	put(w, (const char *)p + n - run, run);
}

static void key(struct jw *w, const char *k)
{
	if (w->count++)
		put(w, ", ", 2);
	put(w, "\"", 1);
	jw_escape(w, k, strlen(k));
	put(w, "\": ", 3);
}

void jw_begin(struct jw *w)
{
	memset(w, 0, sizeof(*w));
	put(w, "{", 1);
}

void jw_str(struct jw *w, const char *k, const char *s, size_t n)
{
	key(w, k);
	put(w, "\"", 1);
	jw_escape(w, s, n);
	put(w, "\"", 1);
}

void jw_cstr(struct jw *w, const char *k, const char *s)
{
	if (s) {
		jw_str(w, k, s, strlen(s));
	} else {
		key(w, k);
		put(w, "null", 4);
	}
}

void jw_bool(struct jw *w, const char *k, int v)
{
	key(w, k);
	put(w, v ? "true" : "false", v ? 4 : 5);
}

void jw_long(struct jw *w, const char *k, long v)
{
	char num[32];
	int n = snprintf(num, sizeof(num), "%ld", v);

	key(w, k);
	put(w, num, (size_t)n);
}

void jw_ms(struct jw *w, const char *k, double ms)
{
	char num[48];
	int n;

	if (!(ms > 0 && ms < 1e12))	/* also false for NaN and -0.0 */
		ms = 0;
	n = snprintf(num, sizeof(num), "%.3f", ms);
	key(w, k);
	put(w, num, (size_t)n);
}

const char *jw_finish(struct jw *w, size_t *len)
{
	put(w, "}\n", 2);
	if (w->failed)
		return NULL;
	*len = w->len;
	return w->buf;
}

void jw_release(struct jw *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}
