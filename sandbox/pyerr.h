/* SPDX-License-Identifier: MIT */
/* pyerr.h: the report of an uncaught exception, as a person reads it. */
#ifndef PYEXEC_PYERR_H
#define PYEXEC_PYERR_H

#include <stddef.h>

struct pyerr {
	char type[64];		/* the class name: "ZeroDivisionError" */
	const char *text;	/* traceback of the program's frames; static */
	size_t len;
};

/* Consumes the pending exception and fills e. src is the program. */
void pyerr_format(struct pyerr *e, const char *src, size_t srclen);

/* With SystemExit pending: 1 (and cleared) when its code means success,
 * else 0 with the exception left pending. */
int pyerr_exit_ok(void);

#endif
