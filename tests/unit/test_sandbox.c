/* SPDX-License-Identifier: MIT */
/* test_sandbox.c: unit tests for sandbox/'s pure parts (allowlist, records). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include "unit.h"
#include "../../cgi/limits.h"
#include "../../sandbox/allowlist.h"
#include "../../sandbox/profile.h"
#include "../../sandbox/internal.h"
#include "../../cgi/banned.h"

/* Heap copies of exact size (unit.h). */
#define exact unit_exact

/*
 * allowlist.c
 */

static int allows(const char *name, size_t len)
{
	char *p = exact(name, len);
	int r = allowlist_allows(profile_seed(), p, len);

	free(p);
	return r;
}

static int allows_loaded(const char *name, size_t len)
{
	char *p = exact(name, len);
	int r = allowlist_allows_loaded(profile_seed(), p, len);

	free(p);
	return r;
}

static const char *const top[] = {
	"collections", "datetime", "functools", "itertools", "json", "math",
	"random", "re", "statistics", "string",
};
#define NTOP (sizeof(top) / sizeof(top[0]))

static const char *const lazy[] = {
	"_strptime", "time", "fractions", "decimal", "collections.abc",
	"heapq", "copy", "types", "weakref", "typing", "json.decoder",
	"json.encoder", "json.scanner", "copyreg", "unicodedata", "warnings",
};
#define NLAZY (sizeof(lazy) / sizeof(lazy[0]))

void test_allowlist_exact(void)
{
	const char *names = allowlist_names(profile_seed());

	for (size_t i = 0; i < NTOP; i++) {
		CHECKF(allows(top[i], strlen(top[i])) == 1, "%s refused",
		       top[i]);
		CHECK_CONTAINS(names, top[i]);
	}
	CHECK_STR(names, "collections, datetime, functools, itertools, json, "
		  "math, random, re, statistics, string");
	CHECK_EQ(allows(S("json")), 1);
	CHECK_EQ(allows(S("jsonx")), 0);
	CHECK_EQ(allows("jsonx", 4), 1);	/* only len bytes count */
	CHECK_EQ(allows(S("js")), 0);
	CHECK_EQ(allows(S("JSON")), 0);
	CHECK_EQ(allows(S("json ")), 0);
	CHECK_EQ(allows(S("os")), 0);
	CHECK_EQ(allows(S("sys")), 0);
	CHECK_EQ(allows(S("r")), 0);
	CHECK_EQ(allows(S("ree")), 0);
	CHECK_EQ(allows(S("")), 0);
	CHECK_EQ(allows(S("mathx")), 0);
	CHECK_EQ(allows(S("json.decoder")), 0);
	/* Lazy dependencies are not importable by name. */
	for (size_t i = 0; i < NLAZY; i++)
		CHECKF(allows(lazy[i], strlen(lazy[i])) == 0, "%s allowed",
		       lazy[i]);
}

void test_allowlist_loaded(void)
{
	for (size_t i = 0; i < NTOP; i++)
		CHECKF(allows_loaded(top[i], strlen(top[i])) == 1,
		       "%s refused", top[i]);
	for (size_t i = 0; i < NLAZY; i++)
		CHECKF(allows_loaded(lazy[i], strlen(lazy[i])) == 1,
		       "%s refused", lazy[i]);
	/* Not preloaded any more: its import fails quietly (audit.c). */
	CHECK_EQ(allows_loaded(S("linecache")), 0);
	CHECK_EQ(allows_loaded(S("_strptime")), 1);
	CHECK_EQ(allows_loaded(S("_strptimex")), 0);
	CHECK_EQ(allows_loaded(S("_strptim")), 0);
	CHECK_EQ(allows_loaded("_strptimex", 9), 1);
	CHECK_EQ(allows_loaded(S("json.decoderx")), 0);
	CHECK_EQ(allows_loaded(S("json.")), 0);
	CHECK_EQ(allows_loaded(S("collections.abcd")), 0);
	CHECK_EQ(allows_loaded(S("os")), 0);
	CHECK_EQ(allows_loaded(S("os.path")), 0);
	CHECK_EQ(allows_loaded(S("importlib")), 0);
	CHECK_EQ(allows_loaded(S("_io")), 0);
	CHECK_EQ(allows_loaded(S("")), 0);
}

/*
 * profile.c
 */

static uint64_t bit(const char *name)
{
	int b = profile_bit(name, strlen(name));

	CHECKF(b >= 0, "%s is not vetted", name);
	return b < 0 ? 0 : (uint64_t)1 << b;
}

void test_profile_parse(void)
{
	static const char *const compute[] = {
		"typing", "heapq", "bisect", "copy", "operator", "array",
		"cmath", "fractions", "decimal", "hashlib", "textwrap",
		"unicodedata", "enum", "dataclasses", "numbers", "abc",
		"string", "base64", "difflib", "pprint", "calendar", "sys",
	};
	uint64_t m = 0, seed = 0;
	char err[256], text[PROFILE_TEXT_MAX + 1];

	for (size_t i = 0; i < NTOP; i++)
		seed |= bit(top[i]);
	CHECK(profile_seed() == seed);
	CHECK(profile_parse("seed", &m, err, sizeof(err)) == 0 && m == seed);
	for (size_t i = 0; i < sizeof(compute) / sizeof(compute[0]); i++)
		CHECKF(profile_compute() & bit(compute[i]), "%s not in compute",
		       compute[i]);
	CHECK((profile_compute() & seed) == seed);
	CHECK(profile_parse("compute", &m, err, sizeof(err)) == 0 &&
	      m == profile_compute());
	CHECK(profile_parse(" typing ,math", &m, err, sizeof(err)) == 0);
	CHECK(m == (bit("typing") | bit("math")));
	profile_describe(m, text, sizeof(text));
	CHECK_STR(text, "math,typing");
	profile_describe(seed, text, sizeof(text));
	CHECK_STR(text, "seed");
	profile_describe(profile_compute(), text, sizeof(text));
	CHECK_STR(text, "compute");
	/* Every vetted name, joined, fits the text bound and parses back. */
	profile_names(profile_compute(), text, sizeof(text));
	for (char *p = text; (p = strstr(p, ", ")) != NULL;)
		memmove(p + 1, p + 2, strlen(p + 2) + 1);
	CHECK(profile_parse(text, &m, err, sizeof(err)) == 0);
	CHECK(m == profile_compute());
}

