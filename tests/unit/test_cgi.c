/* SPDX-License-Identifier: MIT */
/* test_cgi.c: unit tests for the request path in cgi/ (everything but main). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "unit.h"
#include "../../cgi/cidr.h"
#include "../../cgi/client.h"
#include "../../cgi/mcp.h"
#include "../../cgi/config.h"
#include "../../cgi/http.h"
#include "../../cgi/identity.h"
#include "../../cgi/job.h"
#include "../../cgi/jsonscan.h"
#include "../../cgi/jsonw.h"
#include "../../cgi/limits.h"
#include "../../cgi/request.h"
#include "../../cgi/utf8.h"
#include "../../cgi/banned.h"

/* Heap copies of exact size (unit.h). */
#define exact unit_exact

/* Deterministic PRNG (xorshift64), so a failure can be replayed. */
static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
	rng_state = seed;
}

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 32);
}

/*
 * utf8.c
 */

static size_t seq(const char *s, size_t n)
{
	char *p = exact(s, n);
	size_t k = utf8_seq((const unsigned char *)p, n);

	free(p);
	return k;
}

static int valid(const char *s, size_t n)
{
	char *p = exact(s, n);
	int v = utf8_valid(p, n);

	free(p);
	return v;
}

/* The reference: decode the code point, then apply RFC 3629's rules. */
static size_t ref_len(const unsigned char *s, size_t n)
{
	unsigned long cp, min;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xE0) == 0xC0) {
		len = 2;
		cp = s[0] & 0x1F;
		min = 0x80;
	} else if ((s[0] & 0xF0) == 0xE0) {
		len = 3;
		cp = s[0] & 0x0F;
		min = 0x800;
	} else if ((s[0] & 0xF8) == 0xF0) {
		len = 4;
		cp = s[0] & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

static int ref_valid(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = ref_len(s + i, n - i);
		if (!k)
			return 0;
		i += k;
	}
	return 1;
}

/* The raw text of a member: ids and arguments pass exactly as sent. */
void test_json_member_raw_text(void)
{
	static const char doc[] = " { \"a\" : [1, {\"id\": 2}, \"]\"], \"k\\\"\": 0, "
				  "\"id\" :12345678901234567890123 , "
				  "\"p\": {\"x\": \"}\\\"\", \"arguments\": {\"code\": \"1\"}}}";
	const char *v;
	size_t n;

	CHECK_EQ(json_member(doc, strlen(doc), "id", &v, &n), 0);
	CHECK(n == 23 && memcmp(v, "12345678901234567890123", n) == 0);
	CHECK_EQ(json_member(doc, strlen(doc), "a", &v, &n), 0);
	CHECK(n == strlen("[1, {\"id\": 2}, \"]\"]") &&
	      memcmp(v, "[1, {\"id\": 2}, \"]\"]", n) == 0);
	CHECK_EQ(json_member(doc, strlen(doc), "p", &v, &n), 0);
	CHECK_EQ(json_member(v, n, "arguments", &v, &n), 0);
	CHECK(n == strlen("{\"code\": \"1\"}") &&
	      memcmp(v, "{\"code\": \"1\"}", n) == 0);
	CHECK_EQ(json_member(doc, strlen(doc), "x", &v, &n), -1);
	CHECK_EQ(json_member(doc, strlen(doc), "code", &v, &n), -1);
	CHECK_EQ(json_member("[1]", 3, "id", &v, &n), -1);
	CHECK_EQ(json_member("{}", 2, "id", &v, &n), -1);
}

void test_mcp_error_codes(void)
{
	CHECK_EQ(mcp_error_code(401), -32001);
	CHECK_EQ(mcp_error_code(403), -32003);
	CHECK_EQ(mcp_error_code(405), -32005);
	CHECK_EQ(mcp_error_code(413), -32013);
	CHECK_EQ(mcp_error_code(429), -32029);
	CHECK_EQ(mcp_error_code(400), -32600);
	CHECK_EQ(mcp_error_code(500), -32603);
	CHECK_EQ(mcp_error_code(503), -32000);
}

void test_utf8_seq_ascii(void)
{
	for (int c = 0; c < 0x80; c++) {
		char b[3] = { (char)c, '\x80', '\x80' };
		CHECKF(seq(b, 1) == 1, "utf8_seq(%#x) != 1", c);
		CHECKF(seq(b, 3) == 1, "utf8_seq(%#x 80 80) != 1", c);
	}
	CHECK_EQ(seq(S("A")), 1);
	CHECK_EQ(seq(S("\0")), 1);
	CHECK_EQ(seq(S("\x7f")), 1);
}

void test_utf8_seq_multibyte(void)
{
	CHECK_EQ(seq(S("\xC2\x80")), 2);		/* U+0080 */
	CHECK_EQ(seq(S("\xC3\xA9")), 2);		/* é */
	CHECK_EQ(seq(S("\xDF\xBF")), 2);		/* U+07FF */
	CHECK_EQ(seq(S("\xE0\xA0\x80")), 3);		/* U+0800 */
	CHECK_EQ(seq(S("\xE2\x82\xAC")), 3);		/* € */
	CHECK_EQ(seq(S("\xED\x9F\xBF")), 3);		/* U+D7FF */
	CHECK_EQ(seq(S("\xEE\x80\x80")), 3);		/* U+E000 */
	CHECK_EQ(seq(S("\xEF\xBF\xBF")), 3);		/* U+FFFF */
	CHECK_EQ(seq(S("\xF0\x90\x80\x80")), 4);	/* U+10000 */
	CHECK_EQ(seq(S("\xF0\x9D\x84\x9E")), 4);	/* 𝄞 */
	CHECK_EQ(seq(S("\xF1\x80\x80\x80")), 4);
	CHECK_EQ(seq(S("\xF4\x8F\xBF\xBF")), 4);	/* U+10FFFF */
	/* Only the first sequence counts. */
	CHECK_EQ(seq(S("\xC3\xA9xyz")), 2);
	CHECK_EQ(seq(S("\xE2\x82\xAC\xE2\x82\xAC")), 3);
}

void test_utf8_seq_overlong(void)
{
	CHECK_EQ(seq(S("\xC0\x80")), 0);
	CHECK_EQ(seq(S("\xC0\xAF")), 0);
	CHECK_EQ(seq(S("\xC1\xBF")), 0);
	CHECK_EQ(seq(S("\xE0\x80\x80")), 0);
	CHECK_EQ(seq(S("\xE0\x9F\xBF")), 0);
	CHECK_EQ(seq(S("\xF0\x80\x80\x80")), 0);
	CHECK_EQ(seq(S("\xF0\x8F\xBF\xBF")), 0);
	CHECK_EQ(valid(S("ab\xC0\x80" "cd")), 0);
	CHECK_EQ(valid(S("\xE0\x80\x80")), 0);
	CHECK_EQ(valid(S("\xF0\x80\x80\x80")), 0);
}

void test_utf8_seq_surrogate_and_range(void)
{
	CHECK_EQ(seq(S("\xED\xA0\x80")), 0);		/* U+D800 */
	CHECK_EQ(seq(S("\xED\xAF\xBF")), 0);
	CHECK_EQ(seq(S("\xED\xB0\x80")), 0);		/* U+DC00 */
	CHECK_EQ(seq(S("\xED\xBF\xBF")), 0);		/* U+DFFF */
	CHECK_EQ(seq(S("\xF4\x90\x80\x80")), 0);	/* U+110000 */
	CHECK_EQ(seq(S("\xF4\xBF\xBF\xBF")), 0);
	CHECK_EQ(seq(S("\xF5\x80\x80\x80")), 0);
	CHECK_EQ(seq(S("\xF7\xBF\xBF\xBF")), 0);
	CHECK_EQ(seq(S("\xF8\x88\x80\x80\x80")), 0);
	CHECK_EQ(seq(S("\xFC\x84\x80\x80\x80\x80")), 0);
	CHECK_EQ(seq(S("\xFE")), 0);
	CHECK_EQ(seq(S("\xFF")), 0);
	CHECK_EQ(valid(S("x\xED\xA0\x80")), 0);
	/* A UTF-16 pair spelled in UTF-8 (CESU-8) is two surrogates. */
	CHECK_EQ(valid(S("\xED\xA0\xBD\xED\xB8\x80")), 0);
	CHECK_EQ(valid(S("\xF4\x90\x80\x80")), 0);
}

void test_utf8_seq_truncated(void)
{
	/* n says where the buffer ends: the copies are exactly n bytes. */
	CHECK_EQ(seq(S("\xC2")), 0);
	CHECK_EQ(seq(S("\xE2")), 0);
	CHECK_EQ(seq(S("\xE2\x82")), 0);
	CHECK_EQ(seq(S("\xF0")), 0);
	CHECK_EQ(seq(S("\xF0\x9D")), 0);
	CHECK_EQ(seq(S("\xF0\x9D\x84")), 0);
	CHECK_EQ(seq("\xE2\x82\xAC", 2), 0);
	CHECK_EQ(seq("\xF0\x9D\x84\x9E", 3), 0);
	/* Cut short by a byte that is not a continuation. */
	CHECK_EQ(seq(S("\xC2\x41")), 0);
	CHECK_EQ(seq(S("\xC2\xC2")), 0);
	CHECK_EQ(seq(S("\xE2\x41\xAC")), 0);
	CHECK_EQ(seq(S("\xE2\x82\x41")), 0);
	CHECK_EQ(seq(S("\xF0\x9D\x41\x9E")), 0);
	CHECK_EQ(seq(S("\xF0\x9D\x84\x41")), 0);
	CHECK_EQ(seq(S("\xF1\x80\x80\xC0")), 0);
	CHECK_EQ(valid(S("abc\xE2\x82")), 0);
	CHECK_EQ(valid(S("abc\xF0\x9D\x84")), 0);
	CHECK_EQ(valid(S("\xE2\x82" "abc")), 0);
	CHECK_EQ(valid("abc\xE2\x82\xAC", 5), 0);
	CHECK_EQ(valid("abc\xE2\x82\xAC", 6), 1);
}

void test_utf8_seq_stray_continuation(void)
{
	CHECK_EQ(seq(S("\x80")), 0);
	CHECK_EQ(seq(S("\xBF")), 0);
	CHECK_EQ(seq(S("\x80\x80")), 0);
	CHECK_EQ(seq(S("\x80" "A")), 0);
	CHECK_EQ(valid(S("A\x80" "B")), 0);
	CHECK_EQ(valid(S("\xC3\xA9\xA9")), 0);
	CHECK_EQ(valid(S("\xE2\x82\xAC\x80")), 0);
	CHECK_EQ(valid(S("\xBF")), 0);
}

void test_utf8_valid_strings(void)
{
	CHECK_EQ(utf8_valid("", 0), 1);
	CHECK_EQ(valid(S("hello, world")), 1);
	CHECK_EQ(valid(S("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9D\x84\x9E")), 1);
	CHECK_EQ(valid(S("a\0b")), 1);		/* NUL is ASCII */
	CHECK_EQ(valid(S("\x7f\xC2\x80\xDF\xBF\xEF\xBF\xBF"
			 "\xF4\x8F\xBF\xBF")), 1);
	/* Bytes past n are not looked at. */
	CHECK_EQ(valid("ab\xff", 2), 1);
	CHECK_EQ(valid("ab\xff", 3), 0);
	CHECK_EQ(valid(S("\xff" "abc")), 0);
}

void test_utf8_valid_exhaustive(void)
{
	static const unsigned char tail[] = { 0x80, 0x8F, 0x90, 0x9F, 0xA0,
					      0xBF, 0xC0, 0x41, 0x00 };
	unsigned char b[4];
	unsigned long bad = 0;

	/* Every string of one, two and three bytes. */
	for (unsigned long v = 0; v < (1ul << 24); v++) {
		b[0] = (unsigned char)(v >> 16);
		b[1] = (unsigned char)(v >> 8);
		b[2] = (unsigned char)v;
		for (size_t n = 1; n <= 3; n++) {
			const unsigned char *p = b + 3 - n;
			if ((v >> (8 * n)) != 0)
				continue;	/* each short string once */
			if (utf8_valid((const char *)p, n) != ref_valid(p, n) ||
			    utf8_seq(p, n) != ref_len(p, n)) {
				if (bad++ < 5)
					unit_fail(__FILE__, __LINE__,
						  "mismatch on %zu bytes %06lx",
						  n, v);
			}
		}
	}
	/* Four bytes: every lead and second byte, a spread of the rest. */
	for (unsigned lead = 0xF0; lead <= 0xFF; lead++)
		for (unsigned s1 = 0; s1 < 256; s1++)
			for (size_t i = 0; i < sizeof(tail); i++)
				for (size_t k = 0; k < sizeof(tail); k++) {
					b[0] = (unsigned char)lead;
					b[1] = (unsigned char)s1;
					b[2] = tail[i];
					b[3] = tail[k];
					if (utf8_valid((char *)b, 4) !=
					    ref_valid(b, 4) ||
					    utf8_seq(b, 4) != ref_len(b, 4)) {
						if (bad++ < 5)
							unit_fail(__FILE__,
								  __LINE__,
								  "mismatch on "
								  "%02x %02x "
								  "%02x %02x",
								  b[0], b[1],
								  b[2], b[3]);
					}
				}
	CHECK_EQ(bad, 0);
}

