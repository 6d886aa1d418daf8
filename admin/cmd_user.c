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

/* What a user gets, as numbers, and where each figure comes from. */
struct effective {
	long quota;		/* -1: unlimited */
	long timeout_ms, memory_mb;
	const char *quota_from, *timeout_from, *memory_from;
};

static long capped(long own, long max)
{
	return own < max ? own : max;
}

/* As the CGI computes them (cgi/identity.c): an own limit is capped by
 * the host maximum. */
static void effective(const struct user *u, const struct settings *cfg,
		      struct effective *e)
{
	e->quota = u->is_admin ? -1 : u->quota == -2 ? cfg->default_quota :
		   u->quota;
	e->quota_from = u->is_admin ? "admin" : u->quota == -2 ? "default" :
			"own";
	e->timeout_ms = u->timeout_ms > 0 ?
			capped(u->timeout_ms, cfg->max_timeout_ms) :
			cfg->timeout_ms;
	e->timeout_from = u->timeout_ms > 0 ? "own" : "default";
	e->memory_mb = u->memory_mb > 0 ?
		       capped(u->memory_mb, cfg->max_memory_mb) :
		       cfg->memory_mb;
	e->memory_from = u->memory_mb > 0 ? "own" : "default";
}

/* ", \"quota\": 3, \"quota_from\": \"own\", ..." */
static void put_json_limits(const struct effective *e)
{
	printf(", \"quota\": %ld, \"quota_from\": \"%s\", "
	       "\"timeout_ms\": %ld, \"timeout_from\": \"%s\", "
	       "\"memory_mb\": %ld, \"memory_from\": \"%s\"",
	       e->quota, e->quota_from, e->timeout_ms, e->timeout_from,
	       e->memory_mb, e->memory_from);
}

/* A limit for the table: "2000" when the user's own, "default" else. */
static void own_text(long own, char *buf, size_t len)
{
	if (own > 0)
		snprintf(buf, len, "%ld", own);
	else
		snprintf(buf, len, "default");
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
	struct settings cfg;
};

static void list_table(const struct user *u, int header,
		       const char *created)
{
	char quota[32], timeout[24], memory[24];

	if (header)
		printf("%-24s %-5s %-8s %-18s %-10s %-9s %s\n", "NAME", "ADMIN",
		       "STATE", "QUOTA", "TIMEOUT_MS", "MEMORY_MB", "CREATED");
	quota_text(u, quota, sizeof(quota));
	own_text(u->timeout_ms, timeout, sizeof(timeout));
	own_text(u->memory_mb, memory, sizeof(memory));
	printf("%-24s %-5s %-8s %-18s %-10s %-9s %s\n", u->name,
	       u->is_admin ? "yes" : "no", u->disabled ? "disabled" : "active",
	       quota, timeout, memory, created);
}

/* JSON and CSV carry numbers (-1: unlimited) and where each comes from;
 * the table says "default" where the user has no limit of their own. */
