/* SPDX-License-Identifier: MIT */
/*
 * metrics.c: the figures /metrics exposes (metrics.h), from the audit
 * log's running totals (sql/totals.c: one row per HTTP status, outcome
 * and histogram bucket) and the rows still running, which runs_view calls
 * 'abandoned' once past their deadline, and so does /metrics. A scrape
 * reads a few dozen rows whatever the size of the log.
 */
#include <stdio.h>
#include <string.h>
#include "store_int.h"
#include "metrics.h"
#include "totals.h"
#include "../cgi/banned.h"

const double metrics_bound_ms[METRICS_NBOUNDS] = {
	5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
};

struct metrics_pair *metrics_pair_for(struct store_metrics *m, int http_status,
				      const char *outcome)
{
	struct metrics_pair *p;

	for (size_t i = 0; i < m->npairs; i++)
		if (m->pair[i].http_status == http_status &&
		    strcmp(m->pair[i].outcome, outcome) == 0)
			return &m->pair[i];
	if (m->npairs == METRICS_MAX_PAIRS)
		return &m->pair[METRICS_MAX_PAIRS - 1];
	p = &m->pair[m->npairs++];
	p->http_status = http_status;
	snprintf(p->outcome, sizeof(p->outcome), "%s", outcome);
	return p;
}

/* One group of the totals into m (a totals_fn; pg_metrics.c's too). */
void metrics_add_group(void *arg, int http_status, const char *outcome,
		       int bucket, int64_t requests, double exec_ms,
		       int64_t cpu_ms)
{
	struct store_metrics *m = arg;

	metrics_pair_for(m, http_status, outcome)->requests += requests;
	if (http_status == 429 && strcmp(outcome, "rejected") == 0)
		m->rate_limited += requests;
	m->cpu_ms_sum += cpu_ms;
	if (bucket < 0)
		return;
	m->finished += requests;
	m->exec_ms_sum += exec_ms;
	/* The buckets are cumulative: a run counts under every bound at or
	 * above its own. */
	for (int i = bucket; i < METRICS_NBOUNDS; i++)
		m->le[i] += requests;
}

static int read_users(struct store *s, struct store_metrics *m)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_prepare(s, "SELECT count(*) FROM users", &st)))
		return rc;
	rc = sqlite3_step(st);
	m->users = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? STORE_OK :
	       store_sqlite_fail(s, rc, "count the users");
}

int sq_metrics(struct store *s, struct store_metrics *m)
{
	int rc;

	memset(m, 0, sizeof(*m));
	if ((rc = store_exec(s, "BEGIN", "read the totals")))
		return rc;
	rc = totals_read(s, metrics_add_group, m);
	if (rc == STORE_OK)
		rc = read_users(s, m);
	sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	return rc;
}
