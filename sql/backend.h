/* SPDX-License-Identifier: MIT */
/*
 * backend.h: the data layer's backends. Every public store_* function of
 * store.h, manage.h and metrics.h but the few in backend.c is an operation
 * of a backend: one table of them per backend, SQLite (sqlite_ops.c over
 * store.c, users.c, runs.c, manage.c, metrics.c, backup.c) and PostgreSQL
 * (pg_*.c). store_open picks the table by the database's name; nothing
 * outside sql/ knows which one it talks to. Only sql/ includes this.
 *
 * STORE_OPS(X) lists the operations once: X(name, (parameters),
 * (arguments)); each returns a STORE_* code.
 */
#ifndef PYEXEC_BACKEND_H
#define PYEXEC_BACKEND_H

#include "store.h"
#include "manage.h"
#include "metrics.h"

#define STORE_OPS(X) \
	X(settings_load, (struct store *s, struct settings *out), (s, out)) \
	X(setting_set, (struct store *s, const char *key, const char *value), \
	  (s, key, value)) \
	X(setting_unset, (struct store *s, const char *key), (s, key)) \
	X(settings_each, (struct store *s, setting_cb cb, void *arg), \
	  (s, cb, arg)) \
	X(user_by_token, (struct store *s, const char *token, struct user *u), \
	  (s, token, u)) \
	X(user_by_name, (struct store *s, const char *name, struct user *u), \
	  (s, name, u)) \
	X(user_add, (struct store *s, const char *name, int admin, long quota, \
		     char token[TOKEN_LEN + 1]), (s, name, admin, quota, token)) \
	X(user_list, (struct store *s, user_cb cb, void *arg), (s, cb, arg)) \
	X(user_set, (struct store *s, const char *name, enum user_field f, \
		     int64_t value), (s, name, f, value)) \
	X(user_set_modules, (struct store *s, const char *name, \
			     const char *profile), (s, name, profile)) \
	X(user_remove, (struct store *s, const char *name), (s, name)) \
	X(user_rotate, (struct store *s, const char *name, \
			char token[TOKEN_LEN + 1]), (s, name, token)) \
	X(run_begin, (struct store *s, const struct run_rec *r, long limit, \
		      long window_s, int64_t reset_ms, \
		      const struct settings *st, struct quota_state *q), \
	  (s, r, limit, window_s, reset_ms, st, q)) \
	X(run_finish, (struct store *s, const struct run_rec *r, \
		       const struct settings *st), (s, r, st)) \
	X(run_unrun, (struct store *s, const struct run_rec *r, \
		      const struct settings *st), (s, r, st)) \
	X(run_reject, (struct store *s, const struct run_rec *r, \
		       const struct settings *st), (s, r, st)) \
	X(window_usage, (struct store *s, const char *identity, \
			 int64_t since_ms, long *count, int64_t *oldest_ms), \
	  (s, identity, since_ms, count, oldest_ms)) \
	X(runs_query, (struct store *s, const struct run_filter *f, run_cb cb, \
		       void *arg), (s, f, cb, arg)) \
	X(runs_count, (struct store *s, const struct run_filter *f, long *n), \
	  (s, f, n)) \
	X(run_by_id, (struct store *s, const char *id, run_cb cb, void *arg), \
	  (s, id, cb, arg)) \
	X(run_resolve, (struct store *s, const char *prefix, char id[33]), \
	  (s, prefix, id)) \
	X(runs_last_rowid, (struct store *s, int64_t *rowid), (s, rowid)) \
	X(runs_scan, (struct store *s, int64_t since_ms, int64_t until_ms, \
		      enum scan_order order, brief_cb cb, void *arg), \
	  (s, since_ms, until_ms, order, cb, arg)) \
	X(exec_percentile, (struct store *s, int pct, double *value, long *n), \
	  (s, pct, value, n)) \
	X(top_identities, (struct store *s, int64_t since_ms, int64_t until_ms, \
			   long n, count_cb cb, void *arg), \
	  (s, since_ms, until_ms, n, cb, arg)) \
	X(prune, (struct store *s, int64_t before_ms, int dry_run, long *count), \
	  (s, before_ms, dry_run, count)) \
	X(vacuum, (struct store *s), (s)) \
	X(backup, (struct store *s, const char *dest, \
		   struct store_backup_info *info), (s, dest, info)) \
	X(health, (struct store *s, struct store_health *h), (s, h)) \
	X(metrics, (struct store *s, struct store_metrics *m), (s, m))

#define STORE_OP_FIELD(name, params, args) int (*name) params;

struct store_ops {
	const char *name;	/* "sqlite", "postgresql" */
	int (*open)(struct store *s, const char *target, int mode);
	void (*close)(struct store *s);
	/* A store kept open by store_keep_open, before its next request:
	 * STORE_OK when it is still the database at target, with this
	 * build's schema and no transaction open, its per-request options
	 * (timeouts) set again from the environment; 1 when it is not (the
	 * file was replaced, the connection lost, the schema changed):
	 * store_open then closes it and opens afresh; else the error the
	 * check met, which the request gets as it would an open's (a lock
	 * held past the busy timeout). NULL: never kept. */
	int (*reuse)(struct store *s, const char *target);
	int (*idle)(const struct store *s);	/* 1: no transaction open */
	int (*schema_version)(void);
	STORE_OPS(STORE_OP_FIELD)
};

/* The backends; a NULL operation answers STORE_INVALID ("not on this
 * backend"). */
extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_pg_ops;

/* Whether name is a PostgreSQL connection URI (postgres://, postgresql://). */
int store_is_pg(const char *name);

#endif
