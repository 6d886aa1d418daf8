/* SPDX-License-Identifier: MIT */
/*
 * cmd_cost.c: what executions would cost at Cloud Functions-style prices
 * (the settings price_gb_s and price_invocation): an estimate for N
 * executions a day, and a report on the runs the audit log holds. An
 * execution is billed its duration rounded up to the next 100 ms, times
 * the memory in GB (GB-seconds, at price_gb_s), plus one invocation.
 *
 * The reference service's own table (seed.md, "Cost Estimation") is wrong
 * at every line; with its prices, $0.0000025 per GB-second and $0.0000004
 * per invocation, and its 512 MB:
 *
 *  - "Per execution: ~$0.0000004 (400GB-seconds @ $0.0000025/GB-s)".
 *    400 GB-s at that price is $0.001, not $0.0000004; $0.0000004 is the
 *    price of the invocation alone. One execution of at most 100 ms at
 *    512 MB is 0.5 GB x 0.1 s = 0.05 GB-s, so it costs
 *    0.05 x $0.0000025 + $0.0000004 = $0.000000125 + $0.0000004
 *    = $0.000000525. (400,000 GB-s is Cloud Functions' monthly free
 *    tier, perhaps where the 400 came from.)
 *  - "1000 executions/day: ~$0.012/day = $0.36/month". 1000 x $0.0000004
 *    is $0.0004 a day; $0.012 is that times 30, a month, which the seed
 *    then took for a day and multiplied by 30 again. Right:
 *    1000 x $0.000000525 = $0.000525 a day, $0.01575 a month.
 *  - "10,000/day: ~$0.12/day = $3.60/month": the same slips, ten times
 *    over. Right: $0.00525 a day, $0.1575 a month.
 *  - "30s timeout is worst case": 15 GB-s, $0.0000379 an execution, so
 *    $0.0379 a day ($1.137 a month) at 1000 a day and $0.379 ($11.37) at
 *    10,000: more than the seed's figures, which are neither the typical
 *    case nor the worst.
 *
 * Like the seed, this counts neither Cloud Functions' free tier (2 million
 * invocations and 400,000 GB-s a month, which would make all of the above
 * free) nor its separate CPU charge (GHz-seconds); tests/test_admin_logs.py
 * checks the corrected figures above against `cost estimate`.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "admin.h"
#include "../cgi/banned.h"

#define BILLING_STEP_MS	100
#define DAYS_PER_MONTH	30
#define DEFAULT_AVG_MS	100
#define REPORT_SINCE	"30d"
#define KEY_LEN		80

/* Milliseconds billed for a duration: rounded up to the next step. */
static int64_t billed_ms(double ms)
{
	int64_t steps;

	if (!(ms > 0))
		return 0;
	steps = (int64_t)(ms / BILLING_STEP_MS);
	if ((double)steps * BILLING_STEP_MS < ms)
		steps++;
	return steps * BILLING_STEP_MS;
}

/* GB-seconds of billed_ms at memory_mb (1 GB = 1024 MB). */
static double gb_seconds(long memory_mb, int64_t billed)
{
	return (double)memory_mb * (double)billed / (1024.0 * 1000.0);
}

/*
 * A number in fixed notation, to ten significant digits (what the
 * arithmetic of doubles gets right), without trailing zeros past `keep`
 * decimals: 0.000000525, 0.01575, 3.60 (keep 2), 0.5, 100 (keep 0). Also
 * a valid JSON number.
 */
static void fmt_decimal(double v, int keep, char *buf, size_t len)
{
	int e = 0, decimals;
	double m = v;
	char *dot, *p;

	if (v > 0) {
		for (; m >= 10; m /= 10)
			e++;
		for (; m < 1; m *= 10)
			e--;
	}
	decimals = 9 - e;
	decimals = decimals < keep ? keep : decimals > 24 ? 24 : decimals;
	snprintf(buf, len, "%.*f", decimals, v);
	dot = strchr(buf, '.');
	if (!dot)
		return;
	p = buf + strlen(buf) - 1;
	while (p > dot + keep && *p == '0')
		*p-- = 0;
	if (p == dot)
		*p = 0;
}

