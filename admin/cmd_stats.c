/* SPDX-License-Identifier: MIT */
/*
 * cmd_stats.c: what the audit log says about a period: requests, runs (the
 * requests not refused), the success rate, execution time percentiles,
 * refusals, the busiest identities; overall, and per user, day, hour or
 * outcome.
 *
 * A percentile is the nearest rank over the finished runs (neither
 * refused nor running): the p-th is the smallest exec_ms with at least p%
 * of them at or below it, always one of the logged values.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "admin.h"
#include "../cgi/banned.h"

#define TOP_USERS	5
#define KEY_LEN		80

enum group_by { BY_NONE, BY_USER, BY_DAY, BY_HOUR, BY_OUTCOME, BY_VIA };

static const char *const by_names[] = {
	[BY_NONE] = "", [BY_USER] = "user", [BY_DAY] = "day",
	[BY_HOUR] = "hour", [BY_OUTCOME] = "outcome", [BY_VIA] = "via",
};

/* What is counted over a period, or a group of it. */
struct tally {
	long requests, runs, ok, rate_limited, refused;
	double *exec;		/* exec_ms of the finished runs */
	size_t nexec, cap;
};

/* A tally, summed up. */
struct figures {
	char key[KEY_LEN];
	long requests, runs, ok, rate_limited, refused, finished;
	double p50, p95, p99;	/* when finished */
};

struct stats {
	struct admin_ctx *ctx;
	enum group_by by;
	int json;
	int64_t since, until;
	struct tally all, group;
	char key[KEY_LEN];
	int in_group;
	struct figures *groups;
	size_t ngroups, cap;
	int nomem;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank in n sorted values: the ceil(p * n / 100)-th. */
static double percentile(const double *v, size_t n, int p)
{
	size_t rank = (n * (size_t)p + 99) / 100;

	return v[rank ? rank - 1 : 0];
}

static void sum_up(struct tally *t, const char *key, struct figures *f)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->key, sizeof(f->key), "%s", key);
	f->requests = t->requests;
	f->runs = t->runs;
	f->ok = t->ok;
	f->rate_limited = t->rate_limited;
	f->refused = t->refused;
	f->finished = (long)t->nexec;
	if (t->nexec) {
		qsort(t->exec, t->nexec, sizeof(double), cmp_double);
		f->p50 = percentile(t->exec, t->nexec, 50);
		f->p95 = percentile(t->exec, t->nexec, 95);
		f->p99 = percentile(t->exec, t->nexec, 99);
	}
}

static int count(struct tally *t, const struct run_brief *b)
{
	int refused = b->status && strcmp(b->status, "rejected") == 0;

	t->requests++;
	if (refused && b->http_status == 429)
		t->rate_limited++;
	else if (refused)
		t->refused++;
	else
		t->runs++;
	if (b->status && strcmp(b->status, "ok") == 0)
		t->ok++;
	if (!b->has_exec)
		return 0;
	if (t->nexec == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 256;
		double *e = realloc(t->exec, cap * sizeof(*e));
		if (!e)
			return -1;
		t->exec = e;
		t->cap = cap;
	}
	t->exec[t->nexec++] = b->exec_ms;
	return 0;
}

/* The group a row belongs to: days and hours in UTC. */
static void group_key(enum group_by by, const struct run_brief *b,
		      char *key, size_t len)
{
	time_t t = (time_t)(b->started_ms / 1000);
	struct tm tm;

	switch (by) {
	case BY_USER:
		snprintf(key, len, "%s", b->identity ? b->identity : "-");
		break;
	case BY_OUTCOME:
		snprintf(key, len, "%s", b->status ? b->status : "-");
		break;
	case BY_VIA:	/* rest, mcp (HTTP at /mcp), stdio (pyexec-mcp) */
		snprintf(key, len, "%s", b->via ? b->via : "-");
		break;
	case BY_DAY:
	case BY_HOUR:
		if (!gmtime_r(&t, &tm) ||
		    !strftime(key, len, by == BY_DAY ? "%Y-%m-%d" :
			      "%Y-%m-%dT%H:00:00Z", &tm))
			snprintf(key, len, "-");
		break;
	case BY_NONE:
		key[0] = 0;
		break;
	}
}

/* Ends the current group: its figures join the list, its tally restarts. */
static int close_group(struct stats *s)
{
	if (!s->in_group)
		return 0;
	if (s->ngroups == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 32;
		struct figures *g = realloc(s->groups, cap * sizeof(*g));
		if (!g)
			return -1;
		s->groups = g;
		s->cap = cap;
	}
	sum_up(&s->group, s->key, &s->groups[s->ngroups++]);
	free(s->group.exec);
	memset(&s->group, 0, sizeof(s->group));
	s->in_group = 0;
	return 0;
}

