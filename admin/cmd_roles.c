/* SPDX-License-Identifier: MIT */
/*
 * cmd_roles.c: pyexec-admin roles [--operator NAME] [--cgi NAME]
 * [--create] [--grants]: prints the SQL of the PostgreSQL roles
 * (sql/pg_roles.c), for an operator to review and run with psql: the
 * roles (--create), the CGI's grants on the tables (--grants), or both.
 * Connects to nothing.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include "admin.h"
#include "../cgi/banned.h"

struct role_names {
	const char *operator_role, *cgi_role;
	int parts;
};

static int roles_opt(int opt, const char *arg, void *state)
{
	struct role_names *n = state;

	if (opt == 'o')
		n->operator_role = arg;
	else if (opt == 'c')
		n->cgi_role = arg;
	else if (opt == 'C')
		n->parts |= ROLES_CREATE;
	else if (opt == 'g')
		n->parts |= ROLES_GRANTS;
	return 0;
}

int cmd_roles(int argc, char **argv, struct admin_ctx *ctx)
{
	static const struct option opts[] = {
		{ "operator", required_argument, NULL, 'o' },
		{ "cgi", required_argument, NULL, 'c' },
		{ "create", no_argument, NULL, 'C' },
		{ "grants", no_argument, NULL, 'g' },
		{ NULL, 0, NULL, 0 },
	};
	struct role_names n = { "pyexec_admin", "pyexec_cgi", 0 };
	char sql[2048];

	if (get_options(argc, argv, opts, ctx, roles_opt, &n) != 0)
		return EXIT_USAGE;
	if (argc - optind != 0)
		return usage_error(ctx->usage, "too many arguments");
	if (store_roles_sql(n.operator_role, n.cgi_role, n.parts ? n.parts :
			    ROLES_CREATE | ROLES_GRANTS, sql, sizeof(sql)))
		return usage_error(ctx->usage, "role names are two different "
				   "plain identifiers (a-z, 0-9, _; at most 63)");
	fputs(sql, stdout);
	return 0;
}
