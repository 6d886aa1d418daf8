/* SPDX-License-Identifier: MIT */
/*
 * fuzz_member.c: libFuzzer harness for json_member (cgi/mcp_span.c), which
 * cuts a tool call's arguments out of the raw body for the sandbox child:
 * for every member of an object cJSON parses whole (under a key written
 * without escapes), the text json_member returns parses, whole, to the
 * same value cJSON found; a key the object lacks is never found.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "../../cgi/mcp.h"
#include "../../cgi/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int plain(const char *k)
{
	return !strpbrk(k, "\\\"") && strlen(k) < 64;
}

static void check_member(const char *s, size_t n, const cJSON *root,
			 const cJSON *it)
{
	const char *v, *end = NULL;
	size_t vn;
	cJSON *got;
	char *a = NULL, *b = NULL;

	/* cJSON keeps the first of duplicate keys, json_member too */
	if (cJSON_GetObjectItemCaseSensitive(root, it->string) != it)
		return;
	if (json_member(s, n, it->string, &v, &vn) != 0)
		return;		/* written with escapes: never matched */
	got = cJSON_ParseWithLengthOpts(v, vn, &end, 0);
	/* the same text once printed (cJSON_Compare trips on duplicate keys) */
	if (got && end == v + vn) {
		a = cJSON_PrintUnformatted(got);
		b = cJSON_PrintUnformatted(it);
	}
	if (!a || !b || strcmp(a, b) != 0) {
		fprintf(stderr, "member '%s': %.*s\n", it->string, (int)vn, v);
		abort();
	}
	free(a);
	free(b);
	cJSON_Delete(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *end = NULL, *v;
	cJSON *root = cJSON_ParseWithLengthOpts(s, size, &end, 0);
	size_t vn;

	if (!root)
		return 0;
	while (end < s + size && strchr(" \t\r\n", *end) && *end)
		end++;
	if (end == s + size && cJSON_IsObject(root) && !memchr(s, 0, size)) {
		for (const cJSON *it = root->child; it; it = it->next)
			if (plain(it->string))
				check_member(s, size, root, it);
		if (!cJSON_GetObjectItemCaseSensitive(root, "zz_absent") &&
		    json_member(s, size, "zz_absent", &v, &vn) == 0)
			abort();
	}
	cJSON_Delete(root);
	return 0;
}
