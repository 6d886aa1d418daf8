/* SPDX-License-Identifier: MIT */
/* cidr.c: address blocks and lists of them (see cidr.h). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include "cidr.h"
#include "banned.h"

/* Longer than any address with its prefix ("ffff:...:255.255.255.255/128"). */
#define ITEM_MAX 64

struct block {
	unsigned char net[16];
	int bits;		/* 0..128, in the IPv6 space */
};

static const unsigned char v4_mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

int cidr_addr_parse(const char *addr, unsigned char out[16], int *is_v4)
{
	unsigned char v4[4];
	int mapped;

	if (!addr || strnlen(addr, ITEM_MAX) >= ITEM_MAX)
		return -1;
	if (inet_pton(AF_INET, addr, v4) == 1) {
		memcpy(out, v4_mapped, 12);
		memcpy(out + 12, v4, 4);
		mapped = 1;
	} else if (inet_pton(AF_INET6, addr, out) == 1) {
		mapped = memcmp(out, v4_mapped, 12) == 0;
	} else {
		return -1;
	}
	if (is_v4)
		*is_v4 = mapped;
	return 0;
}

/* The prefix length after '/': digits only, at most max. */
static int prefix_len(const char *s, int max)
{
	int n = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		n = n * 10 + (*s - '0');
		if (n > max)
			return -1;
	}
	return n;
}

/* One item, already trimmed, of n bytes. Returns 0 or -1. */
static int parse_block(const char *item, size_t n, struct block *b)
{
	char text[ITEM_MAX];
	char *slash;
	int is_v4, bits;

	if (n == 0 || n >= sizeof(text))
		return -1;
	memcpy(text, item, n);
	text[n] = '\0';
	slash = strchr(text, '/');
	if (slash)
		*slash = '\0';
	if (cidr_addr_parse(text, b->net, &is_v4) != 0)
		return -1;
	/* An IPv4 prefix counts in IPv4 bits when the address was written
	 * as IPv4; an IPv4-mapped IPv6 block counts in IPv6 bits. */
	is_v4 = is_v4 && !strchr(text, ':');
	if (!slash)
		bits = 128;
	else if ((bits = prefix_len(slash + 1, is_v4 ? 32 : 128)) < 0)
		return -1;
	b->bits = is_v4 && slash ? bits + 96 : bits;
	return 0;
}

static int in_block(const struct block *b, const unsigned char a[16])
{
	int full = b->bits / 8, rest = b->bits % 8;
	unsigned char mask;

	if (memcmp(a, b->net, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (b->net[full] & mask);
}

static int is_space(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Walks list item by item: calls visit for each parsed block and stops
 * when it returns nonzero (that value is returned). Returns 0 at the end,
 * -1 when the list is too long, -2 (with *bad set to the item's start and
 * *badlen to its length, 0 for an empty item) when an item does not parse.
 */
static int walk(const char *list, int (*visit)(const struct block *, void *),
		void *arg, const char **bad, size_t *badlen)
{
	const char *p = list + strspn(list, " \t");
	struct block b;
	int rc;

	if (strnlen(list, CIDR_LIST_MAX + 1) > CIDR_LIST_MAX)
		return -1;
	if (!*p)
		return 0;	/* an empty list: nothing matches */
	for (;;) {
		size_t n = strcspn(p, ",");
		const char *next = p + n;

		while (n > 0 && is_space(p[n - 1]))
			n--;
		if (parse_block(p, n, &b) != 0) {
			*bad = p;
			*badlen = n;
			return -2;
		}
		if ((rc = visit(&b, arg)) != 0)
			return rc;
		if (!*next)
			return 0;
		p = next + 1 + strspn(next + 1, " \t");
	}
}

static int count_only(const struct block *b, void *arg)
{
	(void)b;
	(void)arg;
	return 0;
}

int cidr_list_check(const char *list, char *err, size_t errlen)
{
	const char *bad = NULL;
	size_t badlen = 0;
	int rc = list ? walk(list, count_only, NULL, &bad, &badlen) : -1;

	if (rc == 0)
		return 0;
	if (!err || errlen == 0)
		return -1;
	if (rc == -1)
		snprintf(err, errlen, "%s", list ? "the list is too long" :
			 "no list");
	else if (badlen == 0)
		snprintf(err, errlen, "an empty item (two commas, or one at "
			 "an end)");
	else
		snprintf(err, errlen, "'%.*s' is not an address or a CIDR "
			 "block (ADDR or ADDR/BITS)",
			 badlen > ITEM_MAX ? ITEM_MAX : (int)badlen, bad);
	return -1;
}

static int contains(const struct block *b, void *arg)
{
	return in_block(b, arg);
}

int cidr_list_match(const char *list, const char *addr)
{
	unsigned char a[16];
	const char *bad;
	size_t badlen;

	if (!list || cidr_addr_parse(addr, a, NULL) != 0)
		return 0;
	/* A list that does not parse matches nothing, even before the item
	 * that is wrong: a typo must not half-apply. */
	if (walk(list, count_only, NULL, &bad, &badlen) != 0)
		return 0;
	return walk(list, contains, a, &bad, &badlen) == 1;
}
