/* SPDX-License-Identifier: MIT */
/*
 * allowlist.c: the importable modules (the reference service's list) and,
 * for each, what must already be loaded when the filesystem is gone.
 *
 * Modules are loaded before lockdown only when the source names them: a
 * hello-world pays for no imports. The scan is lexical and errs towards
 * loading: any identifier or word inside a string that equals a module
 * name counts, so `__import__("json")` works too.
 */
#include <string.h>
#include "allowlist.h"
#include "profile.h"
#include "../cgi/banned.h"

/* A module an allowlisted one imports lazily at call time; when is a word
 * the source must contain for it to be loaded (NULL: always), for the
 * costly ones only one call needs (_strptime: 3 ms with locale and
 * calendar). */
struct lazy {
	const char *name;
	const char *when;
};

struct module {
	const char *name;
	/* Imported lazily by the module at call time, {NULL}-terminated. */
	const struct lazy *lazy;
	/* Allowlisted modules it imports, whose lazy imports it may trigger
	 * (statistics.mode -> Counter.most_common -> heapq). */
	const char *const *uses;
};

static const struct lazy lazy_datetime[] = {
	{ "_strptime", "strptime" }, { "time", NULL }, { NULL, NULL }
};
static const struct lazy lazy_statistics[] = {
	{ "fractions", NULL }, { "decimal", NULL }, { NULL, NULL }
};
static const struct lazy lazy_collections[] = {
	{ "collections.abc", NULL },
	{ "heapq", NULL },		/* Counter.most_common, statistics.mode */
	{ "copy", "copy" },		/* UserDict.copy and the like */
	{ NULL, NULL }
};
static const struct lazy lazy_functools[] = {	/* singledispatch */
	{ "types", NULL }, { "weakref", NULL }, { "typing", "singledispatch" },
	{ NULL, NULL }
};
static const struct lazy lazy_json[] = {
	{ "json.decoder", NULL }, { "json.encoder", NULL },
	{ "json.scanner", NULL }, { NULL, NULL }
};
/* linecache (FutureWarning's source line) is not loaded: see audit.c. */
static const struct lazy lazy_re[] = {
	{ "copyreg", NULL }, { "unicodedata", NULL },	/* \N{...} escapes */
	{ "warnings", NULL },				/* FutureWarning */
	{ NULL, NULL }
};
static const struct lazy none[] = { { NULL, NULL } };
/* statistics.mode() -> Counter.most_common(1) -> import heapq */
static const char *const uses_statistics[] = { "collections", NULL };
static const char *const uses_none[] = { NULL };

/* The seed's ten first, as the reference service has them; then the
 * modules of the wider profiles (sandbox/profile.c says why each is safe).
 * Only the modules of the job's profile are loaded or allowed. */
static const struct module modules[] = {
	{ "collections", lazy_collections, uses_none },
	{ "datetime", lazy_datetime, uses_none },
	{ "functools", lazy_functools, uses_none },
	{ "itertools", none, uses_none },
	{ "json", lazy_json, uses_none },
	{ "math", none, uses_none },
	{ "random", none, uses_none },
	{ "re", lazy_re, uses_none },
	{ "statistics", lazy_statistics, uses_statistics },
	{ "string", none, uses_none },
	{ "__future__", none, uses_none },
	{ "abc", none, uses_none },
	{ "array", none, uses_none },
	{ "base64", none, uses_none },
	{ "bisect", none, uses_none },
	{ "calendar", none, uses_none },
	{ "cmath", none, uses_none },
	{ "copy", none, uses_none },
	{ "dataclasses", none, uses_none },
	{ "decimal", none, uses_none },
	{ "difflib", none, uses_none },
	{ "enum", none, uses_none },
	{ "fractions", none, uses_none },
	{ "hashlib", none, uses_none },
	{ "heapq", none, uses_none },
	{ "numbers", none, uses_none },
	{ "operator", none, uses_none },
	{ "pprint", none, uses_none },
	{ "sys", none, uses_none },	/* the stand-in: nothing to load */
	{ "textwrap", none, uses_none },
	{ "typing", none, uses_none },
	{ "unicodedata", none, uses_none },
};
#define NMODULES (sizeof(modules) / sizeof(modules[0]))
_Static_assert(NMODULES <= 64, "the loaded set is a 64-bit mask");

/*
 * The standard text codecs. encodings' search function imports a codec's
 * module at its first use, which after lockdown would be a refused import;
 * a codec is loaded before lockdown when the source names it. The scan
 * compares letters and digits only, case-folded, so "UTF-16-LE",
 * 'utf_16_le' and "utf16le" all name utf_16_le; it errs towards loading
 * (a key inside a longer word counts). Loading them all would cost ~40 ms
 * (idna loads re, cp437 builds a table), so each is loaded alone. A codec
 * that is not loaded reads as an unknown encoding (audit.c).
 */
struct codec {
	const char *module;
	const char *keys[4];	/* lowercase letters and digits, NULL-ended */
};

