/* SPDX-License-Identifier: MIT */
/*
 * store.h: the data layer, the only code that calls sqlite3_* or libpq's
 * PQ*: SQLite or PostgreSQL, picked by the database's name (backend.h).
 * Shared by pyexec.cgi and pyexec-admin; never linked into the sandbox's
 * path (the broker forks the sandbox before it opens the database).
 *
 * Every function returns STORE_OK (0) or a negative STORE_* code with a
 * message in the store's error buffer (store_error). STORE_UNAVAILABLE
 * means the database cannot be used right now (cannot open, read-only,
 * locked past the busy timeout, full, I/O error; a server down, a login
 * refused, a statement or lock timeout): the CGI answers 503.
 */
#ifndef PYEXEC_STORE_H
#define PYEXEC_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "settings.h"
#include "../sandbox/profile.h"

enum {
	STORE_OK = 0,
	STORE_NOTFOUND = -1,
	STORE_INVALID = -2,	/* a bad argument; the message says which */
	STORE_CONFLICT = -3,	/* e.g. a user name already taken */
	STORE_UNAVAILABLE = -4,
};

enum { STORE_RW = 0, STORE_RO = 1 };

struct store;

/* Whether the database name is a local file (SQLite's), rather than a
 * server's URI (postgres:// or postgresql://: PostgreSQL's). */
int store_is_file(const char *name);

/* The path in force: PYEXEC_DB, else the compiled-in default. */
const char *store_default_path(void);

/*
 * Opens (and when writable, creates and migrates) the database at path.
 * On failure *s is still set, so store_error() can say why; store_close()
 * releases it either way.
 */
int store_open(struct store **s, const char *path, int mode);
void store_close(struct store *s);
/*
 * For a process that serves many requests (pyexec-fcgi's workers): from
 * now on store_close keeps one read-write store that ended sound (no call
 * failed with STORE_UNAVAILABLE, no transaction open), and the next
 * store_open of the same name takes it back after the backend has checked
 * it (backend.h, reuse): the same file or server, the same schema, the
 * settings read again. Anything else, and it is closed and opened afresh.
 */
void store_keep_open(void);
/* Closes the store kept, if any: the next store_open connects afresh (new
 * credentials or certificates, after pyexec-fcgi's SIGHUP). */
void store_forget(void);
const char *store_error(const struct store *s);
/* After a failed store_open: 1 when no retry can cure it (the directory is
 * missing, or this user or the mount denies what SQLite needs), and the
 * message then names the path and the fix; 0 for "not now" (a lock, a
 * full disk, ...). */
int store_never(const struct store *s);

/* The schema version this build writes (PRAGMA user_version). */
int store_schema_version(void);

int store_settings_load(struct store *s, struct settings *out);
int store_setting_set(struct store *s, const char *key, const char *value);
int store_setting_unset(struct store *s, const char *key);

struct user {
	int64_t id;
	char name[65];
	int is_admin, disabled;
	long quota;		/* -1 unlimited, -2 the default */
	long timeout_ms, memory_mb;	/* 0: the default */
	char modules[PROFILE_TEXT_MAX + 1];	/* "": allowed_modules */
	int64_t quota_reset_ms;
	int64_t created_ms;
};

#define TOKEN_LEN 68	/* "pyx_" + 64 hex digits */

/* Looks a bearer token up; STORE_NOTFOUND when no user has it. */
int store_user_by_token(struct store *s, const char *token, struct user *u);
int store_user_by_name(struct store *s, const char *name, struct user *u);
/* Creates a user and writes its token (shown once) into token. */
int store_user_add(struct store *s, const char *name, int admin, long quota,
		   char token[TOKEN_LEN + 1]);

/* A request, as the audit log records it. */
struct run_rec {
	char id[33];		/* 128 random bits, hex */
	int64_t started_ms, deadline_ms;
	const char *identity;	/* "user:NAME" or "anon:ADDR" */
	int64_t user_id;	/* 0: none */
	const char *user_name;
	const char *client_addr;
	const char *via;	/* "rest", "mcp", "stdio" (NULL: "rest") */
	const char *mode;	/* "cgi" or "fcgi" (NULL: "cgi") */
	const char *code;	/* may be NULL (refused before parsing) */
	size_t code_len;
	size_t input_size;
	const char *profile;	/* the modules it could import (profile.h) */
	/* Filled in when the request ends: */
	const char *outcome;	/* "ok", "error", ..., "rejected" */
	const char *error_type;
	const char *error;
	size_t output_size;
	int truncated;
	double exec_ms, wall_ms;
	long cpu_ms, peak_kb;
	int http_status;
};

struct quota_state {
	long limit;		/* -1: unlimited (admins, quota -1) */
	long remaining;
	long reset_s;		/* seconds until a slot frees */
	int refused;		/* over quota: the row was written as a 429 */
};

/*
 * In one write transaction: counts the identity's runs in the window
 * (those started after max(now - window, reset_ms)); over the limit, writes
 * the request as refused (429) and sets q->refused; otherwise writes it as
 * 'running', counted against the quota. limit -1 never refuses.
 */
int store_run_begin(struct store *s, const struct run_rec *r, long limit,
		    long window_s, int64_t reset_ms, const struct settings *st,
		    struct quota_state *q);

/* Completes a row written by store_run_begin. */
int store_run_finish(struct store *s, const struct run_rec *r,
		     const struct settings *st);

/* Turns a row written by store_run_begin into a refusal that does not
 * count (no sandbox slot: 503). */
int store_run_unrun(struct store *s, const struct run_rec *r,
		    const struct settings *st);

/* Writes a refused request (400, 401, 405, ...) in one statement. */
int store_run_reject(struct store *s, const struct run_rec *r,
		     const struct settings *st);

/* Unix time in milliseconds. */
int64_t now_ms(void);

#endif
