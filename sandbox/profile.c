/* SPDX-License-Identifier: MIT */
/*
 * profile.c: the vetted modules, each with what it can reach and why that
 * is safe, and the profiles (profile.h).
 *
 * A module is vetted when everything it offers stays inside the process:
 * computation on values the program already has, no file, process, signal
 * or network call, no loader, no way to build code objects other than the
 * ones the audit hook already refuses. What a module pulls in when it is
 * imported (typing loads types, contextlib, ...) is not importable by name
 * unless it is vetted and in the profile (sandbox/pyrun.c); what is
 * reachable as an attribute meets the audit hook and the kernel, like
 * everything else.
 */
#include <stdio.h>
#include <string.h>
#include "profile.h"
#include "../cgi/banned.h"

enum { SEED = 1, COMPUTE = 2 };

/* Sorted by name: the ImportError lists them in this order. */
static const struct vetted {
	const char *name;
	unsigned in;		/* SEED and/or COMPUTE */
	const char *why;	/* what it reaches, and why that is safe */
} vetted[] = {
	{ "__future__", COMPUTE, "feature flags for the compiler "
	  "(from __future__ import annotations): data only" },
	{ "abc", COMPUTE, "abstract base classes (C _abc): class checks "
	  "only, no I/O" },
	{ "array", COMPUTE, "typed arrays in memory; tofile/fromfile need a "
	  "file object, and open is refused" },
	{ "base64", COMPUTE, "pure encoders over bytes (binascii, struct)" },
	{ "bisect", COMPUTE, "binary search on a list the program holds (C "
	  "_bisect)" },
	{ "calendar", COMPUTE, "date arithmetic and text calendars; no "
	  "clock, no files" },
	{ "cmath", COMPUTE, "complex math functions (C), no state" },
	{ "collections", SEED | COMPUTE, "containers; copy and heapq are "
	  "loaded with it" },
	{ "copy", COMPUTE, "copies through __reduce_ex__/copyreg: calls only "
	  "what the object names, so code objects meet the audit hook" },
	{ "dataclasses", COMPUTE, "builds methods with exec of its own text "
	  "from the stdlib; the program's exec stays refused" },
	{ "datetime", SEED | COMPUTE, "dates and times; the clock is the "
	  "kernel's (seccomp pins it)" },
	{ "decimal", COMPUTE, "decimal arithmetic (C _decimal); a context's "
	  "precision is bounded by the memory and CPU limits" },
	{ "difflib", COMPUTE, "sequence comparison in memory" },
	{ "enum", COMPUTE, "enumerations: class creation, no I/O" },
	{ "fractions", COMPUTE, "exact rationals over int" },
	{ "functools", SEED | COMPUTE, "higher-order functions and caches" },
	{ "hashlib", COMPUTE, "digests; OpenSSL and the builtin digests are "
	  "loaded before lockdown, nothing is read after" },
	{ "heapq", COMPUTE, "heap operations on a list (C _heapq)" },
	{ "itertools", SEED | COMPUTE, "iterator building blocks (C)" },
	{ "json", SEED | COMPUTE, "JSON text to values and back, in memory" },
	{ "math", SEED | COMPUTE, "math functions (C), no state" },
	{ "numbers", COMPUTE, "the numeric abstract base classes" },
	{ "operator", COMPUTE, "functions for operators; attrgetter and "
	  "methodcaller read what getattr reads, under the same audit hook" },
	{ "pprint", COMPUTE, "pretty-printing to stdout or a string" },
	{ "random", SEED | COMPUTE, "pseudo-random numbers; seeded from the "
	  "kernel's getrandom" },
	{ "re", SEED | COMPUTE, "regular expressions (C _sre) in memory" },
	{ "statistics", SEED | COMPUTE, "statistics over numbers the program "
	  "holds" },
	{ "string", SEED | COMPUTE, "string constants, Template, Formatter" },
	{ "sys", COMPUTE, "a stand-in, never the real sys: maxsize, getsizeof, "
	  "float_info, int_info, version_info, byteorder, the recursion limit "
	  "(capped), stdout/stderr writes" },
	{ "textwrap", COMPUTE, "text wrapping and dedent (re)" },
	{ "typing", COMPUTE, "type hints; string annotations are compiled but "
	  "never evaluated (get_type_hints' eval is refused)" },
	{ "unicodedata", COMPUTE, "the Unicode database, compiled in" },
};
#define NVETTED (sizeof(vetted) / sizeof(vetted[0]))

/* Modules often asked for, and why they are not vetted: the refusal of
 * config set says so. */
