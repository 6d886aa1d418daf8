/* SPDX-License-Identifier: MIT */
/*
 * fuzz_scan.c: libFuzzer harness for jsonscan against cJSON: for a text
 * cJSON parses whole, json_scan passes it only when its nesting is within
 * the limit, and refuses it as too deep only when it is too deep. A NUL
 * verdict needs a \u0000 in the text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "../../cgi/jsonscan.h"
#include "../../cgi/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int depth(const cJSON *j)
{
	int d = 0;

	if (!cJSON_IsObject(j) && !cJSON_IsArray(j))
		return 0;
	for (const cJSON *c = j->child; c; c = c->next) {
		int k = depth(c);
		if (k > d)
			d = k;
	}
	return d + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data + 1, *end = NULL;
	size_t n;
	int max;
	enum scan_result r;
	cJSON *root;

	if (size < 1)
		return 0;
	max = 1 + data[0] % 8;	/* small, so that depth is reachable */
	n = size - 1;
	r = json_scan(s, n, max);
	if (r == SCAN_NUL && !memmem(s, n, "\\u0000", 6))
		abort();
	root = cJSON_ParseWithLengthOpts(s, n, &end, 0);
	if (!root)
		return 0;
	while (end < s + n && (*end == ' ' || *end == '\t' || *end == '\n' ||
			       *end == '\r'))
		end++;
	if (end == s + n) {
		int d = depth(root);
		if (r == SCAN_OK && d > max) {
			fprintf(stderr, "scan passed depth %d > %d\n", d, max);
			abort();
		}
		if (r == SCAN_TOO_DEEP && d <= max) {
			fprintf(stderr, "scan refused depth %d <= %d\n", d, max);
			abort();
		}
	}
	cJSON_Delete(root);
	return 0;
}
