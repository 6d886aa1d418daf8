/* SPDX-License-Identifier: MIT */
/* manage.c: the operator's side of the data layer (see manage.h). */
#include <stdio.h>
#include <string.h>
#include "store_int.h"
#include "manage.h"
#include "totals.h"
#include "digest.h"
#include "../cgi/banned.h"

int sq_user_list(struct store *s, user_cb cb, void *arg)
{
	sqlite3_stmt *st;
	struct user u;
	int rc;

	if ((rc = store_prepare(s, "SELECT " USER_COLUMNS " FROM users "
				"ORDER BY name", &st)))
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_read_user(st, &u);
		if (cb(&u, arg))
			break;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK :
	       store_sqlite_fail(s, rc, "list users");
}

static int changed_one(struct store *s, const char *name, int rc)
{
	if (rc != STORE_OK)
		return rc;
	return sqlite3_changes(s->db) ? STORE_OK :
	       store_fail(s, STORE_NOTFOUND, "no user '%s'", name);
}

int sq_user_set(struct store *s, const char *name, enum user_field f,
		   int64_t value)
{
	static const char *const column[] = {
		[USER_DISABLED] = "disabled", [USER_ADMIN] = "is_admin",
		[USER_QUOTA] = "quota", [USER_TIMEOUT_MS] = "timeout_ms",
		[USER_MEMORY_MB] = "memory_mb",
		[USER_QUOTA_RESET_MS] = "quota_reset_ms",
	};
	char sql[128];
	sqlite3_stmt *st;
	int rc, null;

	if ((unsigned)f >= sizeof(column) / sizeof(column[0]))
		return store_fail(s, STORE_INVALID, "unknown user field");
	/* NULL means "the default" for the limits and the quota. */
	null = (f == USER_QUOTA && value == -2) ||
	       ((f == USER_TIMEOUT_MS || f == USER_MEMORY_MB) && value == 0);
	snprintf(sql, sizeof(sql), "UPDATE users SET %s = ?2 WHERE name = ?1",
		 column[f]);
	if ((rc = store_prepare(s, sql, &st)))
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (!null)
		sqlite3_bind_int64(st, 2, value);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_sqlite_fail(s, rc, "update user");
	return changed_one(s, name, STORE_OK);
}

int sq_user_set_modules(struct store *s, const char *name,
			   const char *profile)
{
	sqlite3_stmt *st;
	uint64_t mask;
	int rc;

	if (profile && profile_parse(profile, &mask, s->err, sizeof(s->err)))
		return STORE_INVALID;
	if ((rc = store_prepare(s, "UPDATE users SET modules = ?2 WHERE "
				"name = ?1", &st)))
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (profile)
		sqlite3_bind_text(st, 2, profile, -1, SQLITE_STATIC);
	return changed_one(s, name, store_step_done(s, st, "update user"));
}

int sq_user_remove(struct store *s, const char *name)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_prepare(s, "DELETE FROM users WHERE name = ?1", &st)))
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	return changed_one(s, name, store_step_done(s, st, "remove user"));
}

int sq_user_rotate(struct store *s, const char *name,
		      char token[TOKEN_LEN + 1])
{
	char hash[65];
	sqlite3_stmt *st;
	int rc;

	if (token_new(token) != 0 || sha256_hex(token, TOKEN_LEN, hash) != 0)
		return store_fail(s, STORE_UNAVAILABLE, "cannot make a token");
	if ((rc = store_prepare(s, "UPDATE users SET token_hash = ?2 "
				"WHERE name = ?1", &st)))
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, hash, 64, SQLITE_TRANSIENT);
	rc = changed_one(s, name, store_step_done(s, st, "rotate token"));
	if (rc != STORE_OK)
		explicit_bzero(token, TOKEN_LEN + 1);
	return rc;
}

int sq_settings_each(struct store *s, setting_cb cb, void *arg)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_prepare(s, "SELECT key, value FROM settings "
				"ORDER BY key", &st)))
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (cb((const char *)sqlite3_column_text(st, 0),
		       (const char *)sqlite3_column_text(st, 1), arg))
			break;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK :
	       store_sqlite_fail(s, rc, "read settings");
}