/* Rows arrive ordered by the group key, so a group ends when it changes. */
static int each_row(const struct run_brief *b, void *arg)
{
	struct stats *s = arg;
	char key[KEY_LEN];

	if (count(&s->all, b) != 0)
		goto nomem;
	if (s->by == BY_NONE)
		return 0;
	group_key(s->by, b, key, sizeof(key));
	if (s->in_group && strcmp(key, s->key) != 0 && close_group(s) != 0)
		goto nomem;
	if (!s->in_group) {
		snprintf(s->key, sizeof(s->key), "%s", key);
		s->in_group = 1;
	}
	if (count(&s->group, b) == 0)
		return 0;
nomem:
	s->nomem = 1;
	return 1;
}

/* --- output --------------------------------------------------------------- */

/* The shortest decimal that reads back as v. */
static void fmt_double(double v, char *buf, size_t len)
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
}

static void json_number(const char *name, double v, int present)
{
	char buf[40];

	fmt_double(v, buf, sizeof(buf));
	printf(", \"%s\": %s", name, present ? buf : "null");
}

static void json_figures(const struct figures *f)
{
	printf("\"requests\": %ld, \"runs\": %ld, \"ok\": %ld", f->requests,
	       f->runs, f->ok);
	json_number("success_rate", f->runs ? (double)f->ok / (double)f->runs :
		    0, f->runs > 0);
	printf(", \"finished\": %ld", f->finished);
	json_number("p50_ms", f->p50, f->finished > 0);
	json_number("p95_ms", f->p95, f->finished > 0);
	json_number("p99_ms", f->p99, f->finished > 0);
	printf(", \"rate_limited\": %ld, \"refused\": %ld", f->rate_limited,
	       f->refused);
}

static void rate_text(const struct figures *f, char *buf, size_t len)
{
	if (f->runs)
		snprintf(buf, len, "%.1f%%", 100.0 * (double)f->ok /
			 (double)f->runs);
	else
		snprintf(buf, len, "n/a");
}

static void ms_text(double v, int present, char *buf, size_t len)
{
	if (present)
		snprintf(buf, len, "%.2f", v);
	else
		snprintf(buf, len, "n/a");
}

struct top {
	int json;
	int n;
};

static int top_one(const char *identity, long runs, void *arg)
{
	struct top *t = arg;

	if (t->json) {
		printf("%s{\"identity\": ", t->n ? ", " : "");
		put_json_string(stdout, identity);
		printf(", \"runs\": %ld}", runs);
	} else {
		printf("  %-40s %ld\n", identity, runs);
	}
	t->n++;
	return 0;
}

static void range_text(const struct stats *s, char *buf, size_t len)
{
	char from[32], to[32];

	format_time(s->since, from, sizeof(from));
	format_time(s->until, to, sizeof(to));
	if (!s->since && !s->until)
		snprintf(buf, len, "all time");
	else if (!s->until)
		snprintf(buf, len, "since %s", from);
	else if (!s->since)
		snprintf(buf, len, "until %s", to);
	else
		snprintf(buf, len, "%s to %s", from, to);
}

static int print_human(struct stats *s, const struct figures *f)
{
	char range[96], rate[16], p50[32], p95[32], p99[32];
	struct top t = { 0, 0 };

	range_text(s, range, sizeof(range));
	rate_text(f, rate, sizeof(rate));
	ms_text(f->p50, f->finished > 0, p50, sizeof(p50));
	ms_text(f->p95, f->finished > 0, p95, sizeof(p95));
	ms_text(f->p99, f->finished > 0, p99, sizeof(p99));
	printf("range:         %s\n", range);
	printf("requests:      %ld\n", f->requests);
	printf("runs:          %ld (requests not refused)\n", f->runs);
	printf("success rate:  %s (%ld ok of %ld runs)\n", rate, f->ok, f->runs);
	printf("exec_ms:       p50 %s, p95 %s, p99 %s (over %ld finished "
	       "runs)\n", p50, p95, p99, f->finished);
	printf("rate limited:  %ld (429)\n", f->rate_limited);
	printf("refused:       %ld (other refusals)\n", f->refused);
	printf("top users:%s\n", f->runs ? "" : "     none");
	if (store_top_identities(s->ctx->db, s->since, s->until, TOP_USERS,
				 top_one, &t) != STORE_OK)
		return -1;
	if (s->by == BY_NONE)
		return 0;
	printf("\n%-20s %8s %8s %8s %9s %9s %9s %8s %8s\n",
	       s->by == BY_USER ? "IDENTITY" : s->by == BY_DAY ? "DAY" :
	       s->by == BY_HOUR ? "HOUR" : s->by == BY_VIA ? "VIA" : "OUTCOME",
	       "REQUESTS", "RUNS",
	       "SUCCESS", "P50_MS", "P95_MS", "P99_MS", "LIMITED", "REFUSED");
	for (size_t i = 0; i < s->ngroups; i++) {
		const struct figures *g = &s->groups[i];
		rate_text(g, rate, sizeof(rate));
		ms_text(g->p50, g->finished > 0, p50, sizeof(p50));
		ms_text(g->p95, g->finished > 0, p95, sizeof(p95));
		ms_text(g->p99, g->finished > 0, p99, sizeof(p99));
		printf("%-20s %8ld %8ld %8s %9s %9s %9s %8ld %8ld\n", g->key,
		       g->requests, g->runs, rate, p50, p95, p99,
		       g->rate_limited, g->refused);
	}
	return 0;
}

