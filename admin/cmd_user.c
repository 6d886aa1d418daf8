/* SPDX-License-Identifier: MIT */
/*
 * cmd_user.c: users, tokens and admins. A token is printed only when it is
 * made (user add, user rotate), on stdout alone on its line so that a
 * script can capture it; nothing else ever prints one.
 */
#include <getopt.h>
#include <string.h>
#include "admin.h"
#include "../cgi/banned.h"

struct add_opts {
	int admin;
	long quota;		/* -2: the default */
	struct admin_ctx *ctx;
};

/* "unlimited" -> -1, "default" -> -2 (when allowed), N >= 0. */
int parse_quota(const char *s, int allow_default, long *q)
{
	if (strcmp(s, "unlimited") == 0) {
		*q = -1;
		return 0;
	}
	if (allow_default && strcmp(s, "default") == 0) {
		*q = -2;
		return 0;
	}
	return parse_int(s, 0, 1000000000, q);
}

static int add_opt(int opt, const char *arg, void *state)
{
	struct add_opts *o = state;

	if (opt == 'a')
		o->admin = 1;
	else if (opt == 'q' && parse_quota(arg, 0, &o->quota) != 0)
		return usage_error(o->ctx->usage, "--quota must be a number of "
				   "runs or 'unlimited', not '%s'", arg);
	return 0;
}

/* The one positional NAME of a command; usage error otherwise. */
static const char *one_name(int argc, char **argv, struct admin_ctx *ctx)
{
	if (argc - optind != 1) {
		usage_error(ctx->usage, argc - optind < 1 ? "missing NAME" :
			    "too many arguments");
		return NULL;
	}
	return argv[optind];
}

static int no_opt(int opt, const char *arg, void *state)
{
	(void)opt;
	(void)arg;
	(void)state;
	return 0;
}

static const char *name_only(int argc, char **argv, struct admin_ctx *ctx)
{
	static const struct option none[] = { { NULL, 0, NULL, 0 } };

	if (get_options(argc, argv, none, ctx, no_opt, NULL) != 0)
		return NULL;
	return one_name(argc, argv, ctx);
}