/* --- the audit log -------------------------------------------------------- */

/*
 * runs_view has no rowid of its own (a view's rowid reads as NULL), so the
 * rows come from runs joined to the view on the id: the rowid from the
 * table, 'status' from the view, which stays the one place that says what
 * 'abandoned' means.
 */
#define RUN_COLUMNS "r.rowid, v.id, v.started_ms, v.finished_ms, " \
	"v.deadline_ms, v.identity, v.user_name, v.client_addr, v.broker_pid, " \
	"v.code_sha256, v.code, v.code_size, v.input_size, v.outcome, " \
	"v.status, v.error_type, v.error, v.output_size, v.truncated, " \
	"v.exec_ms, v.wall_ms, v.cpu_ms, v.peak_kb, v.http_status, v.counted, " \
	"v.profile, v.via"
#define RUN_FROM " FROM runs AS r JOIN runs_view AS v ON v.id = r.id "

static const char *text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

static void read_run(sqlite3_stmt *st, struct run_row *r)
{
	memset(r, 0, sizeof(*r));
	for (int i = 0; i < RUN_NCOLUMNS; i++)
		if (sqlite3_column_type(st, i) == SQLITE_NULL)
			r->nulls |= 1u << i;
	r->rowid = sqlite3_column_int64(st, RUN_ROWID);
	r->id = text(st, RUN_ID);
	r->started_ms = sqlite3_column_int64(st, RUN_STARTED_MS);
	r->has_finished = !RUN_IS_NULL(r, RUN_FINISHED_MS);
	r->finished_ms = sqlite3_column_int64(st, RUN_FINISHED_MS);
	r->deadline_ms = sqlite3_column_int64(st, RUN_DEADLINE_MS);
	r->identity = text(st, RUN_IDENTITY);
	r->user_name = text(st, RUN_USER_NAME);
	r->client_addr = text(st, RUN_CLIENT_ADDR);
	r->broker_pid = sqlite3_column_int64(st, RUN_BROKER_PID);
	r->code_sha256 = text(st, RUN_CODE_SHA256);
	r->code = text(st, RUN_CODE);
	r->code_size = sqlite3_column_int64(st, RUN_CODE_SIZE);
	r->input_size = sqlite3_column_int64(st, RUN_INPUT_SIZE);
	r->outcome = text(st, RUN_OUTCOME);
	r->status = text(st, RUN_STATUS);
	r->error_type = text(st, RUN_ERROR_TYPE);
	r->error = text(st, RUN_ERROR);
	r->output_size = sqlite3_column_int64(st, RUN_OUTPUT_SIZE);
	r->truncated = sqlite3_column_int(st, RUN_TRUNCATED);
	r->has_exec = !RUN_IS_NULL(r, RUN_EXEC_MS);
	r->exec_ms = sqlite3_column_double(st, RUN_EXEC_MS);
	r->wall_ms = sqlite3_column_double(st, RUN_WALL_MS);
	r->cpu_ms = sqlite3_column_int64(st, RUN_CPU_MS);
	r->peak_kb = sqlite3_column_int64(st, RUN_PEAK_KB);
	r->http_status = sqlite3_column_int(st, RUN_HTTP_STATUS);
	r->counted = sqlite3_column_int(st, RUN_COUNTED);
	r->profile = text(st, RUN_PROFILE);
	r->via = text(st, RUN_VIA);
}

static int each_run(struct store *s, sqlite3_stmt *st, run_cb cb, void *arg,
		    int *seen)
{
	struct run_row r;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		read_run(st, &r);
		(*seen)++;
		if (cb(&r, arg))
			break;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK :
	       store_sqlite_fail(s, rc, "read the audit log");
}

