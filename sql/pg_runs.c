/* SPDX-License-Identifier: MIT */
/*
 * pg_runs.c: the audit log and the rate limit on PostgreSQL (runs.c on
 * SQLite: the same rows, the same rules).
 *
 * Admissions of one identity are serialised by pg_advisory_xact_lock on a
 * 64-bit hash of the identity, taken inside the admission transaction:
 * the count that follows it (a statement of its own, so under READ
 * COMMITTED it sees every run committed before the lock was granted) and
 * the insert are exact across hosts. A row lock would need a row per
 * identity (anonymous addresses have none); SERIALIZABLE would turn
 * contention into retries. The lock is released by COMMIT or ROLLBACK,
 * holds no session state (PgBouncer in transaction mode keeps working),
 * and a waiter gives up at lock_timeout (503). Two identities share a lock
 * only by a hash collision, which costs a wait, never a wrong count.
 *
 * Round trips: admission 2 (BEGIN, timeouts, lock, count; then insert,
 * COMMIT), every other write 1 (pipeline mode); with the open's 1 (the
 * schema version and the settings, pg_conn.c), 4 for an anonymous run.
 * A write that ends a row updates the running totals in its own statement
 * (pg_totals.c), so the figures stay the same.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "pg_int.h"
#include "digest.h"
#include "textclean.h"
#include "../cgi/banned.h"

/* As runs.c: the bounds of what a row keeps. */
#define ADDR_MAX 64
#define REFUSAL_ERROR_MAX 256
#define ERROR_TYPE_MAX 128

/* The insert, and its row's group in the totals (pg_totals.c); a row
 * written 'running' has none yet. */
static const char insert_cte[] =
	"new AS (INSERT INTO runs (id, started_ms, finished_ms, identity, user_id, "
	"user_name, client_addr, broker_pid, deadline_ms, code_sha256, "
	"code_size, code, input_size, outcome, error_type, error, "
	"http_status, counted, profile, via, mode) VALUES ($1, $2, $3, $4, $5, "
	"$6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, "
	"$21) RETURNING http_status, outcome, exec_ms, cpu_ms), "
	"d AS (SELECT 1 AS sign, * FROM new)";

static const char *insert_sql(void)
{
	static char sql[4096];

	return pg_totals_with(sql, sizeof(sql), insert_cte,
			      "SELECT count(*) FROM new");
}

static size_t error_max(const struct settings *cfg, int refused)
{
	size_t max = (size_t)cfg->audit_error_max_bytes;

	return refused && max > REFUSAL_ERROR_MAX ? REFUSAL_ERROR_MAX : max;
}

static void opt_int(struct pg_q *q, int have, int64_t v)
{
	if (have)
		pg_q_int(q, v);
	else
		pg_q_text(q, NULL);
}

/*
 * The code as the audit_code setting keeps it (runs.c's bind_code). A
 * text parameter ends at a NUL byte, which PostgreSQL's text cannot hold
 * anyway: a NUL is kept as U+2400 (SYMBOL FOR NULL).
 */
static void q_code(struct pg_q *q, const struct run_rec *r,
		   const struct settings *cfg, int refused, char hash[65])
{
	size_t keep, n = 0;
	char *out;

	if (!r->code || sha256_hex(r->code, r->code_len, hash) != 0) {
		pg_q_text(q, NULL);
		pg_q_text(q, NULL);
		pg_q_text(q, NULL);
		return;
	}
	pg_q_text(q, hash);
	pg_q_int(q, (int64_t)r->code_len);
	if (refused || cfg->audit_code != AUDIT_CODE_FULL) {
		pg_q_text(q, NULL);
		return;
	}
	keep = text_keep(r->code, r->code_len,
			 (size_t)cfg->audit_code_max_bytes);
	if (q->n >= PG_MAXP || !(out = malloc(keep * 3 + 1))) {
		pg_q_text(q, NULL);
		return;
	}
	for (size_t i = 0; i < keep; i++) {
		if (r->code[i]) {
			out[n++] = r->code[i];
			continue;
		}
		memcpy(out + n, "\xe2\x90\x80", 3);
		n += 3;
	}
	out[n] = 0;
	q->owned[q->n] = out;
	pg_q_text(q, out);
}

