/* SPDX-License-Identifier: MIT */
/*
 * manage.h: the data layer's operator side, used by pyexec-admin: users,
 * settings, the audit log's queries, maintenance. Same conventions as
 * store.h (STORE_* codes, store_error for the message).
 */
#ifndef PYEXEC_MANAGE_H
#define PYEXEC_MANAGE_H

#include "store.h"

/* --- users ---------------------------------------------------------------- */

typedef int (*user_cb)(const struct user *u, void *arg);

/* Calls cb for every user, by name; a non-zero return stops the walk. */
int store_user_list(struct store *s, user_cb cb, void *arg);

enum user_field {
	USER_DISABLED,		/* 0 or 1 */
	USER_ADMIN,		/* 0 or 1 */
	USER_QUOTA,		/* -2: the default, -1: unlimited, N */
	USER_TIMEOUT_MS,	/* 0: the default */
	USER_MEMORY_MB,		/* 0: the default */
	USER_QUOTA_RESET_MS,	/* runs before this time no longer count */
};

/* STORE_NOTFOUND when no user has that name. */
int store_user_set(struct store *s, const char *name, enum user_field f,
		   int64_t value);
/* The user's own module profile (sandbox/profile.h's text), or NULL for
 * the allowed_modules setting; STORE_INVALID with the reason when the
 * profile names a module that is not vetted. */
int store_user_set_modules(struct store *s, const char *name,
			   const char *profile);
/* Removes the user; audit rows keep their identity and user_name. */
int store_user_remove(struct store *s, const char *name);
/* A new token for the user; the old one stops working at once. */
int store_user_rotate(struct store *s, const char *name,
		      char token[TOKEN_LEN + 1]);

/* Counted runs of identity started after since_ms, and the oldest. */
int store_window_usage(struct store *s, const char *identity, int64_t since_ms,
		       long *count, int64_t *oldest_ms);

/* --- settings ------------------------------------------------------------- */

typedef int (*setting_cb)(const char *key, const char *value, void *arg);

/* Calls cb for every value an operator set. */
int store_settings_each(struct store *s, setting_cb cb, void *arg);

/* --- the audit log -------------------------------------------------------- */

struct run_filter {
	const char *user;	/* user_name */
	int anonymous;		/* only anonymous requests */
	const char *client;	/* client_addr */
	int64_t since_ms, until_ms;	/* 0: open */
	const char *status;	/* runs_view.status */
	int failed;		/* status not 'ok' */
	const char *via;	/* "rest", "mcp", "stdio"; NULL: any */
	int64_t after_rowid;	/* only newer rows (for --follow) */
	int64_t upto_rowid;	/* only rows up to this one (0: open) */
	long limit;		/* 0: all */
	int newest_first;
};

/* The columns of a run_row, in the order they are read; bit (1 << RUN_x)
 * of run_row.nulls is set when the column is NULL. */
enum run_column {
	RUN_ROWID, RUN_ID, RUN_STARTED_MS, RUN_FINISHED_MS, RUN_DEADLINE_MS,
	RUN_IDENTITY, RUN_USER_NAME, RUN_CLIENT_ADDR, RUN_BROKER_PID,
	RUN_CODE_SHA256, RUN_CODE, RUN_CODE_SIZE, RUN_INPUT_SIZE, RUN_OUTCOME,
	RUN_STATUS, RUN_ERROR_TYPE, RUN_ERROR, RUN_OUTPUT_SIZE, RUN_TRUNCATED,
	RUN_EXEC_MS, RUN_WALL_MS, RUN_CPU_MS, RUN_PEAK_KB, RUN_HTTP_STATUS,
	RUN_COUNTED, RUN_PROFILE, RUN_VIA,
	RUN_NCOLUMNS
};

/* One row of runs_view; strings are valid during the callback only. */
struct run_row {
	int64_t rowid;
	const char *id;
	int64_t started_ms, finished_ms, deadline_ms;
	const char *identity, *user_name, *client_addr;
	int64_t broker_pid;
	const char *code_sha256, *code;
	int64_t code_size, input_size;
	const char *outcome, *status;	/* status: outcome, or 'abandoned' */
	const char *error_type, *error;
	int64_t output_size;
	int truncated;
	double exec_ms, wall_ms;
	int64_t cpu_ms, peak_kb;
	int http_status;
	int counted;
	const char *profile;	/* runs.profile: the modules it could import */
	const char *via;		/* the way in: rest, mcp, stdio */
	int has_finished, has_exec;	/* NULL-ness of finished_ms, exec_ms */
	uint32_t nulls;			/* every column's NULL-ness */
};