/* Every filter is a bound parameter; an unset one matches everything. */
#define RUN_WHERE "WHERE " \
	"(?1 IS NULL OR v.user_name = ?1) AND " \
	"(?2 = 0 OR v.identity LIKE 'anon:%%') AND " \
	"(?3 IS NULL OR v.client_addr = ?3) AND " \
	"(?4 = 0 OR v.started_ms >= ?4) AND " \
	"(?5 = 0 OR v.started_ms < ?5) AND " \
	"(?6 IS NULL OR v.status = ?6) AND " \
	"(?7 = 0 OR v.status <> 'ok') AND " \
	"r.rowid > ?8 AND (?10 = 0 OR r.rowid <= ?10) AND " \
	"(?11 IS NULL OR v.via = ?11) "

static void bind_filter(sqlite3_stmt *st, const struct run_filter *f)
{
	if (f->user)
		sqlite3_bind_text(st, 1, f->user, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, f->anonymous);
	if (f->client)
		sqlite3_bind_text(st, 3, f->client, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, f->since_ms);
	sqlite3_bind_int64(st, 5, f->until_ms);
	if (f->status)
		sqlite3_bind_text(st, 6, f->status, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 7, f->failed);
	sqlite3_bind_int64(st, 8, f->after_rowid);
	sqlite3_bind_int64(st, 9, f->limit > 0 ? f->limit : -1);
	sqlite3_bind_int64(st, 10, f->upto_rowid);
	if (f->via)
		sqlite3_bind_text(st, 11, f->via, -1, SQLITE_STATIC);
}

/* One row at a time from SQLite to the callback: nothing is gathered, so
 * an export of any size takes the memory of one row. */
int sq_runs_query(struct store *s, const struct run_filter *f, run_cb cb,
		     void *arg)
{
	char sql[1536];
	sqlite3_stmt *st;
	int rc, seen = 0;

	snprintf(sql, sizeof(sql), "SELECT " RUN_COLUMNS RUN_FROM RUN_WHERE
		 "ORDER BY r.rowid %s LIMIT ?9",
		 f->newest_first ? "DESC" : "ASC");
	if ((rc = store_prepare(s, sql, &st)))
		return rc;
	bind_filter(st, f);
	return each_run(s, st, cb, arg, &seen);
}

int sq_runs_count(struct store *s, const struct run_filter *f, long *n)
{
	char sql[1536];
	sqlite3_stmt *st;
	int rc;

	*n = 0;
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM (SELECT 1" RUN_FROM
		 RUN_WHERE "LIMIT ?9)");
	if ((rc = store_prepare(s, sql, &st)))
		return rc;
	bind_filter(st, f);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*n = (long)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? STORE_OK :
	       store_sqlite_fail(s, rc, "count the audit log");
}

int sq_run_by_id(struct store *s, const char *id, run_cb cb, void *arg)
{
	sqlite3_stmt *st;
	int rc, seen = 0;

	if ((rc = store_prepare(s, "SELECT " RUN_COLUMNS RUN_FROM
				"WHERE r.id = ?1", &st)))
		return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = each_run(s, st, cb, arg, &seen);
	if (rc == STORE_OK && !seen)
		return store_fail(s, STORE_NOTFOUND, "no request '%s'", id);
	return rc;
}

int sq_run_resolve(struct store *s, const char *prefix, char id[33])
{
	char pattern[34];
	sqlite3_stmt *st;
	size_t n = strlen(prefix);
	int rc, found = 0;

	if (n < 1 || n > 32)
		return store_fail(s, STORE_NOTFOUND, "no request '%s'", prefix);
	/* Ids are lower-case hex: anything else matches none, and the
	 * pattern holds no GLOB wildcard but its own. */
	for (size_t i = 0; i < n; i++) {
		char c = prefix[i];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return store_fail(s, STORE_NOTFOUND, "no request '%s'",
					  prefix);
		pattern[i] = c;
	}
	pattern[n] = '*';
	pattern[n + 1] = 0;
	if ((rc = store_prepare(s, "SELECT id FROM runs WHERE id GLOB ?1 "
				"LIMIT 2", &st)))
		return rc;
	sqlite3_bind_text(st, 1, pattern, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (found++ == 0)
			snprintf(id, 33, "%s", text(st, 0) ? text(st, 0) : "");
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_sqlite_fail(s, rc, "find the request");
	if (!found)
		return store_fail(s, STORE_NOTFOUND, "no request '%s'", prefix);
	if (found > 1)
		return store_fail(s, STORE_CONFLICT, "request id '%s' is "
				  "ambiguous: give more of it", prefix);
	return STORE_OK;
}

int sq_runs_last_rowid(struct store *s, int64_t *rowid)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_prepare(s, "SELECT max(rowid) FROM runs", &st)))
		return rc;
	rc = sqlite3_step(st);
	*rowid = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? STORE_OK :
	       store_sqlite_fail(s, rc, "read the audit log");
}

