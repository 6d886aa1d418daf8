/* SPDX-License-Identifier: MIT */
/*
 * pg_manage.c: the audit log's queries, maintenance and /metrics' figures
 * on PostgreSQL (manage.c and metrics.c on SQLite). Differences: the rowid
 * is runs.seq, a boolean is counted with FILTER, LIKE stands for GLOB, and
 * numbers compared with 0 are cast (PostgreSQL infers a parameter's type
 * from its first use).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pg_int.h"
#include "../cgi/banned.h"

#define RUN_COLUMNS "seq, id, started_ms, finished_ms, deadline_ms, " \
	"identity, user_name, client_addr, broker_pid, code_sha256, code, " \
	"code_size, input_size, outcome, status, error_type, error, " \
	"output_size, truncated, exec_ms, wall_ms, cpu_ms, peak_kb, " \
	"http_status, counted, profile, via"

#define RUN_WHERE "WHERE " \
	"($1::text IS NULL OR user_name = $1) AND " \
	"($2::int = 0 OR identity LIKE 'anon:%%') AND " \
	"($3::text IS NULL OR client_addr = $3) AND " \
	"($4::bigint = 0 OR started_ms >= $4) AND " \
	"($5::bigint = 0 OR started_ms < $5) AND " \
	"($6::text IS NULL OR status = $6) AND " \
	"($7::int = 0 OR status <> 'ok') AND " \
	"seq > $8::bigint AND ($10::bigint = 0 OR seq <= $10) AND " \
	"($11::text IS NULL OR via = $11) "

static void q_filter(struct pg_q *q, const struct run_filter *f)
{
	pg_q_text(q, f->user);
	pg_q_int(q, f->anonymous);
	pg_q_text(q, f->client);
	pg_q_int(q, f->since_ms);
	pg_q_int(q, f->until_ms);
	pg_q_text(q, f->status);
	pg_q_int(q, f->failed);
	pg_q_int(q, f->after_rowid);
	if (f->limit > 0)
		pg_q_int(q, f->limit);
	else
		pg_q_text(q, NULL);
	pg_q_int(q, f->upto_rowid);
	pg_q_text(q, f->via);
}

static void read_run(const PGresult *res, int i, struct run_row *r)
{
	memset(r, 0, sizeof(*r));
	for (int c = 0; c < RUN_NCOLUMNS; c++)
		if (PQgetisnull(res, i, c))
			r->nulls |= 1u << c;
	r->rowid = pg_int(res, i, RUN_ROWID);
	r->id = pg_text(res, i, RUN_ID);
	r->started_ms = pg_int(res, i, RUN_STARTED_MS);
	r->has_finished = !RUN_IS_NULL(r, RUN_FINISHED_MS);
	r->finished_ms = pg_int(res, i, RUN_FINISHED_MS);
	r->deadline_ms = pg_int(res, i, RUN_DEADLINE_MS);
	r->identity = pg_text(res, i, RUN_IDENTITY);
	r->user_name = pg_text(res, i, RUN_USER_NAME);
	r->client_addr = pg_text(res, i, RUN_CLIENT_ADDR);
	r->broker_pid = pg_int(res, i, RUN_BROKER_PID);
	r->code_sha256 = pg_text(res, i, RUN_CODE_SHA256);
	r->code = pg_text(res, i, RUN_CODE);
	r->code_size = pg_int(res, i, RUN_CODE_SIZE);
	r->input_size = pg_int(res, i, RUN_INPUT_SIZE);
	r->outcome = pg_text(res, i, RUN_OUTCOME);
	r->status = pg_text(res, i, RUN_STATUS);
	r->error_type = pg_text(res, i, RUN_ERROR_TYPE);
	r->error = pg_text(res, i, RUN_ERROR);
	r->output_size = pg_int(res, i, RUN_OUTPUT_SIZE);
	r->truncated = (int)pg_int(res, i, RUN_TRUNCATED);
	r->has_exec = !RUN_IS_NULL(r, RUN_EXEC_MS);
	r->exec_ms = pg_double(res, i, RUN_EXEC_MS);
	r->wall_ms = pg_double(res, i, RUN_WALL_MS);
	r->cpu_ms = pg_int(res, i, RUN_CPU_MS);
	r->peak_kb = pg_int(res, i, RUN_PEAK_KB);
	r->http_status = (int)pg_int(res, i, RUN_HTTP_STATUS);
	r->counted = (int)pg_int(res, i, RUN_COUNTED);
	r->profile = pg_text(res, i, RUN_PROFILE);
	r->via = pg_text(res, i, RUN_VIA);
}

struct run_walk {
	run_cb cb;
	void *arg;
	int seen;
};

static int one_run(const PGresult *res, void *arg)
{
	struct run_walk *w = arg;
	struct run_row r;

	read_run(res, 0, &r);
	w->seen++;
	return w->cb(&r, w->arg);
}

/* Runs q and hands each row to cb as it arrives; *seen counts them. */
static int each_run(struct store *s, struct pg_q *q, run_cb cb, void *arg,
		    int *seen)
{
	struct run_walk w = { cb, arg, 0 };
	int rc = pg_each_row(s, q, one_run, &w, "read the audit log");

	*seen = w.seen;
	return rc;
}