/* Money: at least the cents. */
static void fmt_amount(double v, char *buf, size_t len)
{
	fmt_decimal(v, 2, buf, len);
}

static void json_amount(const char *name, double v)
{
	char buf[64];

	fmt_decimal(v, 0, buf, sizeof(buf));
	printf(", \"%s\": %s", name, buf);
}

/* --- cost estimate -------------------------------------------------------- */

struct estimate_opts {
	struct admin_ctx *ctx;
	long per_day;		/* -1: not given */
	double avg_ms;		/* < 0: not given */
	long memory_mb;		/* 0: not given */
	int json;
};

static int estimate_opt(int opt, const char *arg, void *state)
{
	const struct setting_def *mem = setting_find("memory_mb");
	struct estimate_opts *o = state;
	char *end;

	switch (opt) {
	case 'n':
		if (parse_int(arg, 0, 1000000000000L, &o->per_day) != 0)
			return usage_error(o->ctx->usage, "--per-day must be a "
					   "number of executions, not '%s'", arg);
		break;
	case 'a':
		o->avg_ms = strtod(arg, &end);
		if (!*arg || *end || *arg < '0' || *arg > '9' ||
		    !(o->avg_ms >= 0 && o->avg_ms <= 86400000.0))
			return usage_error(o->ctx->usage, "--avg-ms must be a "
					   "duration in milliseconds (up to a "
					   "day), not '%s'", arg);
		break;
	case 'm':
		if (parse_int(arg, mem->min, mem->max, &o->memory_mb) != 0)
			return usage_error(o->ctx->usage, "--memory-mb must be a "
					   "number of MB from %ld to %ld, not '%s'",
					   mem->min, mem->max, arg);
		break;
	case 'j':
		o->json = 1;
		break;
	}
	return 0;
}

