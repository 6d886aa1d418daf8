/* SPDX-License-Identifier: MIT */
/* pg_users.c: identities and settings on PostgreSQL (users.c, manage.c and
 * store.c's settings on SQLite; the SQL is the same but for $n). */
#include <stdio.h>
#include <string.h>
#include "pg_int.h"
#include "digest.h"
#include "../cgi/banned.h"

void pg_read_user(const PGresult *r, int row, struct user *u)
{
	const char *name = pg_text(r, row, 1), *mods = pg_text(r, row, 9);

	memset(u, 0, sizeof(*u));
	u->id = pg_int(r, row, 0);
	snprintf(u->name, sizeof(u->name), "%s", name ? name : "");
	u->is_admin = (int)pg_int(r, row, 2);
	u->disabled = (int)pg_int(r, row, 3);
	u->quota = PQgetisnull(r, row, 4) ? -2 : (long)pg_int(r, row, 4);
	u->timeout_ms = (long)pg_int(r, row, 5);
	u->memory_mb = (long)pg_int(r, row, 6);
	u->quota_reset_ms = pg_int(r, row, 7);
	u->created_ms = pg_int(r, row, 8);
	snprintf(u->modules, sizeof(u->modules), "%s", mods ? mods : "");
}

static int one_user(struct store *s, struct pg_q *q, struct user *u)
{
	PGresult *r = NULL;
	int rc = pg_one(s, q, &r, "read user");

	if (rc == STORE_OK && PQntuples(r) == 0)
		rc = STORE_NOTFOUND;
	else if (rc == STORE_OK)
		pg_read_user(r, 0, u);
	PQclear(r);
	return rc;
}

int pg_user_by_token(struct store *s, const char *token, struct user *u)
{
	char hash[65];
	struct pg_q q;
	int rc;

	if (!token_wellformed(token))
		return STORE_NOTFOUND;
	if (sha256_hex(token, strlen(token), hash) != 0)
		return store_fail(s, STORE_UNAVAILABLE, "sha256 failed");
	pg_q_init(&q, "SELECT " PG_USER_COLUMNS " FROM users "
		  "WHERE token_hash = $1");
	pg_q_text(&q, hash);
	rc = one_user(s, &q, u);
	explicit_bzero(hash, sizeof(hash));
	return rc;
}

int pg_user_by_name(struct store *s, const char *name, struct user *u)
{
	struct pg_q q;

	pg_q_init(&q, "SELECT " PG_USER_COLUMNS " FROM users WHERE name = $1");
	pg_q_text(&q, name);
	return one_user(s, &q, u);
}

int pg_user_add(struct store *s, const char *name, int admin, long quota,
		char token[TOKEN_LEN + 1])
{
	char hash[65];
	struct pg_q q;
	int rc;

	if (token_new(token) != 0 || sha256_hex(token, TOKEN_LEN, hash) != 0)
		return store_fail(s, STORE_UNAVAILABLE, "cannot make a token");
	if (quota < -2)
		return store_fail(s, STORE_INVALID, "invalid quota %ld", quota);
	pg_q_init(&q, "INSERT INTO users (name, token_hash, is_admin, quota, "
		  "created_ms) VALUES ($1, $2, $3, $4, $5)");
	pg_q_text(&q, name);
	pg_q_text(&q, hash);
	pg_q_int(&q, admin != 0);
	if (quota >= -1)
		pg_q_int(&q, quota);
	else
		pg_q_text(&q, NULL);
	pg_q_int(&q, now_ms());
	rc = pg_one(s, &q, NULL, "add user");
	explicit_bzero(hash, sizeof(hash));
	if (rc == STORE_OK)
		return STORE_OK;
	explicit_bzero(token, TOKEN_LEN + 1);
	if (rc == STORE_CONFLICT)
		return store_fail(s, rc, "user '%s' already exists", name);
	if (rc == STORE_INVALID)
		return store_fail(s, rc, "invalid user name '%s' (1-64 of A-Z "
				  "a-z 0-9 . _ @ -)", name);
	return rc;
}

int pg_user_list(struct store *s, user_cb cb, void *arg)
{
	struct pg_q q;
	PGresult *r = NULL;
	struct user u;
	int rc;

	pg_q_init(&q, "SELECT " PG_USER_COLUMNS " FROM users ORDER BY name");
	if ((rc = pg_one(s, &q, &r, "list users")) == STORE_OK)
		for (int i = 0; i < PQntuples(r); i++) {
			pg_read_user(r, i, &u);
			if (cb(&u, arg))
				break;
		}
	PQclear(r);
	return rc;
}

/* One statement that must change the named user's row. */
static int change_user(struct store *s, struct pg_q *q, const char *name,
		       const char *what)
{
	PGresult *r = NULL;
	int rc = pg_one(s, q, &r, what);

	if (rc == STORE_OK && strcmp(PQcmdTuples(r), "1") != 0)
		rc = store_fail(s, STORE_NOTFOUND, "no user '%s'", name);
	PQclear(r);
	return rc;
}

