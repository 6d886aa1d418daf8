/* SPDX-License-Identifier: MIT */
/* cmd_prune.c: deleting old audit rows (never those still running, nor
 * any inside the quota window: they are the rate limit) and giving their
 * space back to the file system. A row whose broker died mid-run stays
 * 'running' in the table; past its deadline runs_view calls it
 * 'abandoned' (stats and /metrics count it so), and prune deletes it by
 * age like a completed one. */
#include <getopt.h>
#include <string.h>
#include <sys/stat.h>
#include "admin.h"
#include "../cgi/banned.h"

struct prune_opts {
	const char *older_than;
	int dry_run;
};

static int prune_opt(int opt, const char *arg, void *state)
{
	struct prune_opts *o = state;

	if (opt == 'o')
		o->older_than = arg;
	else if (opt == 'n')
		o->dry_run = 1;
	return 0;
}

/* The audit rows are the rate limit: deleting those of the quota window
 * would give every identity its whole quota back. Refused, not clamped, so
 * that what runs is what the operator asked for. */
static int inside_window(struct admin_ctx *ctx, const char *asked, long secs)
{
	struct settings cfg;

	settings_defaults(&cfg);
	if (store_settings_load(ctx->db, &cfg) != STORE_OK)
		return db_error(ctx, "cannot read the settings");
	if (secs >= cfg.quota_window_s)
		return 0;
	return error("--older-than %s is inside the quota window (%ld s, the "
		     "quota_window_s setting): those rows are the rate limit; "
		     "ask for %ld s or more", asked, cfg.quota_window_s,
		     cfg.quota_window_s);
}

int cmd_prune(int argc, char **argv, struct admin_ctx *ctx)
{
	static const struct option opts[] = {
		{ "older-than", required_argument, NULL, 'o' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	struct prune_opts o = { NULL, 0 };
	char cutoff[32];
	int64_t before;
	long secs, count = 0;

	if (get_options(argc, argv, opts, ctx, prune_opt, &o) != 0)
		return EXIT_USAGE;
	if (argc - optind != 0)
		return usage_error(ctx->usage, "too many arguments");
	if (!o.older_than)
		return usage_error(ctx->usage, "--older-than is required");
	if (parse_duration(o.older_than, &secs) != 0)
		return usage_error(ctx->usage, "--older-than must be a duration "
				   "such as 12h, 90d or 8w, not '%s'",
				   o.older_than);
	if (inside_window(ctx, o.older_than, secs) != 0)
		return 1;
	before = now_ms() - (int64_t)secs * 1000;
	format_time(before, cutoff, sizeof(cutoff));
	if (store_prune(ctx->db, before, o.dry_run, &count) != STORE_OK)
		return db_error(ctx, "cannot prune the audit log");
	printf("%s %ld audit row%s started before %s (older than %s); rows "
	       "still running are kept (abandoned ones are not)\n", o.dry_run ? "would delete" : "deleted",
	       count, count == 1 ? "" : "s", cutoff, o.older_than);
	if (!o.dry_run && count > 0)
		fprintf(stderr, "pyexec-admin vacuum gives the space back to the "
			"file system\n");
	return 0;
}

/* The bytes the database holds on disk: the file and its WAL. */
static long long disk_bytes(const char *path)
{
	char wal[4096];
	struct stat st;
	long long n = 0;

	if (stat(path, &st) == 0)
		n += st.st_size;
	if (snprintf(wal, sizeof(wal), "%s-wal", path) < (int)sizeof(wal) &&
	    stat(wal, &st) == 0)
		n += st.st_size;
	return n;
}

int cmd_vacuum(int argc, char **argv, struct admin_ctx *ctx)
{
	long long before, after;

	(void)argv;
	if (argc > 1)
		return usage_error(ctx->usage, "vacuum takes no arguments");
	before = disk_bytes(ctx->db_path);
	if (store_vacuum(ctx->db) != STORE_OK)
		return db_error(ctx, "cannot vacuum the database");
	after = disk_bytes(ctx->db_path);
	if (!store_is_file(ctx->db_path)) {
		/* The server keeps the files: VACUUM (ANALYZE) made the space
		 * reusable and refreshed the planner's figures. */
		printf("vacuumed %s (VACUUM ANALYZE)\n", ctx->db_path);
		return 0;
	}
	printf("vacuumed %s: %lld bytes on disk before, %lld after\n",
	       ctx->db_path, before, after);
	return 0;
}