int pg_runs_query(struct store *s, const struct run_filter *f, run_cb cb,
		  void *arg)
{
	char sql[1536];
	struct pg_q q;
	int seen = 0;

	snprintf(sql, sizeof(sql), "SELECT " RUN_COLUMNS " FROM runs_view "
		 RUN_WHERE "ORDER BY seq %s LIMIT $9::bigint",
		 f->newest_first ? "DESC" : "ASC");
	pg_q_init(&q, sql);
	q_filter(&q, f);
	return each_run(s, &q, cb, arg, &seen);
}

int pg_runs_count(struct store *s, const struct run_filter *f, long *n)
{
	struct pg_q q;
	PGresult *res = NULL;
	int rc;

	pg_q_init(&q, "SELECT count(*) FROM (SELECT 1 FROM runs_view "
		  RUN_WHERE "LIMIT $9::bigint) AS t");
	q_filter(&q, f);
	rc = pg_one(s, &q, &res, "count the audit log");
	*n = (long)pg_int(res, 0, 0);
	PQclear(res);
	return rc;
}

int pg_run_by_id(struct store *s, const char *id, run_cb cb, void *arg)
{
	struct pg_q q;
	int seen = 0, rc;

	pg_q_init(&q, "SELECT " RUN_COLUMNS " FROM runs_view WHERE id = $1");
	pg_q_text(&q, id);
	rc = each_run(s, &q, cb, arg, &seen);
	if (rc == STORE_OK && !seen)
		return store_fail(s, STORE_NOTFOUND, "no request '%s'", id);
	return rc;
}

int pg_run_resolve(struct store *s, const char *prefix, char id[33])
{
	char pattern[34];
	size_t n = strlen(prefix);
	struct pg_q q;
	PGresult *res = NULL;
	int rc, found;

	if (n < 1 || n > 32)
		return store_fail(s, STORE_NOTFOUND, "no request '%s'", prefix);
	for (size_t i = 0; i < n; i++) {
		char c = prefix[i];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return store_fail(s, STORE_NOTFOUND, "no request '%s'",
					  prefix);
		pattern[i] = c;
	}
	pattern[n] = '%';
	pattern[n + 1] = 0;
	pg_q_init(&q, "SELECT id FROM runs WHERE id LIKE $1 LIMIT 2");
	pg_q_text(&q, pattern);
	if ((rc = pg_one(s, &q, &res, "find the request")) != STORE_OK) {
		PQclear(res);
		return rc;
	}
	found = PQntuples(res);
	if (found == 1)
		snprintf(id, 33, "%s", pg_text(res, 0, 0));
	PQclear(res);
	if (!found)
		return store_fail(s, STORE_NOTFOUND, "no request '%s'", prefix);
	if (found > 1)
		return store_fail(s, STORE_CONFLICT, "request id '%s' is "
				  "ambiguous: give more of it", prefix);
	return STORE_OK;
}

/* One number from a statement without parameters (but the optional
 * ones given). */
static int one_int(struct store *s, struct pg_q *q, int64_t *v,
		   const char *what)
{
	PGresult *res = NULL;
	int rc = pg_one(s, q, &res, what);

	*v = pg_int(res, 0, 0);
	PQclear(res);
	return rc;
}

int pg_runs_last_rowid(struct store *s, int64_t *rowid)
{
	struct pg_q q;

	pg_q_init(&q, "SELECT max(seq) FROM runs");
	return one_int(s, &q, rowid, "read the audit log");
}

struct brief_walk {
	brief_cb cb;
	void *arg;
};

static int one_brief(const PGresult *res, void *arg)
{
	struct brief_walk *w = arg;
	struct run_brief b;

	b.started_ms = pg_int(res, 0, 0);
	b.identity = pg_text(res, 0, 1);
	b.status = pg_text(res, 0, 2);
	b.http_status = (int)pg_int(res, 0, 3);
	b.exec_ms = pg_double(res, 0, 4);
	b.has_exec = (int)pg_int(res, 0, 5);
	b.via = pg_text(res, 0, 6);
	return w->cb(&b, w->arg);
}

