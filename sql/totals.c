/* SPDX-License-Identifier: MIT */
/*
 * totals.c: the audit log's running totals (table run_totals), which GET
 * /metrics reads instead of the whole log. Every change to a row of runs
 * that leaves or enters a counted state goes through here, in the
 * transaction of the change: the row's old contribution is taken away,
 * the change made, the new one added. One SQL expression decides a row's
 * group (status, outcome, histogram bucket) for the writers, prune and
 * the rebuild alike, so the totals and a scan of the log never disagree.
 *
 * Rows still 'running' are left out: their count comes from runs itself
 * (a partial index keeps that cheap), since whether one is abandoned
 * depends on the clock.
 */
#include <stdio.h>
#include <string.h>
#include "store_int.h"
#include "metrics.h"
#include "totals.h"
#include "../cgi/banned.h"

/* runs_view's clock, so a row is abandoned here exactly when there. */
#define NOW_MS "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"

/* "CASE WHEN <not finished> THEN -1 WHEN exec_ms <= 5 THEN 0 ... ELSE
 * METRICS_NBOUNDS END", from metrics_bound_ms: SQL both backends read
 * alike (pg_totals.c uses it too). */
const char *totals_bucket_sql(void)
{
	static char sql[1024];
	size_t len;

	if (sql[0])
		return sql;
	len = (size_t)snprintf(sql, sizeof(sql), "CASE WHEN NOT (%s) THEN -1",
			       FINISHED_RUN);
	for (int i = 0; i < METRICS_NBOUNDS && len < sizeof(sql); i++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len,
					" WHEN exec_ms <= %.17g THEN %d",
					metrics_bound_ms[i], i);
	if (len < sizeof(sql))
		snprintf(sql + len, sizeof(sql) - len, " ELSE %d END",
			 METRICS_NBOUNDS);
	return sql;
}

/* The upsert every writer shares: adds the rows SELECTed (with their
 * signed count and sums) to their groups. */
#define UPSERT " ON CONFLICT (http_status, outcome, bucket) DO UPDATE SET " \
	"requests = requests + excluded.requests, " \
	"exec_ms = exec_ms + excluded.exec_ms, " \
	"cpu_ms = cpu_ms + excluded.cpu_ms"

/* The grouped contribution of the rows matching `where`, times ?9 (the
 * sign). */
static int add_rows(struct store *s, const char *where, const char *id,
		    int64_t before_ms, int sign)
{
	char sql[2048];
	sqlite3_stmt *st;
	int n, rc;

	n = snprintf(sql, sizeof(sql), "INSERT INTO run_totals (http_status, "
		     "outcome, bucket, requests, exec_ms, cpu_ms) SELECT "
		     "coalesce(http_status, 0), outcome, %s AS b, ?9 * count(*), "
		     "?9 * total(CASE WHEN %s THEN exec_ms END), "
		     "?9 * coalesce(sum(cpu_ms), 0) FROM runs WHERE "
		     "outcome <> 'running' AND %s GROUP BY 1, 2, 3" UPSERT,
		     totals_bucket_sql(), FINISHED_RUN, where);
	if (n < 0 || (size_t)n >= sizeof(sql))
		return store_fail(s, STORE_INVALID, "totals statement too long");
	if ((rc = store_prepare(s, sql, &st)))
		return rc;
	if (id)
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, before_ms);
	sqlite3_bind_int(st, 9, sign);
	return store_step_done(s, st, "update the totals");
}

int totals_row(struct store *s, const char *id, int sign)
{
	return add_rows(s, "id = ?1", id, 0, sign);
}

/* Groups emptied by a prune go, so the table stays as small as the
 * number of groups in use. */
static int drop_empty(struct store *s)
{
	return store_exec(s, "DELETE FROM run_totals WHERE requests = 0",
			  "tidy the totals");
}

int totals_prune(struct store *s, int64_t before_ms)
{
	int rc = add_rows(s, "started_ms < ?2", NULL, before_ms, -1);

	return rc ? rc : drop_empty(s);
}

int totals_rebuild(struct store *s)
{
	int rc = store_exec(s, "DELETE FROM run_totals", "clear the totals");

	return rc ? rc : add_rows(s, "1", NULL, 0, 1);
}

/* One number: the groups where the totals and a count of the log differ
 * (SQL both backends read alike; pg_totals.c uses it too). */
const char *totals_check_sql(void)
{
	static char sql[2048];
	int len;

	if (sql[0])
		return sql;
	len = snprintf(sql, sizeof(sql), "WITH log AS (SELECT coalesce("
		       "http_status, 0) AS h, outcome AS o, %s AS b, count(*) "
		       "AS n FROM runs WHERE outcome <> 'running' GROUP BY 1, "
		       "2, 3), kept AS (SELECT http_status, outcome, bucket, "
		       "requests FROM run_totals WHERE requests <> 0) SELECT "
		       "(SELECT count(*) FROM (SELECT * FROM log EXCEPT SELECT "
		       "* FROM kept) AS a) + (SELECT count(*) FROM (SELECT * "
		       "FROM kept EXCEPT SELECT * FROM log) AS b)",
		       totals_bucket_sql());
	if (len < 0 || (size_t)len >= sizeof(sql))
		sql[0] = 0;
	return sql[0] ? sql : NULL;
}

int64_t totals_disagree(struct store *s)
{
	const char *sql = totals_check_sql();
	sqlite3_stmt *st;
	int64_t n = -1;

	if (!sql || store_prepare(s, sql, &st) != STORE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

int totals_read(struct store *s, totals_fn fn, void *arg)
{
	sqlite3_stmt *st;
	int rc;

	/* A running row has no status nor figures yet (the broker writes
	 * them as it completes the row), so the index alone answers. */
	if ((rc = store_prepare(s, "SELECT http_status, outcome, bucket, "
				"requests, exec_ms, cpu_ms FROM run_totals "
				"WHERE requests <> 0 UNION ALL SELECT 0, "
				"CASE WHEN deadline_ms < " NOW_MS " THEN "
				"'abandoned' ELSE 'running' END, -1, count(*), "
				"0, 0 FROM runs WHERE outcome = 'running' "
				"GROUP BY 2", &st)))
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *outcome = (const char *)sqlite3_column_text(st, 1);

		fn(arg, sqlite3_column_int(st, 0), outcome ? outcome : "",
		   sqlite3_column_int(st, 2), sqlite3_column_int64(st, 3),
		   sqlite3_column_double(st, 4), sqlite3_column_int64(st, 5));
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? STORE_OK :
	       store_sqlite_fail(s, rc, "read the totals");
}
