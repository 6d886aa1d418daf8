/* SPDX-License-Identifier: MIT */
/*
 * cmd_logs.c: the audit log: a filtered listing of requests (a table for
 * people, JSON lines or CSV for programs), following it as rows arrive, and
 * one request in full. What the log holds came from strangers (code, error
 * text, exception names), so the table and the human view of one request
 * never write a control character to the terminal: those are shown escaped,
 * and only --json and --csv carry the text exactly.
 */
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "admin.h"
#include "../cgi/banned.h"

/* The table shows the last 50 rows unless told otherwise, and says so;
 * --json and --csv export every matching row unless given --limit. */
#define TABLE_LIMIT	50
#define FOLLOW_POLL_MS	500
#define TABLE_ID_LEN	12
/* Table cells wider than these are cut: a name is not a layout. */
#define MAX_IDENTITY_W	40
#define MAX_TYPE_W	28
/* --follow cannot know the rows to come: its columns are fixed. */
#define FOLLOW_IDENTITY_W	32
#define FOLLOW_TYPE_W		20

static const char *const statuses[] = {
	"ok", "error", "timeout", "memory", "output_limit", "security", "crash",
	"internal", "rejected", "running", "abandoned",
};

struct logs {
	struct admin_ctx *ctx;
	struct run_filter f;
	enum out_format fmt;
	int formats;		/* how many of --json, --csv were given */
	int limit_given;	/* --limit N */
	int follow;
	int looked_back;	/* --follow listed past rows first */
	/* The table's variable columns, and whether its header is out. */
	int w_identity, w_type, header;
	/* --follow: the newest row looked at, and rows seen still running,
	 * to be shown once they end. */
	int64_t cursor;
	char (*pending)[33];
	size_t npending, cap;
	int failed;		/* the database failed during a callback */
};

/* --- text for terminals --------------------------------------------------- */

/* The length of the UTF-8 sequence at p when it is a C1 control (U+0080 to
 * U+009F, which some terminals obey as escapes), else 0. */
static int c1_control(const unsigned char *p)
{
	return p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f ? 2 : 0;
}

static int is_control(const unsigned char *p)
{
	return *p < 0x20 || *p == 0x7f || c1_control(p);
}

/* Writes the character at *p for a terminal, a control as \xNN, and
 * moves *p to its last byte. */
static void put_char(FILE *f, const unsigned char **p)
{
	if (c1_control(*p)) {
		fprintf(f, "\\x%02x", (*p)[1]);
		(*p)++;
	} else if (is_control(*p)) {
		fprintf(f, "\\x%02x", **p);
	} else {
		fputc(**p, f);
	}
}

static void put_text(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		put_char(f, &p);
}

/* Columns s takes in a table cell: a control counts as its '?'. */
static int text_width(const char *s)
{
	int w = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (c1_control(p))
			p++;
		else if ((*p & 0xc0) == 0x80)
			continue;
		w++;
	}
	return w;
}

/* One table cell of width w, left-aligned: controls as '?', cut with
 * "..." when too long. */
static void put_cell(const char *s, int w)
{
	int width = text_width(s), keep = width, n = 0;

	if (width > w)
		keep = w - 3;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p & 0xc0) != 0x80 && n++ == keep)
			break;
		if (c1_control(p)) {
			putchar('?');
			p++;
		} else {
			putchar(is_control(p) ? '?' : *p);
		}
	}
	if (width > w)
		fputs("...", stdout);
	printf("%*s", w > width ? w - width : 0, "");
}

/* --- values --------------------------------------------------------------- */

/* "2026-11-26T19:20:01.383Z": UTC, to the millisecond. */
static void iso_ms(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char secs[24];

	if (!gmtime_r(&t, &tm) ||
	    !strftime(secs, sizeof(secs), "%Y-%m-%dT%H:%M:%S", &tm))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%s.%03dZ", secs, (int)(ms % 1000));
}

/* The shortest decimal that reads back as v. */
static void fmt_double(double v, char *buf, size_t len)
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
}

/* A row's fields in the order of --json and --csv. */
enum field_kind { F_TEXT, F_INT, F_REAL, F_TIME, F_BOOL };

