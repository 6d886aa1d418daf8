/* SPDX-License-Identifier: MIT */
/*
 * users.c: identities. A user is created only here (store_user_add), with
 * a token drawn from the kernel, shown once and stored as its SHA-256.
 */
#include <stdio.h>
#include <string.h>
#include "store_int.h"
#include "digest.h"
#include "../cgi/banned.h"

void store_read_user(sqlite3_stmt *st, struct user *u)
{
	const char *name = (const char *)sqlite3_column_text(st, 1);

	memset(u, 0, sizeof(*u));
	u->id = sqlite3_column_int64(st, 0);
	snprintf(u->name, sizeof(u->name), "%s", name ? name : "");
	u->is_admin = sqlite3_column_int(st, 2);
	u->disabled = sqlite3_column_int(st, 3);
	u->quota = sqlite3_column_type(st, 4) == SQLITE_NULL ? -2 :
		   (long)sqlite3_column_int64(st, 4);
	u->timeout_ms = (long)sqlite3_column_int64(st, 5);
	u->memory_mb = (long)sqlite3_column_int64(st, 6);
	u->quota_reset_ms = sqlite3_column_int64(st, 7);
	u->created_ms = sqlite3_column_int64(st, 8);
	snprintf(u->modules, sizeof(u->modules), "%s",
		 sqlite3_column_text(st, 9) ?
		 (const char *)sqlite3_column_text(st, 9) : "");
}

static int one_user(struct store *s, sqlite3_stmt *st, struct user *u)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		store_read_user(st, u);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return STORE_OK;
	if (rc == SQLITE_DONE)
		return STORE_NOTFOUND;
	return store_sqlite_fail(s, rc, "read user");
}

int sq_user_by_token(struct store *s, const char *token, struct user *u)
{
	char hash[65];
	sqlite3_stmt *st;
	int rc;

	if (!token_wellformed(token))
		return STORE_NOTFOUND;
	if (sha256_hex(token, strlen(token), hash) != 0)
		return store_fail(s, STORE_UNAVAILABLE, "sha256 failed");
	if ((rc = store_prepare(s, "SELECT " USER_COLUMNS " FROM users "
				"WHERE token_hash = ?1", &st)))
		return rc;
	sqlite3_bind_text(st, 1, hash, 64, SQLITE_TRANSIENT);
	explicit_bzero(hash, sizeof(hash));
	return one_user(s, st, u);
}

int sq_user_by_name(struct store *s, const char *name, struct user *u)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_prepare(s, "SELECT " USER_COLUMNS " FROM users "
				"WHERE name = ?1", &st)))
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	return one_user(s, st, u);
}

int sq_user_add(struct store *s, const char *name, int admin, long quota,
		   char token[TOKEN_LEN + 1])
{
	char hash[65];
	sqlite3_stmt *st;
	int rc;

	if (token_new(token) != 0 || sha256_hex(token, TOKEN_LEN, hash) != 0)
		return store_fail(s, STORE_UNAVAILABLE, "cannot make a token");
	if (quota < -2)
		return store_fail(s, STORE_INVALID, "invalid quota %ld", quota);
	if ((rc = store_prepare(s, "INSERT INTO users (name, token_hash, "
				"is_admin, quota, created_ms) VALUES "
				"(?1, ?2, ?3, ?4, ?5)", &st)))
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, hash, 64, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 3, admin != 0);
	if (quota >= -1)
		sqlite3_bind_int64(st, 4, quota);
	sqlite3_bind_int64(st, 5, now_ms());
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return STORE_OK;
	explicit_bzero(token, TOKEN_LEN + 1);
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return store_fail(s, rc == SQLITE_CONSTRAINT_UNIQUE ?
				  STORE_CONFLICT : STORE_INVALID,
				  rc == SQLITE_CONSTRAINT_UNIQUE ?
				  "user '%s' already exists" :
				  "invalid user name '%s' (1-64 of A-Z a-z 0-9 . _ @ -)",
				  name);
	return store_sqlite_fail(s, rc, "add user");
}
