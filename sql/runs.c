/* SPDX-License-Identifier: MIT */
/*
 * runs.c: the audit log and the rate limit, which are the same rows. A
 * request that may run is written before the code runs, in the transaction
 * that checked the quota (so concurrent requests of one identity are
 * counted exactly), and completed after. A refused request is written in
 * one statement, and keeps the code's SHA-256 and size but never the code:
 * a flood of refusals costs its sender, not the disk (every text of a
 * refused row is bounded; README "Audit log" states the bound).
 *
 * Every write that ends a row (a refusal, a completion) updates the
 * running totals (totals.c) in its own transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "store_int.h"
#include "manage.h"
#include "digest.h"
#include "textclean.h"
#include "totals.h"
#include "../cgi/banned.h"

static const char insert_sql[] =
	"INSERT INTO runs (id, started_ms, finished_ms, identity, user_id, "
	"user_name, client_addr, broker_pid, deadline_ms, code_sha256, "
	"code_size, code, input_size, outcome, error_type, error, "
	"output_size, truncated, exec_ms, wall_ms, cpu_ms, peak_kb, "
	"http_status, counted, profile, via, mode) VALUES (?1, ?2, ?3, ?4, ?5, "
	"?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, "
	"?21, ?22, ?23, ?24, ?25, ?26, ?27)";

static void bind_text(sqlite3_stmt *st, int i, const char *v, size_t n)
{
	if (v)
		sqlite3_bind_text64(st, i, v, n, SQLITE_STATIC, SQLITE_UTF8);
	else
		sqlite3_bind_null(st, i);
}

/* A client address as the web server gave it, bounded: a refused row
 * stays small whatever REMOTE_ADDR holds. */
#define ADDR_MAX 64

/* The code as the audit_code setting keeps it, and only for a request
 * admitted to run (refused is set for the others); the hash always. */
static void bind_code(sqlite3_stmt *st, const struct run_rec *r,
		      const struct settings *cfg, int refused, char hash[65])
{
	size_t keep;

	if (!r->code || sha256_hex(r->code, r->code_len, hash) != 0) {
		sqlite3_bind_null(st, 10);
		sqlite3_bind_null(st, 11);
		sqlite3_bind_null(st, 12);
		return;
	}
	sqlite3_bind_text(st, 10, hash, 64, SQLITE_STATIC);
	sqlite3_bind_int64(st, 11, (sqlite3_int64)r->code_len);
	if (refused || cfg->audit_code != AUDIT_CODE_FULL) {
		sqlite3_bind_null(st, 12);
		return;
	}
	keep = text_keep(r->code, r->code_len,
			 (size_t)cfg->audit_code_max_bytes);
	bind_text(st, 12, r->code, keep);
}

/* The bytes of a refusal's message kept (the broker's own messages are
 * shorter: cgi/http.h), and of an error type. */
#define REFUSAL_ERROR_MAX 256
#define ERROR_TYPE_MAX 128

/* Binds program text (an error, its type) as text_clean() makes it: valid
 * UTF-8, controls escaped (newlines too, unless lines), at most max bytes. The one place stored errors
 * are cleaned: every writer of the columns goes through it. */
static int bind_clean(sqlite3_stmt *st, int i, const char *v, size_t max,
		      int lines)
{
	size_t n = v ? strlen(v) : 0, cap = n > max / 6 ? max : n * 6;
	char *out;

	if (!v)
		return sqlite3_bind_null(st, i);
	if (!(out = malloc(cap + 1)))
		return sqlite3_bind_text(st, i, "(not kept: out of memory)", -1,
					 SQLITE_STATIC);
	n = text_clean(v, n, out, cap, lines);
	return sqlite3_bind_text64(st, i, out, n, free, SQLITE_UTF8);
}

static size_t error_max(const struct settings *cfg, int refused)
{
	size_t max = (size_t)cfg->audit_error_max_bytes;

	return refused && max > REFUSAL_ERROR_MAX ? REFUSAL_ERROR_MAX : max;
}

