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
#include "../cgi/banned.h"

struct module {
	const char *name;
	/* Imported lazily by the module at call time, NULL-terminated. */
	const char *const *lazy;
	/* Allowlisted modules it imports, whose lazy imports it may trigger
	 * (statistics.mode -> Counter.most_common -> heapq). */
	const char *const *uses;
};

static const char *const lazy_datetime[] = { "_strptime", "time", NULL };
static const char *const lazy_statistics[] = { "fractions", "decimal", NULL };
static const char *const lazy_collections[] = {
	"collections.abc", "heapq", "copy", NULL	/* Counter.most_common */
};
static const char *const lazy_functools[] = {
	"types", "weakref", "typing", NULL		/* singledispatch */
};
static const char *const lazy_json[] = {
	"json.decoder", "json.encoder", "json.scanner", NULL
};
/* linecache (FutureWarning's source line) is not loaded: see audit.c. */
static const char *const lazy_re[] = {
	"copyreg", "unicodedata", "warnings",
	NULL	/* \N{...} escapes; FutureWarning */
};
static const char *const none[] = { NULL };
/* statistics.mode() -> Counter.most_common(1) -> import heapq */
static const char *const uses_statistics[] = { "collections", NULL };

/* Sorted: the error message lists them in this order. */
static const struct module modules[] = {
	{ "collections", lazy_collections, none },
	{ "datetime", lazy_datetime, none },
	{ "functools", lazy_functools, none },
	{ "itertools", none, none },
	{ "json", lazy_json, none },
	{ "math", none, none },
	{ "random", none, none },
	{ "re", lazy_re, none },
	{ "statistics", lazy_statistics, uses_statistics },
	{ "string", none, none },
};
#define NMODULES (sizeof(modules) / sizeof(modules[0]))

static const struct module *find(const char *name, size_t len)
{
	for (size_t i = 0; i < NMODULES; i++)
		if (strlen(modules[i].name) == len &&
		    memcmp(modules[i].name, name, len) == 0)
			return &modules[i];
	return NULL;
}

/* A module that an allowlisted one imports lazily. C code such as
 * datetime.strptime imports it through the __import__ of the calling
 * frame, the program's, so the guard must let these through too; it does
 * so only once they are loaded, which happens when their parent is. */
static int is_lazy(const char *name, size_t len)
{
	for (size_t i = 0; i < NMODULES; i++)
		for (size_t k = 0; modules[i].lazy[k]; k++)
			if (strlen(modules[i].lazy[k]) == len &&
			    memcmp(modules[i].lazy[k], name, len) == 0)
				return 1;
	return 0;
}

int allowlist_allows(const char *name, size_t len)
{
	return find(name, len) != NULL;
}

int allowlist_allows_loaded(const char *name, size_t len)
{
	return find(name, len) != NULL || is_lazy(name, len);
}

const char *allowlist_names(void)
{
	return "collections, datetime, functools, itertools, json, math, "
	       "random, re, statistics, string";
}

static int is_word(char c, int first)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (!first && c >= '0' && c <= '9');
}

static int load_module(const struct module *m, unsigned *done,
		       int (*load)(const char *, void *), void *arg)
{
	unsigned bit = 1u << (m - modules);
	int rc;

	if (*done & bit)
		return 0;
	*done |= bit;
	rc = load(m->name, arg);
	for (size_t i = 0; rc == 0 && m->lazy[i]; i++)
		rc = load(m->lazy[i], arg);
	for (size_t i = 0; rc == 0 && m->uses[i]; i++)
		rc = load_module(find(m->uses[i], strlen(m->uses[i])), done,
				 load, arg);
	return rc;
}

int allowlist_preload(const char *src, size_t len,
		      int (*load)(const char *name, void *arg), void *arg)
{
	unsigned done = 0;
	size_t i = 0;

	while (i < len) {
		size_t start;
		const struct module *m;
		int rc;

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
		if (m && (rc = load_module(m, &done, load, arg)) != 0)
			return rc;
	}
	return 0;
}
