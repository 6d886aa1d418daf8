/* SPDX-License-Identifier: MIT */
/*
 * admin.h: what pyexec-admin's commands share. Each command group is one
 * file (cmd_<group>.c) exporting one function per command; the dispatch
 * table in admin.c names each command ("user add"), its usage, and how the
 * database must be opened (read-only, read-write, or not at all) before the
 * function is called, so no command opens it itself. A command's argv[0] is
 * its name, for getopt.
 *
 * Exit codes: 0 success, 1 an error (message on stderr, prefixed
 * "pyexec-admin: "), 2 a usage error.
 */
#ifndef PYEXEC_ADMIN_H
#define PYEXEC_ADMIN_H

#include <stdint.h>
#include <stdio.h>
#include "../sql/store.h"
#include "../sql/manage.h"

#define EXIT_USAGE 2

struct admin_ctx {
	const char *db_path;
	struct store *db;	/* opened by the dispatcher, or NULL */
	const char *usage;	/* the running command's usage line */
};

/* Parses the command's options with getopt_long; on an unknown option or
 * a missing argument prints the usage and returns -1 (exit 2). Handles
 * --help itself (returns 1: print usage, exit 0). */
struct option;
int get_options(int argc, char **argv, const struct option *opts,
		struct admin_ctx *ctx, int (*each)(int opt, const char *arg,
						   void *state), void *state);

/* For commands without options whose values may be negative numbers:
 * a usage error (returns 2) for an argument that looks like an option
 * ("--x", "-x"), else 0. */
int no_options(int argc, char **argv, struct admin_ctx *ctx);

/* Prints "pyexec-admin: <message>" on stderr; returns 1. */
int error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "pyexec-admin: <message>" and the usage line; returns 2. */
int usage_error(const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* As root, on a database whose directory belongs to another user: create
 * files as that user from now on (setfsuid). 0, or 1 with a message. */
int as_db_owner(const char *path);
/* The database's error as an exit code (1). */
int db_error(struct admin_ctx *ctx, const char *what);


/* Parsing, with range checks; each returns 0 or -1. */
int parse_int(const char *s, long min, long max, long *out);
/* "90s", "15m", "2h", "7d", "1w" -> seconds */
int parse_duration(const char *s, long *seconds);
/* A duration back from now, or an ISO date/time (UTC) -> unix ms. */
int parse_when(const char *s, int64_t *ms);

/* A quota: "unlimited" -> -1, "default" -> -2 (when allowed), N >= 0. */
int parse_quota(const char *s, int allow_default, long *q);

/* "2026-11-26T19:20:01Z" (UTC, seconds). */
void format_time(int64_t ms, char *buf, size_t len);

/* Machine-readable output. */
enum out_format { OUT_TABLE, OUT_JSON, OUT_CSV };
/* Writes s as a JSON string (quotes included) / as a CSV field; a CSV
 * field that a spreadsheet would take for a formula (=, +, -, @ first) is
 * written with a ' before it. */
void put_json_string(FILE *f, const char *s);
void put_csv_field(FILE *f, const char *s);

/* The commands (admin.c's table says which is which). */
#define COMMAND(name) int name(int argc, char **argv, struct admin_ctx *ctx)
COMMAND(cmd_init);
COMMAND(cmd_user_add);
COMMAND(cmd_user_list);
COMMAND(cmd_user_show);
COMMAND(cmd_user_set);
COMMAND(cmd_user_disable);
COMMAND(cmd_user_enable);
COMMAND(cmd_user_remove);
COMMAND(cmd_user_rotate);
COMMAND(cmd_user_set);
COMMAND(cmd_admin_grant);
COMMAND(cmd_admin_revoke);
COMMAND(cmd_quota_default);
COMMAND(cmd_quota_set);
COMMAND(cmd_quota_show);
COMMAND(cmd_quota_reset);
COMMAND(cmd_config_list);
COMMAND(cmd_config_get);
COMMAND(cmd_config_set);
COMMAND(cmd_config_unset);
COMMAND(cmd_logs);
COMMAND(cmd_logs_show);
COMMAND(cmd_stats);
COMMAND(cmd_cost_estimate);
COMMAND(cmd_cost_report);
COMMAND(cmd_prune);
COMMAND(cmd_vacuum);
COMMAND(cmd_backup);
COMMAND(cmd_doctor);
COMMAND(cmd_roles);

#endif