void test_profile_refused(void)
{
	static const char *const bad[][2] = {
		{ "os", "module 'os' refused: files and processes" },
		{ "math,socket", "module 'socket' refused: network" },
		{ "subprocess", "module 'subprocess' refused: processes" },
		{ "types", "module 'types' refused: code and function" },
		{ "nosuch", "module 'nosuch' refused: not vetted" },
		{ "", "empty module name" },
		{ "math,,re", "empty module name" },
		{ "seed,compute", "module 'seed' refused" },
	};
	char err[256];
	uint64_t m = 42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		CHECKF(profile_parse(bad[i][0], &m, err, sizeof(err)) == -1,
		       "'%s' accepted", bad[i][0]);
		CHECK_CONTAINS(err, bad[i][1]);
		CHECK(m == 42);
	}
}

void test_allowlist_compute(void)
{
	uint64_t c = profile_compute();

	CHECK_EQ(allowlist_allows(c, S("typing")), 1);
	CHECK_EQ(allowlist_allows(profile_seed(), S("typing")), 0);
	CHECK_EQ(allowlist_allows(c, S("heapq")), 1);
	CHECK_EQ(allowlist_allows(c, S("types")), 0);
	CHECK_EQ(allowlist_allows(c, S("os")), 0);
	CHECK_EQ(allowlist_allows(bit("heapq"), S("math")), 0);
	/* A lazy dependency is only one for the modules in the profile. */
	CHECK_EQ(allowlist_allows_loaded(bit("math"), S("_strptime")), 0);
	CHECK_EQ(allowlist_allows_loaded(bit("datetime"), S("_strptime")), 1);
	CHECK_STR(allowlist_names(bit("math") | bit("heapq")), "heapq, math");
}

static int log_loads(const char *name, void *arg)
{
	char *log = arg;
	size_t n = strlen(log);

	snprintf(log + n, 512 - n, "%s%s", n ? " " : "", name);
	return 0;
}

/* The codecs the source names, each alone (idna loads re, cp437 builds a
 * table: loading them all would cost ~40 ms); never for a hello-world. */
void test_allowlist_codecs(void)
{
	static const char *const uses[][2] = {
		{ "print('hello')", "" },
		{ "print('\\u00e9'.encode('utf-16-le'))",
		  "encodings.utf_16 encodings.utf_16_le" },
		{ "b.decode('CP1252')", "encodings.cp1252" },
		{ "bytes(s, 'Latin-1')", "encodings.latin_1" },
		{ "x = 'UTF_32'", "encodings.utf_32" },
		{ "s.encode('idna')", "encodings.idna" },
		{ "s.encode(\"iso-8859-15\")",
		  "encodings.latin_1 encodings.iso8859_15" },
		{ "s.encode('utf-8')", "" },
		{ "s.encode('u' 'tf' '-7')", "encodings.utf_7" },
	};
	char log[512];

	for (size_t i = 0; i < sizeof(uses) / sizeof(uses[0]); i++) {
		log[0] = 0;
		CHECK_EQ(allowlist_preload(profile_seed(), uses[i][0],
					   strlen(uses[i][0]), log_loads, log), 0);
		CHECK_STR(log, uses[i][1]);
	}
}

/* The callback's log: the names it got, space-separated. */
struct loads {
	char log[1024];
	size_t len;
	int calls;
	int fail_at;	/* return rc on this call (1-based), 0: never */
	int rc;
};

static int record(const char *name, void *arg)
{
	struct loads *l = arg;
	size_t n = strlen(name);

	l->calls++;
	if (l->len + n + 2 < sizeof(l->log)) {
		if (l->len)
			l->log[l->len++] = ' ';
		memcpy(l->log + l->len, name, n);
		l->len += n;
		l->log[l->len] = 0;
	}
	return l->calls == l->fail_at ? l->rc : 0;
}

static void preload_is_at(const char *file, int line, const char *src,
			  size_t n, const char *want)
{
	struct loads l = { .log = "" };
	char *p = exact(src, n);
	int rc = allowlist_preload(profile_seed(), p, n, record, &l);

	if (rc != 0)
		unit_fail(file, line, "allowlist_preload returned %d", rc);
	if (strcmp(l.log, want) != 0)
		unit_fail(file, line, "for \"%.*s\" loaded \"%s\", expected "
			  "\"%s\"", (int)n, src, l.log, want);
	free(p);
}

#define PRELOAD_IS(lit, want)						\
	preload_is_at(__FILE__, __LINE__, S(lit), (want))

#define JSON_ALL "json json.decoder json.encoder json.scanner"
#define RE_ALL "re copyreg unicodedata warnings"
#define COLLECTIONS_ALL "collections collections.abc heapq"
#define STATISTICS_ALL "statistics fractions decimal " COLLECTIONS_ALL

