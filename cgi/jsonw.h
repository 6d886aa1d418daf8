/* SPDX-License-Identifier: MIT */
/*
 * jsonw.h: the response encoder. Builds one JSON object into a buffer.
 * Strings may hold any bytes (the program's output): invalid UTF-8 becomes
 * U+FFFD and control characters are escaped, so the result is always valid
 * JSON. Allocation failure is sticky and reported by jw_finish.
 */
#ifndef PYEXEC_JSONW_H
#define PYEXEC_JSONW_H

#include <stddef.h>

struct jw {
	char *buf;
	size_t len, cap;
	int count;	/* members written */
	int failed;
};

void jw_begin(struct jw *w);
void jw_str(struct jw *w, const char *key, const char *s, size_t n);
void jw_cstr(struct jw *w, const char *key, const char *s); /* NULL -> null */
void jw_bool(struct jw *w, const char *key, int v);
void jw_long(struct jw *w, const char *key, long v);
void jw_ms(struct jw *w, const char *key, double ms);	/* 3 decimals */
/* Closes the object; returns the text (owned by w) or NULL on failure. */
const char *jw_finish(struct jw *w, size_t *len);
void jw_release(struct jw *w);

/* Escapes s[0..n) as a JSON string body into w (no quotes). */
void jw_escape(struct jw *w, const char *s, size_t n);

/* Appends s[0..n) as it is: JSON text the caller vouches for. */
void jw_raw(struct jw *w, const char *s, size_t n);

#endif