static const struct field {
	const char *name;
	enum run_column col;
	enum field_kind kind;
} fields[] = {
	{ "id", RUN_ID, F_TEXT },
	{ "started", RUN_STARTED_MS, F_TIME },
	{ "finished", RUN_FINISHED_MS, F_TIME },
	{ "deadline", RUN_DEADLINE_MS, F_TIME },
	{ "identity", RUN_IDENTITY, F_TEXT },
	{ "user", RUN_USER_NAME, F_TEXT },
	{ "client", RUN_CLIENT_ADDR, F_TEXT },
	{ "broker_pid", RUN_BROKER_PID, F_INT },
	{ "code_sha256", RUN_CODE_SHA256, F_TEXT },
	{ "code_size", RUN_CODE_SIZE, F_INT },
	{ "code", RUN_CODE, F_TEXT },
	{ "input_size", RUN_INPUT_SIZE, F_INT },
	{ "outcome", RUN_OUTCOME, F_TEXT },
	{ "status", RUN_STATUS, F_TEXT },
	{ "error_type", RUN_ERROR_TYPE, F_TEXT },
	{ "error", RUN_ERROR, F_TEXT },
	{ "output_size", RUN_OUTPUT_SIZE, F_INT },
	{ "truncated", RUN_TRUNCATED, F_BOOL },
	{ "exec_ms", RUN_EXEC_MS, F_REAL },
	{ "wall_ms", RUN_WALL_MS, F_REAL },
	{ "cpu_ms", RUN_CPU_MS, F_INT },
	{ "peak_kb", RUN_PEAK_KB, F_INT },
	{ "http_status", RUN_HTTP_STATUS, F_INT },
	{ "counted", RUN_COUNTED, F_BOOL },
	{ "profile", RUN_PROFILE, F_TEXT },
	{ "via", RUN_VIA, F_TEXT },
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/*
 * One field as text (numbers and times) or as a string of the row (*str);
 * returns 0 when the field is absent. A refused request has no deadline:
 * it is written as 0 and shown as absent.
 */
static int field_value(const struct run_row *r, const struct field *fd,
		       char *buf, size_t len, const char **str)
{
	static const size_t offset[] = {
		[RUN_ID] = offsetof(struct run_row, id),
		[RUN_IDENTITY] = offsetof(struct run_row, identity),
		[RUN_USER_NAME] = offsetof(struct run_row, user_name),
		[RUN_CLIENT_ADDR] = offsetof(struct run_row, client_addr),
		[RUN_CODE_SHA256] = offsetof(struct run_row, code_sha256),
		[RUN_CODE] = offsetof(struct run_row, code),
		[RUN_OUTCOME] = offsetof(struct run_row, outcome),
		[RUN_STATUS] = offsetof(struct run_row, status),
		[RUN_ERROR_TYPE] = offsetof(struct run_row, error_type),
		[RUN_ERROR] = offsetof(struct run_row, error),
		[RUN_PROFILE] = offsetof(struct run_row, profile),
		[RUN_VIA] = offsetof(struct run_row, via),
	};
	int64_t v = 0;

	*str = NULL;
	if (RUN_IS_NULL(r, fd->col) ||
	    (fd->col == RUN_DEADLINE_MS && r->deadline_ms == 0))
		return 0;
	switch (fd->col) {
	case RUN_STARTED_MS: v = r->started_ms; break;
	case RUN_FINISHED_MS: v = r->finished_ms; break;
	case RUN_DEADLINE_MS: v = r->deadline_ms; break;
	case RUN_BROKER_PID: v = r->broker_pid; break;
	case RUN_CODE_SIZE: v = r->code_size; break;
	case RUN_INPUT_SIZE: v = r->input_size; break;
	case RUN_OUTPUT_SIZE: v = r->output_size; break;
	case RUN_TRUNCATED: v = r->truncated; break;
	case RUN_CPU_MS: v = r->cpu_ms; break;
	case RUN_PEAK_KB: v = r->peak_kb; break;
	case RUN_HTTP_STATUS: v = r->http_status; break;
	case RUN_COUNTED: v = r->counted; break;
	default: break;
	}
	switch (fd->kind) {
	case F_TEXT:
		*str = *(const char *const *)((const char *)r + offset[fd->col]);
		return *str != NULL;
	case F_REAL:
		fmt_double(fd->col == RUN_EXEC_MS ? r->exec_ms : r->wall_ms,
			   buf, len);
		break;
	case F_TIME:
		iso_ms(v, buf, len);
		break;
	case F_BOOL:
		snprintf(buf, len, "%s", v ? "true" : "false");
		break;
	case F_INT:
		snprintf(buf, len, "%lld", (long long)v);
		break;
	}
	return 1;
}

static void put_json_row(const struct run_row *r)
{
	const char *str;
	char buf[64];

	for (size_t i = 0; i < NFIELDS; i++) {
		printf("%s\"%s\": ", i ? ", " : "{", fields[i].name);
		if (!field_value(r, &fields[i], buf, sizeof(buf), &str))
			fputs("null", stdout);
		else if (str || fields[i].kind == F_TIME)
			put_json_string(stdout, str ? str : buf);
		else
			fputs(buf, stdout);
	}
	fputs("}\n", stdout);
}

static void put_csv_header(void)
{
	for (size_t i = 0; i < NFIELDS; i++)
		printf("%s%s", i ? "," : "", fields[i].name);
	putchar('\n');
}

/* Absent fields are empty; booleans are 1 and 0. */
static void put_csv_row(const struct run_row *r)
{
	const char *str;
	char buf[64];

	for (size_t i = 0; i < NFIELDS; i++) {
		if (i)
			putchar(',');
		if (!field_value(r, &fields[i], buf, sizeof(buf), &str))
			continue;
		if (fields[i].kind == F_BOOL)
			putchar(buf[0] == 't' ? '1' : '0');
		else
			put_csv_field(stdout, str ? str : buf);
	}
	putchar('\n');
}

/* --- the table ------------------------------------------------------------ */

static const char *or_dash(const char *s)
{
	return s && *s ? s : "-";
}

static int min_int(int a, int b)
{
	return a < b ? a : b;
}

static void widen(struct logs *l, const struct run_row *r)
{
	int w = min_int(text_width(or_dash(r->identity)), MAX_IDENTITY_W);

	if (l->follow)
		return;
	if (w > l->w_identity)
		l->w_identity = w;
	w = min_int(text_width(or_dash(r->error_type)), MAX_TYPE_W);
	if (w > l->w_type)
		l->w_type = w;
}

static void put_table_header(struct logs *l)
{
	if (l->header)
		return;
	printf("%-20s %-*s ", "TIME", TABLE_ID_LEN, "ID");
	put_cell("IDENTITY", l->w_identity);
	printf(" %-12s ", "STATUS");
	put_cell("TYPE", l->w_type);
	printf(" %4s %9s %9s\n", "HTTP", "EXEC_MS", "OUTPUT");
	l->header = 1;
}

static void put_table_row(struct logs *l, const struct run_row *r)
{
	char time[32], id[TABLE_ID_LEN + 1], http[16], exec[32], out[24];

	widen(l, r);
	put_table_header(l);
	format_time(r->started_ms, time, sizeof(time));
	snprintf(id, sizeof(id), "%s", or_dash(r->id));
	snprintf(http, sizeof(http), "-");
	snprintf(exec, sizeof(exec), "-");
	snprintf(out, sizeof(out), "-");
	if (!RUN_IS_NULL(r, RUN_HTTP_STATUS))
		snprintf(http, sizeof(http), "%d", r->http_status);
	/* A refused request is written with an exec_ms of 0: it never ran. */
	if (r->has_exec && !(r->outcome && strcmp(r->outcome, "rejected") == 0))
		snprintf(exec, sizeof(exec), "%.1f", r->exec_ms);
	if (!RUN_IS_NULL(r, RUN_OUTPUT_SIZE))
		snprintf(out, sizeof(out), "%lld", (long long)r->output_size);
	printf("%-20s ", time);
	put_cell(id, TABLE_ID_LEN);
	putchar(' ');
	put_cell(or_dash(r->identity), l->w_identity);
	putchar(' ');
	put_cell(or_dash(r->status), 12);
	putchar(' ');
	put_cell(or_dash(r->error_type), l->w_type);
	printf(" %4s %9s %9s\n", http, exec, out);
}

static void put_row(struct logs *l, const struct run_row *r)
{
	if (l->fmt == OUT_JSON)
		put_json_row(r);
	else if (l->fmt == OUT_CSV)
		put_csv_row(r);
	else
		put_table_row(l, r);
}

/* --- the listing ---------------------------------------------------------- */

struct first_pass {
	struct logs *l;
	int64_t oldest;
	long count;
};

/* The newest rows, newest first: where the listing starts, and how wide
 * its columns are. */
static int measure(const struct run_row *r, void *arg)
{
	struct first_pass *p = arg;

	p->oldest = r->rowid;
	p->count++;
	if (p->l->fmt == OUT_TABLE)
		widen(p->l, r);
	return 0;
}

static int print_one(const struct run_row *r, void *arg)
{
	put_row(arg, r);
	return 0;
}

/* When the table's default limit left rows out, says how many, and how
 * to see them (stderr: the table itself stays the rows). */
static int note_omitted(struct logs *l, int64_t upto, long shown)
{
	struct run_filter f = l->f;
	long all;

	if (l->fmt != OUT_TABLE || l->limit_given || shown < f.limit)
		return 0;
	f.upto_rowid = upto;
	f.limit = 0;
	if (store_runs_count(l->ctx->db, &f, &all) != STORE_OK)
		return -1;
	if (all > shown)
		fprintf(stderr, "pyexec-admin: %ld older matching request%s not "
			"shown: --limit 0 lists them all, --json or --csv "
			"exports them\n", all - shown, all - shown == 1 ? "" : "s");
	return 0;
}

/* The last `limit` matching rows written up to the row `upto`, oldest
 * first (every matching row when limit is 0). Rows are written as they
 * are read. */
static int list(struct logs *l, int64_t upto)
{
	struct run_filter f = l->f;
	struct first_pass p = { l, 0, 0 };

	f.upto_rowid = upto;
	if (f.limit || (l->fmt == OUT_TABLE && !l->follow)) {
		f.newest_first = f.limit > 0;
		if (store_runs_query(l->ctx->db, &f, measure, &p) != STORE_OK)
			return -1;
		if (!p.count)
			return 0;
		if (f.limit > 0)
			f.after_rowid = p.oldest - 1;
		f.newest_first = 0;
	}
	if (store_runs_query(l->ctx->db, &f, print_one, l) != STORE_OK)
		return -1;
	return note_omitted(l, upto, p.count);
}

/* --- following ------------------------------------------------------------ */

static int status_matches(const struct logs *l, const char *status)
{
	status = status ? status : "";
	return (!l->f.status || strcmp(status, l->f.status) == 0) &&
	       (!l->f.failed || strcmp(status, "ok") != 0);
}

/* A row still running is shown when it ends, with the status it ends
 * with, unless running rows are what was asked for. */
static int defer(const struct logs *l, const struct run_row *r)
{
	return r->status && strcmp(r->status, "running") == 0 &&
	       !(l->f.status && strcmp(l->f.status, "running") == 0);
}

static int add_pending(struct logs *l, const char *id)
{
	if (l->npending == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		char (*p)[33] = realloc(l->pending, cap * sizeof(*p));
		if (!p)
			return -1;
		l->pending = p;
		l->cap = cap;
	}
	snprintf(l->pending[l->npending++], 33, "%s", id ? id : "");
	return 0;
}

/* New rows, after the cursor; the status is matched here, so that a row
 * can wait in `pending` until it ends. */
static int new_row(const struct run_row *r, void *arg)
{
	struct logs *l = arg;

	if (r->rowid > l->cursor)
		l->cursor = r->rowid;
	if (defer(l, r)) {
		if (add_pending(l, r->id) != 0) {
			l->failed = 1;
			return 1;
		}
	} else if (status_matches(l, r->status)) {
		put_row(l, r);
	}
	return 0;
}

struct resolve {
	struct logs *l;
	int done;
};

static int pending_row(const struct run_row *r, void *arg)
{
	struct resolve *res = arg;

	if (defer(res->l, r))
		return 0;
	res->done = 1;
	if (status_matches(res->l, r->status))
		put_row(res->l, r);
	return 0;
}

/* Shows the pending rows that have ended (or were abandoned); forgets those
 * that are gone (pruned). */
static int resolve_pending(struct logs *l)
{
	size_t keep = 0;

	for (size_t i = 0; i < l->npending; i++) {
		struct resolve res = { l, 0 };
		int rc = store_run_by_id(l->ctx->db, l->pending[i], pending_row,
					 &res);
		if (rc != STORE_OK && rc != STORE_NOTFOUND)
			return -1;
		if (rc == STORE_OK && !res.done)
			memcpy(l->pending[keep++], l->pending[i], 33);
	}
	l->npending = keep;
	return 0;
}

/* Rows still running when the listing was made, which the status asked
 * for excluded: they are shown if they end matching it. */
static int running_row(const struct run_row *r, void *arg)
{
	struct logs *l = arg;

	if (add_pending(l, r->id) != 0) {
		l->failed = 1;
		return 1;
	}
	return 0;
}

static int follow(struct logs *l)
{
	const struct timespec pause = {
		FOLLOW_POLL_MS / 1000, (FOLLOW_POLL_MS % 1000) * 1000000L
	};
	struct run_filter f = l->f;

	if (l->looked_back && l->cursor && l->f.status &&
	    strcmp(l->f.status, "running") != 0) {
		f.status = "running";
		f.limit = 0;
		f.upto_rowid = l->cursor;
		if (store_runs_query(l->ctx->db, &f, running_row, l) != STORE_OK ||
		    l->failed)
			return -1;
	}
	f = l->f;
	f.status = NULL;
	f.failed = 0;
	f.limit = 0;
	for (;;) {
		nanosleep(&pause, NULL);
		if (resolve_pending(l) != 0)
			return -1;
		f.after_rowid = l->cursor;
		if (store_runs_query(l->ctx->db, &f, new_row, l) != STORE_OK ||
		    l->failed)
			return -1;
		if (fflush(stdout) != 0 || ferror(stdout))
			return 0;	/* the reader has gone */
	}
}

/* --- options -------------------------------------------------------------- */

static int bad_when(struct admin_ctx *ctx, const char *opt, const char *arg)
{
	return usage_error(ctx->usage, "%s must be a duration back from now "
			   "(90s, 15m, 2h, 7d) or an ISO date and time in UTC "
			   "(2026-11-26, 2026-11-26T19:20:01Z), not '%s'", opt,
			   arg);
}

static int logs_opt(int opt, const char *arg, void *state)
{
	struct logs *l = state;
	struct admin_ctx *ctx = l->ctx;
	size_t i;

	switch (opt) {
	case 'u':
		if (!*arg)
			return usage_error(ctx->usage, "--user needs a name");
		l->f.user = arg;
		break;
	case 'a':
		l->f.anonymous = 1;
		break;
	case 'c':
		if (!*arg)
			return usage_error(ctx->usage, "--client needs an address");
		l->f.client = arg;
		break;
	case 's':
		if (parse_when(arg, &l->f.since_ms) != 0)
			return bad_when(ctx, "--since", arg);
		break;
	case 'U':
		if (parse_when(arg, &l->f.until_ms) != 0)
			return bad_when(ctx, "--until", arg);
		break;
	case 'o':
		for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
			if (strcmp(arg, statuses[i]) == 0)
				break;
		if (i == sizeof(statuses) / sizeof(statuses[0]))
			return usage_error(ctx->usage, "--outcome must be one of "
					   "ok, error, timeout, memory, "
					   "output_limit, security, crash, "
					   "internal, rejected, running, "
					   "abandoned, not '%s'", arg);
		l->f.status = statuses[i];
		break;
	case 'F':
		l->f.failed = 1;
		break;
	case 'v':
		if (strcmp(arg, "rest") && strcmp(arg, "mcp") && strcmp(arg, "stdio"))
			return usage_error(ctx->usage, "--via must be rest, mcp "
					   "or stdio, not '%s'", arg);
		l->f.via = arg;
		break;
	case 'l':
		if (parse_int(arg, 0, 1000000000, &l->f.limit) != 0)
			return usage_error(ctx->usage, "--limit must be a number "
					   "of rows (0: all), not '%s'", arg);
		l->limit_given = 1;
		break;
	case 'f':
		l->follow = 1;
		break;
	case 'j':
	case 'C':
		l->fmt = opt == 'j' ? OUT_JSON : OUT_CSV;
		l->formats++;
		break;
	}
	return 0;
}

int cmd_logs(int argc, char **argv, struct admin_ctx *ctx)
{
	static const struct option opts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ "anonymous", no_argument, NULL, 'a' },
		{ "client", required_argument, NULL, 'c' },
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'U' },
		{ "outcome", required_argument, NULL, 'o' },
		{ "failed", no_argument, NULL, 'F' },
		{ "via", required_argument, NULL, 'v' },
		{ "limit", required_argument, NULL, 'l' },
		{ "follow", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "csv", no_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	struct logs l = { .ctx = ctx, .fmt = OUT_TABLE, .w_identity = 8,
			  .w_type = 4 };
	int64_t last;
	int rc = 0;

	if (get_options(argc, argv, opts, ctx, logs_opt, &l) != 0)
		return EXIT_USAGE;
	if (!l.limit_given && l.fmt == OUT_TABLE && !l.follow)
		l.f.limit = TABLE_LIMIT;
	if (l.follow) {
		l.w_identity = FOLLOW_IDENTITY_W;
		l.w_type = FOLLOW_TYPE_W;
	}
	if (argc - optind)
		return usage_error(ctx->usage, "unexpected argument '%s'",
				   argv[optind]);
	if (l.f.user && l.f.anonymous)
		return usage_error(ctx->usage, "--user and --anonymous exclude "
				   "each other");
	if (l.f.status && l.f.failed)
		return usage_error(ctx->usage, "--outcome and --failed exclude "
				   "each other");
	if (l.formats > 1)
		return usage_error(ctx->usage, "--json and --csv exclude each "
				   "other");
	if (l.f.since_ms && l.f.until_ms && l.f.since_ms >= l.f.until_ms)
		return usage_error(ctx->usage, "--since must be before --until");
	if (store_runs_last_rowid(ctx->db, &last) != STORE_OK)
		return db_error(ctx, "cannot read the audit log");
	if (l.fmt == OUT_CSV)
		put_csv_header();
	if (l.follow && l.fmt == OUT_TABLE)
		put_table_header(&l);
	/* Rows written after `last` are left to --follow, which starts there:
	 * none is shown twice. --follow looks back only when asked to (--since
	 * or --limit). */
	l.looked_back = !l.follow || l.f.since_ms || l.limit_given;
	if (l.looked_back && last && list(&l, last) != 0)
		rc = db_error(ctx, "cannot read the audit log");
	else if (l.looked_back && !l.header && l.fmt == OUT_TABLE)
		fprintf(stderr, "no request matches\n");
	fflush(stdout);
	if (!rc && l.follow) {
		l.cursor = last;
		if (follow(&l) != 0)
			rc = l.failed ? error("out of memory") :
			     db_error(ctx, "cannot read the audit log");
	}
	free(l.pending);
	return rc;
}

