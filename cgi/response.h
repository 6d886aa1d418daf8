/* SPDX-License-Identifier: MIT */
/*
 * response.h: the only writer of stdout. Every response has the same JSON
 * shape: success, output, error, execution_time_ms always present.
 */
#ifndef PYEXEC_RESPONSE_H
#define PYEXEC_RESPONSE_H

#include "http.h"
#include "../sandbox/sandbox.h"

/* A refused request: status from e, success false, empty output. */
void respond_refusal(const struct http_error *e);

/* A run, whatever its outcome (200, or 500 for SB_INTERNAL). */
void respond_result(const struct sb_result *r);

#endif
