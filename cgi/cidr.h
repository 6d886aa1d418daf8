/* SPDX-License-Identifier: MIT */
/*
 * cidr.h: lists of address blocks ("127.0.0.1/8, ::1, 2001:db8::/32"), for
 * the settings that name networks (trusted proxies, who may read metrics).
 * IPv4 is held as IPv4-mapped IPv6 (::ffff:a.b.c.d), so an IPv4 block also
 * matches the same client seen through an IPv6 socket.
 */
#ifndef PYEXEC_CIDR_H
#define PYEXEC_CIDR_H

#include <stddef.h>

/* The longest list the functions accept, in bytes. */
#define CIDR_LIST_MAX 4096

/* A comma-separated list of CIDR blocks or plain addresses, IPv4 or IPv6
 * ("127.0.0.1/8, ::1, 2001:db8::/32"); spaces allowed. Returns 0 when list
 * parses; -1 otherwise with a message in err. */
int cidr_list_check(const char *list, char *err, size_t errlen);

/* 1 when addr (textual, IPv4, IPv6 or IPv4-mapped IPv6) is inside one of
 * list's blocks, 0 when not or when either does not parse. */
int cidr_list_match(const char *list, const char *addr);

/*
 * addr (textual, IPv4 or IPv6) as 16 bytes of IPv6, IPv4 mapped. Returns
 * 0, or -1 when it does not parse. *is_v4 (may be NULL) says whether it
 * was IPv4 or IPv4-mapped IPv6.
 */
int cidr_addr_parse(const char *addr, unsigned char out[16], int *is_v4);

#endif
