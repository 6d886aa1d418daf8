/* SPDX-License-Identifier: MIT */
/*
 * pg_roles.c: the SQL of pyexec's two PostgreSQL roles (pyexec-admin
 * roles). The operator's role makes, migrates and owns the tables, and
 * changes users, quotas and settings; the CGI's may read users and
 * settings, count and insert runs and complete them, and add to the
 * running totals (run_totals), nothing else: a
 * broken-into CGI can neither make itself an admin nor rewrite the past.
 */
#include <stdio.h>
#include <string.h>
#include "manage.h"
#include "../cgi/banned.h"

/* A plain identifier: lower-case letters, digits and _, not a digit
 * first, at most 63 bytes (PostgreSQL's NAMEDATALEN - 1). */
static int plain_name(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 63 || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

static const char create_fmt[] =
	"-- pyexec's PostgreSQL roles. 1. As a superuser, in the database:\n"
	"CREATE ROLE %1$s LOGIN;\n"
	"CREATE ROLE %2$s LOGIN;\n"
	"GRANT USAGE, CREATE ON SCHEMA public TO %1$s;\n"
	"GRANT USAGE ON SCHEMA public TO %2$s;\n";

static const char grants_fmt[] =
	"-- 2. pyexec-admin --db postgresql://%1$s@HOST/DB init (it makes\n"
	"-- and owns the tables), then as %1$s, again after every upgrade:\n"
	"GRANT SELECT ON schema_version, users, settings TO %2$s;\n"
	"GRANT SELECT, INSERT ON runs TO %2$s;\n"
	"GRANT UPDATE (finished_ms, outcome, error_type, error, output_size,\n"
	"    truncated, exec_ms, wall_ms, cpu_ms, peak_kb, http_status,\n"
	"    counted, code) ON runs TO %2$s;\n"
	"GRANT SELECT, INSERT, UPDATE ON run_totals TO %2$s;\n"
	"-- The CGI connects as %2$s (PYEXEC_DB=postgresql://%2$s@HOST/DB);\n"
	"-- passwords go in a password file, never in the URI.\n";

int store_roles_sql(const char *operator_role, const char *cgi_role,
		    int parts, char *buf, size_t len)
{
	int n = 0, m = 0;

	if (!plain_name(operator_role) || !plain_name(cgi_role) ||
	    strcmp(operator_role, cgi_role) == 0 || len == 0)
		return STORE_INVALID;
	buf[0] = 0;
	if (parts & ROLES_CREATE)
		n = snprintf(buf, len, create_fmt, operator_role, cgi_role);
	if (n >= 0 && (size_t)n < len && (parts & ROLES_GRANTS))
		m = snprintf(buf + n, len - (size_t)n, grants_fmt,
			     operator_role, cgi_role);
	return n >= 0 && m >= 0 && (size_t)n + (size_t)m < len ? STORE_OK :
	       STORE_INVALID;
}