static void json_time(const char *name, int64_t ms)
{
	char when[32];

	format_time(ms, when, sizeof(when));
	if (ms)
		printf("\"%s\": \"%s\"", name, when);
	else
		printf("\"%s\": null", name);
}

static int print_json(struct stats *s, const struct figures *f)
{
	struct top t = { 1, 0 };

	printf("{");
	json_time("since", s->since);
	printf(", ");
	json_time("until", s->until);
	printf(", ");
	json_figures(f);
	printf(", \"top_users\": [");
	if (store_top_identities(s->ctx->db, s->since, s->until, TOP_USERS,
				 top_one, &t) != STORE_OK)
		return -1;
	printf("]");
	if (s->by != BY_NONE) {
		printf(", \"by\": \"%s\", \"groups\": [", by_names[s->by]);
		for (size_t i = 0; i < s->ngroups; i++) {
			printf("%s{\"key\": ", i ? ", " : "");
			put_json_string(stdout, s->groups[i].key);
			printf(", ");
			json_figures(&s->groups[i]);
			printf("}");
		}
		printf("]");
	}
	printf("}\n");
	return 0;
}

/* --- the command ---------------------------------------------------------- */

static int stats_opt(int opt, const char *arg, void *state)
{
	struct stats *s = state;
	size_t i;

	switch (opt) {
	case 's':
	case 'u':
		if (parse_when(arg, opt == 's' ? &s->since : &s->until) != 0)
			return usage_error(s->ctx->usage, "%s must be a duration "
					   "back from now (90s, 15m, 2h, 7d) or "
					   "an ISO date and time in UTC "
					   "(2026-11-26, 2026-11-26T19:20:01Z), "
					   "not '%s'", opt == 's' ? "--since" :
					   "--until", arg);
		break;
	case 'b':
		for (i = BY_USER; i <= BY_VIA; i++)
			if (strcmp(arg, by_names[i]) == 0)
				break;
		if (i > BY_VIA)
			return usage_error(s->ctx->usage, "--by must be one of "
					   "user, day, hour, outcome, via, not '%s'",
					   arg);
		s->by = (enum group_by)i;
		break;
	case 'j':
		s->json = 1;
		break;
	}
	return 0;
}

int cmd_stats(int argc, char **argv, struct admin_ctx *ctx)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "by", required_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	static const enum scan_order order[] = {
		[BY_NONE] = SCAN_BY_TIME, [BY_USER] = SCAN_BY_IDENTITY,
		[BY_DAY] = SCAN_BY_TIME, [BY_HOUR] = SCAN_BY_TIME,
		[BY_OUTCOME] = SCAN_BY_STATUS, [BY_VIA] = SCAN_BY_VIA,
	};
	struct stats s = { .ctx = ctx, .by = BY_NONE };
	struct figures all;
	int rc;

	if (get_options(argc, argv, opts, ctx, stats_opt, &s) != 0)
		return EXIT_USAGE;
	if (argc - optind)
		return usage_error(ctx->usage, "unexpected argument '%s'",
				   argv[optind]);
	if (s.since && s.until && s.since >= s.until)
		return usage_error(ctx->usage, "--since must be before --until");
	rc = store_runs_scan(ctx->db, s.since, s.until, order[s.by], each_row,
			     &s);
	if (rc == STORE_OK && !s.nomem && close_group(&s) != 0)
		s.nomem = 1;
	if (s.nomem) {
		rc = error("out of memory");
	} else if (rc != STORE_OK) {
		rc = db_error(ctx, "cannot read the audit log");
	} else {
		sum_up(&s.all, "", &all);
		rc = (s.json ? print_json(&s, &all) : print_human(&s, &all)) ?
		     db_error(ctx, "cannot read the audit log") : 0;
	}
	free(s.all.exec);
	free(s.group.exec);
	free(s.groups);
	return rc;
}
