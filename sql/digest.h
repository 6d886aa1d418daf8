/* SPDX-License-Identifier: MIT */
/* digest.h: SHA-256 (OpenSSL's libcrypto) and bearer tokens. */
#ifndef PYEXEC_DIGEST_H
#define PYEXEC_DIGEST_H

#include <stddef.h>

/* Writes the SHA-256 of data as 64 hex digits and a NUL. Returns 0/-1. */
int sha256_hex(const void *data, size_t len, char out[65]);

/* A new token: "pyx_" and 256 bits from the kernel in hex (68 chars). */
int token_new(char out[69]);

/* 1 when s looks like a token (length and alphabet), before any lookup. */
int token_wellformed(const char *s);

#endif