static const struct codec codecs[] = {
	{ "encodings.utf_16", { "utf16", NULL } },
	{ "encodings.utf_16_le", { "utf16le", "unicodelittleunmarked", NULL } },
	{ "encodings.utf_16_be", { "utf16be", "unicodebigunmarked", NULL } },
	{ "encodings.utf_32", { "utf32", NULL } },
	{ "encodings.utf_32_le", { "utf32le", NULL } },
	{ "encodings.utf_32_be", { "utf32be", NULL } },
	{ "encodings.utf_7", { "utf7", NULL } },
	{ "encodings.utf_8_sig", { "utf8sig", NULL } },
	{ "encodings.latin_1", { "latin", "8859", "cp819", NULL } },
	{ "encodings.ascii", { "ascii", NULL } },
	{ "encodings.cp1250", { "1250", NULL } },
	{ "encodings.cp1251", { "1251", NULL } },
	{ "encodings.cp1252", { "1252", NULL } },
	{ "encodings.cp437", { "cp437", "ibm437", NULL } },
	{ "encodings.cp850", { "cp850", "ibm850", NULL } },
	{ "encodings.iso8859_2", { "88592", "latin2", NULL } },
	{ "encodings.iso8859_15", { "885915", "latin9", NULL } },
	{ "encodings.koi8_r", { "koi8r", NULL } },
	{ "encodings.mac_roman", { "macroman", "macintosh", NULL } },
	{ "encodings.idna", { "idna", NULL } },
	{ "encodings.punycode", { "punycode", NULL } },
	{ "encodings.raw_unicode_escape", { "rawunicodeescape", NULL } },
	{ "encodings.unicode_escape", { "unicodeescape", NULL } },
};
#define NCODECS (sizeof(codecs) / sizeof(codecs[0]))

static const struct module *find(const char *name, size_t len)
{
	for (size_t i = 0; i < NMODULES; i++)
		if (strlen(modules[i].name) == len &&
		    memcmp(modules[i].name, name, len) == 0)
			return &modules[i];
	return NULL;
}

/* 1 when module m is in the profile mask. */
static int in_profile(uint64_t mask, const struct module *m)
{
	return profile_has(mask, m->name);
}

/* A module that an allowlisted one imports lazily. C code such as
 * datetime.strptime imports it through the __import__ of the calling
 * frame, the program's, so the guard must let these through too; it does
 * so only once they are loaded, which happens when their parent is. */
static int is_lazy(uint64_t mask, const char *name, size_t len)
{
	for (size_t i = 0; i < NMODULES; i++) {
		if (!in_profile(mask, &modules[i]))
			continue;
		for (size_t k = 0; modules[i].lazy[k].name; k++)
			if (strlen(modules[i].lazy[k].name) == len &&
			    memcmp(modules[i].lazy[k].name, name, len) == 0)
				return 1;
	}
	return 0;
}

int allowlist_allows(uint64_t mask, const char *name, size_t len)
{
	const struct module *m = find(name, len);

	return m && in_profile(mask, m);
}

int allowlist_allows_loaded(uint64_t mask, const char *name, size_t len)
{
	return allowlist_allows(mask, name, len) || is_lazy(mask, name, len);
}

const char *allowlist_names(uint64_t mask)
{
	static char buf[PROFILE_TEXT_MAX + 64];

	profile_names(mask, buf, sizeof(buf));
	return buf;
}

static int is_word(char c, int first)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (!first && c >= '0' && c <= '9');
}

/* 1 when a word of src[0..len) starts with prefix (a lazy module's when). */
static int has_word(const char *src, size_t len, const char *prefix)
{
	size_t pl = strlen(prefix);

	for (size_t i = 0; i + pl <= len; i++)
		if ((i == 0 || !is_word(src[i - 1], 0)) &&
		    memcmp(src + i, prefix, pl) == 0)
			return 1;
	return 0;
}

struct source {
	const char *src;
	size_t len;
};

static int load_module(const struct module *m, uint64_t *done,
		       const struct source *code,
		       int (*load)(const char *, void *), void *arg)
{
	uint64_t bit = (uint64_t)1 << (m - modules);
	int rc;

	if (*done & bit)
		return 0;
	*done |= bit;
	rc = load(m->name, arg);
	for (const struct lazy *l = m->lazy; rc == 0 && l->name; l++)
		if (!l->when || has_word(code->src, code->len, l->when))
			rc = load(l->name, arg);
	for (size_t i = 0; rc == 0 && m->uses[i]; i++)
		rc = load_module(find(m->uses[i], strlen(m->uses[i])), done,
				 code, load, arg);
	return rc;
}

static char fold(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* 1 when key (lowercase letters and digits) is in src[0..len) once
 * everything but letters and digits is dropped and case is folded. */
static int names_key(const char *src, size_t len, const char *key)
{
	for (size_t i = 0; i < len; i++) {
		size_t j = i;
		const char *k = key;

		if (fold(src[i]) != *k)
			continue;
		while (*k && j < len) {
			if (!is_alnum(src[j])) {
				j++;
			} else if (fold(src[j]) == *k) {
				j++;
				k++;
			} else {
				break;
			}
		}
		if (!*k)
			return 1;
	}
	return 0;
}

/* The codecs the source names. */
static int load_codecs(const struct source *code,
		       int (*load)(const char *, void *), void *arg)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < NCODECS; i++)
		for (size_t k = 0; codecs[i].keys[k]; k++)
			if (names_key(code->src, code->len, codecs[i].keys[k])) {
				rc = load(codecs[i].module, arg);
				break;
			}
	return rc;
}

int allowlist_preload(uint64_t mask, const char *src, size_t len,
		      int (*load)(const char *name, void *arg), void *arg)
{
	const struct source code = { src, len };
	uint64_t done = 0;
	size_t i = 0;
	int rc = load_codecs(&code, load, arg);

	if (rc != 0)
		return rc;
	while (i < len) {
		size_t start;
		const struct module *m;

		if (!is_word(src[i], 1)) {
			/* Skip the rest of a word that began with a digit. */
			while (i < len && is_word(src[i], 0))
				i++;
			if (i < len)
				i++;
			continue;
		}
		start = i;
		while (i < len && is_word(src[i], 0))
			i++;
		m = find(src + start, i - start);
		if (m && in_profile(mask, m) &&
		    (rc = load_module(m, &done, &code, load, arg)) != 0)
			return rc;
	}
	return 0;
}
