/* SPDX-License-Identifier: MIT */
/* textclean.h: text from the program made safe to store and print. */
#ifndef PYEXEC_TEXTCLEAN_H
#define PYEXEC_TEXTCLEAN_H

#include <stddef.h>

/*
 * Writes s[0..n) to out (at most cap bytes, no NUL added) as valid UTF-8
 * that a terminal cannot misread: tab and newline stay when lines is set
 * (a traceback), and are escaped otherwise (a name); other C0 controls,
 * DEL, the C1 controls (U+0080..U+009F) and the bidirectional overrides
 * become "\u00NN" / "\uNNNN"; a byte that is not part of valid UTF-8
 * becomes "\xNN". Stops before a character or an escape that would not
 * fit whole. Returns the bytes written.
 */
size_t text_clean(const char *s, size_t n, char *out, size_t cap,
		  int lines);

/* The bytes of s[0..n) to keep within max without cutting a UTF-8
 * sequence (the stored code, on both backends). */
size_t text_keep(const char *s, size_t n, size_t max);

#endif