#define RUN_IS_NULL(r, col) ((((r)->nulls) >> (col)) & 1u)

typedef int (*run_cb)(const struct run_row *r, void *arg);

/* Rows by rowid (the order they were written), oldest first unless
 * newest_first. */
int store_runs_query(struct store *s, const struct run_filter *f, run_cb cb,
		     void *arg);
/* How many rows the filter matches (at most its limit, when it has one). */
int store_runs_count(struct store *s, const struct run_filter *f, long *n);
/* STORE_NOTFOUND when no row has that id. */
int store_run_by_id(struct store *s, const char *id, run_cb cb, void *arg);
/* The full id of the one row whose id starts with prefix (hex, any case):
 * STORE_NOTFOUND when none does, STORE_CONFLICT when several do. */
int store_run_resolve(struct store *s, const char *prefix, char id[33]);
/* The rowid of the newest row (0: none). */
int store_runs_last_rowid(struct store *s, int64_t *rowid);

/* A row in brief, for aggregates (stats, costs). */
struct run_brief {
	int64_t started_ms;
	const char *identity, *status;	/* valid during the callback */
	const char *via;
	int http_status;
	int has_exec;		/* a finished run (neither refused nor
				 * running) with an exec_ms */
	double exec_ms;
};

typedef int (*brief_cb)(const struct run_brief *b, void *arg);

enum scan_order { SCAN_BY_TIME, SCAN_BY_IDENTITY, SCAN_BY_STATUS,
		  SCAN_BY_VIA };

/* Every row started in [since_ms, until_ms) (0: open), in the order asked
 * (ties by start time), so that a group's rows arrive together. */
int store_runs_scan(struct store *s, int64_t since_ms, int64_t until_ms,
		    enum scan_order order, brief_cb cb, void *arg);

/* The pct-th percentile (nearest rank) of exec_ms over the finished runs
 * (neither refused nor running); *n is their count (0: *value is 0). */
int store_exec_percentile(struct store *s, int pct, double *value, long *n);

typedef int (*count_cb)(const char *key, long count, void *arg);

/* The identities with the most runs (refused requests aside) started in
 * [since_ms, until_ms), most first, at most n of them. */
int store_top_identities(struct store *s, int64_t since_ms, int64_t until_ms,
			 long n, count_cb cb, void *arg);

/* --- maintenance ---------------------------------------------------------- */

/* Deletes (or, dry_run, counts) finished rows started before before_ms. */
int store_prune(struct store *s, int64_t before_ms, int dry_run, long *count);
int store_vacuum(struct store *s);

/* A consistent copy of the database into dest, an empty file the caller
 * made (online: writers go on meanwhile); the copy's rows are counted. */
struct store_backup_info {
	int64_t runs, users, settings;
};
int store_backup(struct store *s, const char *dest,
		 struct store_backup_info *info);

struct store_health {
	char integrity[128];	/* "ok" or the first problem */
	char journal_mode[16];
	int schema_version;
	int64_t pages, page_size, freelist;
	int64_t runs, users;
	int64_t totals_off;	/* groups of /metrics' totals that differ
				   from the log; -1: unknown */
};
int store_health(struct store *s, struct store_health *h);

/* --- PostgreSQL's roles -------------------------------------------------- */

/* The SQL that makes the operator's and the CGI's roles (ROLES_CREATE,
 * before pyexec-admin init) and grants the CGI's what it needs on the
 * tables (ROLES_GRANTS, after it): README "Several hosts". STORE_INVALID
 * for a name that is not a plain identifier, or the same name twice. */
enum { ROLES_CREATE = 1, ROLES_GRANTS = 2 };
int store_roles_sql(const char *operator_role, const char *cgi_role,
		    int parts, char *buf, size_t len);

#endif