static int insert(struct store *s, const struct run_rec *r,
		  const struct settings *cfg, int finished, int counted)
{
	sqlite3_stmt *st;
	char hash[65];
	int rc;

	if ((rc = store_prepare(s, insert_sql, &st)))
		return rc;
	sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, r->started_ms);
	if (finished)
		sqlite3_bind_int64(st, 3, now_ms());
	sqlite3_bind_text(st, 4, r->identity, -1, SQLITE_STATIC);
	if (r->user_id)
		sqlite3_bind_int64(st, 5, r->user_id);
	bind_text(st, 6, r->user_name, r->user_name ? strlen(r->user_name) : 0);
	bind_text(st, 7, r->client_addr,
		  r->client_addr ? strnlen(r->client_addr, ADDR_MAX) : 0);
	sqlite3_bind_int64(st, 8, getpid());
	if (r->deadline_ms)
		sqlite3_bind_int64(st, 9, r->deadline_ms);
	bind_code(st, r, cfg, finished, hash);
	sqlite3_bind_int64(st, 13, (sqlite3_int64)r->input_size);
	sqlite3_bind_text(st, 14, r->outcome, -1, SQLITE_STATIC);
	bind_clean(st, 15, r->error_type, ERROR_TYPE_MAX, 0);
	bind_clean(st, 16, r->error, error_max(cfg, finished), 1);
	/* Only refusals are written finished: nothing ran, so the run's
	 * figures stay NULL and only the answer's status is recorded. */
	if (finished)
		sqlite3_bind_int(st, 23, r->http_status);
	sqlite3_bind_int(st, 24, counted);
	bind_text(st, 25, r->profile, r->profile ? strlen(r->profile) : 0);
	sqlite3_bind_text(st, 26, r->via ? r->via : "rest", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 27, r->mode ? r->mode : "cgi", -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? STORE_OK : store_sqlite_fail(s, rc, "write audit row");
}

/* Ends the transaction a writer began: COMMIT after success, else
 * ROLLBACK; returns rc, or COMMIT's failure. */
static int end_txn(struct store *s, int rc)
{
	if (rc == STORE_OK)
		rc = store_exec(s, "COMMIT", "commit the audit row");
	if (rc != STORE_OK)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int sq_run_reject(struct store *s, const struct run_rec *r,
		     const struct settings *cfg)
{
	int rc;

	if ((rc = store_exec(s, "BEGIN IMMEDIATE", "lock the audit log")))
		return rc;
	rc = insert(s, r, cfg, 1, 0);
	if (rc == STORE_OK)
		rc = totals_row(s, r->id, 1);
	return end_txn(s, rc);
}

/* Runs of the identity counted in the window, and the oldest of them
 * (the quota check, and pyexec-admin's usage figures). */
int sq_window_usage(struct store *s, const char *identity, int64_t since,
		       long *count, int64_t *oldest)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_prepare(s, "SELECT count(*), min(started_ms) FROM runs "
				"WHERE identity = ?1 AND counted = 1 AND "
				"started_ms > ?2", &st)))
		return rc;
	sqlite3_bind_text(st, 1, identity, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, since);
	rc = sqlite3_step(st);
	*count = (long)sqlite3_column_int64(st, 0);
	*oldest = sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? STORE_OK : store_sqlite_fail(s, rc, "count runs");
}

/* The start of the identity's (skip+1)-th oldest counted run in the
 * window. */
static int nth_oldest(struct store *s, const char *identity, int64_t since,
		      long skip, int64_t *started)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_prepare(s, "SELECT started_ms FROM runs WHERE "
				"identity = ?1 AND counted = 1 AND "
				"started_ms > ?2 ORDER BY started_ms "
				"LIMIT 1 OFFSET ?3", &st)))
		return rc;
	sqlite3_bind_text(st, 1, identity, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, since);
	sqlite3_bind_int64(st, 3, skip);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*started = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? STORE_OK : store_sqlite_fail(s, rc, "count runs");
}

static long ceil_s(int64_t ms)
{
	return ms <= 0 ? 1 : (long)((ms + 999) / 1000);
}