void test_allowlist_preload_words(void)
{
	PRELOAD_IS("", "");
	PRELOAD_IS("print('hello')", "");
	PRELOAD_IS("import json", JSON_ALL);
	PRELOAD_IS("json", JSON_ALL);
	PRELOAD_IS("x = jsonish", "");
	PRELOAD_IS("x = _json", "");
	PRELOAD_IS("json3 = 1", "");
	PRELOAD_IS("3json", "");
	PRELOAD_IS("x = 3json", "");
	PRELOAD_IS("3x json", JSON_ALL);
	PRELOAD_IS("JSON = 1", "");
	PRELOAD_IS("__import__('re')", RE_ALL);
	PRELOAD_IS("__import__(\"json\").loads", JSON_ALL);
	PRELOAD_IS("x.json", JSON_ALL);
	PRELOAD_IS("x=1;json", JSON_ALL);
	/* Lexical: it errs towards loading. */
	PRELOAD_IS("# json\n", JSON_ALL);
	PRELOAD_IS("import os, sys, subprocess", "");
	PRELOAD_IS("are = string_ = mathematics", "");
	PRELOAD_IS("from datetime import datetime",
		   "datetime time");
	/* The costly lazy modules only when a word asks for them. */
	PRELOAD_IS("import datetime\ndatetime.datetime.strptime(s, f)",
		   "datetime _strptime time");
	PRELOAD_IS("import datetime\nx = _strptime", "datetime time");
	PRELOAD_IS("import collections\nd.copy()", COLLECTIONS_ALL " copy");
	PRELOAD_IS("from functools import singledispatchmethod",
		   "functools types weakref typing");
	PRELOAD_IS("import time", "");
	/* statistics brings collections, whose lazy imports it triggers. */
	PRELOAD_IS("import statistics", STATISTICS_ALL);
	PRELOAD_IS("import re, json", RE_ALL " " JSON_ALL);
	PRELOAD_IS("import json, re", JSON_ALL " " RE_ALL);
	PRELOAD_IS("collections functools itertools math random string",
		   COLLECTIONS_ALL " functools types weakref itertools "
		   "math random string");
	/* Only n bytes are read: "import js". */
	preload_is_at(__FILE__, __LINE__, "import json", 9, "");
	preload_is_at(__FILE__, __LINE__, "import json", 11, JSON_ALL);
	/* A NUL is not part of a word. */
	PRELOAD_IS("x\0json", JSON_ALL);
}

void test_allowlist_preload_lazy_once(void)
{
	PRELOAD_IS("import json, json\njson.dumps(json)", JSON_ALL);
	PRELOAD_IS("import datetime\nimport json\ndatetime.datetime",
		   "datetime time " JSON_ALL);
	/* collections once, whether named before or after statistics. */
	PRELOAD_IS("import collections, statistics",
		   COLLECTIONS_ALL " statistics fractions decimal");
	PRELOAD_IS("import statistics, collections", STATISTICS_ALL);
	PRELOAD_IS("import re\nre.compile(r'x'); re; re", RE_ALL);
	/* Naming a lazy dependency loads nothing by itself. */
	PRELOAD_IS("_strptime fractions heapq copyreg", "");
	/* Every module of the list at once, each exactly once. */
	PRELOAD_IS("string statistics re random math json itertools functools "
		   "datetime collections string statistics",
		   "string " STATISTICS_ALL " " RE_ALL " random math "
		   JSON_ALL " itertools functools types weakref "
		   "datetime time");
}

static void preload_stops_at(const char *file, int line, const char *src,
			     int fail_at, int rc, const char *want)
{
	struct loads l = { .log = "", .fail_at = fail_at, .rc = rc };
	int got = allowlist_preload(profile_seed(), src, strlen(src), record, &l);

	if (got != rc)
		unit_fail(file, line, "returned %d, expected %d", got, rc);
	if (l.calls != fail_at)
		unit_fail(file, line, "%d calls, expected %d", l.calls,
			  fail_at);
	if (strcmp(l.log, want) != 0)
		unit_fail(file, line, "loaded \"%s\", expected \"%s\"", l.log,
			  want);
}

void test_allowlist_preload_stops(void)
{
	preload_stops_at(__FILE__, __LINE__, "import json", 1, 7, "json");
	preload_stops_at(__FILE__, __LINE__, "import json", 2, -1,
			 "json json.decoder");
	preload_stops_at(__FILE__, __LINE__, "import json, math", 4, 3,
			 JSON_ALL);
	preload_stops_at(__FILE__, __LINE__, "import json, math", 5, 9,
			 JSON_ALL " math");
	preload_stops_at(__FILE__, __LINE__, "import re, json", 1, 1, "re");
	/* A failure before, or inside, a used module's loading ends
	 * everything. */
	preload_stops_at(__FILE__, __LINE__, "import statistics, json", 2, 8,
			 "statistics fractions");
	preload_stops_at(__FILE__, __LINE__, "import statistics, json", 4, 5,
			 "statistics fractions decimal collections");
	preload_stops_at(__FILE__, __LINE__, "import statistics, json", 6, 6,
			 STATISTICS_ALL);
}

/*
 * result.c
 */

#define HDR sizeof(struct rec_hdr)

/* Appends one record to buf at off; returns the new end. The payload is
 * written as given, whatever the header claims. */
static size_t put_rec(char *buf, size_t off, uint32_t magic, uint32_t kind,
		      uint64_t exec_ns, uint32_t detail, uint32_t extra,
		      uint32_t type_len, uint32_t msg_len, const char *payload,
		      size_t payload_len)
{
	struct rec_hdr h;

	memset(&h, 0, sizeof(h));
	h.magic = magic;
	h.kind = kind;
	h.exec_ns = exec_ns;
	h.detail = detail;
	h.extra = extra;
	h.type_len = type_len;
	h.msg_len = msg_len;
	memcpy(buf + off, &h, sizeof(h));
	if (payload_len)
		memcpy(buf + off + sizeof(h), payload, payload_len);
	return off + sizeof(h) + payload_len;
}

/* A final record with type and msg, both NUL-free strings. */
static size_t put_final(char *buf, size_t off, uint32_t kind, uint32_t detail,
			const char *type, const char *msg)
{
	char payload[256];
	size_t tl = strlen(type), ml = strlen(msg);

	memcpy(payload, type, tl);
	memcpy(payload + tl, msg, ml);
	return put_rec(buf, off, REC_MAGIC, kind, 1000 + detail, detail, 0,
		       (uint32_t)tl, (uint32_t)ml, payload, tl + ml);
}

static size_t put_ready(char *buf, size_t off, uint32_t layers, uint32_t abi)
{
	return put_rec(buf, off, REC_MAGIC, REC_READY, 0, layers, abi, 0, 0,
		       NULL, 0);
}

