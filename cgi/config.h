/* SPDX-License-Identifier: MIT */
/*
 * config.h: the limits in force for this request: compiled-in defaults
 * (limits.h), each overridable by an environment variable that the web
 * server (or a test) sets. Clients cannot set these: HTTP headers reach a
 * CGI only as HTTP_* variables.
 */
#ifndef PYEXEC_CONFIG_H
#define PYEXEC_CONFIG_H

#include <stddef.h>

struct config {
	long timeout_ms;	/* PYEXEC_TIMEOUT_MS */
	long cpu_ms;		/* PYEXEC_CPU_MS (default: the timeout) */
	long memory_mb;		/* PYEXEC_MEMORY_MB */
	long output_bytes;	/* PYEXEC_OUTPUT_BYTES */
	long code_bytes;	/* PYEXEC_CODE_BYTES */
	long input_bytes;	/* PYEXEC_INPUT_BYTES */
	long body_bytes;	/* PYEXEC_BODY_BYTES */
	long body_timeout_ms;	/* PYEXEC_BODY_TIMEOUT_MS */
};

/* Returns 0, or -1 with the offending variable named in err. */
int config_load(struct config *c, char *err, size_t errlen);

/* Parses a decimal in [min, max]; returns 0 or -1. No sign, no spaces. */
int parse_long(const char *s, long min, long max, long *out);

#endif
