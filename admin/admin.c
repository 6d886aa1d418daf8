/* SPDX-License-Identifier: MIT */
/*
 * admin.c: pyexec-admin's main(): global options, the command table and
 * the dispatcher, which opens the database as the command needs it.
 *
 *   pyexec-admin [--db PATH] COMMAND [ARGS]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "admin.h"
#include "../cgi/banned.h"

enum db_mode { DB_NONE, DB_RO, DB_RW };

static const struct command {
	const char *name;	/* one or two words */
	int (*fn)(int, char **, struct admin_ctx *);
	enum db_mode db;
	const char *usage;
	const char *summary;
	const char *details;	/* more for --help, or NULL */
} commands[] = {
	{ "init", cmd_init, DB_RW, "init",
	  "create or migrate the database (safe to run twice)" },
	{ "user add", cmd_user_add, DB_RW,
	  "user add NAME [--admin] [--quota N|unlimited]",
	  "create a user and print its token, once" },
	{ "user list", cmd_user_list, DB_RO, "user list [--json|--csv]",
	  "list users" },
	{ "user show", cmd_user_show, DB_RO, "user show NAME [--json]",
	  "a user, with usage in the current window" },
	{ "user set", cmd_user_set, DB_RW,
	  "user set NAME [--timeout-ms N|default] [--memory-mb N|default] "
	  "[--quota N|unlimited|default] [--modules seed|compute|LIST|default]",
	  "a user's own time limit, memory limit, quota and modules",
	  "--timeout-ms and --memory-mb may not exceed the max_timeout_ms and\n"
	  "max_memory_mb settings; --modules takes a profile or a list of\n"
	  "vetted modules; 'default' gives the user the service's setting\n"
	  "again. Every value is checked before any is written.\n" },
	{ "user disable", cmd_user_disable, DB_RW, "user disable NAME",
	  "refuse the user's token (401) until enabled" },
	{ "user enable", cmd_user_enable, DB_RW, "user enable NAME",
	  "accept the user's token again" },
	{ "user remove", cmd_user_remove, DB_RW, "user remove NAME",
	  "delete the user (audit rows are kept)" },
	{ "user rotate", cmd_user_rotate, DB_RW, "user rotate NAME",
	  "a new token, printed once; the old one stops working at once" },
	{ "admin grant", cmd_admin_grant, DB_RW, "admin grant NAME",
	  "make the user an admin (no rate limit)" },
	{ "admin revoke", cmd_admin_revoke, DB_RW, "admin revoke NAME",
	  "make an admin an ordinary user" },
	{ "quota default", cmd_quota_default, DB_RW,
	  "quota default N|unlimited [--window DURATION]",
	  "runs per window for users without their own quota, and anonymous" },
	{ "quota set", cmd_quota_set, DB_RW,
	  "quota set NAME N|unlimited|default", "a user's own quota" },
	{ "quota show", cmd_quota_show, DB_RO, "quota show [NAME]",
	  "the default quota, or a user's quota and usage" },
	{ "quota reset", cmd_quota_reset, DB_RW, "quota reset NAME",
	  "forgive the current window (audit rows are kept)" },
	{ "config list", cmd_config_list, DB_RO, "config list [--json]",
	  "every setting, its value and where it comes from" },
	{ "config get", cmd_config_get, DB_RO, "config get KEY",
	  "one setting's value" },
	{ "config set", cmd_config_set, DB_RW, "config set KEY VALUE",
	  "change a setting (validated)" },
	{ "config unset", cmd_config_unset, DB_RW, "config unset KEY",
	  "back to the default" },
	{ "logs show", cmd_logs_show, DB_RO, "logs show ID [--json]",
	  "one request in full, code included" },
	{ "logs", cmd_logs, DB_RO,
	  "logs [--user NAME|--anonymous] [--client ADDR] [--since WHEN] "
	  "[--until WHEN] [--outcome OUTCOME|--failed] [--via rest|mcp|stdio] "
	  "[--limit N] [--follow] "
	  "[--json|--csv]",
	  "the audit log, newest last",
	  "The table shows the last 50 matching requests, and says on stderr\n"
	  "how many older ones it left out. --json (one object a line) and\n"
	  "--csv (a header line, then one line a request) write every\n"
	  "matching request, oldest first, as they are read: an export of any\n"
	  "size. --limit N keeps the last N (0: all), in every format.\n"
	  "--follow prints requests as they are written, from now on; with\n"
	  "--since or --limit it first lists the past ones. In CSV, a text\n"
	  "cell that starts with =, +, -, @ is written with a ' before it, so\n"
	  "that no spreadsheet runs it as a formula.\n" },
	{ "stats", cmd_stats, DB_RO,
	  "stats [--since WHEN] [--until WHEN] [--by user|day|hour|outcome|via] "
	  "[--json]",
	  "counts, success rate, execution time percentiles, top users" },
	{ "cost estimate", cmd_cost_estimate, DB_RO,
	  "cost estimate --per-day N [--avg-ms M] [--memory-mb MB] [--json]",
	  "what N executions a day would cost, from the configured prices" },
	{ "cost report", cmd_cost_report, DB_RO,
	  "cost report [--since WHEN] [--by user|day] [--json]",
	  "what the logged executions would have cost" },
	{ "prune", cmd_prune, DB_RW, "prune --older-than DURATION [--dry-run]",
	  "delete audit rows older than DURATION" },
	{ "vacuum", cmd_vacuum, DB_RW, "vacuum",
	  "reclaim the space of deleted rows" },
	{ "backup", cmd_backup, DB_RO, "backup PATH [--force]",
	  "a consistent copy of the live database, written while it runs" },
	{ "roles", cmd_roles, DB_NONE,
	  "roles [--operator NAME] [--cgi NAME] [--create] [--grants]",
	  "the SQL of the PostgreSQL roles: the operator's and the CGI's",
	  "The operator's role (default pyexec_admin) makes and owns the\n"
	  "tables and changes users, quotas and settings; the CGI's (default\n"
	  "pyexec_cgi) may read users and settings and insert and complete\n"
	  "runs, nothing more. --create: only the roles (before init);\n"
	  "--grants: only the CGI's grants on the tables (after init, and\n"
	  "after every upgrade). Review, then run it with psql.\n" },
	{ "doctor", cmd_doctor, DB_NONE, "doctor [--json] [--cgi PATH] [--fcgi SOCKET]",
	  "check the kernel, the database and the sandbox, live" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char main_usage[] =
	"usage: pyexec-admin [--db PATH] COMMAND [ARGS]\n"
	"       pyexec-admin help [COMMAND]\n";

static void list_commands(FILE *f, const char *prefix)
{
	size_t pl = prefix ? strlen(prefix) : 0;

	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!prefix || strncmp(commands[i].name, prefix, pl) == 0)
			fprintf(f, "   %-15s %s\n", commands[i].name,
				commands[i].summary);
}

static void show_usage(FILE *f, const struct command *c)
{
	fprintf(f, "usage: pyexec-admin %s\n\n%s\n", c->usage, c->summary);
	if (c->details)
		fprintf(f, "\n%s", c->details);
}

/* The command named by argv[0] (and argv[1]); *words says how many. */
static const struct command *find(int argc, char **argv, int *words)
{
	char two[64];

	if (argc >= 2 && snprintf(two, sizeof(two), "%s %s", argv[0],
				  argv[1]) < (int)sizeof(two))
		for (size_t i = 0; i < NCOMMANDS; i++)
			if (strcmp(commands[i].name, two) == 0) {
				*words = 2;
				return &commands[i];
			}
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, argv[0]) == 0) {
			*words = 1;
			return &commands[i];
		}
	return NULL;
}