/* rec_parse over an exact heap copy of buf[0..len), at an odd address so
 * a misaligned read of the header would show under UBSan. */
static size_t parse(const char *buf, size_t len, struct rec_view *v,
		    char **copy)
{
	char *p = malloc(len + 1);

	if (!p)
		exit(2);
	memcpy(p + 1, buf, len);
	memset(v, 0, sizeof(*v));
	*copy = p;
	return rec_parse(p + 1, len, v);
}

void test_rec_ready_then_final(void)
{
	static char buf[4096];
	struct rec_view v;
	uint64_t t0, t1;
	size_t len, got;
	char *copy;

	CHECK_EQ(HDR, 32 + REC_KEY_LEN);
	len = put_ready(buf, 0, 0x7ff, 3);
	len = put_final(buf, len, REC_EXCEPTION, 0, "ValueError", "boom");
	t0 = mono_ns();
	got = parse(buf, len, &v, &copy);
	t1 = mono_ns();
	CHECK_EQ(got, len);
	CHECK_EQ(v.have_ready, 1);
	CHECK_EQ(v.layers, 0x7ff);
	CHECK_EQ(v.landlock_abi, 3);
	CHECK(v.ready_ns >= t0 && v.ready_ns <= t1);
	CHECK_EQ(v.have_final, 1);
	CHECK_EQ(v.final.kind, REC_EXCEPTION);
	CHECK_EQ(v.final.exec_ns, 1000);
	CHECK_EQ(v.final.type_len, 10);
	CHECK_EQ(v.final.msg_len, 4);
	CHECK(v.type == copy + 1 + 2 * HDR);
	CHECK(v.type && memcmp(v.type, "ValueError", 10) == 0);
	CHECK(v.msg == v.type + 10);
	CHECK(v.msg && memcmp(v.msg, "boom", 4) == 0);
	free(copy);

	/* READY alone: no final yet, and the record is consumed. */
	len = put_ready(buf, 0, 5, 0);
	got = parse(buf, len, &v, &copy);
	CHECK_EQ(got, HDR);
	CHECK_EQ(v.have_ready, 1);
	CHECK_EQ(v.layers, 5);
	CHECK_EQ(v.have_final, 0);
	free(copy);

	/* A final record without READY, with empty type and message. */
	len = put_final(buf, 0, REC_OK, 0, "", "");
	got = parse(buf, len, &v, &copy);
	CHECK_EQ(got, HDR);
	CHECK_EQ(v.have_ready, 0);
	CHECK_EQ(v.have_final, 1);
	CHECK_EQ(v.final.kind, REC_OK);
	free(copy);

	/* Nothing at all. */
	got = parse(buf, 0, &v, &copy);
	CHECK_EQ(got, 0);
	CHECK_EQ(v.have_ready + v.have_final, 0);
	free(copy);
}

void test_rec_truncated(void)
{
	static char buf[4096];
	size_t ready, len;

	ready = put_ready(buf, 0, 1, 2);
	len = put_final(buf, ready, REC_SYSCALL, 41, "SecurityViolation",
			"socket");
	/* Every cut: what is complete is parsed, the rest is left. */
	for (size_t cut = 0; cut < len; cut++) {
		struct rec_view v;
		char *copy;
		size_t got = parse(buf, cut, &v, &copy);
		size_t want = cut >= ready ? ready : 0;

		CHECKF(got == want, "cut at %zu: parsed %zu, expected %zu",
		       cut, got, want);
		CHECKF(v.have_ready == (cut >= ready), "cut at %zu: ready %d",
		       cut, v.have_ready);
		CHECKF(v.have_final == 0, "cut at %zu: final record seen", cut);
		free(copy);
	}
	/* A header whose payload is longer than the buffer. */
	{
		struct rec_view v;
		char *copy;
		size_t n = put_rec(buf, 0, REC_MAGIC, REC_EXCEPTION, 0, 0, 0,
				   10, 100, "TypeErrorX", 10);

		CHECK_EQ(parse(buf, n, &v, &copy), 0);
		CHECK_EQ(v.have_final, 0);
		free(copy);
	}
}

void test_rec_bad_magic(void)
{
	static char buf[4096];
	struct rec_view v;
	size_t len, ready;
	char *copy;

	len = put_rec(buf, 0, REC_MAGIC ^ 1, REC_OK, 0, 0, 0, 0, 0, NULL, 0);
	CHECK_EQ(parse(buf, len, &v, &copy), 0);
	CHECK_EQ(v.have_ready + v.have_final, 0);
	free(copy);

	len = put_rec(buf, 0, 0x31787970u, REC_OK, 0, 0, 0, 0, 0, NULL, 0);
	CHECK_EQ(parse(buf, len, &v, &copy), 0);
	CHECK_EQ(v.have_final, 0);
	free(copy);

	len = put_rec(buf, 0, 0, REC_READY, 0, 7, 0, 0, 0, NULL, 0);
	CHECK_EQ(parse(buf, len, &v, &copy), 0);
	CHECK_EQ(v.have_ready, 0);
	free(copy);

	/* A good READY, then garbage: the garbage ends the parse. */
	ready = put_ready(buf, 0, 9, 0);
	memset(buf + ready, 'A', 100);
	len = put_final(buf, ready + 100, REC_OK, 0, "", "");
	CHECK_EQ(parse(buf, len, &v, &copy), ready);
	CHECK_EQ(v.have_ready, 1);
	CHECK_EQ(v.layers, 9);
	CHECK_EQ(v.have_final, 0);
	free(copy);

	/* Text that a program printed to the result descriptor. */
	CHECK_EQ(parse(S("Traceback (most recent call last):\n  File x\n"),
		       &v, &copy), 0);
	CHECK_EQ(v.have_final, 0);
	free(copy);
}