int cmd_user_add(int argc, char **argv, struct admin_ctx *ctx)
{
	static const struct option opts[] = {
		{ "admin", no_argument, NULL, 'a' },
		{ "quota", required_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	struct add_opts o = { 0, -2, ctx };
	char token[TOKEN_LEN + 1];
	const char *name;

	if (get_options(argc, argv, opts, ctx, add_opt, &o) != 0 ||
	    !(name = one_name(argc, argv, ctx)))
		return EXIT_USAGE;
	if (store_user_add(ctx->db, name, o.admin, o.quota, token) != STORE_OK)
		return db_error(ctx, "cannot add the user");
	fprintf(stderr, "user '%s' created%s; its token (shown only now):\n",
		name, o.admin ? " as an admin" : "");
	printf("%s\n", token);
	explicit_bzero(token, sizeof(token));
	return 0;
}

static void quota_text(const struct user *u, char *buf, size_t len)
{
	if (u->is_admin)
		snprintf(buf, len, "unlimited (admin)");
	else if (u->quota == -1)
		snprintf(buf, len, "unlimited");
	else if (u->quota == -2)
		snprintf(buf, len, "default");
	else
		snprintf(buf, len, "%ld", u->quota);
}

struct list_state {
	enum out_format fmt;
	int count;
};

static int list_one(const struct user *u, void *arg)
{
	struct list_state *st = arg;
	char created[32], quota[32];

	format_time(u->created_ms, created, sizeof(created));
	quota_text(u, quota, sizeof(quota));
	if (st->fmt == OUT_JSON) {
		printf("{\"name\": ");
		put_json_string(stdout, u->name);
		printf(", \"admin\": %s, \"disabled\": %s, \"quota\": ",
		       u->is_admin ? "true" : "false",
		       u->disabled ? "true" : "false");
		put_json_string(stdout, quota);
		printf(", \"created\": \"%s\"}\n", created);
	} else if (st->fmt == OUT_CSV) {
		if (!st->count)
			printf("name,admin,disabled,quota,created\n");
		put_csv_field(stdout, u->name);
		printf(",%d,%d,%s,%s\n", u->is_admin, u->disabled, quota, created);
	} else {
		if (!st->count)
			printf("%-24s %-5s %-8s %-18s %s\n", "NAME", "ADMIN",
			       "STATE", "QUOTA", "CREATED");
		printf("%-24s %-5s %-8s %-18s %s\n", u->name,
		       u->is_admin ? "yes" : "no",
		       u->disabled ? "disabled" : "active", quota, created);
	}
	st->count++;
	return 0;
}

static int format_opt(int opt, const char *arg, void *state)
{
	enum out_format *f = state;

	(void)arg;
	*f = opt == 'j' ? OUT_JSON : opt == 'c' ? OUT_CSV : OUT_TABLE;
	return 0;
}

static const struct option format_opts[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "csv", no_argument, NULL, 'c' },
	{ NULL, 0, NULL, 0 },
};

static const struct option show_opts[] = {
	{ "json", no_argument, NULL, 'j' },
	{ NULL, 0, NULL, 0 },
};

int cmd_user_list(int argc, char **argv, struct admin_ctx *ctx)
{
	struct list_state st = { OUT_TABLE, 0 };

	if (get_options(argc, argv, format_opts, ctx, format_opt, &st.fmt) != 0)
		return EXIT_USAGE;
	if (argc - optind != 0)
		return usage_error(ctx->usage, "too many arguments");
	if (store_user_list(ctx->db, list_one, &st) != STORE_OK)
		return db_error(ctx, "cannot list users");
	if (!st.count && st.fmt == OUT_TABLE)
		fprintf(stderr, "no users yet (pyexec-admin user add NAME)\n");
	return 0;
}

/* The quota, usage and reset time of a user in the current window. */
struct usage {
	long limit, used, remaining;
	int64_t reset_ms;
	long window_s;
};

static int user_usage(struct admin_ctx *ctx, const struct user *u,
		      struct usage *us)
{
	struct settings cfg;
	char identity[96];
	int64_t now = now_ms(), since, oldest = 0;

	if (store_settings_load(ctx->db, &cfg) != STORE_OK)
		return -1;
	us->window_s = cfg.quota_window_s;
	us->limit = u->is_admin ? -1 : u->quota == -2 ? cfg.default_quota :
		    u->quota;
	since = now - (int64_t)cfg.quota_window_s * 1000;
	if (since < u->quota_reset_ms)
		since = u->quota_reset_ms;
	snprintf(identity, sizeof(identity), "user:%s", u->name);
	if (store_window_usage(ctx->db, identity, since, &us->used, &oldest) !=
	    STORE_OK)
		return -1;
	us->remaining = us->limit < 0 ? -1 :
			us->limit > us->used ? us->limit - us->used : 0;
	us->reset_ms = us->used ? oldest + (int64_t)cfg.quota_window_s * 1000 :
		       now;
	return 0;
}

static int print_user(struct admin_ctx *ctx, const struct user *u, int json)
{
	struct usage us;
	char created[32], reset[32], quota[32];

	if (user_usage(ctx, u, &us) != 0)
		return db_error(ctx, "cannot read the user's usage");
	format_time(u->created_ms, created, sizeof(created));
	format_time(us.reset_ms, reset, sizeof(reset));
	quota_text(u, quota, sizeof(quota));
	if (json) {
		printf("{\"name\": ");
		put_json_string(stdout, u->name);
		printf(", \"admin\": %s, \"disabled\": %s, \"quota\": %ld, "
		       "\"used\": %ld, \"remaining\": %ld, \"window_s\": %ld, "
		       "\"reset\": \"%s\", \"timeout_ms\": %ld, "
		       "\"memory_mb\": %ld, \"created\": \"%s\", "
		       "\"modules\": ",
		       u->is_admin ? "true" : "false",
		       u->disabled ? "true" : "false", us.limit, us.used,
		       us.remaining, us.window_s, reset, u->timeout_ms,
		       u->memory_mb, created);
		if (u->modules[0])
			put_json_string(stdout, u->modules);
		else
			fputs("null", stdout);
		printf("}\n");
		return 0;
	}
	printf("name:       %s\n", u->name);
	printf("admin:      %s\n", u->is_admin ? "yes" : "no");
	printf("state:      %s\n", u->disabled ? "disabled" : "active");
	if (us.limit < 0)
		printf("quota:      %s\n", quota);
	else
		printf("quota:      %ld run%s per %ld s (%s)\n", us.limit,
		       us.limit == 1 ? "" : "s", us.window_s,
		       u->quota == -2 ? "the default" : "own");
	if (us.limit >= 0)
		printf("used:       %ld, remaining %ld, a slot frees at %s\n",
		       us.used, us.remaining, reset);
	else
		printf("used:       %ld in the window\n", us.used);
	printf("limits:     timeout %s, memory %s\n",
	       u->timeout_ms ? "own" : "default", u->memory_mb ? "own" : "default");
	if (u->timeout_ms || u->memory_mb)
		printf("            timeout_ms %ld, memory_mb %ld (capped by the "
		       "host maxima)\n", u->timeout_ms, u->memory_mb);
	printf("modules:    %s\n", u->modules[0] ? u->modules :
	       "the default (allowed_modules)");
	printf("created:    %s\n", created);
	return 0;
}

int cmd_user_show(int argc, char **argv, struct admin_ctx *ctx)
{
	enum out_format fmt = OUT_TABLE;
	struct user u;
	const char *name;
	int rc;

	/* --json only: one user's record has no CSV form. */
	if (get_options(argc, argv, show_opts, ctx, format_opt, &fmt) != 0 ||
	    !(name = one_name(argc, argv, ctx)))
		return EXIT_USAGE;
	rc = store_user_by_name(ctx->db, name, &u);
	if (rc == STORE_NOTFOUND)
		return error("no user '%s'", name);
	if (rc != STORE_OK)
		return db_error(ctx, "cannot read the user");
	return print_user(ctx, &u, fmt == OUT_JSON);
}

static int set_field(int argc, char **argv, struct admin_ctx *ctx,
		     enum user_field f, int64_t v, const char *done)
{
	const char *name = name_only(argc, argv, ctx);
	int rc;

	if (!name)
		return EXIT_USAGE;
	rc = store_user_set(ctx->db, name, f, v);
	if (rc == STORE_NOTFOUND)
		return error("no user '%s'", name);
	if (rc != STORE_OK)
		return db_error(ctx, "cannot update the user");
	printf("user '%s' %s\n", name, done);
	return 0;
}

int cmd_user_disable(int argc, char **argv, struct admin_ctx *ctx)
{
	return set_field(argc, argv, ctx, USER_DISABLED, 1,
			 "disabled: its token is refused (401)");
}

int cmd_user_enable(int argc, char **argv, struct admin_ctx *ctx)
{
	return set_field(argc, argv, ctx, USER_DISABLED, 0, "enabled");
}

int cmd_admin_grant(int argc, char **argv, struct admin_ctx *ctx)
{
	return set_field(argc, argv, ctx, USER_ADMIN, 1,
			 "is an admin: no rate limit");
}

int cmd_admin_revoke(int argc, char **argv, struct admin_ctx *ctx)
{
	return set_field(argc, argv, ctx, USER_ADMIN, 0, "is no longer an admin");
}

int cmd_user_remove(int argc, char **argv, struct admin_ctx *ctx)
{
	const char *name = name_only(argc, argv, ctx);
	int rc;

	if (!name)
		return EXIT_USAGE;
	rc = store_user_remove(ctx->db, name);
	if (rc == STORE_NOTFOUND)
		return error("no user '%s'", name);
	if (rc != STORE_OK)
		return db_error(ctx, "cannot remove the user");
	printf("user '%s' removed; its audit rows are kept\n", name);
	return 0;
}

int cmd_user_rotate(int argc, char **argv, struct admin_ctx *ctx)
{
	const char *name = name_only(argc, argv, ctx);
	char token[TOKEN_LEN + 1];
	int rc;

	if (!name)
		return EXIT_USAGE;
	rc = store_user_rotate(ctx->db, name, token);
	if (rc == STORE_NOTFOUND)
		return error("no user '%s'", name);
	if (rc != STORE_OK)
		return db_error(ctx, "cannot rotate the token");
	fprintf(stderr, "user '%s' has a new token (shown only now); the old "
		"one no longer works:\n", name);
	printf("%s\n", token);
	explicit_bzero(token, sizeof(token));
	return 0;
}

/*
 * user set NAME --OPTION VALUE...: a user's own settings, one row per
 * option. Every value is checked before any is written.
 */
struct set_arg {
	const char *value;	/* NULL: not given */
};

static int check_modules(const char *value, char *err, size_t errlen)
{
	uint64_t mask;

	return strcmp(value, "default") == 0 ? 0 :
	       profile_parse(value, &mask, err, errlen);
}

static int set_modules(struct admin_ctx *ctx, const char *name,
		       const char *value)
{
	int rc = store_user_set_modules(ctx->db, name,
					strcmp(value, "default") == 0 ? NULL :
					value);

	if (rc == STORE_INVALID)
		return error("%s", store_error(ctx->db));
	if (rc != STORE_OK)
		return db_error(ctx, "cannot change the user");
	printf("%s: modules = %s\n", name, value);
	return 0;
}

static const struct set_option {
	const char *name;	/* --name VALUE */
	int (*check)(const char *value, char *err, size_t errlen);
	int (*apply)(struct admin_ctx *ctx, const char *name,
		     const char *value);
} set_options[] = {
	{ "modules", check_modules, set_modules },
};
#define NSET (sizeof(set_options) / sizeof(set_options[0]))

struct set_state {
	struct set_arg args[NSET];
	struct admin_ctx *ctx;
};

static int set_opt(int opt, const char *arg, void *state)
{
	struct set_state *st = state;

	if (opt < 0 || (size_t)opt >= NSET)
		return -1;
	st->args[opt].value = arg;
	return 0;
}

/* Every given value is valid, or the first invalid one's message. */
static int check_all(const struct set_state *st)
{
	char err[512];

	for (size_t i = 0; i < NSET; i++)
		if (st->args[i].value &&
		    set_options[i].check(st->args[i].value, err,
					 sizeof(err)) != 0)
			return error("%s", err);
	return 0;
}

int cmd_user_set(int argc, char **argv, struct admin_ctx *ctx)
{
	struct option opts[NSET + 1];
	struct set_state st;
	const char *name;
	int given = 0;

	memset(&st, 0, sizeof(st));
	memset(opts, 0, sizeof(opts));
	st.ctx = ctx;
	for (size_t i = 0; i < NSET; i++) {
		opts[i].name = set_options[i].name;
		opts[i].has_arg = required_argument;
		opts[i].val = (int)i;
	}
	if (get_options(argc, argv, opts, ctx, set_opt, &st) != 0 ||
	    !(name = one_name(argc, argv, ctx)))
		return EXIT_USAGE;
	for (size_t i = 0; i < NSET; i++)
		given |= st.args[i].value != NULL;
	if (!given)
		return usage_error(ctx->usage, "nothing to set");
	if (check_all(&st) != 0)
		return 1;
	for (size_t i = 0; i < NSET; i++)
		if (st.args[i].value &&
		    set_options[i].apply(ctx, name, st.args[i].value) != 0)
			return 1;
	return 0;
}
