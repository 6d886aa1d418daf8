/* SPDX-License-Identifier: MIT */
/* cmd_init.c: pyexec-admin init. Opening the database read-write creates
 * and migrates it (sql/store.c); this says what is there now. */
#include "admin.h"
#include "../cgi/banned.h"

int cmd_init(int argc, char **argv, struct admin_ctx *ctx)
{
	struct store_health h;

	(void)argv;
	if (argc > 1)
		return usage_error(ctx->usage, "init takes no arguments");
	if (store_health(ctx->db, &h) != STORE_OK)
		return db_error(ctx, "check the database");
	printf("database %s: schema %d, journal %s, %lld users, %lld requests "
	       "logged\n", ctx->db_path, h.schema_version, h.journal_mode,
	       (long long)h.users, (long long)h.runs);
	return 0;
}
