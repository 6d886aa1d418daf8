/* SPDX-License-Identifier: MIT */
/*
 * jsonscan.h: a pass over the raw request before cJSON sees it, for what
 * cJSON cannot tell us: nesting deeper than we allow (its own limit is
 * 1000, compiled into Debian's library) and a \u0000 escape, which it would
 * silently turn into the end of a C string.
 */
#ifndef PYEXEC_JSONSCAN_H
#define PYEXEC_JSONSCAN_H

#include <stddef.h>

enum scan_result { SCAN_OK, SCAN_TOO_DEEP, SCAN_NUL, SCAN_SYNTAX };

enum scan_result json_scan(const char *s, size_t n, int max_depth);

#endif