static int list_one(const struct user *u, void *arg)
{
	struct list_state *st = arg;
	struct effective e;
	char created[32];

	format_time(u->created_ms, created, sizeof(created));
	effective(u, &st->cfg, &e);
	if (st->fmt == OUT_JSON) {
		printf("{\"name\": ");
		put_json_string(stdout, u->name);
		printf(", \"admin\": %s, \"disabled\": %s",
		       u->is_admin ? "true" : "false",
		       u->disabled ? "true" : "false");
		put_json_limits(&e);
		printf(", \"created\": \"%s\"}\n", created);
	} else if (st->fmt == OUT_CSV) {
		if (!st->count)
			printf("name,admin,disabled,quota,quota_from,timeout_ms,"
			       "timeout_from,memory_mb,memory_from,created\n");
		put_csv_field(stdout, u->name);
		printf(",%d,%d,%ld,%s,%ld,%s,%ld,%s,%s\n", u->is_admin,
		       u->disabled, e.quota, e.quota_from, e.timeout_ms,
		       e.timeout_from, e.memory_mb, e.memory_from, created);
	} else {
		list_table(u, !st->count, created);
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
	struct list_state st = { .fmt = OUT_TABLE };

	if (get_options(argc, argv, format_opts, ctx, format_opt, &st.fmt) != 0)
		return EXIT_USAGE;
	if (argc - optind != 0)
		return usage_error(ctx->usage, "too many arguments");
	if (store_settings_load(ctx->db, &st.cfg) != STORE_OK)
		return db_error(ctx, "cannot read the settings");
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
	struct effective e;
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
	effective(u, &cfg, &us->e);
	us->limit = us->e.quota;
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
		printf(", \"admin\": %s, \"disabled\": %s",
		       u->is_admin ? "true" : "false",
		       u->disabled ? "true" : "false");
		put_json_limits(&us.e);
		printf(", \"used\": %ld, \"remaining\": %ld, \"window_s\": %ld, "
		       "\"reset\": \"%s\", \"created\": \"%s\", \"modules\": ",
		       us.used, us.remaining, us.window_s, reset, created);
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
	printf("limits:     timeout %ld ms (%s), memory %ld MB (%s)\n",
	       us.e.timeout_ms,
	       strcmp(us.e.timeout_from, "own") == 0 ? "own" : "the default",
	       us.e.memory_mb,
	       strcmp(us.e.memory_from, "own") == 0 ? "own" : "the default");
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

/* --- user set: a user's own limits ---------------------------------------- */

/*
 * Each option of `user set` is a row: its name, the user field it sets,
 * and how its value is read and checked. One more option is one more row
 * (and, if its value is not a number, one more parser).
 */
struct set_state;
typedef int (*set_parse)(struct set_state *st, const char *opt,
			 const char *arg, int64_t *value);

struct set_option {
	const char *name;
	enum user_field field;
	set_parse parse;
};

#define MAX_CHANGES 8

struct set_state {
	struct admin_ctx *ctx;
	struct settings cfg;
	struct { enum user_field field; int64_t value; } change[MAX_CHANGES];
	int n;
	const char *modules;	/* --modules, NULL when not given */
	int rc;		/* the exit code of a refused value */
};

/* N within [min, ceiling], or "default" (0: no limit of the user's own). */
static int parse_limit(struct set_state *st, const char *opt, const char *arg,
		       int64_t *value, long min, long ceiling,
		       const char *ceiling_key)
{
	long v;

	if (strcmp(arg, "default") == 0) {
		*value = 0;
		return 0;
	}
	if (parse_int(arg, 0, 1000000000, &v) != 0)
		return usage_error(st->ctx->usage, "--%s must be a number or "
				   "'default', not '%s'", opt, arg);
	if (v < min)
		return usage_error(st->ctx->usage, "--%s must be at least %ld, "
				   "not %ld", opt, min, v);
	if (v > ceiling)
		return error("--%s %ld is above %s (%ld), the ceiling of any "
			     "user's own limit: raise it first (pyexec-admin "
			     "config set %s N) or choose a smaller value", opt, v,
			     ceiling_key, ceiling, ceiling_key);
	*value = v;
	return 0;
}

static int parse_timeout(struct set_state *st, const char *opt,
			 const char *arg, int64_t *value)
{
	return parse_limit(st, opt, arg, value, 100, st->cfg.max_timeout_ms,
			   "max_timeout_ms");
}

static int parse_memory(struct set_state *st, const char *opt,
			const char *arg, int64_t *value)
{
	return parse_limit(st, opt, arg, value, 32, st->cfg.max_memory_mb,
			   "max_memory_mb");
}

static int parse_user_quota(struct set_state *st, const char *opt,
			    const char *arg, int64_t *value)
{
	long q;

	if (parse_quota(arg, 1, &q) != 0)
		return usage_error(st->ctx->usage, "--%s must be a number of "
				   "runs, 'unlimited' or 'default', not '%s'",
				   opt, arg);
	*value = q;
	return 0;
}

/* A profile name, a vetted list or "default": kept as text, not a number. */
static int parse_modules(struct set_state *st, const char *opt,
			 const char *arg, int64_t *value)
{
	char err[512];
	uint64_t mask;

	(void)opt;
	*value = 0;
	if (strcmp(arg, "default") != 0 &&
	    profile_parse(arg, &mask, err, sizeof(err)) != 0)
		return error("%s", err);
	st->modules = arg;
	return 0;
}

static const struct set_option set_options[] = {
	{ "timeout-ms", USER_TIMEOUT_MS, parse_timeout },
	{ "memory-mb", USER_MEMORY_MB, parse_memory },
	{ "quota", USER_QUOTA, parse_user_quota },
	{ "modules", USER_QUOTA, parse_modules },	/* field unused: text */
};
#define NSET (sizeof(set_options) / sizeof(set_options[0]))

static int set_opt(int opt, const char *arg, void *state)
{
	struct set_state *st = state;
	const struct set_option *o = &set_options[opt - 1];
	int64_t v;
	int rc;

	if (st->n == MAX_CHANGES)
		return usage_error(st->ctx->usage, "too many options");
	if ((rc = o->parse(st, o->name, arg, &v)) != 0)
		return st->rc = rc;
	if (o->parse == parse_modules)
		return 0;
	st->change[st->n].field = o->field;
	st->change[st->n].value = v;
	st->n++;
	return 0;
}

/* Every value is checked before the first is written. */
static int apply_changes(struct set_state *st, const char *name)
{
	for (int i = 0; i < st->n; i++) {
		int rc = store_user_set(st->ctx->db, name, st->change[i].field,
					st->change[i].value);
		if (rc == STORE_NOTFOUND)
			return error("no user '%s'", name);
		if (rc != STORE_OK)
			return db_error(st->ctx, "cannot update the user");
	}
	if (st->modules) {
		int rc = store_user_set_modules(st->ctx->db, name,
						strcmp(st->modules, "default") == 0 ?
						NULL : st->modules);
		if (rc == STORE_INVALID)
			return error("%s", store_error(st->ctx->db));
		if (rc != STORE_OK)
			return db_error(st->ctx, "cannot update the user");
	}
	return 0;
}

int cmd_user_set(int argc, char **argv, struct admin_ctx *ctx)
{
	struct option opts[NSET + 1];
	struct set_state st = { .ctx = ctx };
	struct effective e;
	struct user u;
	const char *name;
	int rc;

	for (size_t i = 0; i < NSET; i++)
		opts[i] = (struct option){ set_options[i].name,
					   required_argument, NULL, (int)i + 1 };
	opts[NSET] = (struct option){ NULL, 0, NULL, 0 };
	if (store_settings_load(ctx->db, &st.cfg) != STORE_OK)
		return db_error(ctx, "cannot read the settings");
	if (get_options(argc, argv, opts, ctx, set_opt, &st) != 0)
		return st.rc ? st.rc : EXIT_USAGE;
	if (!(name = one_name(argc, argv, ctx)))
		return EXIT_USAGE;
	if (!st.n && !st.modules)
		return usage_error(ctx->usage, "nothing to set");
	if ((rc = store_user_by_name(ctx->db, name, &u)) == STORE_NOTFOUND)
		return error("no user '%s'", name);
	if (rc != STORE_OK)
		return db_error(ctx, "cannot read the user");
	if ((rc = apply_changes(&st, name)) != 0 ||
	    store_user_by_name(ctx->db, name, &u) != STORE_OK)
		return rc ? rc : db_error(ctx, "cannot read the user");
	effective(&u, &st.cfg, &e);
	printf("user '%s': timeout %ld ms (%s), memory %ld MB (%s), quota ",
	       name, e.timeout_ms, e.timeout_from, e.memory_mb, e.memory_from);
	if (e.quota < 0)
		printf("unlimited (%s)\n", e.quota_from);
	else
		printf("%ld (%s)\n", e.quota, e.quota_from);
	if (st.modules)
		printf("user '%s': modules %s\n", name, st.modules);
	return 0;
}
