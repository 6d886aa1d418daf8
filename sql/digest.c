/* SPDX-License-Identifier: MIT */
/*
 * digest.c: SHA-256 from OpenSSL's libcrypto (a vetted implementation, not
 * ours) and token generation from getrandom(2).
 */
#include <string.h>
#include <sys/random.h>
#include <openssl/evp.h>
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
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32)
		return -1;
	hex(md, 32, out);
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
