/* SPDX-License-Identifier: MIT */
/*
 * backup.c: a consistent copy of the live database, with SQLite's online
 * backup API. The copy is one step over every page, under one read
 * transaction of the source: in WAL mode writers go on meanwhile, and the
 * copy is the database as of the moment that transaction began (a cp of
 * the file and its WAL would not be). The destination is an empty file
 * the caller made; it is opened without a journal of its own and is
 * synced before it is closed, so the caller can rename it into place.
 */
#include <stdio.h>
#include "store_int.h"
#include "manage.h"
#include "../cgi/banned.h"

/* The number of rows of a table in the copy (-1 on error). */
static int64_t count_rows(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t n = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static int copy_pages(struct store *s, sqlite3 *dst)
{
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", s->db, "main");
	int rc;

	if (!b)
		return store_fail(s, STORE_UNAVAILABLE, "backup: %s",
				  sqlite3_errmsg(dst));
	rc = sqlite3_backup_step(b, -1);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE)
		return store_fail(s, STORE_UNAVAILABLE, "backup: %s",
				  sqlite3_errstr(rc));
	return STORE_OK;
}

/* What the copy holds: its rows, and that it is sound. */
static int check_copy(struct store *s, sqlite3 *dst,
		      struct store_backup_info *info)
{
	sqlite3_stmt *st;
	int ok = 0;

	info->runs = count_rows(dst, "SELECT count(*) FROM runs");
	info->users = count_rows(dst, "SELECT count(*) FROM users");
	info->settings = count_rows(dst, "SELECT count(*) FROM settings");
	if (info->runs < 0 || info->users < 0 || info->settings < 0)
		return store_fail(s, STORE_UNAVAILABLE, "backup: the copy "
				  "cannot be read: %s", sqlite3_errmsg(dst));
	if (sqlite3_prepare_v2(dst, "PRAGMA quick_check", -1, &st, NULL) ==
	    SQLITE_OK) {
		ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)
		     && sqlite3_stricmp((const char *)sqlite3_column_text(st, 0),
					"ok") == 0;
		sqlite3_finalize(st);
	}
	return ok ? STORE_OK : store_fail(s, STORE_UNAVAILABLE, "backup: the "
					  "copy fails its quick_check");
}

int sq_backup(struct store *s, const char *dest,
		 struct store_backup_info *info)
{
	sqlite3 *dst = NULL;
	int rc = sqlite3_open_v2(dest, &dst, SQLITE_OPEN_READWRITE, NULL);

	if (rc != SQLITE_OK) {
		store_fail(s, STORE_UNAVAILABLE, "backup: cannot open %s: %s",
			   dest, dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
		sqlite3_close(dst);
		return STORE_UNAVAILABLE;
	}
	sqlite3_db_config(dst, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_busy_timeout(dst, (int)s->busy_ms);
	rc = sqlite3_exec(dst, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		rc = store_fail(s, STORE_UNAVAILABLE, "backup: %s",
				sqlite3_errmsg(dst));
	else
		rc = copy_pages(s, dst);
	if (rc == STORE_OK)
		rc = check_copy(s, dst, info);
	if (sqlite3_close(dst) != SQLITE_OK && rc == STORE_OK)
		rc = store_fail(s, STORE_UNAVAILABLE, "backup: cannot close "
				"the copy");
	return rc;
}
