/* SPDX-License-Identifier: MIT */
/* client.c: the anonymous client's address and group (see client.h). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "cidr.h"
#include "client.h"
#include "banned.h"

/* A forwarding header longer than this is not believed at all. */
#define FORWARD_MAX 8192

/* addr as canonical text; -1 when it is not an address. */
static int canonical(const char *addr, char out[CLIENT_ADDR_MAX])
{
	unsigned char a[16];
	int is_v4;

	if (cidr_addr_parse(addr, a, &is_v4) != 0)
		return -1;
	if (is_v4)
		return inet_ntop(AF_INET, a + 12, out, CLIENT_ADDR_MAX) ? 0 : -1;
	return inet_ntop(AF_INET6, a, out, CLIENT_ADDR_MAX) ? 0 : -1;
}

/*
 * One hop of a chain, n bytes at p, to a bare address in out: spaces and
 * quotes trimmed, "[v6]" or "[v6]:port" unbracketed, "v4:port" without
 * its port. -1 when it cannot be an address.
 */
static int bare(const char *p, size_t n, char out[CLIENT_ADDR_MAX])
{
	const char *colon;

	while (n > 0 && (*p == ' ' || *p == '\t' || *p == '"'))
		p++, n--;
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '"'))
		n--;
	if (n > 0 && *p == '[') {
		const char *close = memchr(p, ']', n);
		if (!close)
			return -1;
		n = (size_t)(close - p - 1);
		p++;
	} else if ((colon = memchr(p, ':', n)) && !memchr(colon + 1, ':',
			n - (size_t)(colon - p) - 1)) {
		n = (size_t)(colon - p);	/* one colon: IPv4 and a port */
	}
	if (n == 0 || n >= CLIENT_ADDR_MAX)
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

/* The for= parameter of one Forwarded element (n bytes at p), or NULL. */
static const char *forwarded_for(const char *p, size_t n, size_t *len)
{
	const char *end = p + n;

	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *stop = semi ? semi : end;

		while (p < stop && (*p == ' ' || *p == '\t'))
			p++;
		if (stop - p > 4 && strncasecmp(p, "for=", 4) == 0) {
			*len = (size_t)(stop - p - 4);
			return p + 4;
		}
		p = stop + 1;
	}
	return NULL;
}

/*
 * Walks chain (comma-separated hops) from the right: the first hop that
 * is not in trusted goes to out (0). -1 when a hop is not an address
 * (or the chain is too long), 1 when every hop is trusted (out holds the
 * left-most).
 */
static int rightmost_untrusted(const char *chain, int is_forwarded,
			       const char *trusted, char out[CLIENT_ADDR_MAX])
{
	size_t end = strnlen(chain, FORWARD_MAX + 1);
	char hop[CLIENT_ADDR_MAX];

	if (end > FORWARD_MAX)
		return -1;
	for (;;) {
		size_t start = end;
		const char *p;
		size_t n;

		while (start > 0 && chain[start - 1] != ',')
			start--;
		p = chain + start;
		n = end - start;
		if (is_forwarded && !(p = forwarded_for(p, n, &n)))
			return -1;
		if (bare(p, n, hop) != 0 || canonical(hop, out) != 0)
			return -1;
		if (!cidr_list_match(trusted, out))
			return 0;
		if (start == 0)
			return 1;
		end = start - 1;
	}
}

void client_address(const char *remote, const char *trusted,
		    const char *forwarded, const char *xff,
		    char out[CLIENT_ADDR_MAX])
{
	char hop[CLIENT_ADDR_MAX];

	if (!remote || canonical(remote, out) != 0) {
		snprintf(out, CLIENT_ADDR_MAX, "unknown");
		return;
	}
	if (!trusted || !cidr_list_match(trusted, out))
		return;		/* not from a proxy we trust */
	/* A hop that is not an address stops the walk at the proxy that
	 * wrote it: its clients then share one identity, never a forged
	 * one. */
	if (forwarded && *forwarded) {
		if (rightmost_untrusted(forwarded, 1, trusted, hop) >= 0)
			memcpy(out, hop, CLIENT_ADDR_MAX);
	} else if (xff && *xff) {
		if (rightmost_untrusted(xff, 0, trusted, hop) >= 0)
			memcpy(out, hop, CLIENT_ADDR_MAX);
	}
}

void client_group(const char *addr, int v6_prefix, char *out, size_t outlen)
{
	unsigned char a[16];
	char text[CLIENT_ADDR_MAX];
	int is_v4, bits = v6_prefix < 0 ? 0 : v6_prefix > 128 ? 128 : v6_prefix;

	if (cidr_addr_parse(addr, a, &is_v4) != 0 || is_v4 || bits == 128) {
		snprintf(out, outlen, "%s", addr);
		return;
	}
	for (int i = 0; i < 16; i++) {
		int keep = bits - 8 * i;
		if (keep <= 0)
			a[i] = 0;
		else if (keep < 8)
			a[i] &= (unsigned char)(0xff << (8 - keep));
	}
	if (!inet_ntop(AF_INET6, a, text, sizeof(text)))
		snprintf(text, sizeof(text), "unknown");
	snprintf(out, outlen, "%s/%d", text, bits);
}
