/* SPDX-License-Identifier: MIT */
/*
 * fuzz_encoder.c: libFuzzer harness for the response encoder: whatever
 * bytes the code prints, the response parses back as JSON, is itself valid
 * UTF-8, and gives back the output exactly when it was valid UTF-8 (with
 * each invalid byte as U+FFFD otherwise).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "../../cgi/jsonw.h"
#include "../../cgi/utf8.h"
#include "../../cgi/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *text, size_t len)
{
	fprintf(stderr, "invariant broken: %s\nresponse: %.*s\n", what,
		(int)(len < 4096 ? len : 4096), text ? text : "");
	abort();
}

/* What the encoder promises for s: invalid bytes as U+FFFD, cut at the
 * first NUL (cJSON decodes \u0000 into the end of its C string). */
static char *expected(const char *s, size_t n, size_t *out)
{
	const unsigned char *p = (const unsigned char *)s;
	char *r = malloc(3 * n + 1);
	size_t i = 0, o = 0;

	if (!r)
		abort();
	while (i < n && p[i]) {
		size_t k = utf8_seq(p + i, n - i);
		if (!k) {
			memcpy(r + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(r + o, p + i, k);
			o += k;
			i += k;
		}
	}
	r[o] = 0;
	*out = o;
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char key[64], *want;
	const char *text;
	const cJSON *it;
	struct jw w;
	cJSON *root;
	size_t len = 0, klen, wlen;
	long lv = 0;
	double dv = 0;

	/* A key from the first bytes (the encoder's keys are constants, but
	 * they go through the same escaping), a long and a double from the
	 * last ones. */
	klen = size < sizeof(key) - 1 ? size : sizeof(key) - 1;
	memcpy(key, s, klen);
	key[klen] = 0;
	if (size >= sizeof(lv))
		memcpy(&lv, s + size - sizeof(lv), sizeof(lv));
	if (size >= sizeof(dv))
		memcpy(&dv, s + size - sizeof(dv), sizeof(dv));

	jw_begin(&w);
	jw_bool(&w, "success", size & 1);
	jw_str(&w, "output", s, size);
	jw_cstr(&w, "error", size & 2 ? NULL : key);
	jw_ms(&w, "execution_time_ms", dv);
	jw_long(&w, "cpu_time_ms", lv);
	jw_str(&w, key, s, size / 2);
	text = jw_finish(&w, &len);
	if (!text)
		abort();	/* only on allocation failure */
	if (len < 2 || text[len - 1] != '\n' || memchr(text, 0, len))
		fail("response not newline-terminated text", text, len);
	if (!utf8_valid(text, len))
		fail("response is not valid UTF-8", text, len);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)text[i] < 0x20 && text[i] != '\n')
			fail("raw control character in the response", text, len);
	root = cJSON_ParseWithLength(text, len);
	if (!cJSON_IsObject(root))
		fail("response does not parse as a JSON object", text, len);

	it = cJSON_GetObjectItemCaseSensitive(root, "output");
	if (!cJSON_IsString(it))
		fail("output is not a string", text, len);
	want = expected(s, size, &wlen);
	if (strlen(it->valuestring) != wlen ||
	    memcmp(it->valuestring, want, wlen) != 0)
		fail("output does not round-trip", text, len);
	if (utf8_valid(s, size) && !memchr(s, 0, size) &&
	    (wlen != size || memcmp(it->valuestring, s, size) != 0))
		fail("valid UTF-8 output changed", text, len);
	free(want);

	it = cJSON_GetObjectItemCaseSensitive(root, "execution_time_ms");
	if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0) ||
	    (dv > 0 && dv < 1e12 && fabs(it->valuedouble - dv) > 0.0005 + dv * 1e-12))
		fail("execution_time_ms wrong", text, len);
	it = cJSON_GetObjectItemCaseSensitive(root, "cpu_time_ms");
	if (!cJSON_IsNumber(it) || it->valuedouble != (double)lv)
		fail("cpu_time_ms wrong", text, len);
	it = cJSON_GetObjectItemCaseSensitive(root, "error");
	if (size & 2 ? !cJSON_IsNull(it) : !cJSON_IsString(it))
		fail("error has the wrong type", text, len);
	/* the last member, whatever its key, is the half of the input */
	for (it = root->child; it && it->next; it = it->next)
		;
	if (!cJSON_IsString(it))
		fail("last member is not a string", text, len);
	cJSON_Delete(root);
	jw_release(&w);
	return 0;
}
