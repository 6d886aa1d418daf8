/* SPDX-License-Identifier: MIT */
/*
 * client.h: the anonymous client's address and the key its quota and
 * sandboxes are counted under.
 *
 * The address is REMOTE_ADDR, unless REMOTE_ADDR is itself in the
 * trusted_proxies list: then it is the right-most address of the
 * Forwarded (for=) or X-Forwarded-For chain that is not a trusted proxy,
 * the one the last trusted proxy saw. Entries left of it were written by
 * the client and are never believed. IPv6 clients are grouped by prefix
 * (anon_ipv6_prefix, /64 by default: one subscriber's network), since a
 * single host may hold a whole /64; IPv4-mapped IPv6 is its IPv4 address.
 */
#ifndef PYEXEC_CLIENT_H
#define PYEXEC_CLIENT_H

#include <stddef.h>

/* Room for any address as text, "unknown" included. */
#define CLIENT_ADDR_MAX 64

/*
 * The client's address, canonical (IPv4 dotted, IPv6 compressed), into
 * out: from remote (REMOTE_ADDR) and, when remote is in trusted (a CIDR
 * list), from forwarded (Forwarded) or xff (X-Forwarded-For), the first of
 * them present. Any of them may be NULL. "unknown" when remote is missing
 * or not an address.
 */
void client_address(const char *remote, const char *trusted,
		    const char *forwarded, const char *xff,
		    char out[CLIENT_ADDR_MAX]);

/* The anonymous identity's key part for addr (as client_address made
 * it): the IPv4 address, or the IPv6 network of prefix bits
 * ("2001:db8:1:2::/64"; the address itself at 128). */
void client_group(const char *addr, int v6_prefix, char *out, size_t outlen);

#endif
