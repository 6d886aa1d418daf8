/* SPDX-License-Identifier: MIT */
/*
 * digest.c: SHA-256 from OpenSSL's libcrypto (a vetted implementation, not
 * ours) and token generation from getrandom(2).
 *
 * The low-level SHA256_Init/Update/Final are used, linked statically (see
 * the Makefile): OpenSSL 3's EVP interface (and the one-shot SHA256(),
 * built on it) reads openssl.cnf and fetches a provider on first use,
 * about 0.5 ms, and linking the shared library costs another 0.5 ms at
 * every exec; this costs neither, and it is the same digest code.
 */
#include <string.h>
#include <sys/random.h>
#include <openssl/sha.h>
#include "digest.h"
#include "../cgi/banned.h"

static void hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = 0;
}

int sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256_CTX ctx;

	if (!SHA256_Init(&ctx) || !SHA256_Update(&ctx, data, len) ||
	    !SHA256_Final(md, &ctx))
		return -1;
	hex(md, sizeof(md), out);
	return 0;
}

int token_new(char out[69])
{
	unsigned char raw[32];
	size_t got = 0;

	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	memcpy(out, "pyx_", 4);
	hex(raw, sizeof(raw), out + 4);
	explicit_bzero(raw, sizeof(raw));
	return 0;
}

int token_wellformed(const char *s)
{
	if (strlen(s) != 68 || memcmp(s, "pyx_", 4) != 0)
		return 0;
	for (const char *p = s + 4; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}