int pg_user_set(struct store *s, const char *name, enum user_field f,
		int64_t value)
{
	static const char *const sql[] = {
		[USER_DISABLED] = "UPDATE users SET disabled = $2 WHERE name = $1",
		[USER_ADMIN] = "UPDATE users SET is_admin = $2 WHERE name = $1",
		[USER_QUOTA] = "UPDATE users SET quota = $2 WHERE name = $1",
		[USER_TIMEOUT_MS] = "UPDATE users SET timeout_ms = $2 WHERE name = $1",
		[USER_MEMORY_MB] = "UPDATE users SET memory_mb = $2 WHERE name = $1",
		[USER_QUOTA_RESET_MS] = "UPDATE users SET quota_reset_ms = $2 "
					"WHERE name = $1",
	};
	struct pg_q q;

	if ((unsigned)f >= sizeof(sql) / sizeof(sql[0]))
		return store_fail(s, STORE_INVALID, "unknown user field");
	pg_q_init(&q, sql[f]);
	pg_q_text(&q, name);
	/* NULL means "the default" for the limits and the quota. */
	if ((f == USER_QUOTA && value == -2) ||
	    ((f == USER_TIMEOUT_MS || f == USER_MEMORY_MB) && value == 0))
		pg_q_text(&q, NULL);
	else
		pg_q_int(&q, value);
	return change_user(s, &q, name, "update user");
}

int pg_user_set_modules(struct store *s, const char *name,
			const char *profile)
{
	struct pg_q q;
	uint64_t mask;

	if (profile && profile_parse(profile, &mask, s->err, sizeof(s->err)))
		return STORE_INVALID;
	pg_q_init(&q, "UPDATE users SET modules = $2 WHERE name = $1");
	pg_q_text(&q, name);
	pg_q_text(&q, profile);
	return change_user(s, &q, name, "update user");
}

int pg_user_remove(struct store *s, const char *name)
{
	struct pg_q q;

	pg_q_init(&q, "DELETE FROM users WHERE name = $1");
	pg_q_text(&q, name);
	return change_user(s, &q, name, "remove user");
}

int pg_user_rotate(struct store *s, const char *name,
		   char token[TOKEN_LEN + 1])
{
	char hash[65];
	struct pg_q q;
	int rc;

	if (token_new(token) != 0 || sha256_hex(token, TOKEN_LEN, hash) != 0)
		return store_fail(s, STORE_UNAVAILABLE, "cannot make a token");
	pg_q_init(&q, "UPDATE users SET token_hash = $2 WHERE name = $1");
	pg_q_text(&q, name);
	pg_q_text(&q, hash);
	rc = change_user(s, &q, name, "rotate token");
	explicit_bzero(hash, sizeof(hash));
	if (rc != STORE_OK)
		explicit_bzero(token, TOKEN_LEN + 1);
	return rc;
}

/* --- settings ------------------------------------------------------------- */

/* A write makes the settings read at open stale. */
static void forget_settings(struct store *s)
{
	PQclear(s->pg_settings);
	s->pg_settings = NULL;
}

int pg_settings_load(struct store *s, struct settings *out)
{
	struct pg_q q;
	PGresult *r = NULL;
	int rc;

	settings_defaults(out);
	pg_q_init(&q, "SELECT key, value FROM settings");
	/* Read at open, in the schema version's round trip: once. */
	if ((r = s->pg_settings) != NULL) {
		s->pg_settings = NULL;
		rc = STORE_OK;
	} else {
		rc = pg_one(s, &q, &r, "read settings");
	}
	if (rc == STORE_OK)
		for (int i = 0; i < PQntuples(r); i++)
			/* A value that no longer validates keeps the default. */
			settings_apply(out, pg_text(r, i, 0), pg_text(r, i, 1));
	PQclear(r);
	return rc;
}

int pg_settings_each(struct store *s, setting_cb cb, void *arg)
{
	struct pg_q q;
	PGresult *r = NULL;
	int rc;

	pg_q_init(&q, "SELECT key, value FROM settings ORDER BY key");
	if ((rc = pg_one(s, &q, &r, "read settings")) == STORE_OK)
		for (int i = 0; i < PQntuples(r); i++)
			if (cb(pg_text(r, i, 0), pg_text(r, i, 1), arg))
				break;
	PQclear(r);
	return rc;
}

int pg_setting_set(struct store *s, const char *key, const char *value)
{
	const struct setting_def *d = setting_find(key);
	struct pg_q q;

	if (!d)
		return store_fail(s, STORE_INVALID, "unknown setting '%s'", key);
	if (setting_validate(d, value, s->err, sizeof(s->err)) != 0)
		return STORE_INVALID;
	forget_settings(s);
	pg_q_init(&q, "INSERT INTO settings (key, value) VALUES ($1, $2) "
		  "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
	pg_q_text(&q, key);
	pg_q_text(&q, value);
	return pg_one(s, &q, NULL, "write setting");
}

int pg_setting_unset(struct store *s, const char *key)
{
	struct pg_q q;

	if (!setting_find(key))
		return store_fail(s, STORE_INVALID, "unknown setting '%s'", key);
	forget_settings(s);
	pg_q_init(&q, "DELETE FROM settings WHERE key = $1");
	pg_q_text(&q, key);
	return pg_one(s, &q, NULL, "unset setting");
}