static int q_insert(struct store *s, struct pg_q *q, const struct run_rec *r,
		    const struct settings *cfg, int finished, int counted,
		    char hash[65])
{
	const char *sql = insert_sql();

	pg_q_init(q, sql ? sql : "");
	if (!sql)
		return store_fail(s, STORE_INVALID, "totals statement too long");
	pg_q_text(q, r->id);
	pg_q_int(q, r->started_ms);
	opt_int(q, finished, now_ms());
	pg_q_text(q, r->identity);
	opt_int(q, r->user_id != 0, r->user_id);
	pg_q_text(q, r->user_name);
	pg_q_clean(q, r->client_addr, ADDR_MAX, 0);
	pg_q_int(q, getpid());
	opt_int(q, r->deadline_ms != 0, r->deadline_ms);
	q_code(q, r, cfg, finished, hash);
	pg_q_int(q, (int64_t)r->input_size);
	pg_q_text(q, r->outcome);
	pg_q_clean(q, r->error_type, ERROR_TYPE_MAX, 0);
	pg_q_clean(q, r->error, error_max(cfg, finished), 1);
	/* Only refusals are written finished (runs.c's insert). */
	opt_int(q, finished, r->http_status);
	pg_q_int(q, counted);
	pg_q_text(q, r->profile);
	pg_q_text(q, r->via ? r->via : "rest");
	pg_q_text(q, r->mode ? r->mode : "cgi");
	return STORE_OK;
}

int pg_run_reject(struct store *s, const struct run_rec *r,
		  const struct settings *cfg)
{
	char hash[65];
	struct pg_q q;
	int rc;

	if ((rc = q_insert(s, &q, r, cfg, 1, 0, hash)) == STORE_OK)
		rc = pg_one(s, &q, NULL, "write audit row");
	pg_q_free(&q);
	return rc;
}

/* Counted runs in the window, the oldest, and the start of the
 * (count - limit + 1)-th oldest (runs.c's nth_oldest), in one statement. */
static const char window_sql[] =
	"WITH w AS (SELECT started_ms FROM runs WHERE identity = $1 AND "
	"counted = 1 AND started_ms > $2) "
	"SELECT (SELECT count(*) FROM w), (SELECT min(started_ms) FROM w), "
	"(SELECT started_ms FROM w ORDER BY started_ms LIMIT 1 OFFSET "
	"greatest((SELECT count(*) FROM w) - $3, 0))";

int pg_window_usage(struct store *s, const char *identity, int64_t since,
		    long *count, int64_t *oldest)
{
	struct pg_q q;
	PGresult *r = NULL;
	int rc;

	pg_q_init(&q, window_sql);
	pg_q_text(&q, identity);
	pg_q_int(&q, since);
	pg_q_int(&q, 0);
	rc = pg_one(s, &q, &r, "count runs");
	*count = (long)pg_int(r, 0, 0);
	*oldest = pg_int(r, 0, 1);
	PQclear(r);
	return rc;
}

static long ceil_s(int64_t ms)
{
	return ms <= 0 ? 1 : (long)((ms + 999) / 1000);
}

/* runs.c's decide(), from the window's figures. */
static void verdict(const PGresult *w, const struct run_rec *r, long limit,
		    long window_s, struct quota_state *q)
{
	int64_t window = (int64_t)window_s * 1000;
	long count = (long)pg_int(w, 0, 0);
	int64_t oldest = pg_int(w, 0, 1);

	q->refused = count >= limit;
	q->remaining = q->refused ? 0 : limit - count - 1;
	if (q->refused && limit > 0 && count > limit)
		oldest = pg_int(w, 0, 2);
	q->reset_s = count == 0 ? window_s :
		     ceil_s(oldest + window - r->started_ms);
	if (q->reset_s > window_s || (q->refused && limit == 0))
		q->reset_s = window_s;
}

/* BEGIN, the timeouts, the identity's lock and its window, in one trip. */
static int lock_and_count(struct store *s, const struct run_rec *r,
			  long limit, int64_t since, PGresult **w)
{
	struct pg_q q[4];
	PGresult *res[4] = { 0 };
	int rc;

	pg_q_init(&q[0], "BEGIN");
	pg_q_timeouts(s, &q[1]);
	pg_q_init(&q[2], "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))");
	pg_q_text(&q[2], r->identity);
	pg_q_init(&q[3], window_sql);
	pg_q_text(&q[3], r->identity);
	pg_q_int(&q[3], since);
	pg_q_int(&q[3], limit);
	rc = pg_run(s, q, 4, res, 0, "lock the identity's quota");
	for (int i = 0; i < 3; i++)
		PQclear(res[i]);
	*w = res[3];
	return rc;
}

int pg_run_begin(struct store *s, const struct run_rec *r, long limit,
		 long window_s, int64_t reset_ms, const struct settings *cfg,
		 struct quota_state *q)
{
	int64_t since = r->started_ms - (int64_t)window_s * 1000;
	struct run_rec row = *r;
	struct pg_q ins[2];
	PGresult *w = NULL;
	char hash[65];
	int rc;