void test_rec_oversized_lengths(void)
{
	const size_t big = HDR + RESULT_TYPE_MAX + RESULT_MESSAGE_MAX + 2;
	char *buf = calloc(1, big);
	struct rec_view v;
	size_t len;
	char *copy;

	if (!buf)
		exit(2);
	/* One byte over the type limit, with all the bytes present. */
	len = put_rec(buf, 0, REC_MAGIC, REC_EXCEPTION, 0, 0, 0,
		      RESULT_TYPE_MAX + 1, 0, NULL, 0) + RESULT_TYPE_MAX + 1;
	CHECK_EQ(parse(buf, len, &v, &copy), 0);
	CHECK_EQ(v.have_final, 0);
	free(copy);

	/* One byte over the message limit, with all the bytes present. */
	len = put_rec(buf, 0, REC_MAGIC, REC_EXCEPTION, 0, 0, 0, 0,
		      RESULT_MESSAGE_MAX + 1, NULL, 0) + RESULT_MESSAGE_MAX + 1;
	CHECK_EQ(parse(buf, len, &v, &copy), 0);
	CHECK_EQ(v.have_final, 0);
	free(copy);

	/* Lengths that would overflow 32-bit arithmetic. */
	len = put_rec(buf, 0, REC_MAGIC, REC_EXCEPTION, 0, 0, 0, 0xFFFFFFFFu,
		      0xFFFFFFFFu, "xxxx", 4);
	CHECK_EQ(parse(buf, len, &v, &copy), 0);
	CHECK_EQ(v.have_final, 0);
	free(copy);
	len = put_rec(buf, 0, REC_MAGIC, REC_EXCEPTION, 0, 0, 0, 1,
		      0xFFFFFFFFu, "xxxx", 4);
	CHECK_EQ(parse(buf, len, &v, &copy), 0);
	CHECK_EQ(v.have_final, 0);
	free(copy);
	/* A READY claiming a payload is held to the same limits. */
	len = put_rec(buf, 0, REC_MAGIC, REC_READY, 0, 3, 0, 0x80000000u, 0,
		      "xxxx", 4);
	CHECK_EQ(parse(buf, len, &v, &copy), 0);
	CHECK_EQ(v.have_ready, 0);
	free(copy);

	/* Both limits exactly: accepted. */
	len = put_rec(buf, 0, REC_MAGIC, REC_EXCEPTION, 0, 0, 0,
		      RESULT_TYPE_MAX, RESULT_MESSAGE_MAX, NULL, 0) +
	      RESULT_TYPE_MAX + RESULT_MESSAGE_MAX;
	CHECK_EQ(parse(buf, len, &v, &copy), len);
	CHECK_EQ(v.have_final, 1);
	CHECK_EQ(v.final.type_len, RESULT_TYPE_MAX);
	CHECK_EQ(v.final.msg_len, RESULT_MESSAGE_MAX);
	CHECK(v.msg == copy + 1 + HDR + RESULT_TYPE_MAX);
	free(copy);
	free(buf);
}

void test_rec_last_final_wins(void)
{
	static char buf[4096];
	struct rec_view v;
	size_t ready, first, second, len;
	char *copy;

	ready = put_ready(buf, 0, 0x1f, 2);
	ready = put_ready(buf, ready, 0x3, 6);	/* a second: ignored */
	first = put_final(buf, ready, REC_EXCEPTION, 0, "Forged", "ok really");
	second = put_final(buf, first, REC_OK, 0, "", "");
	len = put_final(buf, second, REC_SYSCALL, 41, "SecurityViolation", "");
	CHECK_EQ(parse(buf, len, &v, &copy), len);
	CHECK_EQ(v.have_ready, 1);
	CHECK_EQ(v.layers, 0x1f);
	CHECK_EQ(v.landlock_abi, 2);
	CHECK_EQ(v.have_final, 1);
	CHECK_EQ(v.final.kind, REC_SYSCALL);
	CHECK_EQ(v.final.detail, 41);
	CHECK(v.type == copy + 1 + second + HDR);
	CHECK(v.type && memcmp(v.type, "SecurityViolation", 17) == 0);
	free(copy);

	/* Fed in two pieces, as the parent reads the pipe: the same. */
	{
		char *p = exact(buf, len);
		size_t off;

		memset(&v, 0, sizeof(v));
		off = rec_parse(p, first, &v);
		CHECK_EQ(off, first);
		CHECK_EQ(v.final.kind, REC_EXCEPTION);
		CHECK(v.type && memcmp(v.type, "Forged", 6) == 0);
		CHECK_EQ(rec_parse(p + off, len - off, &v), len - off);
		CHECK_EQ(v.final.kind, REC_SYSCALL);
		CHECK(v.type == p + second + HDR);
		free(p);
	}

	/* A malformed record ends the parse: the last good final stands. */
	len = put_rec(buf, second, REC_MAGIC ^ 0x80, REC_OK, 0, 0, 0, 0, 0,
		      NULL, 0);
	len = put_final(buf, len, REC_SYSCALL, 41, "SecurityViolation", "");
	CHECK_EQ(parse(buf, len, &v, &copy), second);
	CHECK_EQ(v.final.kind, REC_OK);
	free(copy);
}

/* Reads fd to EOF into a malloc'd buffer; *len gets the size. */
static char *slurp(int fd, size_t *len)
{
	size_t cap = 1 << 17, n = 0;
	char *buf = malloc(cap);
	ssize_t k;

	if (!buf)
		exit(2);
	while ((k = read(fd, buf + n, cap - n)) > 0) {
		n += (size_t)k;
		if (n == cap) {
			char *p = realloc(buf, cap *= 2);
			if (!p)
				exit(2);
			buf = p;
		}
	}
	*len = n;
	return buf;
}

/* rec_write and rec_internal write on CHILD_RESULT_FD: run them in a
 * child with a pipe there. */