/*
 * jsonw.c
 */

/* What a decoder must get back: the valid sequences, and one U+FFFD for
 * each byte that does not start one. *outlen gets the length. */
static char *expected_decode(const char *s, size_t n, size_t *outlen)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out = malloc(3 * n + 1);
	size_t o = 0;

	if (!out) {
		perror("malloc");
		exit(2);
	}
	for (size_t i = 0; i < n;) {
		size_t k = ref_len(p + i, n - i);
		if (k) {
			memcpy(out + o, p + i, k);
			o += k;
			i += k;
		} else {
			memcpy(out + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		}
	}
	out[o] = 0;
	*outlen = o;
	return out;
}

/* The encoder's text must be JSON by the RFC, not just by cJSON, which
 * accepts raw control characters in strings: no byte below 0x20 but the
 * final newline, valid UTF-8, and nothing after the object. */
static int strict_text(const char *t, size_t len)
{
	if (len < 3 || memcmp(t + len - 2, "}\n", 2) != 0 || t[0] != '{')
		return 0;
	for (size_t i = 0; i + 1 < len; i++)
		if ((unsigned char)t[i] < 0x20)
			return 0;
	return utf8_valid(t, len);
}

/* Parses all of t[0..len) (trailing whitespace allowed) or returns NULL. */
static cJSON *parse_all(const char *t, size_t len)
{
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(t, len, &end, 0);

	if (!root)
		return NULL;
	while (end < t + len && (*end == ' ' || *end == '\n'))
		end++;
	if (end != t + len) {
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

/* jw's text is len bytes, not NUL-terminated. */
static void text_eq_at(const char *file, int line, const char *t, size_t len,
		       const char *want)
{
	if (!t || len != strlen(want) || memcmp(t, want, len) != 0)
		unit_fail(file, line, "jw wrote \"%.*s\", expected \"%s\"",
			  t ? (int)len : 6, t ? t : "(null)", want);
}

#define TEXT_EQ(t, len, want) text_eq_at(__FILE__, __LINE__, (t), (len), (want))

static size_t encode_cp(unsigned long cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | cp >> 12);
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | cp >> 18);
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* The four hex digits at t as a number, or -1. */
static long hex4(const char *t)
{
	long v = 0;

	for (int i = 0; i < 4; i++) {
		char c = t[i];
		int d = c >= '0' && c <= '9' ? c - '0' :
			c >= 'a' && c <= 'f' ? c - 'a' + 10 :
			c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return -1;
		v = v << 4 | d;
	}
	return v;
}

/*
 * Decodes the string of {"k": "..."}\n, as jw writes it, into out (room
 * for len bytes). Returns its length, or (size_t)-1 when the text is not
 * that shape or holds an invalid escape. Unlike cJSON it keeps what comes
 * after a \u0000, so the whole string can be compared.
 */
static size_t decode_k(const char *t, size_t len, char *out)
{
	static const char head[] = "{\"k\": \"";
	size_t i = sizeof(head) - 1, o = 0;

	if (len < i + 3 || memcmp(t, head, i) != 0 ||
	    memcmp(t + len - 3, "\"}\n", 3) != 0)
		return (size_t)-1;
	len -= 3;
	while (i < len) {
		char c = t[i++];
		long cp, lo;

		if (c == '"')
			return (size_t)-1;	/* the string ended early */
		if (c != '\\') {
			out[o++] = c;
			continue;
		}
		if (i >= len)
			return (size_t)-1;
		switch ((c = t[i++])) {
		case '"': case '\\': case '/':
			out[o++] = c;
			continue;
		case 'b':
			out[o++] = '\b';
			continue;
		case 'f':
			out[o++] = '\f';
			continue;
		case 'n':
			out[o++] = '\n';
			continue;
		case 'r':
			out[o++] = '\r';
			continue;
		case 't':
			out[o++] = '\t';
			continue;
		case 'u':
			break;
		default:
			return (size_t)-1;
		}
		if (len - i < 4 || (cp = hex4(t + i)) < 0)
			return (size_t)-1;
		i += 4;
		if (cp >= 0xDC00 && cp <= 0xDFFF)
			return (size_t)-1;
		if (cp >= 0xD800 && cp <= 0xDBFF) {
			if (len - i < 6 || t[i] != '\\' || t[i + 1] != 'u' ||
			    (lo = hex4(t + i + 2)) < 0xDC00 || lo > 0xDFFF)
				return (size_t)-1;
			i += 6;
			cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
		}
		o += encode_cp((unsigned long)cp, out + o);
	}
	return o;
}

/* How many \u0000 escapes the JSON text holds (not \\u0000). */
static size_t nul_escapes(const char *t, size_t len)
{
	size_t count = 0;

	for (size_t i = 0; i < len; i++) {
		if (t[i] != '\\')
			continue;
		if (i + 6 <= len && memcmp(t + i, "\\u0000", 6) == 0)
			count++;
		i++;	/* the escaped character */
	}
	return count;
}

/*
 * Encodes s[0..n) as the member "k" and decodes it again. Checks the text
 * is strict JSON that cJSON reads back, that the decoded string is
 * expected_decode(s) (by cJSON up to the first NUL, which it decodes into a
 * terminator; by decode_k all of it), and that each NUL was written as
 * \u0000. Returns the number of failed checks.
 */
static int roundtrip_at(const char *file, int line, const char *s, size_t n)
{
	struct jw w;
	const char *t;
	size_t len = 0, elen, glen, nuls = 0;
	char *in = exact(s, n), *want = expected_decode(s, n, &elen), *got;
	cJSON *root = NULL;
	const cJSON *item;
	int bad = 0;

	jw_begin(&w);
	jw_str(&w, "k", in, n);
	t = jw_finish(&w, &len);
	if (!t) {
		unit_fail(file, line, "jw_finish failed");
		bad++;
		goto out;
	}
	if (!strict_text(t, len)) {
		unit_fail(file, line, "not strict JSON: %.*s",
			  (int)(len < 200 ? len : 200), t);
		bad++;
	}
	root = parse_all(t, len);
	item = cJSON_GetObjectItemCaseSensitive(root, "k");
	if (!root || !cJSON_IsString(item) || cJSON_GetArraySize(root) != 1) {
		unit_fail(file, line, "cJSON cannot read back: %.*s",
			  (int)(len < 200 ? len : 200), t);
		bad++;
		goto out;
	}
	/* cJSON stops at a decoded NUL: compare up to it. */
	if (strcmp(item->valuestring, want) != 0) {
		unit_fail(file, line, "cJSON decoded \"%.100s\", expected "
			  "\"%.100s\"", item->valuestring, want);
		bad++;
	}
	/* All of it, NULs and what follows them included. */
	got = malloc(len);
	if (!got)
		exit(2);
	glen = decode_k(t, len, got);
	if (glen != elen || memcmp(got, want, elen) != 0) {
		unit_fail(file, line, "decoded %zd bytes, expected %zu",
			  (ssize_t)glen, elen);
		bad++;
	}
	free(got);
	for (size_t i = 0; i < n; i++)
		nuls += s[i] == 0;
	if (nul_escapes(t, len) != nuls) {
		unit_fail(file, line, "NUL bytes not all written as \\u0000");
		bad++;
	}
out:
	cJSON_Delete(root);
	jw_release(&w);
	free(want);
	free(in);
	return bad;
}

#define ROUNDTRIP(...) roundtrip_at(__FILE__, __LINE__, __VA_ARGS__)

/* The member "k" as jw writes it, compared with want. */
static void text_is_at(const char *file, int line, const char *s, size_t n,
		       const char *want)
{
	struct jw w;
	const char *t;
	size_t len = 0;

	jw_begin(&w);
	jw_str(&w, "k", s, n);
	t = jw_finish(&w, &len);
	text_eq_at(file, line, t, len, want);
	jw_release(&w);
}

#define TEXT_IS(lit, want) text_is_at(__FILE__, __LINE__, S(lit), (want))

void test_jsonw_single_bytes(void)
{
	for (int c = 0; c < 256; c++) {
		char b = (char)c;
		if (ROUNDTRIP(&b, 1))
			unit_fail(__FILE__, __LINE__, "on byte %#x", c);
	}
	TEXT_IS("\0", "{\"k\": \"\\u0000\"}\n");
	TEXT_IS("\x01", "{\"k\": \"\\u0001\"}\n");
	TEXT_IS("\x1f", "{\"k\": \"\\u001f\"}\n");
	TEXT_IS("\b", "{\"k\": \"\\u0008\"}\n");
	TEXT_IS("\n", "{\"k\": \"\\n\"}\n");
	TEXT_IS("\t", "{\"k\": \"\\t\"}\n");
	TEXT_IS("\r", "{\"k\": \"\\r\"}\n");
	TEXT_IS("\"", "{\"k\": \"\\\"\"}\n");
	TEXT_IS("\\", "{\"k\": \"\\\\\"}\n");
	TEXT_IS(" ", "{\"k\": \" \"}\n");
	TEXT_IS("\x7f", "{\"k\": \"\x7f\"}\n");
	TEXT_IS("\x80", "{\"k\": \"\\ufffd\"}\n");
	TEXT_IS("\xff", "{\"k\": \"\\ufffd\"}\n");
}

void test_jsonw_special_strings(void)
{
	static const char *const cases[] = {
		"", "\"", "\\", "\"\\\"", "\\\\\\\"", "a\"b\\c\nd\te\rf\x01g",
		"</script>", "\\u0000", "\\ud800", "{\"k\": 1}", "\x7f\x7f",
		"h\xC3\xA9llo \xE2\x82\xAC \xF0\x9D\x84\x9E",
	};
	char *big;
	size_t n = 200000;

	/* Valid UTF-8 without NUL comes back byte for byte (ROUNDTRIP
	 * compares with expected_decode, which is the input for these). */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t elen;
		char *want = expected_decode(cases[i], strlen(cases[i]), &elen);

		CHECK_STR(want, cases[i]);
		free(want);
		CHECK(ROUNDTRIP(cases[i], strlen(cases[i])) == 0);
	}
	CHECK(ROUNDTRIP(S("ab\0cd")) == 0);
	CHECK(ROUNDTRIP(S("\0\0\0")) == 0);
	CHECK(ROUNDTRIP(S("x\0\xff\0")) == 0);
	TEXT_IS("ab\0cd", "{\"k\": \"ab\\u0000cd\"}\n");
	TEXT_IS("a\"b\\c", "{\"k\": \"a\\\"b\\\\c\"}\n");
	TEXT_IS("", "{\"k\": \"\"}\n");
	/* Long enough to make the buffer grow many times. */
	big = malloc(n);
	if (!big)
		exit(2);
	for (size_t i = 0; i < n; i++)
		big[i] = "a\"\\\n\x01\xC3\xA9\xff"[i % 8];
	CHECK(ROUNDTRIP(big, n) == 0);
	free(big);
}

/* Invalid UTF-8 with the exact text each must decode to. */
static void fffd_at(const char *file, int line, const char *s, size_t n,
		    const char *want)
{
	struct jw w;
	const char *t;
	size_t len = 0;
	cJSON *root;
	const cJSON *item;

	jw_begin(&w);
	jw_str(&w, "k", s, n);
	t = jw_finish(&w, &len);
	root = t ? parse_all(t, len) : NULL;
	item = cJSON_GetObjectItemCaseSensitive(root, "k");
	if (!cJSON_IsString(item))
		unit_fail(file, line, "not read back: %.*s", t ? (int)len : 6,
			  t ? t : "(null)");
	else if (strcmp(item->valuestring, want) != 0)
		unit_fail(file, line, "decoded \"%s\", expected \"%s\"",
			  item->valuestring, want);
	cJSON_Delete(root);
	jw_release(&w);
}

#define FFFD "\xEF\xBF\xBD"
#define DECODES(lit, want) fffd_at(__FILE__, __LINE__, S(lit), (want))

