/* SPDX-License-Identifier: MIT */
/*
 * totals.h: the audit log's running totals (sql/totals.c), kept by the
 * data layer's writers inside their transactions; nothing outside sql/
 * includes it.
 */
#ifndef PYEXEC_TOTALS_H
#define PYEXEC_TOTALS_H

#include <stdint.h>

struct store;

/* Adds (sign 1) or takes away (sign -1) the row id's contribution; a row
 * still running has none. */
int totals_row(struct store *s, const char *id, int sign);
/* Takes away the rows prune is about to delete (started before
 * before_ms, not running). */
int totals_prune(struct store *s, int64_t before_ms);
/* The SQL expression of a row's group's bucket (columns outcome and
 * exec_ms), shared by every writer, the rebuild and the check, on both
 * backends. */
const char *totals_bucket_sql(void);

/* Recomputes every total from the log (a migration, vacuum). */
int totals_rebuild(struct store *s);

/* The statement totals_disagree runs (NULL if it cannot be made). */
const char *totals_check_sql(void);
/* The groups whose totals differ from a count of the log, -1 when it
 * cannot be read (doctor's check). */
int64_t totals_disagree(struct store *s);

/* Called once per group: bucket -1 for rows that are not finished runs,
 * else the histogram's bucket index (METRICS_NBOUNDS: past the last
 * bound). Rows still running come as outcome "running" or "abandoned". */
typedef void (*totals_fn)(void *arg, int http_status, const char *outcome,
			  int bucket, int64_t requests, double exec_ms,
			  int64_t cpu_ms);
int totals_read(struct store *s, totals_fn fn, void *arg);
/* The totals_fn that adds a group to /metrics' figures (metrics.c); arg
 * is a struct store_metrics. */
void metrics_add_group(void *arg, int http_status, const char *outcome,
		       int bucket, int64_t requests, double exec_ms,
		       int64_t cpu_ms);

#endif