static void write_records(void)
{
	/* One byte over each cut, and over the limits of rec_write. */
	char type[RESULT_TYPE_MAX + 1], msg[RESULT_MESSAGE_MAX + 1];
	char where[201 + 1], what[301 + 1];

	memset(type, 'T', sizeof(type));
	memset(msg, 'm', sizeof(msg));
	memset(where, 'w', sizeof(where) - 1);
	where[sizeof(where) - 1] = 0;
	memset(what, 'x', sizeof(what) - 1);
	what[sizeof(what) - 1] = 0;
	rec_write(REC_READY, 0, 0x7, 4, NULL, 0, NULL, 0);
	rec_write(REC_EXCEPTION, 5, 6, 7, "TypeError", 9, "bad", 3);
	rec_write(REC_EXCEPTION, 0, 0, 0, type, sizeof(type), msg,
		  sizeof(msg));
	rec_internal(where, what);
}

void test_rec_write_roundtrip(void)
{
	struct rec_view v;
	size_t len, off, n;
	char *buf;
	int p[2], status = -1;
	pid_t pid;

	if (pipe(p) != 0)
		exit(2);
	CHECK(fcntl(p[1], F_SETPIPE_SZ, 1 << 20) >= 1 << 18);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		if (dup2(p[1], CHILD_RESULT_FD) != CHILD_RESULT_FD)
			_exit(100);
		write_records();	/* ends in _exit(CHILD_EXIT_INTERNAL) */
	}
	close(p[1]);
	buf = slurp(p[0], &len);
	close(p[0]);
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECKF(WIFEXITED(status) &&
	       WEXITSTATUS(status) == CHILD_EXIT_INTERNAL,
	       "child status %#x", status);

	/* READY, TypeError, the cut one, rec_internal's. */
	CHECK_EQ(len, HDR + (HDR + 12) +
		      (HDR + RESULT_TYPE_MAX + RESULT_MESSAGE_MAX) +
		      (HDR + 13 + 200 + 2 + 300));
	if (len != 4 * HDR + 12 + RESULT_TYPE_MAX + RESULT_MESSAGE_MAX + 515) {
		free(buf);
		return;
	}

	/* The READY and the first final record alone. */
	off = 2 * HDR + 12;
	memset(&v, 0, sizeof(v));
	CHECK_EQ(rec_parse(buf, off, &v), off);
	CHECK_EQ(v.have_ready, 1);
	CHECK_EQ(v.layers, 7);
	CHECK_EQ(v.landlock_abi, 4);
	CHECK_EQ(v.final.kind, REC_EXCEPTION);
	CHECK_EQ(v.final.exec_ns, 5);
	CHECK_EQ(v.final.detail, 6);
	CHECK_EQ(v.final.extra, 7);
	CHECK(v.type && memcmp(v.type, "TypeErrorbad", 12) == 0);

	/* Over-long type and message are cut to the limits. */
	n = HDR + RESULT_TYPE_MAX + RESULT_MESSAGE_MAX;
	memset(&v, 0, sizeof(v));
	CHECK_EQ(rec_parse(buf + off, n, &v), n);
	CHECK_EQ(v.final.type_len, RESULT_TYPE_MAX);
	CHECK_EQ(v.final.msg_len, RESULT_MESSAGE_MAX);
	CHECK(v.type && v.type[0] == 'T' && v.msg[0] == 'm' &&
	      v.msg[RESULT_MESSAGE_MAX - 1] == 'm');
	off += n;

	/* rec_internal: "where: what", each part cut (to 200 and 300). It is
	 * the last final record, so it is the one the whole stream gives. */
	n = HDR + 13 + 200 + 2 + 300;
	memset(&v, 0, sizeof(v));
	CHECK_EQ(rec_parse(buf, len, &v), len);
	CHECK_EQ(v.final.kind, REC_INTERNAL);
	CHECK_EQ(v.final.msg_len, 502);
	CHECK(v.type && memcmp(v.type, "InternalError", 13) == 0);
	CHECK(v.msg && v.msg[199] == 'w' && v.msg[200] == ':' &&
	      v.msg[201] == ' ' && v.msg[202] == 'x' && v.msg[501] == 'x');
	CHECK_EQ(off + n, len);
	free(buf);
}

/*
 * handoff.c
 */

/* A pipe holding what a broker sent (bytes, written up front), read back
 * by handoff_recv as the child would. */
static const uint8_t zero_key[REC_KEY_LEN];

static int recv_from(const void *bytes, size_t len, int close_early,
		     struct sb_job *job, struct sb_limits *lim)
{
	int p[2], rc;

	if (pipe(p) != 0 || fcntl(p[1], F_SETPIPE_SZ, 1 << 20) < (1 << 18))
		exit(2);
	if (len && write(p[1], bytes, len) != (ssize_t)len)
		exit(2);
	if (close_early)
		close(p[1]);
	rc = handoff_recv(p[0], job, lim);
	rec_set_key(zero_key);	/* the other tests' records carry zeros */
	close(p[0]);
	if (!close_early)
		close(p[1]);
	return rc;
}

static const uint8_t handoff_key[REC_KEY_LEN] = {
	0xa5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0x5a,
};

/* handoff_recv of bytes, in a child that keeps the key it sets. */
static int recv_key_only(const void *bytes, size_t len, struct sb_job *job,
			 struct sb_limits *lim)
{
	int p[2], rc;

	if (pipe(p) != 0 || write(p[1], bytes, len) != (ssize_t)len)
		return -1;
	close(p[1]);
	rc = handoff_recv(p[0], job, lim);
	close(p[0]);
	return rc;
}

/* What handoff_send writes for job and lim. */
static char *sent(const struct sb_job *job, const struct sb_limits *lim,
		  size_t *len)
{
	int p[2];
	char *buf;

	if (pipe(p) != 0 || fcntl(p[1], F_SETPIPE_SZ, 1 << 20) < (1 << 18))
		exit(2);
	CHECK_EQ(handoff_send(p[1], job, lim, handoff_key), 0);
	close(p[1]);
	buf = slurp(p[0], len);
	close(p[0]);
	return buf;
}