void test_jsonw_invalid_utf8(void)
{
	DECODES("\x80", FFFD);
	DECODES("\xC0\x80", FFFD FFFD);
	DECODES("\xE0\x80\x80", FFFD FFFD FFFD);
	DECODES("\xF0\x80\x80\x80", FFFD FFFD FFFD FFFD);
	DECODES("\xED\xA0\x80", FFFD FFFD FFFD);
	DECODES("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD);
	DECODES("a\xE2\x82", "a" FFFD FFFD);
	DECODES("\xE2\x82\xAC" "x\xff", "\xE2\x82\xAC" "x" FFFD);
	DECODES("\xC3(", FFFD "(");
	DECODES("\xF0\x9D\x84" "\"", FFFD FFFD FFFD "\"");
	DECODES("\xFE\xFF\xC3\xA9", FFFD FFFD "\xC3\xA9");
	DECODES(FFFD, FFFD);	/* a real U+FFFD passes through */
	CHECK(ROUNDTRIP(S("\xC0\x80\xE0\x80\x80\xED\xA0\x80")) == 0);
}

void test_jsonw_random_bytes(void)
{
	static const unsigned char hot[] = {
		0x00, 0x01, 0x08, 0x0a, 0x1f, 0x20, '"', '\\', '/', 'u', 0x7f,
		0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf,
		0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff,
	};
	unsigned char buf[256];
	int bad = 0;

	rng_seed(0x9E3779B97F4A7C15ull);
	for (int iter = 0; iter < 3000 && bad < 5; iter++) {
		size_t n = rng() % sizeof(buf);
		for (size_t i = 0; i < n; i++) {
			uint32_t r = rng();
			buf[i] = r & 1 ? hot[(r >> 8) % sizeof(hot)] :
					 (unsigned char)(r >> 8);
		}
		if (ROUNDTRIP((const char *)buf, n)) {
			unit_fail(__FILE__, __LINE__,
				  "iteration %d (%zu bytes)", iter, n);
			bad++;
		}
	}
}

void test_jsonw_random_valid_utf8(void)
{
	char buf[4 * 64 + 1];
	int bad = 0;

	rng_seed(42);
	for (int iter = 0; iter < 2000 && bad < 5; iter++) {
		size_t n = 0, count = rng() % 64;
		struct jw w;
		const char *t;
		size_t len = 0;
		cJSON *root;
		const cJSON *item;

		for (size_t i = 0; i < count; i++) {
			unsigned long cp;
			do {	/* every plane, ASCII and controls often */
				uint32_t r = rng();
				cp = r & 1 ? (r >> 1) % 0x80 :
				     (r >> 1) % 0x110000;
			} while (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF));
			n += encode_cp(cp, buf + n);
		}
		buf[n] = 0;
		CHECK(utf8_valid(buf, n));
		jw_begin(&w);
		jw_str(&w, "k", buf, n);
		t = jw_finish(&w, &len);
		root = t ? parse_all(t, len) : NULL;
		item = cJSON_GetObjectItemCaseSensitive(root, "k");
		if (!t || !strict_text(t, len) || !cJSON_IsString(item) ||
		    strlen(item->valuestring) != n ||
		    memcmp(item->valuestring, buf, n) != 0) {
			unit_fail(__FILE__, __LINE__, "iteration %d: %zu bytes "
				  "not returned exactly", iter, n);
			bad++;
		}
		cJSON_Delete(root);
		jw_release(&w);
	}
}

/* The whole object jw built, compared with want. */
static void finish_is_at(const char *file, int line, struct jw *w,
			 const char *want)
{
	size_t len = 0;
	const char *t = jw_finish(w, &len);

	text_eq_at(file, line, t, len, want);
	if (t && !strict_text(t, len))
		unit_fail(file, line, "not strict JSON: %.*s", (int)len, t);
	jw_release(w);
}

#define FINISH_IS(w, want) finish_is_at(__FILE__, __LINE__, (w), (want))

void test_jsonw_members(void)
{
	struct jw w;
	const char *t;
	size_t len = 0;
	cJSON *root;

	jw_begin(&w);
	FINISH_IS(&w, "{}\n");

	jw_begin(&w);
	jw_bool(&w, "success", 0);
	FINISH_IS(&w, "{\"success\": false}\n");

	jw_begin(&w);
	jw_bool(&w, "a", 0);
	jw_bool(&w, "b", 7);
	jw_long(&w, "n", 42);
	jw_cstr(&w, "e", NULL);
	jw_cstr(&w, "s", "x");
	jw_str(&w, "o", "", 0);
	t = jw_finish(&w, &len);
	TEXT_EQ(t, len, "{\"a\": false, \"b\": true, \"n\": 42, \"e\": null, "
		"\"s\": \"x\", \"o\": \"\"}\n");
	root = t ? parse_all(t, len) : NULL;
	CHECK(cJSON_IsObject(root));
	CHECK_EQ(cJSON_GetArraySize(root), 6);
	CHECK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(root, "a")));
	CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "b")));
	CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(root, "e")));
	CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(root, "n")));
	cJSON_Delete(root);
	jw_release(&w);

	/* Keys are escaped like values. */
	jw_begin(&w);
	jw_long(&w, "a\"b\\c\n", 1);
	jw_long(&w, "", 2);
	t = jw_finish(&w, &len);
	TEXT_EQ(t, len, "{\"a\\\"b\\\\c\\n\": 1, \"\": 2}\n");
	root = t ? parse_all(t, len) : NULL;
	CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(root,
							      "a\"b\\c\n")));
	CHECK_EQ(cJSON_GetArraySize(root), 2);
	cJSON_Delete(root);
	jw_release(&w);
}

static void ms_is_at(const char *file, int line, double ms, const char *want)
{
	char buf[64];
	struct jw w;

	snprintf(buf, sizeof(buf), "{\"t\": %s}\n", want);
	jw_begin(&w);
	jw_ms(&w, "t", ms);
	finish_is_at(file, line, &w, buf);
}

#define MS_IS(ms, want) ms_is_at(__FILE__, __LINE__, (ms), (want))

void test_jsonw_ms(void)
{
	MS_IS(0, "0.000");
	MS_IS(1.5, "1.500");
	MS_IS(2.0006, "2.001");
	MS_IS(0.0004, "0.000");
	MS_IS(12345.678, "12345.678");
	MS_IS(999999999999.0, "999999999999.000");
	MS_IS(-1, "0.000");
	MS_IS(-0.001, "0.000");
	MS_IS(-1e300, "0.000");
	MS_IS(NAN, "0.000");
	MS_IS(-NAN, "0.000");
	MS_IS(INFINITY, "0.000");
	MS_IS(-INFINITY, "0.000");
	MS_IS(1e12, "0.000");
	MS_IS(1e300, "0.000");
}

static void long_is_at(const char *file, int line, long v, const char *want)
{
	char buf[64];
	struct jw w;

	snprintf(buf, sizeof(buf), "{\"v\": %s}\n", want);
	jw_begin(&w);
	jw_long(&w, "v", v);
	finish_is_at(file, line, &w, buf);
}

void test_jsonw_long(void)
{
	long_is_at(__FILE__, __LINE__, 0, "0");
	long_is_at(__FILE__, __LINE__, -1, "-1");
	long_is_at(__FILE__, __LINE__, 1234567, "1234567");
	long_is_at(__FILE__, __LINE__, LONG_MAX, "9223372036854775807");
	long_is_at(__FILE__, __LINE__, LONG_MIN, "-9223372036854775808");
}

/*
 * jsonscan.c
 */

static enum scan_result scan(const char *s, size_t n, int max)
{
	char *p = exact(s, n);
	enum scan_result r = json_scan(p, n, max);

	free(p);
	return r;
}

/* depth '[' or '{' in turn, then the matching closers. */
static char *nested(int depth, size_t *n)
{
	char *s = malloc(4 * (size_t)depth + 1);
	size_t k = 0;

	if (!s)
		exit(2);
	for (int i = 0; i < depth; i++) {
		if (i % 2) {
			memcpy(s + k, "{\"a\":", 5);
			k += 5;
		} else {
			s[k++] = '[';
		}
	}
	for (int i = depth - 1; i >= 0; i--)
		s[k++] = i % 2 ? '}' : ']';
	*n = k;
	return s;
}

void test_jsonscan_depth(void)
{
	size_t n;
	char *s;

	s = nested(JSON_MAX_DEPTH, &n);
	CHECK_EQ(json_scan(s, n, JSON_MAX_DEPTH), SCAN_OK);
	free(s);
	s = nested(JSON_MAX_DEPTH + 1, &n);
	CHECK_EQ(json_scan(s, n, JSON_MAX_DEPTH), SCAN_TOO_DEEP);
	free(s);
	CHECK_EQ(JSON_MAX_DEPTH, 64);

	CHECK_EQ(scan(S("1"), 0), SCAN_OK);
	CHECK_EQ(scan(S("[]"), 0), SCAN_TOO_DEEP);
	CHECK_EQ(scan(S("{}"), 1), SCAN_OK);
	CHECK_EQ(scan(S("[[]]"), 1), SCAN_TOO_DEEP);
	CHECK_EQ(scan(S("[[]]"), 2), SCAN_OK);
	/* Siblings do not add up. */
	CHECK_EQ(scan(S("[[],[],{},[[]]]"), 3), SCAN_OK);
	CHECK_EQ(scan(S("[[],[],{},[[]]]"), 2), SCAN_TOO_DEEP);
	/* An unclosed prefix is still counted. */
	CHECK_EQ(scan(S("[[["), 2), SCAN_TOO_DEEP);
	CHECK_EQ(scan(S("[[["), 3), SCAN_OK);
}

void test_jsonscan_stray(void)
{
	/* What cJSON skips as whitespace but JSON does not allow. */
	CHECK_EQ(scan(S("{\"a\":\x01" "1}"), 2), SCAN_CONTROL);
	CHECK_EQ(scan(S("{\"a\":1\x0b}"), 2), SCAN_CONTROL);
	CHECK_EQ(scan(S("{\"a\":1,\x1f\"b\":2}"), 2), SCAN_CONTROL);
	CHECK_EQ(scan(S("{\"a\":1}\x7f"), 2), SCAN_CONTROL);
	CHECK_EQ(scan(S("{\"a\":1}\xc2\xa0"), 2), SCAN_CONTROL);
	CHECK_EQ(scan(S("\xef\xbb\xbf{\"a\":1}"), 2), SCAN_BOM);
	CHECK_EQ(scan(S(" \xef\xbb\xbf{}"), 2), SCAN_CONTROL);
	/* The four JSON whitespace bytes, and anything inside strings. */
	CHECK_EQ(scan(S(" \t\r\n{\"a\" :\t1 }\n"), 2), SCAN_OK);
	CHECK_EQ(scan(S("{\"\xef\xbb\xbf\x7f\":\"\xc2\xa0\"}"), 2), SCAN_OK);
}

static int span(const char *s, size_t n, size_t index, const char *want)
{
	char *p = exact(s, n);
	size_t off = 0, len = 0;
	int rc = json_member_span(p, n, index, &off, &len);

	if (rc == 0 && want)
		rc = len == strlen(want) && memcmp(p + off, want, len) == 0 ? 0 : 1;
	free(p);
	return rc;
}

void test_jsonscan_member_span(void)
{
	const char *body = " { \"a\" : 1 , \"b\":[ \"]}\\\"\" ,{\"c\":{}}] ,"
			   "\"d\":\"x,}\",\"e\":-1.5e3\n}";

	CHECK_EQ(span(body, strlen(body), 0, "1"), 0);
	CHECK_EQ(span(body, strlen(body), 1, "[ \"]}\\\"\" ,{\"c\":{}}]"), 0);
	CHECK_EQ(span(body, strlen(body), 2, "\"x,}\""), 0);
	CHECK_EQ(span(body, strlen(body), 3, "-1.5e3"), 0);
	CHECK_EQ(span(body, strlen(body), 4, NULL), -1);
	CHECK_EQ(span(S("{\"a\\\"\":true}"), 0, "true"), 0);
	CHECK_EQ(span(S("{}"), 0, NULL), -1);
	CHECK_EQ(span(S("[1]"), 0, NULL), -1);
}

void test_jsonscan_strings(void)
{
	/* Brackets in strings are text. */
	CHECK_EQ(scan(S("\"[[[[[[[[\""), 0), SCAN_OK);
	CHECK_EQ(scan(S("[\"[[[[{{{{\"]"), 1), SCAN_OK);
	CHECK_EQ(scan(S("{\"[[[[\": \"]]]]{{{{\"}"), 1), SCAN_OK);
	/* An escaped quote does not end the string. */
	CHECK_EQ(scan(S("[\"\\\"[[[[\"]"), 1), SCAN_OK);
	CHECK_EQ(scan(S("[\"\\\\\\\"[[[[\"]"), 1), SCAN_OK);
	/* An escaped backslash does not escape the quote after it. */
	CHECK_EQ(scan(S("[\"\\\\\"[[[[]]]]]"), 4), SCAN_TOO_DEEP);
	CHECK_EQ(scan(S("[\"\\\\\"[[[[]]]]]"), 5), SCAN_OK);
	/* Strings end: brackets after one count again. */
	CHECK_EQ(scan(S("[\"a\",[[\"b\"]]]"), 2), SCAN_TOO_DEEP);
	/* A backslash as the last byte reads nothing past the end. */
	CHECK_EQ(scan(S("[\"\\"), 1), SCAN_OK);
}

void test_jsonscan_nul(void)
{
	CHECK_EQ(scan(S("\"\\u0000\""), 8), SCAN_NUL);
	CHECK_EQ(scan(S("[\"\\u0000\"]"), 8), SCAN_NUL);
	CHECK_EQ(scan(S("[\"abc\\u0000def\"]"), 8), SCAN_NUL);
	CHECK_EQ(scan(S("{\"a\\u0000\": 1}"), 8), SCAN_NUL);
	CHECK_EQ(scan(S("[\"\\u00001\"]"), 8), SCAN_NUL);
	CHECK_EQ(scan(S("[\"\\\"\\u0000\"]"), 8), SCAN_NUL);
	/* An escaped backslash, then an escape: still a NUL. */
	CHECK_EQ(scan(S("[\"\\\\\\u0000\"]"), 8), SCAN_NUL);
	/* Unterminated, the escape ending exactly at n. */
	CHECK_EQ(scan(S("\"\\u0000"), 8), SCAN_NUL);
	/* An escaped backslash followed by the text u0000. */
	CHECK_EQ(scan(S("[\"\\\\u0000\"]"), 8), SCAN_OK);
	CHECK_EQ(scan(S("[\"\\\\\\\\u0000\"]"), 8), SCAN_OK);
	/* Outside strings it is not a string's content (it is bad syntax,
	 * for cJSON or the scan's number check to refuse). */
	CHECK(scan(S("[1]\\u0000"), 8) != SCAN_NUL);
	CHECK(scan(S("[\"a\"]\\u0000"), 8) != SCAN_NUL);
	CHECK(scan(S("\\u0000[\"a\"]"), 8) != SCAN_NUL);
	/* Other escapes and cut-short ones. */
	CHECK_EQ(scan(S("[\"\\u0001\\u0100\\u1000\"]"), 8), SCAN_OK);
	CHECK_EQ(scan(S("\"\\u000"), 8), SCAN_OK);
	CHECK_EQ(scan("\"\\u0000\"", 6, 8), SCAN_OK);
	CHECK_EQ(scan(S("\"\\u"), 8), SCAN_OK);
	/* Depth is checked too on the way. */
	CHECK_EQ(scan(S("[[\"\\u0000\"]]"), 1), SCAN_TOO_DEEP);
}

