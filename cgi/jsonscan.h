/* SPDX-License-Identifier: MIT */
/*
 * jsonscan.h: a pass over the raw request before cJSON sees it, for what
 * cJSON cannot tell us: nesting deeper than we allow (its own limit is
 * 1000, compiled into Debian's library), a \u0000 escape, which it would
 * silently turn into the end of a C string, and the bytes it skips as
 * whitespace that JSON does not (control bytes, a byte order mark), which
 * the child's json would refuse. Then where a member's value lies, so that
 * the child gets those bytes and nothing else of the request.
 */
#ifndef PYEXEC_JSONSCAN_H
#define PYEXEC_JSONSCAN_H

#include <stddef.h>

enum scan_result {
	SCAN_OK, SCAN_TOO_DEEP, SCAN_NUL, SCAN_SYNTAX,
	SCAN_BOM,		/* a byte order mark at the start */
	SCAN_CONTROL,		/* a byte outside strings JSON does not allow */
};

enum scan_result json_scan(const char *s, size_t n, int max_depth);
/* What is wrong with a body json_scan refused, for the client's 400 (the
 * depth as JSON_MAX_DEPTH); NULL for SCAN_OK. */
const char *json_scan_problem(enum scan_result r);

/* The bytes of the value of the index-th member (from 0) of the object s,
 * which json_scan and cJSON have accepted: *off and *len. 0, or -1 when s
 * has no such member. */
int json_member_span(const char *s, size_t n, size_t index,
		     size_t *off, size_t *len);

#endif
