/* SPDX-License-Identifier: MIT */
/*
 * metrics.c: the figures /metrics exposes (metrics.h), from the audit log
 * in one pass: grouped by HTTP status and outcome (the table's columns, so
 * no sort is needed beyond the groups), each group with its finished runs'
 * histogram and sums, and its rows still running past their deadline,
 * which runs_view calls 'abandoned' and so does /metrics (the same clock
 * expression).
 *
 * The pass reads every row: its cost grows with the audit log (bench/
 * measures it at a million rows). pyexec's connections run with triggers
 * disabled (store.c), so an aggregate kept by triggers is not an option;
 * prune keeps the log, and so a scrape, bounded.
 */
#include <stdio.h>
#include <string.h>
#include "store_int.h"
#include "metrics.h"
#include "../cgi/banned.h"

const double metrics_bound_ms[METRICS_NBOUNDS] = {
	5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
};

#define F "(" FINISHED_RUN ")"
#define LE(n) "sum(" F " AND exec_ms <= ?" #n "), "

/* The bounds are bound as ?1 to ?12, from metrics_bound_ms. */
static const char metrics_sql[] =
	"SELECT coalesce(http_status, 0), outcome, count(*), "
	"sum(outcome = 'running' AND deadline_ms < CAST((julianday('now') - "
	"2440587.5) * 86400000 AS INTEGER)), "
	"sum(" F "), total(CASE WHEN " F " THEN exec_ms END), total(cpu_ms), "
	LE(1) LE(2) LE(3) LE(4) LE(5) LE(6) LE(7) LE(8) LE(9) LE(10) LE(11)
	LE(12) "0 FROM runs GROUP BY http_status, outcome";
#define COL_LE 7

/* The pair for (http_status, outcome), made if new; past the table's end,
 * the last one. */
static struct metrics_pair *pair_for(struct store_metrics *m, int http_status,
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

/* One group's row into m. */
static void add_group(struct store_metrics *m, sqlite3_stmt *st)
{
	const char *outcome = (const char *)sqlite3_column_text(st, 1);
	int http = sqlite3_column_int(st, 0);
	int64_t n = sqlite3_column_int64(st, 2);
	int64_t abandoned = sqlite3_column_int64(st, 3);

	outcome = outcome ? outcome : "";
	pair_for(m, http, outcome)->requests += n - abandoned;
	if (abandoned)
		pair_for(m, http, "abandoned")->requests += abandoned;
	if (http == 429 && strcmp(outcome, "rejected") == 0)
		m->rate_limited += n;
	m->finished += sqlite3_column_int64(st, 4);
	m->exec_ms_sum += sqlite3_column_double(st, 5);
	m->cpu_ms_sum += (int64_t)sqlite3_column_double(st, 6);
	for (int i = 0; i < METRICS_NBOUNDS; i++)
		m->le[i] += sqlite3_column_int64(st, COL_LE + i);
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
	sqlite3_stmt *st;
	int rc;

	memset(m, 0, sizeof(*m));
	if ((rc = store_prepare(s, metrics_sql, &st)))
		return rc;
	for (int i = 0; i < METRICS_NBOUNDS; i++)
		sqlite3_bind_double(st, i + 1, metrics_bound_ms[i]);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		add_group(m, st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_sqlite_fail(s, rc, "read the audit log");
	return read_users(s, m);
}