void test_jsonscan_syntax(void)
{
	/* Raw control characters: refused in strings, whitespace outside. */
	for (int c = 0; c < 0x20; c++) {
		char s[] = { '[', '"', 'a', (char)c, '"', ']' };
		char t[] = { '[', '1', (char)c, ',', '2', ']' };

		CHECKF(scan(s, sizeof(s), 8) == SCAN_SYNTAX,
		       "raw %#x in a string", c);
		if (c == '\t' || c == '\n' || c == '\r')
			CHECKF(scan(t, sizeof(t), 8) == SCAN_OK,
			       "whitespace %#x between values", c);
	}
	CHECK_EQ(scan(S("[\"a\x7f \xC3\xA9\"]"), 8), SCAN_OK);
	CHECK_EQ(scan(S("{\"a\x01\": 1}"), 8), SCAN_SYNTAX);
	CHECK_EQ(scan(S("\"\n"), 8), SCAN_SYNTAX);

	/* Numbers, RFC 8259's grammar. */
	CHECK_EQ(scan(S("0"), 8), SCAN_OK);
	CHECK_EQ(scan(S("-0"), 8), SCAN_OK);
	CHECK_EQ(scan(S("1234567890"), 8), SCAN_OK);
	CHECK_EQ(scan(S("[0,-1,1.5,-0.25,1e5,1E+5,2.5e-3,0e0]"), 8), SCAN_OK);
	CHECK_EQ(scan(S("{\"a\":10,\"b\":[-3]}"), 8), SCAN_OK);
	/* What follows a number is scanned: here the closers. */
	CHECK_EQ(scan(S("[[1],[2],[3.5],{\"a\":-4e1}]"), 2), SCAN_OK);
	CHECK_EQ(scan(S("[1,\"\n\"]"), 8), SCAN_SYNTAX);
	CHECK_EQ(scan(S("01"), 8), SCAN_SYNTAX);
	CHECK_EQ(scan(S("[00]"), 8), SCAN_SYNTAX);
	CHECK_EQ(scan(S("[-01]"), 8), SCAN_SYNTAX);
	CHECK_EQ(scan(S("[1.]"), 8), SCAN_SYNTAX);
	CHECK_EQ(scan(S("[1.e5]"), 8), SCAN_SYNTAX);
	CHECK_EQ(scan(S("[1e]"), 8), SCAN_SYNTAX);
	CHECK_EQ(scan(S("[1e+]"), 8), SCAN_SYNTAX);
	CHECK_EQ(scan(S("[1.2.3]"), 8), SCAN_SYNTAX);
	CHECK_EQ(scan(S("[1-2]"), 8), SCAN_SYNTAX);
	CHECK_EQ(scan(S("[--1]"), 8), SCAN_SYNTAX);
	CHECK_EQ(scan(S("[-]"), 8), SCAN_SYNTAX);
	/* Cut at the end of the buffer (the copies are exact). */
	CHECK_EQ(scan(S("12"), 8), SCAN_OK);
	CHECK_EQ(scan(S("-"), 8), SCAN_SYNTAX);
	CHECK_EQ(scan(S("1."), 8), SCAN_SYNTAX);
	CHECK_EQ(scan(S("1e"), 8), SCAN_SYNTAX);
	CHECK_EQ(scan(S("1e-"), 8), SCAN_SYNTAX);
	/* Digits in strings are text. */
	CHECK_EQ(scan(S("[\"01\", \"1.2.3\", \"-\"]"), 8), SCAN_OK);
}

/*
 * request.c
 */

void test_content_type(void)
{
	CHECK_EQ(content_type_ok("application/json"), 1);
	CHECK_EQ(content_type_ok("Application/JSON"), 1);
	CHECK_EQ(content_type_ok("APPLICATION/JSON"), 1);
	CHECK_EQ(content_type_ok("application/json; charset=utf-8"), 1);
	CHECK_EQ(content_type_ok("application/json;charset=UTF-8"), 1);
	CHECK_EQ(content_type_ok("application/json; charset=\"utf-8\""), 1);
	CHECK_EQ(content_type_ok("application/json ; charset=utf-8 "), 1);
	CHECK_EQ(content_type_ok("application/json;\tCharSet=Utf-8\t"), 1);
	CHECK_EQ(content_type_ok("application/json "), 1);
	CHECK_EQ(content_type_ok("application/json;"), 1);

	CHECK_EQ(content_type_ok(NULL), 0);
	CHECK_EQ(content_type_ok(""), 0);
	CHECK_EQ(content_type_ok("application/jso"), 0);
	CHECK_EQ(content_type_ok("application/jsonx"), 0);
	CHECK_EQ(content_type_ok("application/json5"), 0);
	CHECK_EQ(content_type_ok("application/json-patch+json"), 0);
	CHECK_EQ(content_type_ok(" application/json"), 0);
	CHECK_EQ(content_type_ok("text/plain"), 0);
	CHECK_EQ(content_type_ok("text/json"), 0);
	CHECK_EQ(content_type_ok("application/x-www-form-urlencoded"), 0);
	CHECK_EQ(content_type_ok("application/json; charset=latin1"), 0);
	CHECK_EQ(content_type_ok("application/json; charset=iso-8859-1"), 0);
	CHECK_EQ(content_type_ok("application/json; charset=utf-16"), 0);
	CHECK_EQ(content_type_ok("application/json; charset=utf-8x"), 0);
	CHECK_EQ(content_type_ok("application/json; charset=utf8"), 0);
	CHECK_EQ(content_type_ok("application/json; charset=\"utf-8"), 0);
	CHECK_EQ(content_type_ok("application/json; charset="), 0);
	CHECK_EQ(content_type_ok("application/json; boundary=x"), 0);
	CHECK_EQ(content_type_ok("application/json; charset=utf-8; a=b"), 0);
	CHECK_EQ(content_type_ok("application/json, text/plain"), 0);
}

static void setenv_or_unset(const char *name, const char *value)
{
	if (value)
		setenv(name, value, 1);
	else
		unsetenv(name);
}

static void cgi_env(const char *method, const char *ct, const char *cl)
{
	setenv_or_unset("REQUEST_METHOD", method);
	setenv_or_unset("CONTENT_TYPE", ct);
	setenv_or_unset("CONTENT_LENGTH", cl);
}

/* A pipe already holding data[0..n); the write end is closed when
 * close_writer, else left in p[1]. */
static void pipe_with(int p[2], const char *data, size_t n, int close_writer)
{
	if (pipe(p) != 0 || (n && write(p[1], data, n) != (ssize_t)n)) {
		perror("pipe");
		exit(2);
	}
	if (close_writer) {
		close(p[1]);
		p[1] = -1;
	}
}