static const struct {
	const char *name;
	const char *why;
} refused[] = {
	{ "os", "files and processes" },
	{ "posix", "files and processes" },
	{ "io", "files" },
	{ "pathlib", "files" },
	{ "shutil", "files and processes" },
	{ "glob", "files" },
	{ "tempfile", "files" },
	{ "subprocess", "processes" },
	{ "multiprocessing", "processes" },
	{ "threading", "threads (pids and the CPU limit)" },
	{ "signal", "signals" },
	{ "socket", "network" },
	{ "ssl", "network" },
	{ "http", "network" },
	{ "urllib", "network" },
	{ "asyncio", "network, processes and the event loop's files" },
	{ "ctypes", "native code and raw memory" },
	{ "importlib", "loaders: any module from disk" },
	{ "pickle", "code execution through __reduce__ of any importable "
	  "callable" },
	{ "marshal", "crafted code objects" },
	{ "types", "code and function constructors" },
	{ "inspect", "frames and source files" },
	{ "gc", "the object graph" },
	{ "builtins", "the unrestricted builtins (eval, exec, open)" },
	{ "time", "the host's clocks and sleep" },
};

_Static_assert(NVETTED <= 64, "a profile is a 64-bit mask");

static uint64_t mask_of(unsigned in)
{
	uint64_t m = 0;

	for (unsigned i = 0; i < NVETTED; i++)
		if (vetted[i].in & in)
			m |= (uint64_t)1 << i;
	return m;
}

uint64_t profile_seed(void)
{
	return mask_of(SEED);
}

uint64_t profile_compute(void)
{
	return mask_of(COMPUTE);
}

const char *profile_module(unsigned i)
{
	return i < NVETTED ? vetted[i].name : NULL;
}

int profile_bit(const char *name, size_t len)
{
	for (unsigned i = 0; i < NVETTED; i++)
		if (strlen(vetted[i].name) == len &&
		    memcmp(vetted[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

int profile_has(uint64_t mask, const char *name)
{
	int bit = profile_bit(name, strlen(name));

	return bit >= 0 && (mask >> bit & 1);
}

static const char *why_refused(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (strlen(refused[i].name) == len &&
		    memcmp(refused[i].name, name, len) == 0)
			return refused[i].why;
	return "not vetted: it has not been reviewed for the sandbox";
}

static int one_name(const char *p, size_t n, uint64_t *mask, char *err,
		    size_t errlen)
{
	int bit;

	while (n && *p == ' ')
		p++, n--;
	while (n && p[n - 1] == ' ')
		n--;
	if (n == 0) {
		snprintf(err, errlen, "allowed_modules: empty module name "
			 "(seed, compute, or names separated by commas)");
		return -1;
	}
	bit = profile_bit(p, n);
	if (bit < 0) {
		snprintf(err, errlen, "allowed_modules: module '%.*s' refused: "
			 "%s", n > 64 ? 64 : (int)n, p, why_refused(p, n));
		return -1;
	}
	*mask |= (uint64_t)1 << bit;
	return 0;
}

int profile_parse(const char *text, uint64_t *mask, char *err, size_t errlen)
{
	uint64_t m = 0;
	const char *p = text;

	if (!text || strlen(text) > PROFILE_TEXT_MAX) {
		snprintf(err, errlen, "allowed_modules: at most %d characters",
			 PROFILE_TEXT_MAX);
		return -1;
	}
	if (strcmp(text, "seed") == 0 || strcmp(text, "compute") == 0) {
		*mask = text[0] == 's' ? profile_seed() : profile_compute();
		return 0;
	}
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		if (one_name(p, n, &m, err, errlen) != 0)
			return -1;
		if (!comma)
			break;
		p = comma + 1;
	}
	*mask = m;
	return 0;
}

static void join(uint64_t mask, const char *sep, char *buf, size_t len)
{
	size_t used = 0;

	if (len)
		buf[0] = 0;
	for (unsigned i = 0; i < NVETTED && used < len; i++) {
		int n;

		if (!(mask >> i & 1))
			continue;
		n = snprintf(buf + used, len - used, "%s%s",
			     used ? sep : "", vetted[i].name);
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
}

void profile_names(uint64_t mask, char *buf, size_t len)
{
	join(mask, ", ", buf, len);
}

void profile_describe(uint64_t mask, char *buf, size_t len)
{
	if (mask == profile_seed())
		snprintf(buf, len, "seed");
	else if (mask == profile_compute())
		snprintf(buf, len, "compute");
	else
		join(mask, ",", buf, len);
}
