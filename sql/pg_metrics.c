/* SPDX-License-Identifier: MIT */
/*
 * pg_metrics.c: /metrics' figures on PostgreSQL (metrics.c on SQLite): the
 * same groups and definitions, counted in one statement over the audit
 * log (FILTER where SQLite sums booleans).
 */
#include <stdio.h>
#include <string.h>
#include "pg_int.h"
#include "../cgi/banned.h"

#define F "(" FINISHED_RUN ")"
#define LE(n) "count(*) FILTER (WHERE " F " AND exec_ms <= $" #n "), "

static const char metrics_sql[] =
	"SELECT coalesce(http_status, 0), outcome, count(*), "
	"count(*) FILTER (WHERE outcome = 'running' AND deadline_ms < "
	"(extract(epoch FROM clock_timestamp()) * 1000)::bigint), "
	"count(*) FILTER (WHERE " F "), "
	"coalesce(sum(exec_ms) FILTER (WHERE " F "), 0), "
	"coalesce(sum(cpu_ms), 0), "
	LE(1) LE(2) LE(3) LE(4) LE(5) LE(6) LE(7) LE(8) LE(9) LE(10) LE(11)
	LE(12) "0 FROM runs GROUP BY http_status, outcome";
#define COL_LE 7

static void add_group(struct store_metrics *m, const PGresult *r, int i)
{
	const char *outcome = pg_text(r, i, 1);
	int http = (int)pg_int(r, i, 0);
	int64_t n = pg_int(r, i, 2), abandoned = pg_int(r, i, 3);

	outcome = outcome ? outcome : "";
	metrics_pair_for(m, http, outcome)->requests += n - abandoned;
	if (abandoned)
		metrics_pair_for(m, http, "abandoned")->requests += abandoned;
	if (http == 429 && strcmp(outcome, "rejected") == 0)
		m->rate_limited += n;
	m->finished += pg_int(r, i, 4);
	m->exec_ms_sum += pg_double(r, i, 5);
	m->cpu_ms_sum += (int64_t)pg_double(r, i, 6);
	for (int b = 0; b < METRICS_NBOUNDS; b++)
		m->le[b] += pg_int(r, i, COL_LE + b);
}

int pg_metrics(struct store *s, struct store_metrics *m)
{
	struct pg_q q[2];
	PGresult *res[2] = { 0 };
	int rc;

	memset(m, 0, sizeof(*m));
	pg_q_init(&q[0], metrics_sql);
	for (int b = 0; b < METRICS_NBOUNDS; b++)
		pg_q_double(&q[0], metrics_bound_ms[b]);
	pg_q_init(&q[1], "SELECT count(*) FROM users");
	rc = pg_run(s, q, 2, res, 1, "read the audit log");
	for (int i = 0; rc == STORE_OK && i < PQntuples(res[0]); i++)
		add_group(m, res[0], i);
	m->users = pg_int(res[1], 0, 0);
	PQclear(res[0]);
	PQclear(res[1]);
	return rc;
}