/* --- one request ---------------------------------------------------------- */

static void show_value(const char *label, const char *value)
{
	printf("%-13s ", label);
	put_text(stdout, value);
	putchar('\n');
}

/* Text of many lines, indented by four spaces; controls but newlines and
 * tabs escaped. */
static void show_block(const char *s)
{
	fputs("    ", stdout);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\n' && p[1])
			fputs("\n    ", stdout);
		else if (*p == '\t')
			putchar('\t');
		else if (*p != '\n')
			put_char(stdout, &p);
	}
	putchar('\n');
}

static void show_time(const char *label, int64_t ms, int present)
{
	char buf[40];

	if (present)
		iso_ms(ms, buf, sizeof(buf));
	show_value(label, present ? buf : "-");
}

static void show_number(const char *label, const struct run_row *r,
			enum run_column col, long long v, const char *unit)
{
	char buf[64];

	if (RUN_IS_NULL(r, col))
		snprintf(buf, sizeof(buf), "-");
	else
		snprintf(buf, sizeof(buf), "%lld%s", v, unit);
	show_value(label, buf);
}

static int show_human(const struct run_row *r, void *arg)
{
	char buf[160];

	(void)arg;
	show_value("id:", or_dash(r->id));
	show_time("started:", r->started_ms, 1);
	show_time("finished:", r->finished_ms, r->has_finished);
	show_time("deadline:", r->deadline_ms, r->deadline_ms != 0);
	show_value("identity:", or_dash(r->identity));
	show_value("user:", or_dash(r->user_name));
	show_value("client:", or_dash(r->client_addr));
	show_value("via:", or_dash(r->via));
	show_number("broker pid:", r, RUN_BROKER_PID, r->broker_pid, "");
	if (r->status && r->outcome && strcmp(r->status, r->outcome) != 0)
		snprintf(buf, sizeof(buf), "%s (written as '%s': its broker "
			 "is gone)", r->status, r->outcome);
	else
		snprintf(buf, sizeof(buf), "%s", or_dash(r->status));
	show_value("status:", buf);
	show_number("http status:", r, RUN_HTTP_STATUS, r->http_status, "");
	show_value("error type:", or_dash(r->error_type));
	if (r->has_exec)
		snprintf(buf, sizeof(buf), "%.3f ms", r->exec_ms);
	show_value("exec time:", r->has_exec ? buf : "-");
	if (!RUN_IS_NULL(r, RUN_WALL_MS))
		snprintf(buf, sizeof(buf), "%.0f ms", r->wall_ms);
	show_value("wall time:", RUN_IS_NULL(r, RUN_WALL_MS) ? "-" : buf);
	show_number("cpu time:", r, RUN_CPU_MS, r->cpu_ms, " ms");
	show_number("peak memory:", r, RUN_PEAK_KB, r->peak_kb, " KiB");
	show_number("input:", r, RUN_INPUT_SIZE, r->input_size, " bytes");
	if (!RUN_IS_NULL(r, RUN_OUTPUT_SIZE))
		snprintf(buf, sizeof(buf), "%lld bytes%s",
			 (long long)r->output_size,
			 r->truncated ? " (truncated)" : "");
	show_value("output:", RUN_IS_NULL(r, RUN_OUTPUT_SIZE) ? "-" : buf);
	show_value("quota:", r->counted ? "counted" : "not counted");
	if (!r->code_sha256) {
		show_value("code:", "- (refused before the code was read)");
	} else {
		size_t kept = r->code ? strlen(r->code) : 0;
		snprintf(buf, sizeof(buf), "%lld bytes, sha256 %s",
			 (long long)r->code_size, r->code_sha256);
		show_value("code:", buf);
		if (!r->code)
			printf("    (not kept: the audit_code setting)\n");
		else if ((long long)kept < r->code_size)
			printf("    (the first %zu bytes: the "
			       "audit_code_max_bytes setting)\n", kept);
		if (r->code)
			show_block(r->code);
	}
	if (r->error) {
		printf("error:\n");
		show_block(r->error);
	} else {
		show_value("error:", "-");
	}
	return 0;
}

