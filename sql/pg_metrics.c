/* SPDX-License-Identifier: MIT */
/*
 * pg_metrics.c: /metrics' figures on PostgreSQL (metrics.c on SQLite),
 * from the same running totals (pg_totals.c) and the rows still running,
 * which the partial index runs_running answers: a scrape reads a few
 * dozen rows whatever the size of the log, in one statement (so one
 * snapshot) and one round trip with the count of users.
 */
#include <stdio.h>
#include <string.h>
#include "pg_int.h"
#include "metrics.h"
#include "totals.h"
#include "../cgi/banned.h"

/* totals.c's totals_read, with runs_view's clock. */
static const char totals_sql[] =
	"SELECT http_status, outcome, bucket, requests, exec_ms, cpu_ms "
	"FROM run_totals WHERE requests <> 0 UNION ALL SELECT 0, CASE WHEN "
	"deadline_ms < (extract(epoch FROM clock_timestamp()) * 1000)::bigint "
	"THEN 'abandoned' ELSE 'running' END, -1, count(*), 0, 0 FROM runs "
	"WHERE outcome = 'running' GROUP BY 2";

static void add_group(struct store_metrics *m, const PGresult *r, int i)
{
	const char *outcome = pg_text(r, i, 1);

	metrics_add_group(m, (int)pg_int(r, i, 0), outcome ? outcome : "",
			  (int)pg_int(r, i, 2), pg_int(r, i, 3),
			  pg_double(r, i, 4), pg_int(r, i, 5));
}

int pg_metrics(struct store *s, struct store_metrics *m)
{
	struct pg_q q[2];
	PGresult *res[2] = { 0 };
	int rc;

	memset(m, 0, sizeof(*m));
	pg_q_init(&q[0], totals_sql);
	pg_q_init(&q[1], "SELECT count(*) FROM users");
	rc = pg_run(s, q, 2, res, 1, "read the totals");
	for (int i = 0; rc == STORE_OK && i < PQntuples(res[0]); i++)
		add_group(m, res[0], i);
	m->users = pg_int(res[1], 0, 0);
	PQclear(res[0]);
	PQclear(res[1]);
	return rc;
}
