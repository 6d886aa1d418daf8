/* SPDX-License-Identifier: MIT */
/*
 * pg_totals.c: the audit log's running totals on PostgreSQL (totals.c on
 * SQLite: the same table run_totals, the same groups, the same bucket
 * expression, totals_bucket_sql). A write that ends a row carries its
 * totals in the same statement: the write is a data-modifying CTE whose
 * RETURNING rows (with a sign: 1 added, -1 taken away) feed an upsert of
 * their groups, so no round trip is added and the row and its totals
 * commit together.
 *
 * Concurrency. Many hosts add to the same few groups at once. Each adds
 * with INSERT ... ON CONFLICT DO UPDATE (n = run_totals.n + excluded.n):
 * a row lock on the group, held to the end of a transaction that ends
 * right after. Lock order, the same for every writer: the admission's
 * advisory lock (pg_runs.c) first, then rows of runs, then rows of
 * run_totals (an aggregate reads all its input, so a statement has
 * locked every row of runs it writes before it takes any group's lock),
 * in the order of their key when a statement takes several (ORDER BY).
 * Nothing waits for an advisory lock or a row of runs while holding a
 * group's lock: the upsert is the last statement of its transaction. So
 * no cycle, hence no deadlock; a wait is as long as another host's
 * short transaction.
 *
 * The rebuild (a migration, vacuum) takes the table in EXCLUSIVE mode
 * first: every writer's transaction with a pending change of the totals
 * ends before it counts the log, and the next ones wait for its end, so
 * no change is counted twice or missed.
 */
#include <stdio.h>
#include <string.h>
#include "pg_int.h"
#include "totals.h"
#include "../cgi/banned.h"

/* The upsert of the signed rows of CTE d (sign, http_status, outcome,
 * exec_ms, cpu_ms) into their groups, as a CTE named t. Rows still
 * running have no group (totals.c). */
#define UPSERT_FMT "t AS (INSERT INTO run_totals (http_status, outcome, " \
	"bucket, requests, exec_ms, cpu_ms) SELECT coalesce(http_status, " \
	"0), outcome, %s, sum(sign), coalesce(sum(sign * CASE WHEN " \
	FINISHED_RUN " THEN exec_ms END), 0), coalesce(sum(sign * cpu_ms), " \
	"0) FROM d WHERE outcome <> 'running' GROUP BY 1, 2, 3 " \
	"ORDER BY 1, 2, 3 ON CONFLICT (http_status, outcome, bucket) DO " \
	"UPDATE SET requests = run_totals.requests + excluded.requests, " \
	"exec_ms = run_totals.exec_ms + excluded.exec_ms, " \
	"cpu_ms = run_totals.cpu_ms + excluded.cpu_ms)"

const char *pg_totals_with(char *buf, size_t size, const char *ctes,
			   const char *result)
{
	int n;

	if (buf[0])
		return buf;
	n = snprintf(buf, size, "WITH %s, " UPSERT_FMT " %s", ctes,
		     totals_bucket_sql(), result);
	if (n < 0 || (size_t)n >= size) {
		buf[0] = 0;
		return NULL;
	}
	return buf;
}

/* Every group, from the log. */
static const char *from_log(void)
{
	static char sql[4096];

	return pg_totals_with(sql, sizeof(sql), "d AS (SELECT 1 AS sign, "
			      "http_status, outcome, exec_ms, cpu_ms FROM "
			      "runs)", "SELECT 0");
}

int pg_totals_rebuild(struct store *s, int own_tx)
{
	const char *fill = from_log();
	struct pg_q q[6];
	int n = 0;

	if (!fill)
		return store_fail(s, STORE_INVALID, "totals statement too long");
	if (own_tx) {
		/* Without the requests' statement timeout: a count of the
		 * whole log (vacuum). */
		pg_q_init(&q[n++], "BEGIN");
		pg_q_init(&q[n++], "SET LOCAL statement_timeout = 0");
	}
	pg_q_init(&q[n++], "LOCK TABLE run_totals IN EXCLUSIVE MODE");
	pg_q_init(&q[n++], "DELETE FROM run_totals");
	pg_q_init(&q[n++], fill);
	if (own_tx)
		pg_q_init(&q[n++], "COMMIT");
	return pg_run(s, q, n, NULL, 0, "rebuild the totals");
}

void pg_q_totals_check(struct pg_q *q)
{
	const char *sql = totals_check_sql();

	pg_q_init(q, sql ? sql : "SELECT -1");
}
