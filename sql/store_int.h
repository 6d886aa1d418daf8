/* SPDX-License-Identifier: MIT */
/* store_int.h: what the files of the data layer share (both backends);
 * nothing else includes it. */
#ifndef PYEXEC_STORE_INT_H
#define PYEXEC_STORE_INT_H

#include <sqlite3.h>
#include <sys/types.h>
#include "store.h"
#include "backend.h"

struct pg_conn;

struct store {
	const struct store_ops *ops;
	sqlite3 *db;		/* SQLite */
	struct pg_conn *pg;	/* PostgreSQL (libpq's PGconn) */
	struct pg_result *pg_settings;	/* the settings read at open */
	long stmt_ms;		/* PostgreSQL: statement and lock timeouts */
	int readonly;
	long busy_ms;		/* the busy timeout in force */
	int never;		/* the open failed for good (store_never) */
	int broken;		/* a call failed STORE_UNAVAILABLE: never kept */
	char *name;		/* what it was opened as (store_keep_open) */
	dev_t dev;		/* SQLite: the file opened (st_dev, st_ino) */
	ino_t ino;
	char err[512];
};

/* The SQLite backend's operations (store.c, users.c, runs.c, ...). */
#define SQ_DECL(name, params, args) int sq_##name params;
STORE_OPS(SQ_DECL)
int sq_open(struct store *s, const char *path, int mode);
void sq_close(struct store *s);
int sq_reuse(struct store *s, const char *path);
int sq_idle(const struct store *s);

int store_fail(struct store *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int store_sqlite_fail(struct store *s, int rc, const char *what);
int store_prepare(struct store *s, const char *sql, sqlite3_stmt **st);
int store_exec(struct store *s, const char *sql, const char *what);

/* The columns store_read_user expects, in its order. */
#define USER_COLUMNS "id, name, is_admin, disabled, quota, timeout_ms, " \
		     "memory_mb, quota_reset_ms, created_ms, modules"
void store_read_user(sqlite3_stmt *st, struct user *u);

/* A finished run (neither refused nor running) with an execution time:
 * the rows stats' percentiles and /metrics' histogram are made of. */
#define FINISHED_RUN "outcome NOT IN ('rejected', 'running') AND " \
	"exec_ms IS NOT NULL"

/* Runs a prepared statement to its end; finalizes it. */
int store_step_done(struct store *s, sqlite3_stmt *st, const char *what);

#endif