int cmd_cost_estimate(int argc, char **argv, struct admin_ctx *ctx)
{
	static const struct option opts[] = {
		{ "per-day", required_argument, NULL, 'n' },
		{ "avg-ms", required_argument, NULL, 'a' },
		{ "memory-mb", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct estimate_opts o = { ctx, -1, -1, 0, 0 };
	struct settings cfg;
	const char *avg_source = "option";
	char avg_text[160], a[64], b[64], c[64];
	double avg, gbs, compute, per_exec, per_day, per_month;
	long runs = 0, memory;
	int64_t billed;

	if (get_options(argc, argv, opts, ctx, estimate_opt, &o) != 0)
		return EXIT_USAGE;
	if (argc - optind)
		return usage_error(ctx->usage, "unexpected argument '%s'",
				   argv[optind]);
	if (o.per_day < 0)
		return usage_error(ctx->usage, "--per-day N is required");
	if (store_settings_load(ctx->db, &cfg) != STORE_OK)
		return db_error(ctx, "cannot read the settings");
	avg = o.avg_ms;
	if (avg < 0) {
		if (store_exec_percentile(ctx->db, 50, &avg, &runs) != STORE_OK)
			return db_error(ctx, "cannot read the audit log");
		avg_source = runs ? "median" : "default";
		if (!runs)
			avg = DEFAULT_AVG_MS;
	}
	memory = o.memory_mb ? o.memory_mb : cfg.memory_mb;
	billed = billed_ms(avg);
	gbs = gb_seconds(memory, billed);
	compute = gbs * cfg.price_gb_s;
	per_exec = compute + cfg.price_invocation;
	per_day = per_exec * (double)o.per_day;
	per_month = per_day * DAYS_PER_MONTH;

	if (o.json) {
		printf("{\"executions_per_day\": %ld", o.per_day);
		json_amount("avg_ms", avg);
		printf(", \"avg_ms_source\": \"%s\"", avg_source);
		if (runs)
			printf(", \"median_of_runs\": %ld", runs);
		printf(", \"memory_mb\": %ld, \"memory_mb_source\": \"%s\"",
		       memory, o.memory_mb ? "option" : "setting");
		printf(", \"billed_ms\": %lld", (long long)billed);
		json_amount("gb_seconds", gbs);
		json_amount("price_gb_s", cfg.price_gb_s);
		json_amount("price_invocation", cfg.price_invocation);
		json_amount("compute_per_execution", compute);
		json_amount("per_execution", per_exec);
		json_amount("per_day", per_day);
		json_amount("per_month", per_month);
		printf(", \"days_per_month\": %d}\n", DAYS_PER_MONTH);
		return 0;
	}
	fmt_decimal(avg, 0, a, sizeof(a));
	if (runs)
		snprintf(avg_text, sizeof(avg_text), "%s ms: the median exec_ms "
			 "of %ld logged runs", a, runs);
	else if (o.avg_ms < 0)
		snprintf(avg_text, sizeof(avg_text), "%s ms: the default, no "
			 "run logged yet", a);
	else
		snprintf(avg_text, sizeof(avg_text), "%s ms (--avg-ms)", a);
	fmt_amount(cfg.price_gb_s, a, sizeof(a));
	fmt_amount(cfg.price_invocation, b, sizeof(b));
	printf("assumptions:\n");
	printf("  prices:      $%s per GB-second, $%s per invocation (the "
	       "settings price_gb_s, price_invocation)\n", a, b);
	fmt_decimal((double)memory / 1024.0, 0, a, sizeof(a));
	printf("  memory:      %ld MB = %s GB (%s)\n", memory, a,
	       o.memory_mb ? "--memory-mb" : "the memory_mb setting");
	printf("  duration:    %s\n", avg_text);
	fmt_decimal(gbs, 0, a, sizeof(a));
	printf("  billing:     rounded up to %d ms steps: %lld ms billed, %s "
	       "GB-seconds an execution\n", BILLING_STEP_MS, (long long)billed,
	       a);
	printf("               (no free tier, no CPU charge)\n");
	fmt_amount(per_exec, a, sizeof(a));
	fmt_amount(compute, b, sizeof(b));
	fmt_amount(cfg.price_invocation, c, sizeof(c));
	printf("per execution: $%s (compute $%s + invocation $%s)\n", a, b, c);
	fmt_amount(per_day, a, sizeof(a));
	printf("per day:       $%s (%ld executions)\n", a, o.per_day);
	fmt_amount(per_month, a, sizeof(a));
	printf("per month:     $%s (%d days)\n", a, DAYS_PER_MONTH);
	return 0;
}

/* --- cost report ---------------------------------------------------------- */

enum report_by { BY_NONE, BY_USER, BY_DAY };

struct bill {
	char key[KEY_LEN];
	long runs, untimed;	/* untimed: running or abandoned */
	int64_t billed_ms;
};

struct report {
	struct admin_ctx *ctx;
	enum report_by by;
	int json;
	int64_t since;
	struct bill total, cur;
	int in_group;
	struct bill *groups;
	size_t ngroups, cap;
	int nomem;
};

static int push_group(struct report *r)
{
	if (!r->in_group)
		return 0;
	if (r->ngroups == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 32;
		struct bill *g = realloc(r->groups, cap * sizeof(*g));
		if (!g)
			return -1;
		r->groups = g;
		r->cap = cap;
	}
	r->groups[r->ngroups++] = r->cur;
	r->in_group = 0;
	return 0;
}

static void add_run(struct bill *b, const struct run_brief *row)
{
	b->runs++;
	if (row->has_exec)
		b->billed_ms += billed_ms(row->exec_ms);
	else
		b->untimed++;
}

/* Refused requests are not billed: Cloud Functions would not have run. */
static int bill_row(const struct run_brief *row, void *arg)
{
	struct report *r = arg;
	char key[KEY_LEN];
	time_t t = (time_t)(row->started_ms / 1000);
	struct tm tm;

	if (!row->status || strcmp(row->status, "rejected") == 0)
		return 0;
	add_run(&r->total, row);
	if (r->by == BY_NONE)
		return 0;
	if (r->by == BY_USER)
		snprintf(key, sizeof(key), "%s", row->identity ? row->identity :
			 "-");
	else if (!gmtime_r(&t, &tm) || !strftime(key, sizeof(key), "%Y-%m-%d",
						 &tm))
		snprintf(key, sizeof(key), "-");
	if (r->in_group && strcmp(key, r->cur.key) != 0 && push_group(r)) {
		r->nomem = 1;
		return 1;
	}
	if (!r->in_group) {
		memset(&r->cur, 0, sizeof(r->cur));
		snprintf(r->cur.key, sizeof(r->cur.key), "%s", key);
		r->in_group = 1;
	}
	add_run(&r->cur, row);
	return 0;
}

struct amounts {
	double gb_s, compute, invocations, total;
};

static void price(const struct bill *b, long memory_mb,
		  const struct settings *cfg, struct amounts *a)
{
	a->gb_s = gb_seconds(memory_mb, b->billed_ms);
	a->compute = a->gb_s * cfg->price_gb_s;
	a->invocations = (double)b->runs * cfg->price_invocation;
	a->total = a->compute + a->invocations;
}

static void json_bill(const struct bill *b, long memory_mb,
		      const struct settings *cfg)
{
	struct amounts a;

	price(b, memory_mb, cfg, &a);
	printf("\"runs\": %ld, \"untimed\": %ld, \"billed_ms\": %lld", b->runs,
	       b->untimed, (long long)b->billed_ms);
	json_amount("gb_seconds", a.gb_s);
	json_amount("compute", a.compute);
	json_amount("invocations", a.invocations);
	json_amount("cost", a.total);
}

static void table_bill(const struct bill *b, long memory_mb,
		       const struct settings *cfg)
{
	char s[5][64];
	struct amounts a;

	price(b, memory_mb, cfg, &a);
	fmt_decimal((double)b->billed_ms / 1000.0, 0, s[0], sizeof(s[0]));
	fmt_decimal(a.gb_s, 0, s[1], sizeof(s[1]));
	fmt_amount(a.compute, s[2], sizeof(s[2]));
	fmt_amount(a.invocations, s[3], sizeof(s[3]));
	fmt_amount(a.total, s[4], sizeof(s[4]));
	printf("%-28s %7ld %10s %10s %14s %14s %14s\n", b->key, b->runs, s[0],
	       s[1], s[2], s[3], s[4]);
}

static int report_opt(int opt, const char *arg, void *state)
{
	struct report *r = state;

	switch (opt) {
	case 's':
		if (parse_when(arg, &r->since) != 0)
			return usage_error(r->ctx->usage, "--since must be a "
					   "duration back from now (90s, 15m, "
					   "2h, 7d) or an ISO date and time in "
					   "UTC (2026-11-26, "
					   "2026-11-26T19:20:01Z), not '%s'", arg);
		break;
	case 'b':
		if (strcmp(arg, "user") == 0)
			r->by = BY_USER;
		else if (strcmp(arg, "day") == 0)
			r->by = BY_DAY;
		else
			return usage_error(r->ctx->usage, "--by must be user or "
					   "day, not '%s'", arg);
		break;
	case 'j':
		r->json = 1;
		break;
	}
	return 0;
}

static void print_report(const struct report *r, long memory,
			 const struct settings *cfg)
{
	char since[32], a[64], b[64];
	struct amounts t;

	format_time(r->since, since, sizeof(since));
	if (r->json) {
		printf("{\"since\": \"%s\", \"memory_mb\": %ld", since, memory);
		json_amount("price_gb_s", cfg->price_gb_s);
		json_amount("price_invocation", cfg->price_invocation);
		printf(", \"billing_step_ms\": %d, \"total\": {",
		       BILLING_STEP_MS);
		json_bill(&r->total, memory, cfg);
		printf("}");
		if (r->by != BY_NONE) {
			printf(", \"by\": \"%s\", \"groups\": [",
			       r->by == BY_USER ? "user" : "day");
			for (size_t i = 0; i < r->ngroups; i++) {
				printf("%s{\"key\": ", i ? ", " : "");
				put_json_string(stdout, r->groups[i].key);
				printf(", ");
				json_bill(&r->groups[i], memory, cfg);
				printf("}");
			}
			printf("]");
		}
		printf("}\n");
		return;
	}
	fmt_amount(cfg->price_gb_s, a, sizeof(a));
	fmt_amount(cfg->price_invocation, b, sizeof(b));
	printf("runs since %s (refused requests are not billed)\n", since);
	printf("assumptions: $%s per GB-second, $%s per invocation; %ld MB "
	       "(the memory_mb setting);\n             each run's exec_ms "
	       "rounded up to %d ms steps\n", a, b, memory, BILLING_STEP_MS);
	price(&r->total, memory, cfg, &t);
	printf("runs:          %ld", r->total.runs);
	if (r->total.untimed)
		printf(" (%ld running or abandoned: the invocation only)",
		       r->total.untimed);
	fmt_decimal((double)r->total.billed_ms / 1000.0, 0, a, sizeof(a));
	printf("\nbilled time:   %s s\n", a);
	fmt_decimal(t.gb_s, 0, a, sizeof(a));
	printf("GB-seconds:    %s\n", a);
	fmt_amount(t.compute, a, sizeof(a));
	printf("compute:       $%s\n", a);
	fmt_amount(t.invocations, a, sizeof(a));
	printf("invocations:   $%s\n", a);
	fmt_amount(t.total, a, sizeof(a));
	printf("total:         $%s\n", a);
	if (r->by == BY_NONE)
		return;
	printf("\n%-28s %7s %10s %10s %14s %14s %14s\n",
	       r->by == BY_USER ? "IDENTITY" : "DAY", "RUNS", "BILLED_S",
	       "GB_S", "COMPUTE", "INVOCATIONS", "TOTAL");
	for (size_t i = 0; i < r->ngroups; i++)
		table_bill(&r->groups[i], memory, cfg);
}

int cmd_cost_report(int argc, char **argv, struct admin_ctx *ctx)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "by", required_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct report r = { .ctx = ctx, .by = BY_NONE };
	struct settings cfg;
	int rc;

	if (parse_when(REPORT_SINCE, &r.since) != 0)
		return error("bad default period");
	if (get_options(argc, argv, opts, ctx, report_opt, &r) != 0)
		return EXIT_USAGE;
	if (argc - optind)
		return usage_error(ctx->usage, "unexpected argument '%s'",
				   argv[optind]);
	if (store_settings_load(ctx->db, &cfg) != STORE_OK)
		return db_error(ctx, "cannot read the settings");
	snprintf(r.total.key, sizeof(r.total.key), "total");
	rc = store_runs_scan(ctx->db, r.since, 0, r.by == BY_USER ?
			     SCAN_BY_IDENTITY : SCAN_BY_TIME, bill_row, &r);
	if (rc == STORE_OK && !r.nomem && push_group(&r) != 0)
		r.nomem = 1;
	if (r.nomem)
		rc = error("out of memory");
	else if (rc != STORE_OK)
		rc = db_error(ctx, "cannot read the audit log");
	else
		print_report(&r, cfg.memory_mb, &cfg);
	free(r.groups);
	return rc;
}
