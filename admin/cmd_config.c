/* SPDX-License-Identifier: MIT */
/* cmd_config.c: the settings, validated by the data layer; every key
 * carries its unit in its name (_ms, _mb, _bytes, _s). */
#include <getopt.h>
#include <string.h>
#include "admin.h"
#include "../cgi/banned.h"

struct set_value {
	const char *key;
	char value[512];	/* allowed_modules can be a long list */
	int found;
};

static int find_value(const char *key, const char *value, void *arg)
{
	struct set_value *v = arg;

	if (strcmp(key, v->key) != 0)
		return 0;
	snprintf(v->value, sizeof(v->value), "%s", value);
	v->found = 1;
	return 1;
}

/* The value in force: the operator's if set (and valid), else the default. */
static int value_of(struct admin_ctx *ctx, const struct setting_def *d,
		    struct set_value *v)
{
	char err[160];

	memset(v, 0, sizeof(*v));
	v->key = d->key;
	if (store_settings_each(ctx->db, find_value, v) != STORE_OK)
		return -1;
	if (v->found && setting_validate(d, v->value, err, sizeof(err)) != 0)
		v->found = -1;	/* invalid in the table: the default applies */
	return 0;
}

static int json_opt(int opt, const char *arg, void *state)
{
	(void)opt;
	(void)arg;
	*(int *)state = 1;
	return 0;
}

int cmd_config_list(int argc, char **argv, struct admin_ctx *ctx)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const struct setting_def *t;
	struct set_value v;
	size_t n;
	int json = 0;

	if (get_options(argc, argv, opts, ctx, json_opt, &json) != 0)
		return EXIT_USAGE;
	if (argc - optind)
		return usage_error(ctx->usage, "too many arguments");
	t = settings_table(&n);
	if (!json)
		printf("%-22s %-12s %-8s %s\n", "KEY", "VALUE", "SOURCE", "MEANING");
	for (size_t i = 0; i < n; i++) {
		const char *val, *src;
		if (value_of(ctx, &t[i], &v) != 0)
			return db_error(ctx, "cannot read the settings");
		val = v.found == 1 ? v.value : t[i].def;
		src = v.found == 1 ? "set" : v.found ? "invalid" : "default";
		if (json) {
			printf("{\"key\": \"%s\", \"value\": ", t[i].key);
			put_json_string(stdout, val);
			printf(", \"source\": \"%s\", \"default\": ", src);
			put_json_string(stdout, t[i].def);
			printf("}\n");
		} else {
			printf("%-22s %-12s %-8s %s\n", t[i].key, val, src,
			       t[i].help);
		}
	}
	return 0;
}

/*
 * The KEY of config get/set/unset, after its arguments are checked: nargs
 * counts the words after the command (KEY, or KEY VALUE). NULL after a
 * usage message.
 */
static const struct setting_def *key_arg(int argc, char **argv,
					 struct admin_ctx *ctx, int nargs)
{
	const struct setting_def *d;

	if (no_options(argc, argv, ctx))
		return NULL;
	if (argc != nargs + 1) {
		usage_error(ctx->usage, argc < nargs + 1 ? "missing arguments" :
			    "too many arguments");
		return NULL;
	}
	if (!(d = setting_find(argv[1])))
		usage_error(ctx->usage, "unknown setting '%s' (see pyexec-admin "
			    "config list)", argv[1]);
	return d;
}

int cmd_config_get(int argc, char **argv, struct admin_ctx *ctx)
{
	const struct setting_def *d = key_arg(argc, argv, ctx, 1);
	struct set_value v;

	if (!d)
		return EXIT_USAGE;
	if (value_of(ctx, d, &v) != 0)
		return db_error(ctx, "cannot read the settings");
	printf("%s\n", v.found == 1 ? v.value : d->def);
	return 0;
}

/* The data layer validates the value; its message is the one to show. */
int cmd_config_set(int argc, char **argv, struct admin_ctx *ctx)
{
	int rc;

	if (!key_arg(argc, argv, ctx, 2))
		return EXIT_USAGE;
	rc = store_setting_set(ctx->db, argv[1], argv[2]);
	if (rc == STORE_INVALID)
		return error("%s", store_error(ctx->db));
	if (rc != STORE_OK)
		return db_error(ctx, "cannot change the setting");
	printf("%s = %s\n", argv[1], argv[2]);
	return 0;
}

int cmd_config_unset(int argc, char **argv, struct admin_ctx *ctx)
{
	const struct setting_def *d = key_arg(argc, argv, ctx, 1);

	if (!d)
		return EXIT_USAGE;
	if (store_setting_unset(ctx->db, argv[1]) != STORE_OK)
		return db_error(ctx, "cannot change the setting");
	printf("%s = %s (default)\n", argv[1], d->def);
	return 0;
}
