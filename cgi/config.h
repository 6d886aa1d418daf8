/* SPDX-License-Identifier: MIT */
/*
 * config.h: the limits in force for this request. The database's settings
 * (sql/settings.c) hold them; the web server may override any of them for
 * its own requests with an environment variable (PYEXEC_TIMEOUT_MS, ...),
 * which is also how the tests lower them. Clients cannot: HTTP headers
 * reach a CGI only as HTTP_* variables.
 */
#ifndef PYEXEC_CONFIG_H
#define PYEXEC_CONFIG_H

#include <stddef.h>
#include "../sql/settings.h"

/* Applies the PYEXEC_* overrides to s. Returns 0, or -1 with the
 * offending variable named in err. */
int config_env_override(struct settings *s, char *err, size_t errlen);

/* Parses a decimal in [min, max]; returns 0 or -1. No sign, no spaces. */
int parse_long(const char *s, long min, long max, long *out);

#endif
