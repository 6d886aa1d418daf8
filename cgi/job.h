/* SPDX-License-Identifier: MIT */
/*
 * job.h: the request body, validated field by field against a table
 * (unknown, duplicate, missing and mistyped fields each get their own 400).
 */
#ifndef PYEXEC_JOB_H
#define PYEXEC_JOB_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include "../sql/settings.h"
#include "http.h"

struct job {
	cJSON *root;		/* owns everything below */
	const char *code;	/* valid UTF-8, no NUL */
	size_t code_len;
	const char *token;	/* NULL when absent */
	int input_empty;	/* input_data absent or {} */
	const char *input;	/* input_data's bytes in the body, as received */
	size_t input_len;	/* their number (0 when input_empty) */
};

/* body must stay alive as long as the job. Returns 0, or -1 with e. */
int job_parse(struct job *j, const char *body, size_t len,
	      const struct settings *cfg, struct http_error *e);
void job_release(struct job *j);

#endif
