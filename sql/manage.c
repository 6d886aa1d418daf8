/* SPDX-License-Identifier: MIT */
/* manage.c: the operator's side of the data layer (see manage.h). */
#include <stdio.h>
#include <string.h>
#include "store_int.h"
#include "manage.h"
#include "digest.h"
#include "../cgi/banned.h"

int store_user_list(struct store *s, user_cb cb, void *arg)
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

int store_user_set(struct store *s, const char *name, enum user_field f,
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

int store_user_remove(struct store *s, const char *name)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_prepare(s, "DELETE FROM users WHERE name = ?1", &st)))
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	return changed_one(s, name, store_step_done(s, st, "remove user"));
}

int store_user_rotate(struct store *s, const char *name,
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

int store_window_usage(struct store *s, const char *identity, int64_t since_ms,
		       long *count, int64_t *oldest_ms)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_prepare(s, "SELECT count(*), min(started_ms) FROM runs "
				"WHERE identity = ?1 AND counted = 1 AND "
				"started_ms > ?2", &st)))
		return rc;
	sqlite3_bind_text(st, 1, identity, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, since_ms);
	rc = sqlite3_step(st);
	*count = (long)sqlite3_column_int64(st, 0);
	*oldest_ms = sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? STORE_OK : store_sqlite_fail(s, rc, "usage");
}

int store_settings_each(struct store *s, setting_cb cb, void *arg)
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

#define RUN_COLUMNS "rowid, id, started_ms, finished_ms, deadline_ms, " \
	"identity, user_name, client_addr, broker_pid, code_sha256, code, " \
	"code_size, input_size, outcome, status, error_type, error, " \
	"output_size, truncated, exec_ms, wall_ms, cpu_ms, peak_kb, " \
	"http_status, counted"

static const char *text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

static void read_run(sqlite3_stmt *st, struct run_row *r)
{
	memset(r, 0, sizeof(*r));
	r->rowid = sqlite3_column_int64(st, 0);
	r->id = text(st, 1);
	r->started_ms = sqlite3_column_int64(st, 2);
	r->has_finished = sqlite3_column_type(st, 3) != SQLITE_NULL;
	r->finished_ms = sqlite3_column_int64(st, 3);
	r->deadline_ms = sqlite3_column_int64(st, 4);
	r->identity = text(st, 5);
	r->user_name = text(st, 6);
	r->client_addr = text(st, 7);
	r->broker_pid = sqlite3_column_int64(st, 8);
	r->code_sha256 = text(st, 9);
	r->code = text(st, 10);
	r->code_size = sqlite3_column_int64(st, 11);
	r->input_size = sqlite3_column_int64(st, 12);
	r->outcome = text(st, 13);
	r->status = text(st, 14);
	r->error_type = text(st, 15);
	r->error = text(st, 16);
	r->output_size = sqlite3_column_int64(st, 17);
	r->truncated = sqlite3_column_int(st, 18);
	r->has_exec = sqlite3_column_type(st, 19) != SQLITE_NULL;
	r->exec_ms = sqlite3_column_double(st, 19);
	r->wall_ms = sqlite3_column_double(st, 20);
	r->cpu_ms = sqlite3_column_int64(st, 21);
	r->peak_kb = sqlite3_column_int64(st, 22);
	r->http_status = sqlite3_column_int(st, 23);
	r->counted = sqlite3_column_int(st, 24);
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
int store_runs_query(struct store *s, const struct run_filter *f, run_cb cb,
		     void *arg)
{
	char sql[1024];
	sqlite3_stmt *st;
	int rc, seen = 0;

	snprintf(sql, sizeof(sql), "SELECT " RUN_COLUMNS " FROM runs_view WHERE "
		 "(?1 IS NULL OR user_name = ?1) AND "
		 "(?2 = 0 OR identity LIKE 'anon:%%') AND "
		 "(?3 IS NULL OR client_addr = ?3) AND "
		 "(?4 = 0 OR started_ms >= ?4) AND (?5 = 0 OR started_ms < ?5) AND "
		 "(?6 IS NULL OR status = ?6) AND (?7 = 0 OR status <> 'ok') AND "
		 "rowid > ?8 ORDER BY rowid %s LIMIT ?9",
		 f->newest_first ? "DESC" : "ASC");
	if ((rc = store_prepare(s, sql, &st)))
		return rc;
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
	return each_run(s, st, cb, arg, &seen);
}

int store_run_by_id(struct store *s, const char *id, run_cb cb, void *arg)
{
	sqlite3_stmt *st;
	int rc, seen = 0;

	if ((rc = store_prepare(s, "SELECT " RUN_COLUMNS " FROM runs_view "
				"WHERE id = ?1", &st)))
		return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = each_run(s, st, cb, arg, &seen);
	if (rc == STORE_OK && !seen)
		return store_fail(s, STORE_NOTFOUND, "no request '%s'", id);
	return rc;
}

/* --- maintenance ---------------------------------------------------------- */

int store_prune(struct store *s, int64_t before_ms, int dry_run, long *count)
{
	sqlite3_stmt *st;
	int rc;

	/* Rows still running are never pruned: they may yet be completed. */
	if ((rc = store_prepare(s, dry_run ?
				"SELECT count(*) FROM runs WHERE started_ms < ?1 "
				"AND outcome <> 'running'" :
				"DELETE FROM runs WHERE started_ms < ?1 "
				"AND outcome <> 'running'", &st)))
		return rc;
	sqlite3_bind_int64(st, 1, before_ms);
	rc = sqlite3_step(st);
	*count = dry_run ? (long)sqlite3_column_int64(st, 0) :
			   (long)sqlite3_changes(s->db);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sqlite_fail(s, rc, "prune");
	return STORE_OK;
}

int store_vacuum(struct store *s)
{
	int rc = store_exec(s, "VACUUM", "vacuum");

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

int store_health(struct store *s, struct store_health *h)
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
	return strcmp(h->integrity, "?") == 0 ?
	       store_fail(s, STORE_UNAVAILABLE, "cannot check the database") :
	       STORE_OK;
}
