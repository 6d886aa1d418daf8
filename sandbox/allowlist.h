/* SPDX-License-Identifier: MIT */
/* allowlist.h: the modules a program may import, and what each needs. */
#ifndef PYEXEC_ALLOWLIST_H
#define PYEXEC_ALLOWLIST_H

#include <stddef.h>
#include <stdint.h>

/* Returns 1 when top-level module name[0..len) may be imported under the
 * profile mask (sandbox/profile.h). */
int allowlist_allows(uint64_t mask, const char *name, size_t len);

/* Also 1 for a module an allowlisted one needs internally (_strptime,
 * fractions, ...), full name name[0..len); the caller checks it is loaded. */
int allowlist_allows_loaded(uint64_t mask, const char *name, size_t len);

/* "collections, datetime, ..." for error messages. */
const char *allowlist_names(uint64_t mask);

/*
 * Calls load(name, arg) for every module to import before lockdown for a
 * program whose source is src[0..len): each allowed module the source
 * names as a word, followed by the modules it imports lazily at call time,
 * and the standard text codecs when the source may use one.
 * Stops at and returns the first non-zero value from load.
 */
int allowlist_preload(uint64_t mask, const char *src, size_t len,
		      int (*load)(const char *name, void *arg), void *arg);

#endif
