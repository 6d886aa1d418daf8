/* SPDX-License-Identifier: MIT */
/* cmd_quota.c: the default quota and window, users' own quotas, and
 * forgiving a window (the audit rows stay; only the count starts over). */
#include <getopt.h>
#include <string.h>
#include "admin.h"
#include "../cgi/banned.h"

struct default_opts {
	const char *window;
	struct admin_ctx *ctx;
};

static int window_opt(int opt, const char *arg, void *state)
{
	struct default_opts *o = state;

	(void)opt;
	o->window = arg;
	return 0;
}

static int set_setting(struct admin_ctx *ctx, const char *key, long v)
{
	char value[32];

	snprintf(value, sizeof(value), "%ld", v);
	if (store_setting_set(ctx->db, key, value) != STORE_OK)
		return db_error(ctx, "cannot change the setting");
	return 0;
}

int cmd_quota_default(int argc, char **argv, struct admin_ctx *ctx)
{
	static const struct option opts[] = {
		{ "window", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	struct default_opts o = { NULL, ctx };
	long quota, window = 0;

	if (get_options(argc, argv, opts, ctx, window_opt, &o) != 0)
		return EXIT_USAGE;
	if (argc - optind != 1)
		return usage_error(ctx->usage, argc - optind < 1 ?
				   "missing the quota" : "too many arguments");
	if (parse_quota(argv[optind], 0, &quota) != 0)
		return usage_error(ctx->usage, "the quota must be a number of "
				   "runs or 'unlimited', not '%s'", argv[optind]);
	if (o.window && (parse_duration(o.window, &window) != 0 || window < 1))
		return usage_error(ctx->usage, "--window must be a duration "
				   "such as 90s, 15m, 1h or 1d, not '%s'", o.window);
	if (set_setting(ctx, "default_quota", quota) ||
	    (window && set_setting(ctx, "quota_window_s", window)))
		return 1;
	if (quota < 0)
		printf("default quota: unlimited\n");
	else
		printf("default quota: %ld runs per %s\n", quota,
		       o.window ? o.window : "window (unchanged)");
	return 0;
}

int cmd_quota_set(int argc, char **argv, struct admin_ctx *ctx)
{
	long quota;
	int rc;

	if (no_options(argc, argv, ctx))
		return EXIT_USAGE;
	if (argc != 3)
		return usage_error(ctx->usage, argc < 3 ? "missing arguments" :
				   "too many arguments");
	if (parse_quota(argv[2], 1, &quota) != 0)
		return usage_error(ctx->usage, "the quota must be a number of "
				   "runs, 'unlimited' or 'default', not '%s'",
				   argv[2]);
	rc = store_user_set(ctx->db, argv[1], USER_QUOTA, quota);
	if (rc == STORE_NOTFOUND)
		return error("no user '%s'", argv[1]);
	if (rc != STORE_OK)
		return db_error(ctx, "cannot set the quota");
	printf("user '%s': quota %s\n", argv[1], argv[2]);
	return 0;
}

int cmd_quota_show(int argc, char **argv, struct admin_ctx *ctx)
{
	struct settings cfg;
	struct user u;
	long used = 0;
	int64_t oldest = 0, since;
	char identity[96];
	int rc;

	if (no_options(argc, argv, ctx))
		return EXIT_USAGE;
	if (argc > 2)
		return usage_error(ctx->usage, "too many arguments");
	if (store_settings_load(ctx->db, &cfg) != STORE_OK)
		return db_error(ctx, "cannot read the settings");
	if (argc == 1) {
		if (cfg.default_quota < 0)
			printf("default quota: unlimited\n");
		else
			printf("default quota: %ld runs per %ld s (anonymous "
			       "requests: %s)\n", cfg.default_quota,
			       cfg.quota_window_s,
			       cfg.anonymous ? "allowed, per client address" :
			       "refused");
		return 0;
	}
	rc = store_user_by_name(ctx->db, argv[1], &u);
	if (rc == STORE_NOTFOUND)
		return error("no user '%s'", argv[1]);
	if (rc != STORE_OK)
		return db_error(ctx, "cannot read the user");
	since = now_ms() - (int64_t)cfg.quota_window_s * 1000;
	if (since < u.quota_reset_ms)
		since = u.quota_reset_ms;
	snprintf(identity, sizeof(identity), "user:%s", u.name);
	if (store_window_usage(ctx->db, identity, since, &used, &oldest) != STORE_OK)
		return db_error(ctx, "cannot read the usage");
	if (u.is_admin || u.quota == -1 ||
	    (u.quota == -2 && cfg.default_quota < 0))
		printf("%s: unlimited%s; %ld runs in the last %ld s\n", u.name,
		       u.is_admin ? " (admin)" : "", used, cfg.quota_window_s);
	else
		printf("%s: %ld runs per %ld s (%s); %ld used\n", u.name,
		       u.quota == -2 ? cfg.default_quota : u.quota,
		       cfg.quota_window_s, u.quota == -2 ? "default" : "own",
		       used);
	return 0;
}

int cmd_quota_reset(int argc, char **argv, struct admin_ctx *ctx)
{
	int rc;

	if (no_options(argc, argv, ctx))
		return EXIT_USAGE;
	if (argc != 2)
		return usage_error(ctx->usage, argc < 2 ? "missing NAME" :
				   "too many arguments");
	rc = store_user_set(ctx->db, argv[1], USER_QUOTA_RESET_MS, now_ms());
	if (rc == STORE_NOTFOUND)
		return error("no user '%s'", argv[1]);
	if (rc != STORE_OK)
		return db_error(ctx, "cannot reset the quota");
	printf("user '%s': the current window is forgiven (audit rows kept)\n",
	       argv[1]);
	return 0;
}