int pg_runs_scan(struct store *s, int64_t since_ms, int64_t until_ms,
		 enum scan_order order, brief_cb cb, void *arg)
{
	static const char *const order_by[] = {
		[SCAN_BY_TIME] = "started_ms",
		[SCAN_BY_IDENTITY] = "identity, started_ms",
		[SCAN_BY_STATUS] = "status, started_ms",
		[SCAN_BY_VIA] = "via, started_ms",
	};
	struct brief_walk w = { cb, arg };
	char sql[512];
	struct pg_q q;

	if ((unsigned)order >= sizeof(order_by) / sizeof(order_by[0]))
		return store_fail(s, STORE_INVALID, "unknown order");
	snprintf(sql, sizeof(sql), "SELECT started_ms, identity, status, "
		 "http_status, exec_ms, (" FINISHED_RUN ")::int, via FROM "
		 "runs_view WHERE ($1::bigint = 0 OR started_ms >= $1) AND "
		 "($2::bigint = 0 OR started_ms < $2) ORDER BY %s",
		 order_by[order]);
	pg_q_init(&q, sql);
	pg_q_int(&q, since_ms);
	pg_q_int(&q, until_ms);
	return pg_each_row(s, &q, one_brief, &w, "read the audit log");
}

int pg_exec_percentile(struct store *s, int pct, double *value, long *n)
{
	struct pg_q q;
	PGresult *res = NULL;
	int64_t count;
	int rc;

	*value = 0;
	*n = 0;
	if (pct < 1 || pct > 100)
		return store_fail(s, STORE_INVALID, "percentile %d", pct);
	pg_q_init(&q, "SELECT count(*) FROM runs WHERE " FINISHED_RUN);
	if ((rc = one_int(s, &q, &count, "read the audit log")) || !count)
		return rc;
	/* Nearest rank, as manage.c. */
	pg_q_init(&q, "SELECT exec_ms FROM runs WHERE " FINISHED_RUN
		  " ORDER BY exec_ms LIMIT 1 OFFSET $1::bigint");
	pg_q_int(&q, (count * pct + 99) / 100 - 1);
	if ((rc = pg_one(s, &q, &res, "read the audit log")) == STORE_OK &&
	    PQntuples(res) == 1) {
		*value = pg_double(res, 0, 0);
		*n = (long)count;
	}
	PQclear(res);
	return rc;
}

int pg_top_identities(struct store *s, int64_t since_ms, int64_t until_ms,
		      long n, count_cb cb, void *arg)
{
	struct pg_q q;
	PGresult *res = NULL;
	int rc;

	pg_q_init(&q, "SELECT identity, count(*) AS c FROM runs WHERE "
		  "outcome <> 'rejected' AND ($1::bigint = 0 OR "
		  "started_ms >= $1) AND ($2::bigint = 0 OR started_ms < $2) "
		  "GROUP BY identity ORDER BY c DESC, identity COLLATE \"C\" "
		  "LIMIT $3::bigint");
	pg_q_int(&q, since_ms);
	pg_q_int(&q, until_ms);
	pg_q_int(&q, n);
	rc = pg_one(s, &q, &res, "read the audit log");
	for (int i = 0; rc == STORE_OK && i < PQntuples(res); i++)
		if (cb(pg_text(res, i, 0), (long)pg_int(res, i, 1), arg))
			break;
	PQclear(res);
	return rc;
}

/* --- maintenance ---------------------------------------------------------- */

/* The pruned rows, taken out of their groups in the same statement. */
static const char *prune_sql(void)
{
	static char sql[4096];

	return pg_totals_with(sql, sizeof(sql), "gone AS (DELETE FROM runs "
			      "WHERE id IN (SELECT id FROM runs_view WHERE "
			      "started_ms < $1 AND status <> 'running') "
			      "RETURNING http_status, outcome, exec_ms, "
			      "cpu_ms), d AS (SELECT -1 AS sign, * FROM gone)",
			      "SELECT count(*) FROM gone");
}

/* Deletes the rows and their totals in one transaction; groups emptied
 * go (totals.c's drop_empty), but for those another writer holds at that
 * moment: waiting for one while holding the prune's groups could close a
 * cycle with another prune, and an empty group left is harmless (read and
 * check skip it; the next prune takes it). */
static int prune_rows(struct store *s, int64_t before_ms, int64_t *n)
{
	const char *sql = prune_sql();
	struct pg_q q[2];
	PGresult *res[2] = { 0 };
	int rc;

	if (!sql)
		return store_fail(s, STORE_INVALID, "totals statement too long");
	pg_q_init(&q[0], sql);
	pg_q_int(&q[0], before_ms);
	pg_q_init(&q[1], "DELETE FROM run_totals WHERE ctid IN (SELECT ctid "
		  "FROM run_totals WHERE requests = 0 FOR UPDATE SKIP LOCKED)");
	rc = pg_run(s, q, 2, res, 1, "prune");
	*n = pg_int(res[0], 0, 0);
	PQclear(res[0]);
	PQclear(res[1]);
	return rc;
}

