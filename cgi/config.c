/* SPDX-License-Identifier: MIT */
/* config.c: environment overrides of the settings (see config.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include "config.h"
#include "limits.h"
#include "banned.h"

int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int setting(const char *name, long min, long max, long *val,
		   char *err, size_t errlen)
{
	const char *s = getenv(name);

	if (!s)
		return 0;
	if (parse_long(s, min, max, val) == 0)
		return 0;
	snprintf(err, errlen, "%s must be an integer from %ld to %ld", name,
		 min, max);
	return -1;
}

int config_env_override(struct settings *c, char *err, size_t errlen)
{
	return setting("PYEXEC_TIMEOUT_MS", 1, MAX_TIMEOUT_MS, &c->timeout_ms,
		       err, errlen) ||
	       setting("PYEXEC_CPU_MS", 1, MAX_TIMEOUT_MS, &c->cpu_ms,
		       err, errlen) ||
	       setting("PYEXEC_MEMORY_MB", 32, MAX_MEMORY_MB, &c->memory_mb,
		       err, errlen) ||
	       setting("PYEXEC_OUTPUT_BYTES", 1, MAX_OUTPUT_BYTES,
		       &c->output_bytes, err, errlen) ||
	       setting("PYEXEC_CODE_BYTES", 1, MAX_CODE_BYTES, &c->code_bytes,
		       err, errlen) ||
	       setting("PYEXEC_INPUT_BYTES", 2, MAX_INPUT_BYTES,
		       &c->input_bytes, err, errlen) ||
	       setting("PYEXEC_BODY_BYTES", 16, MAX_BODY_BYTES, &c->body_bytes,
		       err, errlen) ||
	       setting("PYEXEC_BODY_TIMEOUT_MS", 1, MAX_TIMEOUT_MS,
		       &c->body_timeout_ms, err, errlen) ? -1 : 0;
}
