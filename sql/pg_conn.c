/* SPDX-License-Identifier: MIT */
/*
 * pg_conn.c: the PostgreSQL backend's connection and migrations, and its
 * table of operations.
 *
 * The database's name is a libpq connection URI (postgres:// or
 * postgresql://), so services, PGPASSFILE, sslmode and the rest work as
 * libpq documents them. A URI that carries a password is refused before
 * anything connects: the URI travels in argv (--db), in the web server's
 * configuration and in messages, so the password belongs in a password
 * file or a service file.
 *
 * Every transaction sets its own statement and lock timeouts (SET LOCAL),
 * the connection its connect_timeout (the URI may set another): a server
 * that is down, refuses us or stalls costs a bounded wait and a
 * STORE_UNAVAILABLE, which the CGI answers with 503 and Retry-After.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pg_int.h"
#include "../cgi/banned.h"

/* The wait for a connection, in seconds, unless the URI or PGCONNECT_TIMEOUT
 * says otherwise; and the statements' and locks' (PYEXEC_DB_BUSY_MS). */
#define CONNECT_TIMEOUT "5"
#define DEFAULT_STMT_MS 5000
/* A migration may rewrite a large table. */
#define MIGRATE_STMT_MS 600000
/* The advisory lock migrations take: "pyexec" in ASCII. */
#define MIGRATE_LOCK "112121101120101099"

extern const char pyexec_pg_schema_sql[];	/* from pg_schema.sql */

int pg_schema_version(void)
{
	const char *p = pyexec_pg_schema_sql;
	int v = 0;

	while ((p = strstr(p, "-- migrate ")) != NULL) {
		p += 11;
		v = (int)strtol(p, NULL, 10);
	}
	return v;
}

static long stmt_ms(void)
{
	const char *b = getenv("PYEXEC_DB_BUSY_MS");
	char *end;
	long v;

	if (!b || !*b)
		return DEFAULT_STMT_MS;
	v = strtol(b, &end, 10);
	return *end || v < 1 || v > 600000 ? DEFAULT_STMT_MS : v;
}

/* Refuses a URI libpq cannot read (without quoting it: it may hold a
 * password) or one with a password in it. */
static int check_uri(struct store *s, const char *uri)
{
	char *err = NULL;
	PQconninfoOption *o = PQconninfoParse(uri, &err);
	int rc = STORE_OK;

	if (!o) {
		PQfreemem(err);
		s->never = 1;
		return store_fail(s, STORE_UNAVAILABLE, "the PostgreSQL URI in "
				  "PYEXEC_DB or --db is not one libpq can read "
				  "(postgresql://[user@]host[:port]/dbname"
				  "[?param=value...])");
	}
	for (PQconninfoOption *i = o; i->keyword; i++)
		if (strcmp(i->keyword, "password") == 0 && i->val && *i->val) {
			s->never = 1;
			rc = store_fail(s, STORE_UNAVAILABLE, "the PostgreSQL "
					"URI holds a password: put it in a "
					"password file (PGPASSFILE, ~/.pgpass) "
					"or a service file instead");
		}
	PQconninfoFree(o);
	return rc;
}

static int connect_pg(struct store *s, const char *uri)
{
	/* Later keywords win: the URI's own settings over our defaults. */
	static const char *const keys[] = {
		"connect_timeout", "fallback_application_name",
		"client_encoding", "dbname", NULL
	};
	const char *vals[] = { NULL, "pyexec", "UTF8", uri, NULL };
	const char *env = getenv("PGCONNECT_TIMEOUT");

	vals[0] = env && *env ? env : CONNECT_TIMEOUT;
	s->pg = (struct pg_conn *)PQconnectdbParams(keys, vals, 1);
	if (!s->pg)
		return store_fail(s, STORE_UNAVAILABLE, "out of memory");
	if (PQstatus(PG(s)) != CONNECTION_OK)
		return pg_fail(s, NULL, "cannot connect to PostgreSQL");
	return STORE_OK;
}

/* The schema's version: 0 when it has no schema_version table yet. */
/*
 * The schema's version (0 when it has no schema_version table yet) and,
 * in the same round trip, the settings, which every program reads next
 * (pg_settings_load takes them from s->pg_settings): one trip fewer per
 * request.
 */
static int read_version(struct store *s, int *v)
{
	struct pg_q q[2];
	PGresult *r[2] = { 0 };
	const char *state;
	int rc;

	pg_q_init(&q[0], "SELECT max(version) FROM schema_version");
	pg_q_init(&q[1], "SELECT key, value FROM settings");
	rc = pg_run(s, q, 2, r, 1, "read the schema version");
	state = r[0] ? PQresultErrorField(r[0], PG_DIAG_SQLSTATE) : NULL;
	*v = (int)pg_int(r[0], 0, 0);
	if (rc && state && strcmp(state, "42P01") == 0) {
		*v = 0;
		rc = STORE_OK;
	}
	PQclear(r[0]);
	if (rc == STORE_OK && *v == pg_schema_version())
		s->pg_settings = r[1];
	else
		PQclear(r[1]);
	return rc;
}

static int exec_simple(struct store *s, const char *sql, const char *what)
{
	PGresult *r = PQexec(PG(s), sql);
	int rc = PQresultStatus(r) == PGRES_COMMAND_OK ||
		 PQresultStatus(r) == PGRES_TUPLES_OK ? STORE_OK :
		 pg_fail(s, r, what);

	PQclear(r);
	return rc;
}

/* Applies the sections after version `from`, inside the caller's
 * transaction. */