int pg_prune(struct store *s, int64_t before_ms, int dry_run, long *count)
{
	struct pg_q q;
	int64_t n = 0;
	int rc;

	/* Rows still running are never pruned: they may yet be completed. A
	 * row past its deadline lost its broker and never will: runs_view
	 * calls it 'abandoned', and it goes by age like any other (as
	 * manage.c); the totals never held it. */
	if (dry_run) {
		pg_q_init(&q, "SELECT count(*) FROM runs_view WHERE "
			  "started_ms < $1 AND status <> 'running'");
		pg_q_int(&q, before_ms);
		rc = one_int(s, &q, &n, "prune");
	} else {
		rc = prune_rows(s, before_ms, &n);
	}
	*count = (long)n;
	return rc;
}

/* A copy is the server's business: pg_dump (README "Several hosts"). */
int pg_backup(struct store *s, const char *dest, struct store_backup_info *info)
{
	(void)dest;
	memset(info, 0, sizeof(*info));
	return store_fail(s, STORE_INVALID, "on PostgreSQL, back up with "
			  "pg_dump (a consistent copy while the CGI writes): "
			  "pg_dump -Fc -f FILE DBNAME");
}

/* Recomputes the totals from the log (as sq_vacuum), then VACUUM, which
 * cannot run in a transaction block: a statement of its own, without the
 * request's timeouts. */
int pg_vacuum(struct store *s)
{
	PGresult *r;
	int rc = pg_totals_rebuild(s, 1);

	if (rc != STORE_OK)
		return rc;
	r = PQexec(PG(s), "VACUUM (ANALYZE) runs, run_totals, users, settings");
	rc = PQresultStatus(r) == PGRES_COMMAND_OK ? STORE_OK :
	     pg_fail(s, r, "vacuum");

	PQclear(r);
	return rc;
}

/* What the connected role lacks of what the CGI needs ("" when nothing). */
static const char privileges_sql[] =
	"SELECT concat_ws(', ', "
	"CASE WHEN NOT has_table_privilege('runs', 'SELECT, INSERT') THEN "
	"'SELECT, INSERT on runs' END, "
	"CASE WHEN NOT has_column_privilege('runs', 'finished_ms', 'UPDATE') "
	"THEN 'UPDATE on runs' END, "
	"CASE WHEN NOT has_table_privilege('users', 'SELECT') THEN "
	"'SELECT on users' END, "
	"CASE WHEN NOT has_table_privilege('settings', 'SELECT') THEN "
	"'SELECT on settings' END, "
	"CASE WHEN NOT has_table_privilege('run_totals', 'SELECT, INSERT, "
	"UPDATE') THEN 'SELECT, INSERT, UPDATE on run_totals' END)";

int pg_health(struct store *s, struct store_health *h)
{
	struct pg_q q[6];
	PGresult *res[6] = { 0 };
	const char *missing;
	int rc;

	memset(h, 0, sizeof(*h));
	pg_q_init(&q[0], privileges_sql);
	pg_q_init(&q[1], "SELECT max(version) FROM schema_version");
	pg_q_init(&q[2], "SELECT pg_database_size(current_database())");
	pg_q_init(&q[3], "SELECT count(*) FROM runs");
	pg_q_init(&q[4], "SELECT count(*) FROM users");
	pg_q_totals_check(&q[5]);
	rc = pg_run(s, q, 6, res, 1, "check the database");
	missing = pg_text(res[0], 0, 0);
	if (rc == STORE_OK && missing && *missing)
		snprintf(h->integrity, sizeof(h->integrity), "this role lacks "
			 "%s", missing);
	else
		snprintf(h->integrity, sizeof(h->integrity), "%s",
			 rc == STORE_OK ? "ok" : "?");
	snprintf(h->journal_mode, sizeof(h->journal_mode), "postgresql");
	h->schema_version = (int)pg_int(res[1], 0, 0);
	h->page_size = 8192;
	h->pages = pg_int(res[2], 0, 0) / h->page_size;
	h->runs = pg_int(res[3], 0, 0);
	h->users = pg_int(res[4], 0, 0);
	h->totals_off = rc == STORE_OK ? pg_int(res[5], 0, 0) : -1;
	for (int i = 0; i < 6; i++)
		PQclear(res[i]);
	return rc;
}
