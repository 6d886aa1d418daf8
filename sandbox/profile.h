/* SPDX-License-Identifier: MIT */
/*
 * profile.h: the vetted modules and the profiles drawn from them. A
 * profile is a set of vetted modules, carried as a bit mask from the
 * setting (or a user's grant) to the sandbox child, which imports and
 * allows only those. Shared by the broker, pyexec-admin and the child; no
 * Python here.
 */
#ifndef PYEXEC_PROFILE_H
#define PYEXEC_PROFILE_H

#include <stddef.h>
#include <stdint.h>

/* The longest profile text: every vetted name, comma-separated. */
#define PROFILE_TEXT_MAX 384

/* The reference service's ten modules: the default, byte for byte. */
uint64_t profile_seed(void);
uint64_t profile_compute(void);

/*
 * "seed", "compute", or a comma-separated list of vetted names (spaces
 * around the names are ignored). Returns 0 with *mask set, or -1 with a
 * message in err naming the module and why it is not vetted.
 */
int profile_parse(const char *text, uint64_t *mask, char *err, size_t errlen);

/* Bit i of a mask is vetted module i; NULL past the last one. */
const char *profile_module(unsigned i);
/* The bit of a vetted top-level name[0..len), or -1. */
int profile_bit(const char *name, size_t len);

/* 1 when mask has the vetted module name. */
int profile_has(uint64_t mask, const char *name);

/* The names of mask, ", "-separated, in sorted order ("collections,
 * datetime, ..."): the ImportError's list. */
void profile_names(uint64_t mask, char *buf, size_t len);

/* "seed", "compute", or the names of mask comma-separated: what the
 * response and the audit log record. */
void profile_describe(uint64_t mask, char *buf, size_t len);

#endif