	memset(q, 0, sizeof(*q));
	q->limit = limit;
	if (since < reset_ms)
		since = reset_ms;
	if (limit >= 0) {
		if ((rc = lock_and_count(s, r, limit, since, &w)) == STORE_OK)
			verdict(w, r, limit, window_s, q);
		PQclear(w);
		if (rc)
			return rc;
	}
	row.outcome = q->refused ? "rejected" : "running";
	if (q->refused) {
		row.error_type = "RateLimited";
		row.error = "rate limit exceeded";
		row.http_status = 429;
	}
	rc = q_insert(s, &ins[0], &row, cfg, q->refused, !q->refused, hash);
	pg_q_init(&ins[1], "COMMIT");
	/* Unlimited: no lock, no count; the insert alone. */
	if (rc != STORE_OK)
		pg_rollback(s);
	else if (limit >= 0)
		rc = pg_run(s, ins, 2, NULL, 0, "write audit row");
	else
		rc = pg_one(s, &ins[0], NULL, "write audit row");
	pg_q_free(&ins[0]);
	return rc;
}

/*
 * The UPDATE of row $1 (set: its SET list) and the move of the row's
 * contribution to the totals from its old group to its new one, in one
 * statement whose one number is the count of rows updated. The old state
 * is the statement's snapshot; only when the row was updated is it taken
 * away, so a completion sent again (pg_run's retry after a lost
 * connection) moves nothing twice.
 */
#define MOVE_CTES(set) "old AS (SELECT http_status, outcome, exec_ms, " \
	"cpu_ms FROM runs WHERE id = $1), new AS (UPDATE runs SET " set \
	" WHERE id = $1 RETURNING http_status, outcome, exec_ms, cpu_ms), " \
	"d AS (SELECT -1 AS sign, * FROM old WHERE EXISTS (SELECT 1 FROM " \
	"new) UNION ALL SELECT 1, * FROM new)"
#define MOVE_RESULT "SELECT count(*) FROM new"

static const char *finish_sql(void)
{
	static char sql[4096];

	return pg_totals_with(sql, sizeof(sql), MOVE_CTES("finished_ms = $2, "
			      "outcome = $3, error_type = $4, error = $5, "
			      "output_size = $6, truncated = $7, exec_ms = $8, "
			      "wall_ms = $9, cpu_ms = $10, peak_kb = $11, "
			      "http_status = $12"), MOVE_RESULT);
}

static const char *unrun_sql(void)
{
	static char sql[4096];

	return pg_totals_with(sql, sizeof(sql), MOVE_CTES("finished_ms = $2, "
			      "outcome = 'rejected', error_type = $3, "
			      "error = $4, http_status = $5, counted = 0, "
			      "code = NULL"), MOVE_RESULT);
}

int pg_run_finish(struct store *s, const struct run_rec *r,
		  const struct settings *cfg)
{
	const char *sql = finish_sql();
	struct pg_q q;
	PGresult *res = NULL;
	int rc;

	if (!sql)
		return store_fail(s, STORE_INVALID, "totals statement too long");
	pg_q_init(&q, sql);
	pg_q_text(&q, r->id);
	pg_q_int(&q, now_ms());
	pg_q_text(&q, r->outcome);
	pg_q_clean(&q, r->error_type, ERROR_TYPE_MAX, 0);
	pg_q_clean(&q, r->error, error_max(cfg, 0), 1);
	pg_q_int(&q, (int64_t)r->output_size);
	pg_q_int(&q, r->truncated);
	pg_q_double(&q, r->exec_ms);
	pg_q_double(&q, r->wall_ms);
	pg_q_int(&q, r->cpu_ms);
	pg_q_int(&q, r->peak_kb);
	pg_q_int(&q, r->http_status);
	rc = pg_one(s, &q, &res, "complete audit row");
	pg_q_free(&q);
	if (rc == STORE_OK && pg_int(res, 0, 0) != 1)
		rc = store_fail(s, STORE_NOTFOUND, "audit row '%s' is gone",
				r->id);
	PQclear(res);
	return rc;
}

int pg_run_unrun(struct store *s, const struct run_rec *r,
		 const struct settings *cfg)
{
	const char *sql = unrun_sql();
	struct pg_q q;
	int rc;

	if (!sql)
		return store_fail(s, STORE_INVALID, "totals statement too long");
	pg_q_init(&q, sql);
	pg_q_text(&q, r->id);
	pg_q_int(&q, now_ms());
	pg_q_clean(&q, r->error_type, ERROR_TYPE_MAX, 0);
	pg_q_clean(&q, r->error, error_max(cfg, 1), 1);
	pg_q_int(&q, r->http_status);
	rc = pg_one(s, &q, NULL, "refuse audit row");
	pg_q_free(&q);
	return rc;
}