static int show_json(const struct run_row *r, void *arg)
{
	(void)arg;
	put_json_row(r);
	return 0;
}

static int json_opt(int opt, const char *arg, void *state)
{
	(void)opt;
	(void)arg;
	*(int *)state = 1;
	return 0;
}

int cmd_logs_show(int argc, char **argv, struct admin_ctx *ctx)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	char id[33];
	int json = 0, rc;

	if (get_options(argc, argv, opts, ctx, json_opt, &json) != 0)
		return EXIT_USAGE;
	if (argc - optind != 1)
		return usage_error(ctx->usage, argc - optind < 1 ? "missing ID" :
				   "too many arguments");
	/* The whole id, or enough of it (the table shows 12 digits). */
	rc = store_run_resolve(ctx->db, argv[optind], id);
	if (rc == STORE_NOTFOUND)
		return error("no request '%s'", argv[optind]);
	if (rc == STORE_CONFLICT)
		return error("%s", store_error(ctx->db));
	if (rc == STORE_OK)
		rc = store_run_by_id(ctx->db, id, json ? show_json : show_human,
				     NULL);
	if (rc == STORE_NOTFOUND)	/* pruned meanwhile */
		return error("no request '%s'", argv[optind]);
	return rc == STORE_OK ? 0 : db_error(ctx, "cannot read the request");
}