static int is_group(const char *word)
{
	size_t n = strlen(word);

	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strncmp(commands[i].name, word, n) == 0 &&
		    commands[i].name[n] == ' ')
			return 1;
	return 0;
}

/* Help on stdout (exit 0), or on stderr when it answers a usage error. */
static int help_to(FILE *f, int argc, char **argv)
{
	const struct command *c;
	int words;

	if (argc < 1) {
		fputs(main_usage, f);
		fputs("\ncommands:\n", f);
		list_commands(f, NULL);
		fputs("\nThe database is --db PATH, else $PYEXEC_DB, else "
		      "/var/lib/pyexec/pyexec.db.\n", f);
		return 0;
	}
	c = find(argc, argv, &words);
	if (c && !(words == 1 && argc >= 2 && is_group(argv[0]))) {
		show_usage(f, c);
		return 0;
	}
	if (is_group(argv[0])) {
		fprintf(f, "usage: pyexec-admin %s SUBCOMMAND\n\n", argv[0]);
		list_commands(f, argv[0]);
		return 0;
	}
	return usage_error(NULL, "unknown command '%s' (see pyexec-admin help)",
			   argv[0]);
}

static int help(int argc, char **argv)
{
	return help_to(stdout, argc, argv);
}

static int open_db(struct admin_ctx *ctx, enum db_mode mode)
{
	if (mode == DB_NONE)
		return 0;
	if (store_open(&ctx->db, ctx->db_path,
		       mode == DB_RO ? STORE_RO : STORE_RW) != STORE_OK)
		return db_error(ctx, mode == DB_RO ? "cannot read the database" :
				"cannot open the database");
	return 0;
}

static int dispatch(int argc, char **argv, struct admin_ctx *ctx)
{
	const struct command *c;
	int words, rc;

	if (strcmp(argv[0], "help") == 0 || strcmp(argv[0], "--help") == 0 ||
	    strcmp(argv[0], "-h") == 0)
		return help(argc - 1, argv + 1);
	c = find(argc, argv, &words);
	if (!c && is_group(argv[0]))
		return argc < 2 ? (usage_error(NULL, "'%s' needs a subcommand",
					       argv[0]),
				   help_to(stderr, 1, argv), EXIT_USAGE) :
		       usage_error(NULL, "unknown command '%s %s' (see "
				   "pyexec-admin help %s)", argv[0], argv[1],
				   argv[0]);
	if (!c)
		return usage_error(NULL, "unknown command '%s' (see "
				   "pyexec-admin help)", argv[0]);
	ctx->usage = c->usage;
	/* --help before the database: it must work without one. */
	for (int i = words; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			show_usage(stdout, c);
			return 0;
		}
	if ((rc = open_db(ctx, c->db)) != 0)
		return rc;
	/* argv[words - 1] becomes the command's argv[0]. */
	return c->fn(argc - words + 1, argv + words - 1, ctx);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct admin_ctx ctx = { 0 };
	int opt, rc;

	ctx.db_path = store_default_path();
	opterr = 0;	/* our messages, prefixed like every other */
	/* '+': stop at the command; its own options are its business. */
	while ((opt = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		if (opt == 'd')
			ctx.db_path = optarg;
		else if (opt == 'h')
			return help(0, NULL);
		else {
			usage_error(NULL, opt == ':' ? "option '%s' needs a "
				    "value" : "unknown option '%s'",
				    argv[optind - 1]);
			fputs(main_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage_error(NULL, "missing COMMAND (see pyexec-admin help)");
		fputs(main_usage, stderr);
		return EXIT_USAGE;
	}
	if (as_db_owner(ctx.db_path) != 0)
		return 1;
	rc = dispatch(argc - optind, argv + optind, &ctx);
	store_close(ctx.db);
	return rc;
}
