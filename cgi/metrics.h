/* SPDX-License-Identifier: MIT */
/*
 * metrics.h: GET /metrics, the audit log's figures in the Prometheus text
 * exposition format, for an admin's token or a client in metrics_allow.
 */
#ifndef PYEXEC_METRICS_H
#define PYEXEC_METRICS_H

#include "response.h"

/* 1 when the request is a GET (or HEAD) of a path ending in /metrics, as
 * the web server passes it (REQUEST_URI, PATH_INFO or SCRIPT_NAME). */
int metrics_requested(void);

/* Answers the scrape (or refuses it: 401, 403, 503) on stdout. A scrape is
 * not a run: no audit row, no quota, no sandbox. prog names the program
 * in messages on stderr. */
void metrics_serve(const char *db_path, struct reply *r, const char *prog);

#endif