static void release_job(struct sb_job *job)
{
	free((char *)job->code);
	free((char *)job->input_json);
}

void test_handoff_roundtrip(void)
{
	static const char body[] = "[1, {\"a\": 2}]";
	struct sb_job in = {
		.code = "print(1)\n", .code_len = 9, .input_json = body,
		.input_json_len = sizeof(body) - 1, .cancel_fd = 7,
		.modules = (uint64_t)1 << 63 | 5,
	}, out;
	struct sb_limits lim = { 30000, 2000, 512, 1 << 20 }, got;
	size_t len;
	char *buf = sent(&in, &lim, &len);

	CHECK_EQ(recv_from(buf, len, 1, &out, &got), 1);
	CHECK_EQ(out.code_len, 9);
	CHECK(out.code && strcmp(out.code, "print(1)\n") == 0);
	CHECK_EQ(out.input_json_len, sizeof(body) - 1);
	CHECK(out.input_json && strcmp(out.input_json, body) == 0);
	CHECK_EQ(out.input_empty, 0);
	CHECK_EQ(out.cancel_fd, -1);	/* the broker's, not the child's */
	CHECK(out.modules == ((uint64_t)1 << 63 | 5));	/* the profile */
	CHECK_EQ(got.timeout_ms, 30000);
	CHECK_EQ(got.cpu_ms, 2000);
	CHECK_EQ(got.memory_mb, 512);
	CHECK_EQ(got.output_bytes, 1 << 20);
	release_job(&out);
	free(buf);

	/* No input document at all. */
	in.input_json = NULL;
	in.input_empty = 1;
	buf = sent(&in, &lim, &len);
	CHECK_EQ(recv_from(buf, len, 1, &out, &got), 1);
	CHECK(out.input_json == NULL && out.input_json_len == 0);
	CHECK_EQ(out.input_empty, 1);
	release_job(&out);
	free(buf);
}

/* A refused request: the pipe closes before a byte, and the child exits. */
void test_handoff_refused(void)
{
	struct sb_job out;
	struct sb_limits got;

	CHECK_EQ(recv_from(NULL, 0, 1, &out, &got), 0);
}

void test_handoff_damaged(void)
{
	struct sb_job in = {
		.code = "print(1)\n", .code_len = 9, .input_empty = 1,
	}, out;
	struct sb_limits lim = { 30000, 2000, 512, 1 << 20 }, got;
	size_t len;
	char *buf = sent(&in, &lim, &len);
	uint64_t big;

	/* Cut anywhere: in the header, in the code. */
	for (size_t cut = 1; cut < len; cut++)
		CHECKF(recv_from(buf, cut, 1, &out, &got) == -1, "cut %zu", cut);
	/* Another magic. */
	buf[0] ^= 1;
	CHECK_EQ(recv_from(buf, len, 1, &out, &got), -1);
	buf[0] ^= 1;
	/* Sizes past what any setting allows (code, input: the two 64-bit
	 * lengths after the two 32-bit words). */
	for (int field = 0; field < 2; field++) {
		uint64_t keep;
		size_t at = 8 + 8 * (size_t)field;

		memcpy(&keep, buf + at, 8);
		big = field == 0 ? MAX_CODE_BYTES + 1u : MAX_INPUT_BYTES + 1u;
		memcpy(buf + at, &big, 8);
		CHECKF(recv_from(buf, len, 1, &out, &got) == -1, "field %d",
		       field);
		memcpy(buf + at, &keep, 8);
	}
	CHECK_EQ(recv_from(buf, len, 1, &out, &got), 1);
	release_job(&out);
	free(buf);
}

/* rec_scan: garbage between records is skipped, a record still arriving
 * is left for the next read, and the last complete record is kept (its
 * text copied, so the caller may drop the bytes). */
void test_rec_scan_resyncs(void)
{
	static char buf[4096];
	static struct rec_store s;
	size_t len, used;

	memset(&s, 0, sizeof(s));
	len = put_ready(buf, 0, 3, 1);
	memset(buf + len, 'A', 101);
	len = put_final(buf, len + 101, REC_OK, 0, "", "");
	len = put_final(buf, len, REC_SYSCALL, 41, "SecurityViolation", "");
	/* All but the last 5 bytes: the last record waits. */
	used = rec_scan(buf, len - 5, 0, &s);
	CHECK_EQ(used, len - 5 - (HDR + 17 - 5));
	CHECK_EQ(s.v.have_ready, 1);
	CHECK_EQ(s.v.layers, 3);
	CHECK_EQ(s.v.final.kind, REC_OK);
	/* The rest arrives; the bytes before it were dropped. */
	memmove(buf, buf + used, len - used);
	used = rec_scan(buf, len - used, 0, &s);
	CHECK_EQ(s.v.final.kind, REC_SYSCALL);
	CHECK_EQ(s.v.final.detail, 41);
	memset(buf, 'Z', sizeof(buf));		/* the text was copied */
	CHECK(memcmp(s.v.type, "SecurityViolation", 17) == 0);
	/* At the end, a lone partial header is dropped. */
	CHECK_EQ(rec_scan(buf, 7, 1, &s), 7);
	CHECK_EQ(s.v.final.kind, REC_SYSCALL);
}

/* A forged header claiming more than the stream holds cannot hide the
 * record written after it: at the end it is skipped. */
void test_rec_scan_swallowing_header(void)
{
	static char buf[4096];
	static struct rec_store s;
	size_t len, used;

	memset(&s, 0, sizeof(s));
	len = put_rec(buf, 0, REC_MAGIC, REC_EXCEPTION, 1, 0, 0, 11, 3000,
		      "MemoryError", 11);
	len = put_final(buf, len, REC_EXCEPTION, 0, "KeyError", "x");
	used = rec_scan(buf, len, 0, &s);
	CHECK_EQ(used, 0);			/* it may yet complete */
	CHECK_EQ(s.v.have_final, 0);
	CHECK_EQ(rec_scan(buf, len, 1, &s), len);
	CHECK_EQ(s.v.have_final, 1);
	CHECK_EQ(s.v.final.type_len, 8);
	CHECK(memcmp(s.v.type, "KeyError", 8) == 0);
}