static int apply_sections(struct store *s, int from)
{
	const char *p = strstr(pyexec_pg_schema_sql, "-- migrate ");
	int rc = STORE_OK;

	while (p && rc == STORE_OK) {
		int v = (int)strtol(p + 11, NULL, 10);
		const char *next = strstr(p + 11, "-- migrate ");
		size_t n = next ? (size_t)(next - p) : strlen(p);
		char *sql = v > from ? strndup(p, n) : NULL;
		if (v > from)
			rc = sql ? exec_simple(s, sql, "migrate") :
			     store_fail(s, STORE_UNAVAILABLE, "out of memory");
		free(sql);
		p = next;
	}
	return rc;
}

/* The version, read under the migration's lock. */
static int locked_version(struct store *s, int *v)
{
	PGresult *r = PQexec(PG(s), "SELECT max(version) FROM schema_version");
	int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? STORE_OK :
		 pg_fail(s, r, "read the schema version");

	*v = (int)pg_int(r, 0, 0);
	PQclear(r);
	return rc;
}

/*
 * Brings the schema to this build's version in one transaction, under a
 * transaction-level advisory lock (a session-level one would outlive the
 * transaction on a pooled server connection): whoever comes second waits,
 * then finds the work done. DDL is transactional in PostgreSQL, so a
 * migration that fails leaves the schema as it was.
 */
static int migrate(struct store *s, int target)
{
	char sql[160];
	int v = 0, rc;

	snprintf(sql, sizeof(sql), "BEGIN; SET LOCAL statement_timeout = %d; "
		 "SET LOCAL lock_timeout = %d; SELECT pg_advisory_xact_lock("
		 MIGRATE_LOCK ")", MIGRATE_STMT_MS, MIGRATE_STMT_MS);
	if ((rc = exec_simple(s, sql, "lock for migration")) ||
	    (rc = exec_simple(s, "CREATE TABLE IF NOT EXISTS schema_version "
			      "(version integer NOT NULL)", "migrate")) ||
	    (rc = locked_version(s, &v)) || v >= target)
		goto out;
	snprintf(sql, sizeof(sql), "DELETE FROM schema_version; INSERT INTO "
		 "schema_version VALUES (%d)", target);
	if ((rc = apply_sections(s, v)) == STORE_OK)
		rc = exec_simple(s, sql, "set the schema version");
out:
	if (rc == STORE_OK && v > target)	/* a newer program came first */
		rc = store_fail(s, STORE_UNAVAILABLE, "database schema %d is "
				"newer than this program's (%d)", v, target);
	if (rc == STORE_OK)
		return exec_simple(s, "COMMIT", "commit the migration");
	pg_rollback(s);
	return rc;
}

static int pg_open(struct store *s, const char *uri, int mode)
{
	int target = pg_schema_version(), v, rc;

	s->readonly = mode == STORE_RO;
	s->stmt_ms = stmt_ms();
	if ((rc = check_uri(s, uri)) || (rc = connect_pg(s, uri)) ||
	    (rc = read_version(s, &v)))
		return rc;
	if (v > target)
		return store_fail(s, STORE_UNAVAILABLE, "database schema %d is "
				  "newer than this program's (%d)", v, target);
	if (v == target)
		return STORE_OK;
	if (s->readonly)
		return store_fail(s, STORE_UNAVAILABLE, "the database has "
				  "schema %d, this program %d: run "
				  "pyexec-admin init", v, target);
	return migrate(s, target);
}

static void pg_close(struct store *s)
{
	PQclear(s->pg_settings);
	s->pg_settings = NULL;
	if (s->pg)
		PQfinish(PG(s));
	s->pg = NULL;
}

static int pg_idle(const struct store *s)
{
	return s->pg && PQtransactionStatus(PG(s)) == PQTRANS_IDLE;
}

/* backend.h, reuse: the connection still idle, this build's schema, and
 * the settings read again in the same round trip (as at open). One the
 * server dropped (a restart) is made again by pg_run, once; a server
 * still down is the request's 503, without a second attempt here. */
static int pg_reuse(struct store *s, const char *uri)
{
	int v, rc;

	(void)uri;
	if (PQstatus(PG(s)) != CONNECTION_OK || !pg_idle(s))
		return 1;
	s->stmt_ms = stmt_ms();
	PQclear(s->pg_settings);
	s->pg_settings = NULL;
	if ((rc = read_version(s, &v)) != STORE_OK)
		return rc;
	return v == pg_schema_version() ? STORE_OK : 1;
}

const struct store_ops store_pg_ops = {
	.name = "PostgreSQL",
	.open = pg_open,
	.close = pg_close,
	.reuse = pg_reuse,
	.idle = pg_idle,
	.schema_version = pg_schema_version,
	.settings_load = pg_settings_load,
	.setting_set = pg_setting_set,
	.setting_unset = pg_setting_unset,
	.settings_each = pg_settings_each,
	.user_by_token = pg_user_by_token,
	.user_by_name = pg_user_by_name,
	.user_add = pg_user_add,
	.user_list = pg_user_list,
	.user_set = pg_user_set,
	.user_set_modules = pg_user_set_modules,
	.user_remove = pg_user_remove,
	.user_rotate = pg_user_rotate,
	.run_begin = pg_run_begin,
	.run_finish = pg_run_finish,
	.run_unrun = pg_run_unrun,
	.run_reject = pg_run_reject,
	.window_usage = pg_window_usage,
	.runs_query = pg_runs_query,
	.runs_count = pg_runs_count,
	.run_by_id = pg_run_by_id,
	.run_resolve = pg_run_resolve,
	.runs_last_rowid = pg_runs_last_rowid,
	.runs_scan = pg_runs_scan,
	.exec_percentile = pg_exec_percentile,
	.top_identities = pg_top_identities,
	.prune = pg_prune,
	.vacuum = pg_vacuum,
	.backup = pg_backup,
	.health = pg_health,
	.metrics = pg_metrics,
};
