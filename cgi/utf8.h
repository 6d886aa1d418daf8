/* SPDX-License-Identifier: MIT */
/* utf8.h: strict UTF-8 validation (no overlongs, surrogates or > U+10FFFF). */
#ifndef PYEXEC_UTF8_H
#define PYEXEC_UTF8_H

#include <stddef.h>

/* Length of the valid sequence at s (1-4), or 0 when s[0..n) starts with
 * an invalid or truncated one. n must be at least 1. */
size_t utf8_seq(const unsigned char *s, size_t n);

/* 1 when s[0..n) is entirely valid UTF-8. */
int utf8_valid(const char *s, size_t n);

#endif