/*
 * The run's key: only records that carry it count. The program can write
 * on fd 3, but not with the key, so a record of its own is noise.
 */
static const uint8_t run_key[REC_KEY_LEN] = {
	7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
};

/* put_final with a key in its header. */
static size_t put_keyed(char *buf, size_t off, uint32_t kind,
			const uint8_t *key, const char *type, const char *msg)
{
	size_t end = put_final(buf, off, kind, 0, type, msg);

	memcpy(buf + off + offsetof(struct rec_hdr, key), key, REC_KEY_LEN);
	return end;
}

static size_t parse_keyed(const char *buf, size_t len, struct rec_view *v)
{
	memset(v, 0, sizeof(*v));
	memcpy(v->key, run_key, REC_KEY_LEN);
	return rec_parse(buf, len, v);
}

void test_rec_key(void)
{
	static char buf[4096];
	uint8_t other[REC_KEY_LEN];
	struct rec_view v;
	size_t ready, len;

	memcpy(other, run_key, REC_KEY_LEN);
	other[REC_KEY_LEN - 1] ^= 0x80;
	ready = put_keyed(buf, 0, REC_READY, run_key, "", "");
	len = put_keyed(buf, ready, REC_EXCEPTION, run_key, "KeyError", "k");
	CHECK_EQ(parse_keyed(buf, len, &v), len);
	CHECK(v.have_ready && v.have_final && v.final.kind == REC_EXCEPTION);

	/* Without the key, or with another: not a record. */
	len = put_keyed(buf, ready, REC_OK, zero_key, "", "");
	CHECK_EQ(parse_keyed(buf, len, &v), ready);
	CHECK(v.have_ready && !v.have_final);
	len = put_keyed(buf, ready, REC_OK, other, "", "");
	CHECK_EQ(parse_keyed(buf, len, &v), ready);
	CHECK(!v.have_final);
	len = put_keyed(buf, 0, REC_READY, other, "", "");
	CHECK_EQ(parse_keyed(buf, len, &v), 0);
	CHECK(!v.have_ready);

	/* A keyless failure before the job is believed, before READY only. */
	len = put_keyed(buf, 0, REC_INTERNAL, zero_key, "InternalError", "x");
	CHECK_EQ(parse_keyed(buf, len, &v), len);
	CHECK(v.have_final && v.final.kind == REC_INTERNAL);
	ready = put_keyed(buf, 0, REC_READY, run_key, "", "");
	len = put_keyed(buf, ready, REC_INTERNAL, zero_key, "InternalError", "");
	CHECK_EQ(parse_keyed(buf, len, &v), ready);
	CHECK(!v.have_final);
	len = put_keyed(buf, 0, REC_SECURITY, zero_key, "SecurityViolation", "");
	CHECK_EQ(parse_keyed(buf, len, &v), 0);
}

/* In the stream: a complete forgery is skipped at once (not waited on),
 * and one whose claimed length swallows the real record gives it up. */
void test_rec_scan_skips_foreign_records(void)
{
	static char buf[4096];
	static struct rec_store s;
	size_t len, inner;

	memset(&s, 0, sizeof(s));
	memcpy(s.v.key, run_key, REC_KEY_LEN);
	len = put_keyed(buf, 0, REC_READY, run_key, "", "");
	len = put_keyed(buf, len, REC_OK, zero_key, "", "");
	len = put_keyed(buf, len, REC_EXCEPTION, run_key, "KeyError", "k");
	CHECK_EQ(rec_scan(buf, len, 0, &s), len);
	CHECK(s.v.have_ready && s.v.final.kind == REC_EXCEPTION);

	memset(&s, 0, sizeof(s));
	memcpy(s.v.key, run_key, REC_KEY_LEN);
	inner = HDR + 9;	/* the real record, inside the forgery's body */
	len = put_rec(buf, 0, REC_MAGIC, REC_OK, 1, 0, 0, 0, (uint32_t)inner,
		      NULL, 0);
	len = put_keyed(buf, len, REC_EXCEPTION, run_key, "KeyError", "k");
	CHECK_EQ(len, HDR + inner);
	CHECK_EQ(rec_scan(buf, len, 0, &s), len);
	CHECK(s.v.have_final && s.v.final.kind == REC_EXCEPTION);
	CHECK(memcmp(s.v.type, "KeyError", 8) == 0);
}

/* handoff_recv gives the child the broker's key: its records carry it. */
void test_handoff_carries_the_record_key(void)
{
	struct sb_job in = {
		.code = "1\n", .code_len = 2, .input_empty = 1,
	}, out;
	struct sb_limits lim = { 30000, 2000, 512, 1 << 20 }, got;
	struct rec_view v;
	size_t len, rlen;
	char *buf = sent(&in, &lim, &len), *recs;
	int p[2], status = -1;
	pid_t pid;

	if (pipe(p) != 0)
		exit(2);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		if (dup2(p[1], CHILD_RESULT_FD) != CHILD_RESULT_FD)
			_exit(100);
		if (recv_key_only(buf, len, &out, &got) != 1)
			_exit(101);
		rec_write(REC_OK, 0, 0, 0, NULL, 0, NULL, 0);
		_exit(0);
	}
	close(p[1]);
	recs = slurp(p[0], &rlen);
	close(p[0]);
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x",
	       status);
	memset(&v, 0, sizeof(v));
	memcpy(v.key, handoff_key, REC_KEY_LEN);
	CHECK_EQ(rec_parse(recs, rlen, &v), HDR);
	CHECK(v.have_final && v.final.kind == REC_OK);
	memset(&v, 0, sizeof(v));		/* without the key: nothing */
	CHECK_EQ(rec_parse(recs, rlen, &v), 0);
	CHECK(!v.have_final);
	free(recs);
	free(buf);
}