/* Decides under the write lock; returns the `counted` flag to write. */
static int decide(struct store *s, const struct run_rec *r, long limit,
		  long window_s, int64_t reset_ms, struct quota_state *q)
{
	int64_t window = (int64_t)window_s * 1000, since, oldest = 0;
	long count = 0;
	int rc;

	memset(q, 0, sizeof(*q));
	q->limit = limit;
	if (limit < 0)
		return STORE_OK;
	since = r->started_ms - window;
	if (since < reset_ms)
		since = reset_ms;
	if ((rc = sq_window_usage(s, r->identity, since, &count, &oldest)))
		return rc;
	q->refused = count >= limit;
	q->remaining = q->refused ? 0 : limit - count - 1;
	/* Over a lowered limit, one slot frees when count - limit + 1 runs
	 * have left the window, not when the oldest has. */
	if (q->refused && limit > 0 && count > limit &&
	    (rc = nth_oldest(s, r->identity, since, count - limit, &oldest)))
		return rc;
	q->reset_s = count == 0 ? window_s :
		     ceil_s(oldest + window - r->started_ms);
	/* A run counted while this request's body was still arriving
	 * started after it: its slot frees at most a window from now. */
	if (q->reset_s > window_s || (q->refused && limit == 0))
		q->reset_s = window_s;
	return STORE_OK;
}

int sq_run_begin(struct store *s, const struct run_rec *r, long limit,
		    long window_s, int64_t reset_ms, const struct settings *cfg,
		    struct quota_state *q)
{
	struct run_rec row = *r;
	int rc;

	if ((rc = store_exec(s, "BEGIN IMMEDIATE", "lock the audit log")))
		return rc;
	rc = decide(s, r, limit, window_s, reset_ms, q);
	if (rc == STORE_OK && q->refused) {
		row.outcome = "rejected";
		row.error_type = "RateLimited";
		row.error = "rate limit exceeded";
		row.http_status = 429;
		rc = insert(s, &row, cfg, 1, 0);
		if (rc == STORE_OK)
			rc = totals_row(s, row.id, 1);
	} else if (rc == STORE_OK) {
		row.outcome = "running";
		rc = insert(s, &row, cfg, 0, 1);
	}
	return end_txn(s, rc);
}

/* Runs the prepared UPDATE st of row id in a transaction that moves the
 * row's contribution to the totals from its old state to its new one. */
static int update_row(struct store *s, sqlite3_stmt *st, const char *id,
		      const char *what)
{
	int rc;

	if ((rc = store_exec(s, "BEGIN IMMEDIATE", "lock the audit log"))) {
		sqlite3_finalize(st);
		return rc;
	}
	if ((rc = totals_row(s, id, -1))) {
		sqlite3_finalize(st);
		return end_txn(s, rc);
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return end_txn(s, store_sqlite_fail(s, rc, what));
	if (sqlite3_changes(s->db) != 1)
		return end_txn(s, store_fail(s, STORE_NOTFOUND,
				   "audit row '%s' is gone", id));
	return end_txn(s, totals_row(s, id, 1));
}

int sq_run_finish(struct store *s, const struct run_rec *r,
		     const struct settings *cfg)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_prepare(s, "UPDATE runs SET finished_ms = ?2, "
				"outcome = ?3, error_type = ?4, error = ?5, "
				"output_size = ?6, truncated = ?7, exec_ms = ?8, "
				"wall_ms = ?9, cpu_ms = ?10, peak_kb = ?11, "
				"http_status = ?12 WHERE id = ?1", &st)))
		return rc;
	sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_ms());
	sqlite3_bind_text(st, 3, r->outcome, -1, SQLITE_STATIC);
	bind_clean(st, 4, r->error_type, ERROR_TYPE_MAX, 0);
	bind_clean(st, 5, r->error, error_max(cfg, 0), 1);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)r->output_size);
	sqlite3_bind_int(st, 7, r->truncated);
	sqlite3_bind_double(st, 8, r->exec_ms);
	sqlite3_bind_double(st, 9, r->wall_ms);
	sqlite3_bind_int64(st, 10, r->cpu_ms);
	sqlite3_bind_int64(st, 11, r->peak_kb);
	sqlite3_bind_int(st, 12, r->http_status);
	return update_row(s, st, r->id, "complete audit row");
}

int sq_run_unrun(struct store *s, const struct run_rec *r,
		    const struct settings *cfg)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_prepare(s, "UPDATE runs SET finished_ms = ?2, "
				"outcome = 'rejected', error_type = ?3, "
				"error = ?4, http_status = ?5, counted = 0, "
				"code = NULL WHERE id = ?1", &st)))
		return rc;
	sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_ms());
	bind_clean(st, 3, r->error_type, ERROR_TYPE_MAX, 0);
	bind_clean(st, 4, r->error, error_max(cfg, 1), 1);
	sqlite3_bind_int(st, 5, r->http_status);
	return update_row(s, st, r->id, "refuse audit row");
}