int sq_runs_scan(struct store *s, int64_t since_ms, int64_t until_ms,
		    enum scan_order order, brief_cb cb, void *arg)
{
	static const char *const order_by[] = {
		[SCAN_BY_TIME] = "started_ms",
		[SCAN_BY_IDENTITY] = "identity, started_ms",
		[SCAN_BY_STATUS] = "status, started_ms",
		[SCAN_BY_VIA] = "via, started_ms",
	};
	struct run_brief b;
	char sql[512];
	sqlite3_stmt *st;
	int rc;

	if ((unsigned)order >= sizeof(order_by) / sizeof(order_by[0]))
		return store_fail(s, STORE_INVALID, "unknown order");
	snprintf(sql, sizeof(sql), "SELECT started_ms, identity, status, "
		 "http_status, exec_ms, " FINISHED_RUN ", via FROM runs_view "
		 "WHERE (?1 = 0 OR started_ms >= ?1) AND "
		 "(?2 = 0 OR started_ms < ?2) ORDER BY %s", order_by[order]);
	if ((rc = store_prepare(s, sql, &st)))
		return rc;
	sqlite3_bind_int64(st, 1, since_ms);
	sqlite3_bind_int64(st, 2, until_ms);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		b.started_ms = sqlite3_column_int64(st, 0);
		b.identity = text(st, 1);
		b.status = text(st, 2);
		b.http_status = sqlite3_column_int(st, 3);
		b.exec_ms = sqlite3_column_double(st, 4);
		b.has_exec = sqlite3_column_int(st, 5);
		b.via = text(st, 6);
		if (cb(&b, arg))
			break;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK :
	       store_sqlite_fail(s, rc, "read the audit log");
}

int sq_exec_percentile(struct store *s, int pct, double *value, long *n)
{
	sqlite3_stmt *st;
	int64_t count, rank;
	int rc;

	*value = 0;
	*n = 0;
	if (pct < 1 || pct > 100)
		return store_fail(s, STORE_INVALID, "percentile %d", pct);
	if ((rc = store_prepare(s, "SELECT count(*) FROM runs WHERE "
				FINISHED_RUN, &st)))
		return rc;
	rc = sqlite3_step(st);
	count = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return store_sqlite_fail(s, rc, "read the audit log");
	if (count == 0)
		return STORE_OK;
	/* Nearest rank: the smallest value with pct% of them at or below. */
	rank = (count * pct + 99) / 100;
	if ((rc = store_prepare(s, "SELECT exec_ms FROM runs WHERE "
				FINISHED_RUN " ORDER BY exec_ms LIMIT 1 "
				"OFFSET ?1", &st)))
		return rc;
	sqlite3_bind_int64(st, 1, rank - 1);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*value = sqlite3_column_double(st, 0);
		*n = (long)count;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK :
	       store_sqlite_fail(s, rc, "read the audit log");
}

int sq_top_identities(struct store *s, int64_t since_ms, int64_t until_ms,
			 long n, count_cb cb, void *arg)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_prepare(s, "SELECT identity, count(*) AS c FROM runs "
				"WHERE outcome <> 'rejected' AND "
				"(?1 = 0 OR started_ms >= ?1) AND "
				"(?2 = 0 OR started_ms < ?2) GROUP BY identity "
				"ORDER BY c DESC, identity LIMIT ?3", &st)))
		return rc;
	sqlite3_bind_int64(st, 1, since_ms);
	sqlite3_bind_int64(st, 2, until_ms);
	sqlite3_bind_int64(st, 3, n);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (cb(text(st, 0), (long)sqlite3_column_int64(st, 1), arg))
			break;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK :
	       store_sqlite_fail(s, rc, "read the audit log");
}

