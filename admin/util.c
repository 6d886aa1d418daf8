/* SPDX-License-Identifier: MIT */
/* util.c: what pyexec-admin's commands share: messages, option parsing,
 * numbers, durations and times, JSON and CSV fields. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "admin.h"
#include "../cgi/banned.h"

static void say(const char *fmt, va_list ap)
{
	fputs("pyexec-admin: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(fmt, ap);
	va_end(ap);
	return 1;
}

int usage_error(const char *usage, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(fmt, ap);
	va_end(ap);
	if (usage)
		fprintf(stderr, "usage: pyexec-admin %s\n", usage);
	return EXIT_USAGE;
}

/*
 * Root, on a database whose directory another user owns (the web server's
 * user, as README's deployment has it), creates files as that user: the
 * database, its -wal and -shm, whatever SQLite adds. Else the CGI, run as
 * that user, could not write them and would answer every request 503.
 * setfsuid changes only whom files are created (and opened) as, until the
 * next exec; nothing else of root's is given up.
 */
int as_db_owner(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	struct stat st;

	if (geteuid() != 0 || !store_is_file(path))
		return 0;
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 :
			 (int)(slash - path), path);
	if (stat(dir, &st) != 0 || st.st_uid == 0)
		return 0;
	setfsgid(st.st_gid);
	setfsuid(st.st_uid);
	/* Each call returns the previous value: read back what holds now. */
	if ((uid_t)setfsuid((uid_t)-1) != st.st_uid ||
	    (gid_t)setfsgid((gid_t)-1) != st.st_gid) {
		struct passwd *pw = getpwuid(st.st_uid);
		return error("%s belongs to uid %u, and its files must too, "
			     "but this process cannot act as that user: run "
			     "runuser -u %s -- pyexec-admin ... instead", dir,
			     (unsigned)st.st_uid, pw ? pw->pw_name : "OWNER");
	}
	return 0;
}

int db_error(struct admin_ctx *ctx, const char *what)
{
	return error("%s: %s", what, store_error(ctx->db));
}

int get_options(int argc, char **argv, const struct option *opts,
		struct admin_ctx *ctx, int (*each)(int, const char *, void *),
		void *state)
{
	int opt;

	optind = 0;	/* glibc: start over, for this command's argv */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (opt == '?' || opt == ':') {
			usage_error(ctx->usage, opt == '?' ? "unknown option '%s'" :
				    "option '%s' needs a value", argv[optind - 1]);
			return -1;
		}
		if (each(opt, optarg, state) != 0)
			return -1;
	}
	return 0;
}

int no_options(int argc, char **argv, struct admin_ctx *ctx)
{
	for (int i = 1; i < argc; i++)
		if (argv[i][0] == '-' && argv[i][1] &&
		    (argv[i][1] < '0' || argv[i][1] > '9'))
			return usage_error(ctx->usage, "unknown option '%s'",
					   argv[i]);
	return 0;
}

int parse_int(const char *s, long min, long max, long *out)
{
	return setting_parse_int(s, min, max, out);
}

int parse_duration(const char *s, long *seconds)
{
	static const struct { char unit; long s; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
		{ 'w', 7 * 86400 },
	};
	char *end;
	long v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || v < 0 || end[0] == 0 || end[1] != 0)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (*end == units[i].unit) {
			if (v > 100L * 366 * 86400 / units[i].s)
				return -1;
			*seconds = v * units[i].s;
			return 0;
		}
	return -1;
}

/* "2026-11-26", "2026-11-26T19:20", "2026-11-26T19:20:01", optional Z. */
static int parse_iso(const char *s, int64_t *ms)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%d", &tm);
	if (!end)
		return -1;
	if (*end == 'T' || *end == ' ') {
		const char *t = strptime(end + 1, "%H:%M:%S", &tm);
		if (!t)
			t = strptime(end + 1, "%H:%M", &tm);
		if (!t)
			return -1;
		end = t;
	}
	if (*end == 'Z')
		end++;
	if (*end)
		return -1;
	*ms = (int64_t)timegm(&tm) * 1000;
	return 0;
}

int parse_when(const char *s, int64_t *ms)
{
	long secs;

	if (parse_duration(s, &secs) == 0) {
		*ms = now_ms() - (int64_t)secs * 1000;
		return 0;
	}
	return parse_iso(s, ms);
}

void format_time(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "-");
}

void put_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* A cell a spreadsheet would run as a formula: one that starts with =, +,
 * -, @ (or a tab or carriage return before one), unless it is a plain
 * number such as -1. */
static int formula_like(const char *s)
{
	char *end;

	if (!*s || !strchr("=+-@\t\r", *s))
		return 0;
	errno = 0;
	(void)strtod(s, &end);
	return end == s || *end != 0;
}

void put_csv_field(FILE *f, const char *s)
{
	int formula;

	s = s ? s : "";
	formula = formula_like(s);
	if (!strpbrk(s, ",\"\n\r")) {
		fprintf(f, "%s%s", formula ? "'" : "", s);
		return;
	}
	fputs(formula ? "\"'" : "\"", f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}
