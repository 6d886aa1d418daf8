/* SPDX-License-Identifier: MIT */
/*
 * metrics.h: the audit log's figures for /metrics (cgi/metrics.c), by the
 * same definitions as pyexec-admin stats: a
 * request is a row of runs_view, its outcome runs_view.status, a finished
 * run one neither refused nor running with an exec_ms.
 */
#ifndef PYEXEC_METRICS_SQL_H
#define PYEXEC_METRICS_SQL_H

#include <stdint.h>
#include "store.h"

/* The histogram's upper bounds, in ms; +Inf is the count of the
 * finished runs. */
#define METRICS_NBOUNDS 12
extern const double metrics_bound_ms[METRICS_NBOUNDS];

/* The (HTTP status, outcome) pairs kept apart; more are summed into the
 * last. There are about twenty in practice. */
#define METRICS_MAX_PAIRS 128

struct metrics_pair {
	int http_status;	/* 0: none yet (a row still running) */
	char outcome[16];
	int64_t requests;
};

struct store_metrics {
	struct metrics_pair pair[METRICS_MAX_PAIRS];
	size_t npairs;
	int64_t rate_limited;			/* refused with 429 */
	int64_t finished;			/* the histogram's count */
	int64_t le[METRICS_NBOUNDS];		/* finished, exec_ms <= bound */
	double exec_ms_sum;
	int64_t cpu_ms_sum;
	int64_t users;
};

/* The pair for (http_status, outcome) in m, made if new; past the table's
 * end, the last one. Both backends' readers fill m through it. */
struct metrics_pair *metrics_pair_for(struct store_metrics *m, int http_status,
				      const char *outcome);

int store_metrics(struct store *s, struct store_metrics *m);

#endif