/* --- maintenance ---------------------------------------------------------- */

/* Deletes the pruned rows, taking them out of the totals first, in one
 * transaction. Abandoned rows (runs_view's word: 'running' past their
 * deadline) go too; the totals never held them (totals.c counts rows
 * still 'running' from runs itself). */
static int prune_rows(struct store *s, int64_t before_ms, long *count)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_exec(s, "BEGIN IMMEDIATE", "lock the audit log")))
		return rc;
	rc = totals_prune(s, before_ms);
	if (rc == STORE_OK && (rc = store_prepare(s, "DELETE FROM runs WHERE "
			       "id IN (SELECT id FROM runs_view WHERE "
			       "started_ms < ?1 AND status <> 'running')",
			       &st)) == STORE_OK) {
		sqlite3_bind_int64(st, 1, before_ms);
		rc = store_step_done(s, st, "prune");
		*count = (long)sqlite3_changes(s->db);
	}
	if (rc == STORE_OK)
		rc = store_exec(s, "COMMIT", "commit the prune");
	if (rc != STORE_OK)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int sq_prune(struct store *s, int64_t before_ms, int dry_run, long *count)
{
	sqlite3_stmt *st;
	int rc;

	/* Rows still running are never pruned: they may yet be completed. A
	 * row past its deadline lost its broker and never will: runs_view
	 * calls it 'abandoned', and it goes by age like any other. */
	*count = 0;
	if (!dry_run)
		return prune_rows(s, before_ms, count);
	if ((rc = store_prepare(s, "SELECT count(*) FROM runs_view WHERE "
				"started_ms < ?1 AND status <> 'running'", &st)))
		return rc;
	sqlite3_bind_int64(st, 1, before_ms);
	rc = sqlite3_step(st);
	*count = (long)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? STORE_OK : store_sqlite_fail(s, rc, "prune");
}

/* Recomputes the totals from the log (after rows were written by hand,
 * say), then compacts the file. */
int sq_vacuum(struct store *s)
{
	int rc = store_exec(s, "BEGIN IMMEDIATE", "lock the audit log");

	if (rc == STORE_OK && (rc = totals_rebuild(s)) == STORE_OK)
		rc = store_exec(s, "COMMIT", "commit the totals");
	if (rc != STORE_OK) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	rc = store_exec(s, "VACUUM", "vacuum");

	return rc ? rc : store_exec(s, "PRAGMA wal_checkpoint(TRUNCATE)",
				    "checkpoint");
}

static int64_t one_int(struct store *s, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	if (store_prepare(s, sql, &st) != STORE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void one_text(struct store *s, const char *sql, char *buf, size_t len)
{
	sqlite3_stmt *st;

	snprintf(buf, len, "?");
	if (store_prepare(s, sql, &st) != STORE_OK)
		return;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(buf, len, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

int sq_health(struct store *s, struct store_health *h)
{
	memset(h, 0, sizeof(*h));
	one_text(s, "PRAGMA integrity_check(1)", h->integrity,
		 sizeof(h->integrity));
	one_text(s, "PRAGMA journal_mode", h->journal_mode,
		 sizeof(h->journal_mode));
	h->schema_version = (int)one_int(s, "PRAGMA user_version");
	h->pages = one_int(s, "PRAGMA page_count");
	h->page_size = one_int(s, "PRAGMA page_size");
	h->freelist = one_int(s, "PRAGMA freelist_count");
	h->runs = one_int(s, "SELECT count(*) FROM runs");
	h->users = one_int(s, "SELECT count(*) FROM users");
	h->totals_off = totals_disagree(s);
	return strcmp(h->integrity, "?") == 0 ?
	       store_fail(s, STORE_UNAVAILABLE, "cannot check the database") :
	       STORE_OK;
}