/* Whatever is left in the pipe, without waiting; NUL-terminated. */
static size_t pipe_left(int fd, char *buf, size_t cap)
{
	size_t got = 0;
	ssize_t n;

	if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0)
		return (size_t)-1;
	while (got + 1 < cap && (n = read(fd, buf + got, cap - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	return got;
}

static void close_pipe(int p[2])
{
	close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
}

/*
 * One refused request_read: the status, a piece of the message, the
 * type, and that the body was not read (the pipe still holds "unread").
 */
static void refused_at(const char *file, int line, long limit, int status,
		       const char *type, const char *substr)
{
	struct request req;
	struct http_error e = { 0 };
	char left[64];
	int p[2];
	int rc;

	pipe_with(p, S("unread"), 1);
	rc = request_read(&req, p[0], limit, 1000, &e);
	if (rc != -1 || e.status != status)
		unit_fail(file, line, "request_read: rc %d status %d, expected "
			  "-1 and %d", rc, e.status, status);
	if (!strstr(e.msg, substr))
		unit_fail(file, line, "message \"%s\" lacks \"%s\"", e.msg,
			  substr);
	if (!e.type || strcmp(e.type, type) != 0)
		unit_fail(file, line, "type %s, expected %s",
			  e.type ? e.type : "(null)", type);
	if (req.body)
		unit_fail(file, line, "a body was allocated");
	if (pipe_left(p[0], left, sizeof(left)) != 6 ||
	    strcmp(left, "unread") != 0)
		unit_fail(file, line, "the body was read: \"%s\" left", left);
	request_release(&req);
	close_pipe(p);
}

#define REFUSED(limit, status, type, substr)				\
	refused_at(__FILE__, __LINE__, (limit), (status), (type), (substr))

void test_request_method(void)
{
	cgi_env(NULL, "application/json", "6");
	REFUSED(100, 405, "MethodNotAllowed", "method (none) not allowed");
	cgi_env("", "application/json", "6");
	REFUSED(100, 405, "MethodNotAllowed", "(none)");
	cgi_env("GET", "application/json", "6");
	REFUSED(100, 405, "MethodNotAllowed", "method GET not allowed");
	cgi_env("post", "application/json", "6");
	REFUSED(100, 405, "MethodNotAllowed", "method post not allowed");
	cgi_env("PUT", "application/json", "6");
	REFUSED(100, 405, "MethodNotAllowed", "use POST");
	/* A long method is not echoed back. */
	cgi_env("POSTPOSTPOSTPOSTPOST", "application/json", "6");
	REFUSED(100, 405, "MethodNotAllowed", "(none)");
	/* The method is checked first. */
	cgi_env("GET", "text/plain", NULL);
	REFUSED(100, 405, "MethodNotAllowed", "GET");
	cgi_env(NULL, NULL, NULL);
}

void test_request_content_type(void)
{
	cgi_env("POST", NULL, "6");
	REFUSED(100, 415, "UnsupportedMediaType", "application/json");
	cgi_env("POST", "text/plain", "6");
	REFUSED(100, 415, "UnsupportedMediaType", "Content-Type");
	cgi_env("POST", "application/json; charset=latin1", "6");
	REFUSED(100, 415, "UnsupportedMediaType", "Content-Type");
	cgi_env("POST", "application/jsonx", "6");
	REFUSED(100, 415, "UnsupportedMediaType", "Content-Type");
	/* Before the length. */
	cgi_env("POST", "text/plain", NULL);
	REFUSED(100, 415, "UnsupportedMediaType", "Content-Type");
	cgi_env(NULL, NULL, NULL);
}

void test_request_length(void)
{
	cgi_env("POST", "application/json", NULL);
	REFUSED(100, 411, "LengthRequired", "Content-Length is required");
	cgi_env("POST", "application/json", "");
	REFUSED(100, 411, "LengthRequired", "Content-Length is required");
	cgi_env("POST", "application/json", "abc");
	REFUSED(100, 400, "BadRequest", "Content-Length is not a number");
	cgi_env("POST", "application/json", "-1");
	REFUSED(100, 400, "BadRequest", "not a number");
	cgi_env("POST", "application/json", "12abc");
	REFUSED(100, 400, "BadRequest", "not a number");
	cgi_env("POST", "application/json", "6 ");
	REFUSED(100, 400, "BadRequest", "not a number");
	cgi_env("POST", "application/json", " 6");
	REFUSED(100, 400, "BadRequest", "not a number");
	cgi_env("POST", "application/json", "+6");
	REFUSED(100, 400, "BadRequest", "not a number");
	cgi_env("POST", "application/json", "0x6");
	REFUSED(100, 400, "BadRequest", "not a number");
	cgi_env("POST", "application/json", "99999999999999999999");
	REFUSED(100, 400, "BadRequest", "not a number");
	cgi_env("POST", "application/json", "0");
	REFUSED(100, 400, "BadRequest", "request body is empty");
	cgi_env("POST", "application/json", "000");
	REFUSED(100, 400, "BadRequest", "request body is empty");
	cgi_env(NULL, NULL, NULL);
}

void test_request_too_large_not_read(void)
{
	cgi_env("POST", "application/json", "7");
	REFUSED(6, 413, "PayloadTooLarge",
		"request body of 7 bytes is over the limit of 6 bytes");
	cgi_env("POST", "application/json", "9223372036854775807");
	REFUSED(1024, 413, "PayloadTooLarge", "9223372036854775807");
	cgi_env("POST", "application/json", "1048577");
	REFUSED(1048576, 413, "PayloadTooLarge", "1048577");
	cgi_env(NULL, NULL, NULL);
}

void test_request_short_body(void)
{
	struct request req;
	struct http_error e = { 0 };
	int p[2];

	cgi_env("POST", "application/json", "10");
	pipe_with(p, S("abcd"), 1);
	CHECK_EQ(request_read(&req, p[0], 100, 5000, &e), -1);
	CHECK_EQ(e.status, 400);
	CHECK_STR(e.type, "BadRequest");
	CHECK_CONTAINS(e.msg, "shorter than Content-Length (4 of 10 bytes)");
	request_release(&req);
	CHECK(req.body == NULL);
	close_pipe(p);

	/* Nothing at all before EOF. */
	pipe_with(p, "", 0, 1);
	CHECK_EQ(request_read(&req, p[0], 100, 5000, &e), -1);
	CHECK_EQ(e.status, 400);
	CHECK_CONTAINS(e.msg, "(0 of 10 bytes)");
	request_release(&req);
	close_pipe(p);
	cgi_env(NULL, NULL, NULL);
}

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 +
	       (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

void test_request_timeout(void)
{
	struct request req;
	struct http_error e = { 0 };
	struct timespec t0;
	long ms;
	int p[2];

	/* The writer stays open and never writes. */
	cgi_env("POST", "application/json", "10");
	pipe_with(p, "", 0, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_EQ(request_read(&req, p[0], 100, 100, &e), -1);
	ms = elapsed_ms(&t0);
	CHECK_EQ(e.status, 408);
	CHECK_STR(e.type, "RequestTimeout");
	CHECK_CONTAINS(e.msg, "not received within 100 ms");
	CHECKF(ms >= 90 && ms < 3000, "timed out after %ld ms", ms);
	request_release(&req);
	close_pipe(p);

	/* Part of the body, then nothing. */
	pipe_with(p, S("abc"), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_EQ(request_read(&req, p[0], 100, 100, &e), -1);
	ms = elapsed_ms(&t0);
	CHECK_EQ(e.status, 408);
	CHECKF(ms >= 90 && ms < 3000, "timed out after %ld ms", ms);
	request_release(&req);
	close_pipe(p);
	cgi_env(NULL, NULL, NULL);
}

void test_request_exact_read(void)
{
	struct request req;
	struct http_error e = { 0 };
	char left[64];
	int p[2];

	/* Exactly Content-Length bytes, not one more. */
	cgi_env("POST", "application/json; charset=utf-8", "5");
	pipe_with(p, S("helloEXTRA"), 0);
	CHECK_EQ(request_read(&req, p[0], 100, 1000, &e), 0);
	CHECK_EQ(req.len, 5);
	CHECK(req.body && memcmp(req.body, "hello", 6) == 0);
	CHECK_EQ(pipe_left(p[0], left, sizeof(left)), 5);
	CHECK_STR(left, "EXTRA");
	request_release(&req);
	CHECK(req.body == NULL);
	close_pipe(p);

	/* At the limit exactly; NUL bytes are kept and counted. */
	cgi_env("POST", "application/json", "6");
	pipe_with(p, S("a\0b\0cd"), 1);
	CHECK_EQ(request_read(&req, p[0], 6, 1000, &e), 0);
	CHECK_EQ(req.len, 6);
	CHECK(req.body && memcmp(req.body, "a\0b\0cd", 7) == 0);
	request_release(&req);
	close_pipe(p);

	/* A body larger than one pipe read, from a writer still open. */
	{
		static char big[60000];
		char cl[16];

		for (size_t i = 0; i < sizeof(big); i++)
			big[i] = (char)('a' + i % 26);
		snprintf(cl, sizeof(cl), "%zu", sizeof(big));
		cgi_env("POST", "application/json", cl);
		pipe_with(p, big, sizeof(big), 0);
		CHECK_EQ(request_read(&req, p[0], 1 << 20, 1000, &e), 0);
		CHECK_EQ(req.len, sizeof(big));
		CHECK(req.body && memcmp(req.body, big, sizeof(big)) == 0 &&
		      req.body[sizeof(big)] == 0);
		request_release(&req);
		close_pipe(p);
	}
	cgi_env(NULL, NULL, NULL);
}

void test_request_discard(void)
{
	char left[64];
	struct timespec t0;
	long ms;
	int p[2];

	/* What CONTENT_LENGTH announces is read and dropped, not more. */
	cgi_env("POST", "application/json", "6");
	pipe_with(p, S("unreadEXTRA"), 0);
	request_discard(p[0], 1000);
	CHECK_EQ(pipe_left(p[0], left, sizeof(left)), 5);
	CHECK_STR(left, "EXTRA");
	close_pipe(p);

	/* A body that never comes: back at the deadline. */
	cgi_env("POST", "application/json", "10");
	pipe_with(p, S("abc"), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	request_discard(p[0], 100);
	ms = elapsed_ms(&t0);
	CHECKF(ms >= 90 && ms < 3000, "returned after %ld ms", ms);
	close_pipe(p);

	/* A body shorter than announced: back at its end. */
	pipe_with(p, S("abc"), 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	request_discard(p[0], 5000);
	CHECKF(elapsed_ms(&t0) < 1000, "waited past the end of the body");
	close_pipe(p);

	/* No length, or not a number: nothing is known to follow. */
	cgi_env("POST", "application/json", NULL);
	pipe_with(p, S("unread"), 1);
	request_discard(p[0], 1000);
	CHECK_EQ(pipe_left(p[0], left, sizeof(left)), 6);
	close_pipe(p);
	cgi_env("POST", "application/json", "abc");
	pipe_with(p, S("unread"), 1);
	request_discard(p[0], 1000);
	CHECK_EQ(pipe_left(p[0], left, sizeof(left)), 6);
	close_pipe(p);
	cgi_env(NULL, NULL, NULL);
}

/*
 * config.c
 */

static void parse_is_at(const char *file, int line, const char *s,
			long min, long max, int rc, long want)
{
	long v = 12345;
	int got = parse_long(s, min, max, &v);

	if (got != rc)
		unit_fail(file, line, "parse_long(\"%s\", %ld, %ld) = %d",
			  s ? s : "(null)", min, max, got);
	else if (v != (rc == 0 ? want : 12345))
		unit_fail(file, line, "parse_long(\"%s\") stored %ld",
			  s ? s : "(null)", v);
}

#define PARSE_OK(s, min, max, want)					\
	parse_is_at(__FILE__, __LINE__, (s), (min), (max), 0, (want))
#define PARSE_BAD(s, min, max)						\
	parse_is_at(__FILE__, __LINE__, (s), (min), (max), -1, 0)

void test_parse_long_cases(void)
{
	PARSE_OK("0", 0, 10, 0);
	PARSE_OK("10", 0, 10, 10);
	PARSE_OK("007", 0, 10, 7);
	PARSE_OK("5", 5, 5, 5);
	PARSE_OK("9223372036854775807", 0, LONG_MAX, LONG_MAX);
	PARSE_BAD("11", 0, 10);
	PARSE_BAD("4", 5, 10);
	PARSE_BAD("9223372036854775808", 0, LONG_MAX);
	PARSE_BAD("99999999999999999999999", 0, LONG_MAX);
	PARSE_BAD(NULL, 0, 10);
	PARSE_BAD("", 0, 10);
	PARSE_BAD("-1", -10, 10);	/* no sign, even when min allows it */
	PARSE_BAD("+1", 0, 10);
	PARSE_BAD(" 1", 0, 10);
	PARSE_BAD("1 ", 0, 10);
	PARSE_BAD("1\n", 0, 10);
	PARSE_BAD("12abc", 0, 100);
	PARSE_BAD("1.5", 0, 10);
	PARSE_BAD("1e3", 0, 10000);
	PARSE_BAD("0x10", 0, 100);
	PARSE_BAD("abc", 0, 10);
}

/* The variables config_env_override reads: bounds, and the field of struct
 * settings each one sets. */
static const struct env_var {
	const char *name;
	long min, max;
	size_t off;
} env_vars[] = {
	{ "PYEXEC_TIMEOUT_MS", 1, MAX_TIMEOUT_MS,
	  offsetof(struct settings, timeout_ms) },
	{ "PYEXEC_CPU_MS", 1, MAX_TIMEOUT_MS,
	  offsetof(struct settings, cpu_ms) },
	{ "PYEXEC_MEMORY_MB", 32, MAX_MEMORY_MB,
	  offsetof(struct settings, memory_mb) },
	{ "PYEXEC_OUTPUT_BYTES", 1, MAX_OUTPUT_BYTES,
	  offsetof(struct settings, output_bytes) },
	{ "PYEXEC_CODE_BYTES", 1, MAX_CODE_BYTES,
	  offsetof(struct settings, code_bytes) },
	{ "PYEXEC_INPUT_BYTES", 2, MAX_INPUT_BYTES,
	  offsetof(struct settings, input_bytes) },
	{ "PYEXEC_BODY_BYTES", 16, MAX_BODY_BYTES,
	  offsetof(struct settings, body_bytes) },
	{ "PYEXEC_BODY_TIMEOUT_MS", 1, MAX_TIMEOUT_MS,
	  offsetof(struct settings, body_timeout_ms) },
};
#define NENV (sizeof(env_vars) / sizeof(env_vars[0]))

static long *env_field(struct settings *s, const struct env_var *v)
{
	return (long *)(void *)((char *)s + v->off);
}

static void config_env_clear(void)
{
	for (size_t i = 0; i < NENV; i++)
		unsetenv(env_vars[i].name);
}

/* Every byte of s set, so that a field written by mistake shows. */
static void settings_poison(struct settings *s)
{
	memset(s, 0x5a, sizeof(*s));
}

/* The limits identify() works out for an anonymous request under s. */
static int anon_limits(const struct settings *s, struct identity *id)
{
	struct http_error e = { 0 };
	int rc;

	unsetenv("HTTP_AUTHORIZATION");
	rc = identify(NULL, s, NULL, id, &e);
	if (rc != 0)
		unit_fail(__FILE__, __LINE__, "identify refused: %d %s",
			  e.status, e.msg);
	return rc;
}

void test_config_defaults(void)
{
	struct settings s, before;
	struct identity id;
	char err[200] = "";

	config_env_clear();
	settings_defaults(&s);
	memcpy(&before, &s, sizeof(s));
	CHECK_EQ(config_env_override(&s, err, sizeof(err)), 0);
	CHECK(memcmp(&s, &before, sizeof(s)) == 0);
	CHECK_EQ(s.timeout_ms, DEFAULT_TIMEOUT_MS);
	CHECK_EQ(s.cpu_ms, 0);		/* 0: the same as the timeout */
	CHECK_EQ(s.memory_mb, DEFAULT_MEMORY_MB);
	CHECK_EQ(s.output_bytes, DEFAULT_OUTPUT_BYTES);
	CHECK_EQ(s.code_bytes, DEFAULT_CODE_BYTES);
	CHECK_EQ(s.input_bytes, DEFAULT_INPUT_BYTES);
	CHECK_EQ(s.body_bytes, DEFAULT_BODY_BYTES);
	CHECK_EQ(s.body_timeout_ms, BODY_READ_TIMEOUT_MS);
	CHECK_STR(err, "");
	if (anon_limits(&s, &id) == 0) {
		CHECK_EQ(id.timeout_ms, DEFAULT_TIMEOUT_MS);
		CHECK_EQ(id.cpu_ms, DEFAULT_CPU_MS);
		CHECK_EQ(id.memory_mb, DEFAULT_MEMORY_MB);
	}

	/* No variable set: not one byte of the settings changes, whatever
	 * they held, and err is not written. */
	settings_poison(&s);
	memcpy(&before, &s, sizeof(s));
	snprintf(err, sizeof(err), "untouched");
	CHECK_EQ(config_env_override(&s, err, sizeof(err)), 0);
	CHECK(memcmp(&s, &before, sizeof(s)) == 0);
	CHECK_STR(err, "untouched");

	/* The CPU limit follows the timeout unless set itself. */
	settings_defaults(&s);
	setenv("PYEXEC_TIMEOUT_MS", "5000", 1);
	CHECK_EQ(config_env_override(&s, err, sizeof(err)), 0);
	CHECK_EQ(s.timeout_ms, 5000);
	CHECK_EQ(s.cpu_ms, 0);
	if (anon_limits(&s, &id) == 0) {
		CHECK_EQ(id.timeout_ms, 5000);
		CHECK_EQ(id.cpu_ms, 5000);
	}
	setenv("PYEXEC_CPU_MS", "1500", 1);
	CHECK_EQ(config_env_override(&s, err, sizeof(err)), 0);
	CHECK_EQ(s.timeout_ms, 5000);
	CHECK_EQ(s.cpu_ms, 1500);
	if (anon_limits(&s, &id) == 0) {
		CHECK_EQ(id.timeout_ms, 5000);
		CHECK_EQ(id.cpu_ms, 1500);
	}
	config_env_clear();
}

void test_config_each_variable(void)
{
	config_env_clear();
	for (size_t i = 0; i < NENV; i++) {
		const long vals[] = { env_vars[i].min, env_vars[i].min + 1,
				      env_vars[i].max };

		for (size_t k = 0; k < sizeof(vals) / sizeof(vals[0]); k++) {
			struct settings s, want;
			char num[32], err[200] = "";

			/* The one field named changes, to the value; no
			 * other byte does. */
			settings_poison(&s);
			memcpy(&want, &s, sizeof(s));
			*env_field(&want, &env_vars[i]) = vals[k];
			snprintf(num, sizeof(num), "%ld", vals[k]);
			setenv(env_vars[i].name, num, 1);
			if (config_env_override(&s, err, sizeof(err)) != 0)
				unit_fail(__FILE__, __LINE__, "%s=%s refused: "
					  "%s", env_vars[i].name, num, err);
			else if (memcmp(&s, &want, sizeof(s)) != 0)
				unit_fail(__FILE__, __LINE__, "%s=%s: field is "
					  "%ld, or another field changed",
					  env_vars[i].name, num,
					  *env_field(&s, &env_vars[i]));
		}
		unsetenv(env_vars[i].name);
	}
}

void test_config_overrides(void)
{
	struct settings c;
	struct identity id;
	char err[200] = "";

	config_env_clear();
	settings_defaults(&c);
	setenv("PYEXEC_TIMEOUT_MS", "1", 1);
	setenv("PYEXEC_CPU_MS", "900000", 1);
	setenv("PYEXEC_MEMORY_MB", "32", 1);
	setenv("PYEXEC_OUTPUT_BYTES", "67108864", 1);
	setenv("PYEXEC_CODE_BYTES", "1", 1);
	setenv("PYEXEC_INPUT_BYTES", "2", 1);
	setenv("PYEXEC_BODY_BYTES", "16", 1);
	setenv("PYEXEC_BODY_TIMEOUT_MS", "250", 1);
	CHECK_EQ(config_env_override(&c, err, sizeof(err)), 0);
	CHECK_EQ(c.timeout_ms, 1);
	CHECK_EQ(c.cpu_ms, MAX_TIMEOUT_MS);
	CHECK_EQ(c.memory_mb, 32);
	CHECK_EQ(c.output_bytes, MAX_OUTPUT_BYTES);
	CHECK_EQ(c.code_bytes, 1);
	CHECK_EQ(c.input_bytes, 2);
	CHECK_EQ(c.body_bytes, 16);
	CHECK_EQ(c.body_timeout_ms, 250);
	/* A CPU limit above the timeout is cut to it where it is used. */
	if (anon_limits(&c, &id) == 0) {
		CHECK_EQ(id.timeout_ms, 1);
		CHECK_EQ(id.cpu_ms, 1);
		CHECK_EQ(id.memory_mb, 32);
	}

	setenv("PYEXEC_TIMEOUT_MS", "900000", 1);
	setenv("PYEXEC_MEMORY_MB", "65536", 1);
	setenv("PYEXEC_CODE_BYTES", "16777216", 1);
	setenv("PYEXEC_INPUT_BYTES", "67108864", 1);
	setenv("PYEXEC_BODY_BYTES", "134217728", 1);
	setenv("PYEXEC_BODY_TIMEOUT_MS", "900000", 1);
	CHECK_EQ(config_env_override(&c, err, sizeof(err)), 0);
	CHECK_EQ(c.timeout_ms, MAX_TIMEOUT_MS);
	CHECK_EQ(c.cpu_ms, MAX_TIMEOUT_MS);
	CHECK_EQ(c.memory_mb, MAX_MEMORY_MB);
	CHECK_EQ(c.output_bytes, MAX_OUTPUT_BYTES);
	CHECK_EQ(c.code_bytes, MAX_CODE_BYTES);
	CHECK_EQ(c.input_bytes, MAX_INPUT_BYTES);
	CHECK_EQ(c.body_bytes, MAX_BODY_BYTES);
	CHECK_EQ(c.body_timeout_ms, MAX_TIMEOUT_MS);
	CHECK_STR(err, "");
	config_env_clear();
}

void test_config_out_of_range(void)
{
	config_env_clear();
	for (size_t i = 0; i < NENV; i++) {
		char below[32], above[32], range[96];
		const char *bad[] = { below, above, "abc", "", "-5", "10ms",
				      " 5", "5 ", "+5", "0x10", "1e3",
				      "99999999999999999999" };

		snprintf(below, sizeof(below), "%ld", env_vars[i].min - 1);
		snprintf(above, sizeof(above), "%ld", env_vars[i].max + 1);
		snprintf(range, sizeof(range), "%s must be an integer from %ld "
			 "to %ld", env_vars[i].name, env_vars[i].min,
			 env_vars[i].max);
		for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			struct settings c, before;
			char err[200] = "";

			settings_defaults(&c);
			memcpy(&before, &c, sizeof(c));
			setenv(env_vars[i].name, bad[k], 1);
			if (config_env_override(&c, err, sizeof(err)) != -1) {
				unit_fail(__FILE__, __LINE__, "%s=\"%s\" "
					  "accepted", env_vars[i].name, bad[k]);
				continue;
			}
			CHECK_STR(err, range);
			/* The refused value is not half applied. */
			if (memcmp(&c, &before, sizeof(c)) != 0)
				unit_fail(__FILE__, __LINE__, "%s=\"%s\" "
					  "changed the settings",
					  env_vars[i].name, bad[k]);
		}
		unsetenv(env_vars[i].name);
	}

	/* A short error buffer is cut, not overrun. */
	{
		struct settings c;
		char err[12];

		settings_defaults(&c);
		memset(err, 'x', sizeof(err));
		setenv("PYEXEC_MEMORY_MB", "1", 1);
		CHECK_EQ(config_env_override(&c, err, 8), -1);
		CHECK_STR(err, "PYEXEC_");
		CHECK(err[8] == 'x');
	}
	config_env_clear();
}

/*
 * job.c
 */

/* The settings job_parse sees: the defaults, which the tests lower. */
static struct settings job_cfg(void)
{
	struct settings c;

	settings_defaults(&c);
	return c;
}

/* A job parsed from a NUL-terminated copy of body, as request.c makes. */
struct parsed {
	struct job j;
	struct http_error e;
	char *body;
	int rc;
};

static void jp(struct parsed *p, const char *body, size_t n,
	       const struct settings *cfg)
{
	memset(p, 0, sizeof(*p));
	p->body = malloc(n + 1);
	if (!p->body)
		exit(2);
	memcpy(p->body, body, n);
	p->body[n] = 0;
	p->rc = job_parse(&p->j, p->body, n, cfg, &p->e);
}

static void jp_done(struct parsed *p)
{
	job_release(&p->j);
	free(p->body);
}

static void job_refused_at(const char *file, int line, const char *body,
			   size_t n, const struct settings *cfg,
			   const char *substr)
{
	struct parsed p;

	jp(&p, body, n, cfg);
	if (p.rc != -1 || p.e.status != 400)
		unit_fail(file, line, "job_parse: rc %d status %d, expected -1 "
			  "and 400", p.rc, p.e.status);
	else if (!strstr(p.e.msg, substr))
		unit_fail(file, line, "message \"%s\" lacks \"%s\"", p.e.msg,
			  substr);
	else if (!p.e.type || strcmp(p.e.type, "BadRequest") != 0)
		unit_fail(file, line, "type %s",
			  p.e.type ? p.e.type : "(null)");
	jp_done(&p);
}

#define JOB_REFUSED(cfg, lit, substr)					\
	job_refused_at(__FILE__, __LINE__, S(lit), (cfg), (substr))

/* Parses lit and checks it was accepted; the caller then looks at p. */
static int job_ok_at(const char *file, int line, struct parsed *p,
		     const char *body, size_t n, const struct settings *cfg)
{
	jp(p, body, n, cfg);
	if (p->rc != 0) {
		unit_fail(file, line, "job_parse refused: %d %s", p->e.status,
			  p->e.msg);
		return 0;
	}
	return 1;
}

#define JOB_OK(p, cfg, lit)						\
	job_ok_at(__FILE__, __LINE__, (p), S(lit), (cfg))

/* {"code":"x","input_data":<depth levels>} */
static char *deep_job(int levels, size_t *n)
{
	size_t k = 0, cap = 64 + 2 * (size_t)levels;
	char *s = malloc(cap);

	if (!s)
		exit(2);
	memcpy(s, "{\"code\":\"x\",\"input_data\":", 25);
	k = 25;
	for (int i = 0; i < levels; i++)
		s[k++] = '[';
	for (int i = 0; i < levels; i++)
		s[k++] = ']';
	s[k++] = '}';
	*n = k;
	return s;
}

void test_job_refused_before_parse(void)
{
	struct settings cfg = job_cfg();
	struct parsed p;
	size_t n;
	char *s;

	JOB_REFUSED(&cfg, "{\"code\":\"\xff\"}",
		    "request body is not valid UTF-8");
	JOB_REFUSED(&cfg, "{\"code\":\"\xC0\xAF\"}", "not valid UTF-8");
	JOB_REFUSED(&cfg, "{\"code\":\"\xED\xA0\x80\"}", "not valid UTF-8");
	JOB_REFUSED(&cfg, "{\"code\":\"x\"}\xE2\x82", "not valid UTF-8");
	/* Not valid UTF-8 wins over not valid JSON. */
	JOB_REFUSED(&cfg, "\x80", "not valid UTF-8");

	/* The root object is level 1: 63 more levels pass, 64 do not. */
	s = deep_job(JSON_MAX_DEPTH - 1, &n);
	jp(&p, s, n, &cfg);
	CHECKF(p.rc == 0, "depth %d refused: %s", JSON_MAX_DEPTH, p.e.msg);
	CHECK_EQ(p.j.input_empty, 0);
	jp_done(&p);
	free(s);
	s = deep_job(JSON_MAX_DEPTH, &n);
	jp(&p, s, n, &cfg);
	CHECK_EQ(p.rc, -1);
	CHECK_EQ(p.e.status, 400);
	CHECK_STR(p.e.msg, "JSON nested deeper than 64 levels");
	jp_done(&p);
	free(s);

	JOB_REFUSED(&cfg, "{\"code\":\"a\\u0000b\"}",
		    "JSON strings must not contain \\u0000");
	JOB_REFUSED(&cfg, "{\"code\":\"x\",\"input_data\":{\"\\u0000\":1}}",
		    "\\u0000");
	JOB_REFUSED(&cfg, "{\"code\":\"x\",\"input_data\":[\"\\u0000\"]}",
		    "\\u0000");
	/* The escaped backslash is fine. */
	CHECK(JOB_OK(&p, &cfg, "{\"code\":\"'\\\\u0000'\"}"));
	CHECK_STR(p.j.code, "'\\u0000'");
	jp_done(&p);
}

void test_job_invalid_json(void)
{
	struct settings cfg = job_cfg();
	struct parsed p;

	JOB_REFUSED(&cfg, "", "request body is not valid JSON");
	JOB_REFUSED(&cfg, " ", "not valid JSON");
	JOB_REFUSED(&cfg, "{", "not valid JSON");
	JOB_REFUSED(&cfg, "{\"code\":\"x\",}", "not valid JSON");
	JOB_REFUSED(&cfg, "{\"code\":}", "not valid JSON");
	JOB_REFUSED(&cfg, "{code:\"x\"}", "not valid JSON");
	JOB_REFUSED(&cfg, "{'code':'x'}", "not valid JSON");
	JOB_REFUSED(&cfg, "{\"code\":\"x\"", "not valid JSON");
	/* What Python's json refuses is refused here too. */
	JOB_REFUSED(&cfg, "{\"code\":\"a\nb\"}",
		    "request body is not valid JSON");
	JOB_REFUSED(&cfg, "{\"code\":\"print(1)\0import os\"}",
		    "not valid JSON");
	JOB_REFUSED(&cfg, "{\"code\":\"x\",\"input_data\":[\"\t\"]}",
		    "not valid JSON");
	JOB_REFUSED(&cfg, "{\"code\":\"x\",\"input_data\":01}",
		    "not valid JSON");
	JOB_REFUSED(&cfg, "{\"code\":\"x\",\"input_data\":1.}",
		    "not valid JSON");
	/* Lone surrogate escapes cannot be decoded. */
	JOB_REFUSED(&cfg, "{\"code\":\"\\ud800\"}", "not valid JSON");
	JOB_REFUSED(&cfg, "{\"code\":\"\\udc00\"}", "not valid JSON");
	JOB_REFUSED(&cfg, "{\"code\":\"\\ud800\\u0041\"}", "not valid JSON");
	/* The length is the body's: the bytes after it are not parsed,
	 * whether a NUL follows (as request.c leaves it) or not. */
	jp(&p, "{\"code\":\"x\"}", 6, &cfg);
	CHECK_EQ(p.rc, -1);
	CHECK_CONTAINS(p.e.msg, "not valid JSON");
	jp_done(&p);
	{
		static const char body[] = "{\"code\":\"x\"}";
		struct job j;
		struct http_error e = { 0 };

		CHECK_EQ(job_parse(&j, body, 6, &cfg, &e), -1);
		CHECK_CONTAINS(e.msg, "not valid JSON");
		job_release(&j);
	}
}

void test_job_trailing_data(void)
{
	struct settings cfg = job_cfg();
	struct parsed p;

	JOB_REFUSED(&cfg, "{\"code\":\"x\"} garbage",
		    "trailing data after the JSON object (at byte 13)");
	JOB_REFUSED(&cfg, "{\"code\":\"x\"}}", "trailing data after the JSON "
		    "object (at byte 12)");
	JOB_REFUSED(&cfg, "{\"code\":\"x\"}{\"code\":\"y\"}", "(at byte 12)");
	/* Control bytes, which cJSON would skip as whitespace. */
	JOB_REFUSED(&cfg, "{\"code\":\"x\"}\0", "a byte outside strings");
	JOB_REFUSED(&cfg, "{\"code\":\"x\"}\n\f", "a byte outside strings");
	JOB_REFUSED(&cfg, "{\"code\":\"x\",\x01\"input_data\":1}",
		    "that JSON does not allow");
	JOB_REFUSED(&cfg, "\xef\xbb\xbf{\"code\":\"x\"}", "byte order mark");
	/* Whitespace around the object is not trailing data. */
	if (JOB_OK(&p, &cfg, " \t\r\n{\"code\":\"x\"} \t\r\n"))
		CHECK_STR(p.j.code, "x");
	jp_done(&p);
}

void test_job_root_not_object(void)
{
	struct settings cfg = job_cfg();

	JOB_REFUSED(&cfg, "[]", "request body must be a JSON object");
	JOB_REFUSED(&cfg, "[{\"code\":\"x\"}]", "must be a JSON object");
	JOB_REFUSED(&cfg, "\"code\"", "must be a JSON object");
	JOB_REFUSED(&cfg, "1", "must be a JSON object");
	JOB_REFUSED(&cfg, "-0.5e3", "must be a JSON object");
	JOB_REFUSED(&cfg, "null", "must be a JSON object");
	JOB_REFUSED(&cfg, "true", "must be a JSON object");
}

void test_job_fields(void)
{
	struct settings cfg = job_cfg();
	struct parsed p;
	char body[512], want[128];

	JOB_REFUSED(&cfg, "{\"code\":\"x\",\"foo\":1}",
		    "unknown field 'foo' (expected code, input_data, token)");
	JOB_REFUSED(&cfg, "{\"foo\":1,\"code\":\"x\"}", "unknown field 'foo'");
	JOB_REFUSED(&cfg, "{\"Code\":\"x\"}", "unknown field 'Code'");
	JOB_REFUSED(&cfg, "{\"code \":\"x\"}", "unknown field 'code '");
	JOB_REFUSED(&cfg, "{\"\":\"x\"}", "unknown field ''");
	/* A long name is cut to 64 bytes in the message. */
	memset(want, 'a', 64);
	memcpy(want + 64, "' (", 4);
	memcpy(body, "{\"code\":\"x\",\"", 13);
	memset(body + 13, 'a', 300);
	memcpy(body + 313, "\":1}", 4);
	jp(&p, body, 317, &cfg);
	CHECK_EQ(p.rc, -1);
	CHECK_CONTAINS(p.e.msg, want);
	jp_done(&p);

	JOB_REFUSED(&cfg, "{\"code\":\"a\",\"code\":\"b\"}",
		    "duplicate field 'code'");
	JOB_REFUSED(&cfg, "{\"code\":\"a\",\"input_data\":1,\"input_data\":2}",
		    "duplicate field 'input_data'");
	JOB_REFUSED(&cfg, "{\"token\":\"a\",\"code\":\"b\",\"token\":\"a\"}",
		    "duplicate field 'token'");

	JOB_REFUSED(&cfg, "{}", "field 'code' is required");
	JOB_REFUSED(&cfg, "{\"input_data\":{}}", "field 'code' is required");
	JOB_REFUSED(&cfg, "{\"token\":\"t\"}", "field 'code' is required");
}

void test_job_code(void)
{
	struct settings cfg = job_cfg();
	struct parsed p;

	JOB_REFUSED(&cfg, "{\"code\":1}", "field 'code' must be a string");
	JOB_REFUSED(&cfg, "{\"code\":null}", "field 'code' must be a string");
	JOB_REFUSED(&cfg, "{\"code\":{}}", "field 'code' must be a string");
	JOB_REFUSED(&cfg, "{\"code\":[\"x\"]}",
		    "field 'code' must be a string");
	JOB_REFUSED(&cfg, "{\"code\":true}", "field 'code' must be a string");

	if (JOB_OK(&p, &cfg, "{\"code\":\"print(1)\\n\"}")) {
		CHECK_STR(p.j.code, "print(1)\n");
		CHECK_EQ(p.j.code_len, 9);
		CHECK(p.j.root != NULL);
	}
	jp_done(&p);
	if (JOB_OK(&p, &cfg, "{\"code\":\"\\u00e9\\ud834\\udd1e\"}")) {
		CHECK_STR(p.j.code, "\xC3\xA9\xF0\x9D\x84\x9E");
		CHECK_EQ(p.j.code_len, 6);
	}
	jp_done(&p);

	/* The default limit, from the settings: 64 KiB pass, one more not. */
	{
		size_t n = DEFAULT_CODE_BYTES + 1;
		char *body = malloc(n + 12);

		if (!body)
			exit(2);
		memcpy(body, "{\"code\":\"", 9);
		memset(body + 9, 'x', n);
		memcpy(body + 9 + n, "\"}", 2);
		jp(&p, body, n + 11, &cfg);
		CHECK_EQ(p.rc, -1);
		CHECK_STR(p.e.msg, "field 'code' is 65537 bytes, over the "
			  "limit of 65536");
		jp_done(&p);
		memcpy(body + 9 + n - 1, "\"}", 2);
		jp(&p, body, n + 10, &cfg);
		CHECK_EQ(p.rc, 0);
		CHECK_EQ(p.j.code_len, DEFAULT_CODE_BYTES);
		jp_done(&p);
		free(body);
	}

	/* The limit is in bytes of UTF-8, after unescaping. */
	cfg.code_bytes = 5;
	if (JOB_OK(&p, &cfg, "{\"code\":\"12345\"}"))
		CHECK_EQ(p.j.code_len, 5);
	jp_done(&p);
	if (JOB_OK(&p, &cfg,
		   "{\"code\":\"\\u0031\\u0032\\u0033\\u0034\\u0035\"}"))
		CHECK_EQ(p.j.code_len, 5);
	jp_done(&p);
	JOB_REFUSED(&cfg, "{\"code\":\"123456\"}",
		    "field 'code' is 6 bytes, over the limit of 5");
	JOB_REFUSED(&cfg, "{\"code\":\"\xC3\xA9\xC3\xA9\xC3\xA9\"}",
		    "field 'code' is 6 bytes");
	JOB_REFUSED(&cfg, "{\"code\":\"\\u00e9\\u00e9\\u00e9\"}",
		    "field 'code' is 6 bytes");
	/* The type is checked before the length. */
	JOB_REFUSED(&cfg, "{\"code\":1234567}", "must be a string");
}

void test_job_token(void)
{
	struct settings cfg = job_cfg();
	struct parsed p;

	if (JOB_OK(&p, &cfg, "{\"code\":\"x\"}"))
		CHECK(p.j.token == NULL);
	jp_done(&p);
	if (JOB_OK(&p, &cfg, "{\"token\":\"abc\",\"code\":\"x\"}"))
		CHECK_STR(p.j.token, "abc");
	jp_done(&p);
	if (JOB_OK(&p, &cfg, "{\"code\":\"x\",\"token\":\"\"}"))
		CHECK_STR(p.j.token, "");
	jp_done(&p);
	JOB_REFUSED(&cfg, "{\"code\":\"x\",\"token\":1}",
		    "field 'token' must be a string");
	JOB_REFUSED(&cfg, "{\"code\":\"x\",\"token\":null}",
		    "field 'token' must be a string");
	JOB_REFUSED(&cfg, "{\"code\":\"x\",\"token\":[]}",
		    "field 'token' must be a string");
}

static void input_is_at(const char *file, int line, const char *body,
			size_t n, int empty, size_t len)
{
	struct settings cfg = job_cfg();
	struct parsed p;

	if (job_ok_at(file, line, &p, body, n, &cfg)) {
		if (p.j.input_empty != empty)
			unit_fail(file, line, "input_empty %d for %s",
				  p.j.input_empty, body);
		if (!empty && p.j.input_len != len)
			unit_fail(file, line, "input_len %zu for %s, expected "
				  "%zu", p.j.input_len, body, len);
	}
	jp_done(&p);
}

#define INPUT_IS(lit, empty, len)					\
	input_is_at(__FILE__, __LINE__, S(lit), (empty), (len))

void test_job_input(void)
{
	struct settings cfg = job_cfg();
	struct parsed p;

	INPUT_IS("{\"code\":\"x\"}", 1, 0);
	INPUT_IS("{\"code\":\"x\",\"input_data\":{}}", 1, 0);
	INPUT_IS("{\"code\":\"x\",\"input_data\":{ \n }}", 1, 0);
	INPUT_IS("{\"code\":\"x\",\"input_data\":[]}", 0, 2);
	INPUT_IS("{\"code\":\"x\",\"input_data\":{\"a\":1}}", 0, 7);
	INPUT_IS("{\"code\":\"x\",\"input_data\":{ \"a\" : 1 }}", 0, 11);
	INPUT_IS("{\"input_data\" : [1, \"],\\\"\"] , \"code\":\"x\"}", 0, 11);
	INPUT_IS("{\"code\":\"x\",\"input_data\":null}", 0, 4);
	INPUT_IS("{\"code\":\"x\",\"input_data\":0}", 0, 1);
	INPUT_IS("{\"code\":\"x\",\"input_data\":\"\"}", 0, 2);
	INPUT_IS("{\"code\":\"x\",\"input_data\":false}", 0, 5);

	/* The limit applies to the bytes received, not a re-serialisation. */
	cfg.input_bytes = 10;
	if (JOB_OK(&p, &cfg, "{\"code\":\"x\",\"input_data\":\"12345678\"}"))
		CHECK_EQ(p.j.input_len, 10);
	jp_done(&p);
	if (JOB_OK(&p, &cfg, "{\"code\":\"x\",\"input_data\":[ 1, 2, 3]}")) {
		CHECK_EQ(p.j.input_len, 10);
		CHECK(memcmp(p.j.input, "[ 1, 2, 3]", 10) == 0);
	}
	jp_done(&p);
	JOB_REFUSED(&cfg, "{\"code\":\"x\",\"input_data\":[ 1, 2, 3, 4 ]}",
		    "field 'input_data' is 14 bytes, over the limit of 10");
	JOB_REFUSED(&cfg, "{\"code\":\"x\",\"input_data\":[1,2,3,4,5]}",
		    "field 'input_data' is 11 bytes, over the limit of 10");
	/* 1e1 and 10.0E+00 are short as text, 10 or longer re-printed. */
	JOB_REFUSED(&cfg, "{\"code\":\"x\",\"input_data\":100000000000}",
		    "field 'input_data' is 12 bytes");
	if (JOB_OK(&p, &cfg, "{\"code\":\"x\",\"input_data\":1e300}"))
		CHECK_EQ(p.j.input_len, 5);
	jp_done(&p);
	JOB_REFUSED(&cfg, "{\"code\":\"x\",\"input_data\":\"123456789\"}",
		    "field 'input_data' is 11 bytes");
	/* {} is empty whatever the limit. */
	cfg.input_bytes = 2;
	if (JOB_OK(&p, &cfg, "{\"code\":\"x\",\"input_data\":{}}"))
		CHECK_EQ(p.j.input_empty, 1);
	jp_done(&p);
	JOB_REFUSED(&cfg, "{\"code\":\"x\",\"input_data\":{\"a\":1}}",
		    "field 'input_data' is 7 bytes");
}

/*
 * http.c
 */

void test_http_fail_fields(void)
{
	static const struct {
		int status;
		const char *type;
	} cases[] = {
		{ 400, "BadRequest" }, { 405, "MethodNotAllowed" },
		{ 408, "RequestTimeout" }, { 411, "LengthRequired" },
		{ 413, "PayloadTooLarge" }, { 415, "UnsupportedMediaType" },
		{ 500, "InternalError" }, { 503, "ServiceUnavailable" },
		{ 200, "Error" }, { 418, "Error" }, { 0, "Error" },
		{ -1, "Error" },
	};
	struct http_error e;
	char longer[400];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&e, 0, sizeof(e));
		CHECK_EQ(http_fail(&e, cases[i].status, "%d-%s", 7, "x"), -1);
		CHECK_EQ(e.status, cases[i].status);
		CHECK_STR(e.type, cases[i].type);
		CHECK_STR(e.msg, "7-x");
	}
	/* The message is cut to the buffer and still terminated. */
	memset(longer, 'm', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = 0;
	memset(&e, 0x55, sizeof(e));
	CHECK_EQ(http_fail(&e, 400, "%s", longer), -1);
	CHECK_EQ(strlen(e.msg), sizeof(e.msg) - 1);
	CHECK(memcmp(e.msg, longer, sizeof(e.msg) - 1) == 0);
	CHECK_EQ(http_fail(&e, 400, "plain"), -1);
	CHECK_STR(e.msg, "plain");
}

void test_http_reason_names(void)
{
	CHECK_STR(http_reason(200), "OK");
	CHECK_STR(http_reason(400), "Bad Request");
	CHECK_STR(http_reason(405), "Method Not Allowed");
	CHECK_STR(http_reason(408), "Request Timeout");
	CHECK_STR(http_reason(411), "Length Required");
	CHECK_STR(http_reason(413), "Content Too Large");
	CHECK_STR(http_reason(415), "Unsupported Media Type");
	CHECK_STR(http_reason(500), "Internal Server Error");
	CHECK_STR(http_reason(503), "Service Unavailable");
	CHECK_STR(http_reason(404), "Error");
	CHECK_STR(http_reason(0), "Error");
	CHECK_STR(http_reason(-400), "Error");
}

/*
 * cidr.c
 */

static void cidr_ok_at(const char *file, int line, const char *list)
{
	char err[256] = "";

	if (cidr_list_check(list, err, sizeof(err)) != 0)
		unit_fail(file, line, "cidr_list_check(\"%s\"): %s", list, err);
}
#define cidr_ok(l) cidr_ok_at(__FILE__, __LINE__, (l))

static void cidr_bad_at(const char *file, int line, const char *list,
			const char *want)
{
	char err[256] = "";

	if (cidr_list_check(list, err, sizeof(err)) != -1)
		unit_fail(file, line, "cidr_list_check(\"%s\") accepted it",
			  list);
	else
		unit_check_contains(file, line, list, err, want);
}
#define cidr_bad(l, w) cidr_bad_at(__FILE__, __LINE__, (l), (w))

void test_cidr_check(void)
{
	char big[CIDR_LIST_MAX + 16];
	size_t n = 0;

	cidr_ok("");
	cidr_ok("   ");
	cidr_ok("127.0.0.1/8, ::1, 2001:db8::/32");
	cidr_ok("10.0.0.1");
	cidr_ok(" 10.0.0.0/8 ,\t192.168.0.0/16 ");
	cidr_ok("0.0.0.0/0");
	cidr_ok("::/0");
	cidr_ok("::ffff:10.0.0.0/104");
	cidr_ok("10.0.0.0/32,fe80::/10");
	cidr_bad("10.0.0.0/33", "'10.0.0.0/33'");
	cidr_bad("::1/129", "'::1/129'");
	cidr_bad("10.0.0.0/", "not an address");
	cidr_bad("10.0.0.0/8x", "not an address");
	cidr_bad("10.0.0.0/-1", "not an address");
	cidr_bad("10.0.0.0/+8", "not an address");
	cidr_bad("10.0.0.256", "'10.0.0.256'");
	cidr_bad("localhost", "'localhost'");
	cidr_bad("10.0.0.1 10.0.0.2", "not an address");
	cidr_bad("10.0.0.1,,10.0.0.2", "empty item");
	cidr_bad("10.0.0.1,", "empty item");
	cidr_bad(",10.0.0.1", "empty item");
	cidr_bad("10.0.0.1, ", "empty item");
	cidr_bad("fe80::1%eth0", "not an address");
	cidr_bad("[::1]", "not an address");
	CHECK_EQ(cidr_list_check(NULL, NULL, 0), -1);
	CHECK_EQ(cidr_list_check("x", NULL, 0), -1);
	/* valid items, beyond the bound in total */
	while (n < CIDR_LIST_MAX + 1)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s10.0.0.1",
				      n ? "," : "");
	cidr_bad(big, "too long");
	CHECK_EQ(cidr_list_match(big, "10.0.0.1"), 0);
}

void test_cidr_match(void)
{
	const char *l = "127.0.0.1/8, ::1, 2001:db8::/32";

	CHECK_EQ(cidr_list_match(l, "127.0.0.1"), 1);
	CHECK_EQ(cidr_list_match(l, "127.255.3.4"), 1);
	CHECK_EQ(cidr_list_match(l, "128.0.0.1"), 0);
	CHECK_EQ(cidr_list_match(l, "::ffff:127.0.0.9"), 1);
	CHECK_EQ(cidr_list_match(l, "::ffff:128.0.0.1"), 0);
	CHECK_EQ(cidr_list_match(l, "::1"), 1);
	CHECK_EQ(cidr_list_match(l, "::2"), 0);
	CHECK_EQ(cidr_list_match(l, "2001:db8:ffff::1"), 1);
	CHECK_EQ(cidr_list_match(l, "2001:db9::1"), 0);
	/* the IPv4 address 0.0.0.1 is not ::1 */
	CHECK_EQ(cidr_list_match(l, "0.0.0.1"), 0);
	/* prefixes that do not fall on a byte */
	CHECK_EQ(cidr_list_match("10.0.0.0/9", "10.127.0.1"), 1);
	CHECK_EQ(cidr_list_match("10.0.0.0/9", "10.128.0.1"), 0);
	CHECK_EQ(cidr_list_match("192.168.1.4/30", "192.168.1.7"), 1);
	CHECK_EQ(cidr_list_match("192.168.1.4/30", "192.168.1.8"), 0);
	CHECK_EQ(cidr_list_match("192.168.1.4/30", "192.168.1.3"), 0);
	CHECK_EQ(cidr_list_match("fe80::/10", "febf::1"), 1);
	CHECK_EQ(cidr_list_match("fe80::/10", "fec0::1"), 0);
	/* a plain address is one host */
	CHECK_EQ(cidr_list_match("10.0.0.1", "10.0.0.1"), 1);
	CHECK_EQ(cidr_list_match("10.0.0.1", "10.0.0.2"), 0);
	/* everything, per family */
	CHECK_EQ(cidr_list_match("0.0.0.0/0", "203.0.113.9"), 1);
	CHECK_EQ(cidr_list_match("0.0.0.0/0", "2001:db8::1"), 0);
	CHECK_EQ(cidr_list_match("::/0", "2001:db8::1"), 1);
	CHECK_EQ(cidr_list_match("::/0", "203.0.113.9"), 1);
	/* an IPv4-mapped block counts in IPv6 bits */
	CHECK_EQ(cidr_list_match("::ffff:10.0.0.0/104", "10.9.9.9"), 1);
	CHECK_EQ(cidr_list_match("::ffff:10.0.0.0/104", "11.0.0.1"), 0);
	/* nothing matches an empty list, or one with a bad item */
	CHECK_EQ(cidr_list_match("", "127.0.0.1"), 0);
	CHECK_EQ(cidr_list_match("127.0.0.1, nonsense", "127.0.0.1"), 0);
	CHECK_EQ(cidr_list_match("127.0.0.1,", "127.0.0.1"), 0);
	/* addresses that do not parse */
	CHECK_EQ(cidr_list_match(l, "unknown"), 0);
	CHECK_EQ(cidr_list_match(l, ""), 0);
	CHECK_EQ(cidr_list_match(l, NULL), 0);
	CHECK_EQ(cidr_list_match(l, "127.0.0.1/8"), 0);
	CHECK_EQ(cidr_list_match(l, " 127.0.0.1"), 0);
	CHECK_EQ(cidr_list_match(NULL, "127.0.0.1"), 0);
}

/*
 * client.c
 */

static void client_is_at(const char *file, int line, const char *remote,
			 const char *trusted, const char *fwd, const char *xff,
			 const char *want)
{
	char out[CLIENT_ADDR_MAX];

	client_address(remote, trusted, fwd, xff, out);
	unit_check_str(file, line, remote ? remote : "(null)", out, want);
}
#define CLIENT_IS(r, t, f, x, w) client_is_at(__FILE__, __LINE__, r, t, f, x, w)

void test_client_address(void)
{
	const char *px = "10.0.0.0/8, ::1";

	/* no proxy trusted: REMOTE_ADDR, canonical, whatever the headers */
	CLIENT_IS("203.0.113.7", "", NULL, "198.51.100.1", "203.0.113.7");
	CLIENT_IS("::ffff:203.0.113.7", "", NULL, NULL, "203.0.113.7");
	CLIENT_IS("2001:DB8:0:0::1", "", NULL, NULL, "2001:db8::1");
	CLIENT_IS(NULL, "", NULL, NULL, "unknown");
	CLIENT_IS("", px, NULL, NULL, "unknown");
	CLIENT_IS("not-an-address", px, NULL, "1.2.3.4", "unknown");
	/* REMOTE_ADDR not a trusted proxy: headers ignored */
	CLIENT_IS("203.0.113.7", px, "for=1.2.3.4", "1.2.3.4", "203.0.113.7");
	/* a trusted proxy: the right-most untrusted hop */
	CLIENT_IS("10.1.1.1", px, NULL, "198.51.100.9", "198.51.100.9");
	CLIENT_IS("10.1.1.1", px, NULL, "1.1.1.1, 198.51.100.9, 10.2.2.2",
		  "198.51.100.9");
	CLIENT_IS("::1", px, NULL, " 2001:db8::5 ", "2001:db8::5");
	CLIENT_IS("10.1.1.1", px, NULL, "[2001:db8::5]:443", "2001:db8::5");
	CLIENT_IS("10.1.1.1", px, NULL, "198.51.100.9:5000", "198.51.100.9");
	CLIENT_IS("::ffff:10.1.1.1", px, NULL, "198.51.100.9", "198.51.100.9");
	/* every hop trusted: the left-most */
	CLIENT_IS("10.1.1.1", px, NULL, "10.3.3.3, 10.2.2.2", "10.3.3.3");
	/* a hop that is not an address: the proxy itself, never a forgery */
	CLIENT_IS("10.1.1.1", px, NULL, "1.2.3.4, garbage", "10.1.1.1");
	CLIENT_IS("10.1.1.1", px, NULL, "1.2.3.4,", "10.1.1.1");
	CLIENT_IS("10.1.1.1", px, NULL, "", "10.1.1.1");
	/* Forwarded (RFC 7239) first, for= of each element */
	CLIENT_IS("10.1.1.1", px, "for=198.51.100.9;proto=https;by=10.1.1.1",
		  "1.2.3.4", "198.51.100.9");
	CLIENT_IS("10.1.1.1", px, "for=1.1.1.1, For=\"[2001:db8:cafe::17]:4711\"",
		  NULL, "2001:db8:cafe::17");
	CLIENT_IS("10.1.1.1", px, "for=1.1.1.1, for=10.9.9.9", NULL, "1.1.1.1");
	CLIENT_IS("10.1.1.1", px, "for=unknown", NULL, "10.1.1.1");
	CLIENT_IS("10.1.1.1", px, "proto=http", NULL, "10.1.1.1");
	CLIENT_IS("10.1.1.1", px, "for=\"_hidden\", for=1.2.3.4", NULL,
		  "1.2.3.4");
}

static void group_is_at(const char *file, int line, const char *addr,
			int bits, const char *want)
{
	char out[CLIENT_ADDR_MAX + 8];

	client_group(addr, bits, out, sizeof(out));
	unit_check_str(file, line, addr, out, want);
}
#define GROUP_IS(a, b, w) group_is_at(__FILE__, __LINE__, a, b, w)

void test_client_group(void)
{
	GROUP_IS("203.0.113.7", 64, "203.0.113.7");
	GROUP_IS("2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64");
	GROUP_IS("2001:db8:1:2:ffff::1", 64, "2001:db8:1:2::/64");
	GROUP_IS("2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::/48");
	GROUP_IS("2001:db8:1:ff:3:4:5:6", 60, "2001:db8:1:f0::/60");
	GROUP_IS("2001:db8::6", 128, "2001:db8::6");
	GROUP_IS("unknown", 64, "unknown");
}

/*
 * sql/settings.c: the identity settings
 */

static int set_ok(const char *key, const char *value)
{
	char err[256] = "";

	return setting_validate(setting_find(key), value, err, sizeof(err)) == 0;
}

void test_settings_identity(void)
{
	struct settings s;
	char err[256] = "";
	char big[1100];

	settings_defaults(&s);
	CHECK_EQ(s.anon_ipv6_prefix, 64);
	CHECK_EQ(s.max_concurrent_per_identity, 0);
	CHECK_STR(s.trusted_proxies, "");
	/* the cap in force: half the host's, at least 1, or the setting */
	s.max_concurrent = 8;
	CHECK_EQ(settings_identity_cap(&s), 4);
	s.max_concurrent = 1;
	CHECK_EQ(settings_identity_cap(&s), 1);
	s.max_concurrent_per_identity = 3;
	CHECK_EQ(settings_identity_cap(&s), 3);

	CHECK(set_ok("trusted_proxies", ""));
	CHECK(set_ok("trusted_proxies", "127.0.0.1, ::1, 10.0.0.0/8"));
	CHECK(!set_ok("trusted_proxies", "10.0.0.0/33"));
	CHECK(!set_ok("trusted_proxies", "proxy.example"));
	CHECK(!set_ok("trusted_proxies", "10.0.0.1,"));
	CHECK_EQ(setting_validate(setting_find("trusted_proxies"), "x", err,
				  sizeof(err)), -1);
	CHECK_CONTAINS(err, "trusted_proxies");
	CHECK_CONTAINS(err, "'x'");
	/* longer than the field holds: refused, never cut */
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "10.0.0.1", 8);
	CHECK(!set_ok("trusted_proxies", big));
	CHECK_EQ(settings_apply(&s, "trusted_proxies", big), -1);
	CHECK_EQ(settings_apply(&s, "trusted_proxies", "::1, 10.0.0.0/8"), 0);
	CHECK_STR(s.trusted_proxies, "::1, 10.0.0.0/8");

	CHECK(set_ok("anon_ipv6_prefix", "32"));
	CHECK(set_ok("anon_ipv6_prefix", "128"));
	CHECK(!set_ok("anon_ipv6_prefix", "31"));
	CHECK(!set_ok("anon_ipv6_prefix", "129"));
	CHECK(set_ok("max_concurrent_per_identity", "0"));
	CHECK(!set_ok("max_concurrent_per_identity", "-1"));
	CHECK(!set_ok("max_concurrent_per_identity", "4097"));
}
