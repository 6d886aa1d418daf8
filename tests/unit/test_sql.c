/* SPDX-License-Identifier: MIT */
/*
 * test_sql.c: unit tests for the data layer (sql/) on real database files,
 * and for the identities and sandbox slots (cgi/) that stand on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sqlite3.h>
#include "unit.h"
#include "../../cgi/identity.h"
#include "../../cgi/slots.h"
#include "../../sql/textclean.h"
#include "../../sql/digest.h"
#include "../../sql/settings.h"
#include "../../sql/store.h"
#include "../../cgi/banned.h"

/* The schema compiled into the program (generated from sql/schema.sql). */
extern const char pyexec_schema_sql[];

/* The uid the permission checks run as: root ignores file modes. */
#define NOBODY 65534

/*
 * Temporary directories, one per test.
 */

struct tmp {
	char dir[64];
	char path[128];		/* dir/pyexec.db */
};

static int tmp_make(struct tmp *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/pyexec-unit-XXXXXX");
	if (!mkdtemp(t->dir)) {
		unit_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
		t->dir[0] = 0;
		return -1;
	}
	snprintf(t->path, sizeof(t->path), "%s/pyexec.db", t->dir);
	return 0;
}

/* dir/name into out (room for 160 bytes). */
static char *tmp_file(const struct tmp *t, const char *name, char out[160])
{
	snprintf(out, 160, "%s/%s", t->dir, name);
	return out;
}

static int writable_again(const char *p, const struct stat *st, int type,
			  struct FTW *f)
{
	(void)st;
	(void)f;
	if (type == FTW_D || type == FTW_DNR)
		chmod(p, 0700);
	return 0;
}

static int remove_one(const char *p, const struct stat *st, int type,
		      struct FTW *f)
{
	(void)st;
	(void)type;
	(void)f;
	if (remove(p) != 0)
		unit_fail(__FILE__, __LINE__, "cleanup: remove %s: %s", p,
			  strerror(errno));
	return 0;
}

static void tmp_clean(struct tmp *t)
{
	if (!t->dir[0])
		return;
	nftw(t->dir, writable_again, 16, FTW_PHYS);
	nftw(t->dir, remove_one, 16, FTW_PHYS | FTW_DEPTH);
	t->dir[0] = 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* All of a file, or NULL when it does not exist. */
static char *slurp_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 1 << 16, n = 0;
	char *buf;
	ssize_t r;

	*len = 0;
	if (fd < 0)
		return NULL;
	buf = malloc(cap);
	if (!buf)
		exit(2);
	while ((r = read(fd, buf + n, cap - n)) > 0) {
		n += (size_t)r;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				exit(2);
		}
	}
	close(fd);
	*len = n;
	return buf;
}

/*
 * The database through the data layer, and through a connection of its
 * own (plain SQLite) to see what the data layer really wrote.
 */

static struct store *open_at(const char *file, int line, const char *path,
			     int mode)
{
	struct store *s = NULL;
	int rc = store_open(&s, path, mode);

	if (rc != STORE_OK) {
		unit_fail(file, line, "store_open(%s): %d %s", path, rc,
			  store_error(s));
		store_close(s);
		return NULL;
	}
	return s;
}

#define OPEN_RW(path) open_at(__FILE__, __LINE__, (path), STORE_RW)

/*
 * SQLite takes its allocator only before its first use: the data layer
 * must be first, as in the CGI, whichever test runs alone.
 */
static void store_first(void)
{
	static int done;
	struct store *s = NULL;

	if (done)
		return;
	done = 1;
	if (store_open(&s, ":memory:", STORE_RW) != STORE_OK)
		unit_fail(__FILE__, __LINE__, "store_open(:memory:): %s",
			  store_error(s));
	store_close(s);
}

static sqlite3 *raw_open_at(const char *file, int line, const char *path)
{
	sqlite3 *db = NULL;

	store_first();
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK) {
		unit_fail(file, line, "sqlite3_open_v2(%s): %s", path,
			  db ? sqlite3_errmsg(db) : "?");
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 5000);
	return db;
}

#define RAW_OPEN(path) raw_open_at(__FILE__, __LINE__, (path))

static int raw_exec_at(const char *file, int line, sqlite3 *db,
		       const char *sql)
{
	char *msg = NULL;
	int rc;

	if (!db)
		return -1;
	rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		unit_fail(file, line, "%s: %s", sql, msg ? msg : "?");
	sqlite3_free(msg);
	return rc == SQLITE_OK ? 0 : -1;
}

#define RAW_EXEC(db, sql) raw_exec_at(__FILE__, __LINE__, (db), (sql))

/* The first column of the first row of sql, with ?1 bound to param when
 * not NULL, as text ("(null)" for NULL). Returns 0, or -1 (no row). */
static int raw_text_at(const char *file, int line, sqlite3 *db,
		       const char *sql, const char *param, char *out,
		       size_t n)
{
	sqlite3_stmt *st = NULL;
	int rc;

	snprintf(out, n, "(no row)");
	if (!db)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		unit_fail(file, line, "%s: %s", sql, sqlite3_errmsg(db));
		return -1;
	}
	if (param)
		sqlite3_bind_text(st, 1, param, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		snprintf(out, n, "%s", v ? v : "(null)");
	} else if (rc != SQLITE_DONE) {
		unit_fail(file, line, "%s: %s", sql, sqlite3_errmsg(db));
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* The same as an integer; LLONG_MIN when there is no row. */
static long long raw_int_at(const char *file, int line, sqlite3 *db,
			    const char *sql, const char *param)
{
	char buf[64], *end;
	long long v;

	if (raw_text_at(file, line, db, sql, param, buf, sizeof(buf)) != 0)
		return LLONG_MIN;
	v = strtoll(buf, &end, 10);
	if (*end) {
		unit_fail(file, line, "%s: \"%s\" is not an integer", sql, buf);
		return LLONG_MIN;
	}
	return v;
}

#define RAW_TEXT(db, sql, param, out)					\
	raw_text_at(__FILE__, __LINE__, (db), (sql), (param), (out),	\
		    sizeof(out))
#define RAW_INT(db, sql, param)						\
	raw_int_at(__FILE__, __LINE__, (db), (sql), (param))

/* A column of the runs row id, as text. */
#define RUN_COL(db, col, id, out)					\
	RAW_TEXT((db), "SELECT " col " FROM runs WHERE id = ?1", (id), (out))
#define RUN_INT(db, col, id)						\
	RAW_INT((db), "SELECT " col " FROM runs WHERE id = ?1", (id))

/* A request of identity started at `started`, with a fresh id. */
static void rec_init(struct run_rec *r, const char *identity, int64_t started)
{
	static unsigned serial;

	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%08x%024x", (unsigned)getpid(),
		 ++serial);
	r->started_ms = started;
	r->deadline_ms = started + 60000;
	r->identity = identity;
	r->client_addr = "192.0.2.1";
	r->code = "print(1)";
	r->code_len = 8;
	r->input_size = 2;
}

/*
 * settings.c
 */

void test_settings_defaults_valid(void)
{
	size_t n = 0;
	const struct setting_def *t = settings_table(&n);

	CHECK(n >= 20);
	for (size_t i = 0; i < n; i++) {
		char err[200] = "";

		if (setting_validate(&t[i], t[i].def, err, sizeof(err)) != 0)
			unit_fail(__FILE__, __LINE__, "the default of %s, "
				  "\"%s\", does not validate: %s", t[i].key,
				  t[i].def, err);
		/* Each key once (setting_find returns the first). */
		CHECKF(setting_find(t[i].key) == &t[i], "%s twice", t[i].key);
		CHECKF(t[i].help && *t[i].help, "%s: no help", t[i].key);
		if (t[i].kind == SET_INT)
			CHECKF(t[i].min <= t[i].max, "%s: bounds", t[i].key);
		if (t[i].kind == SET_CHOICE)
			CHECKF(t[i].choices && *t[i].choices, "%s: choices",
			       t[i].key);
	}
	CHECK(setting_find("no_such_setting") == NULL);
	CHECK(setting_find("") == NULL);
	CHECK(setting_find("TIMEOUT_MS") == NULL);
}

void test_settings_documented(void)
{
	struct settings s;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	memset(&s, 0x5a, sizeof(s));
	settings_defaults(&s);
	CHECK_EQ(s.timeout_ms, 30000);
	CHECK_EQ(s.cpu_ms, 0);
	CHECK_EQ(s.memory_mb, 512);
	CHECK_EQ(s.output_bytes, 1048576);
	CHECK_EQ(s.code_bytes, 65536);
	CHECK_EQ(s.input_bytes, 262144);
	CHECK_EQ(s.body_bytes, 1048576);
	CHECK_EQ(s.body_timeout_ms, 10000);
	CHECK_EQ(s.max_timeout_ms, 300000);
	CHECK_EQ(s.max_memory_mb, 4096);
	CHECK_EQ(s.default_quota, 10);
	CHECK_EQ(s.quota_window_s, 3600);
	CHECK_EQ(s.anonymous, 1);
	CHECK_EQ(s.audit_code, AUDIT_CODE_FULL);
	CHECK_EQ(s.audit_code_max_bytes, 65536);
	CHECK_EQ(s.audit_error_max_bytes, 4096);
	CHECK_EQ(s.max_concurrent, 2 * (cores > 0 ? cores : 1));
	CHECK_EQ(s.concurrency_wait_ms, 5000);
	CHECK(s.price_gb_s == 0.0000025);
	CHECK(s.price_invocation == 0.0000004);
}

static void validate_at(const char *file, int line, const char *key,
			const char *value, int ok)
{
	const struct setting_def *d = setting_find(key);
	char err[200] = "", want[200];
	int rc;

	if (!d) {
		unit_fail(file, line, "no setting %s", key);
		return;
	}
	rc = setting_validate(d, value, err, sizeof(err));
	if (ok) {
		if (rc != 0)
			unit_fail(file, line, "%s=\"%s\" refused: %s", key,
				  value, err);
		return;
	}
	if (rc != -1) {
		unit_fail(file, line, "%s=\"%s\" accepted", key, value);
		return;
	}
	if (d->kind == SET_INT)
		snprintf(want, sizeof(want), "%s must be an integer from %ld "
			 "to %ld", key, d->min, d->max);
	else if (d->kind == SET_CHOICE)
		snprintf(want, sizeof(want), "%s must be one of %s", key,
			 d->choices);
	else
		snprintf(want, sizeof(want), "%s must be a non-negative number "
			 "(a price in your currency)", key);
	if (strcmp(err, want) != 0)
		unit_fail(file, line, "%s=\"%s\": message \"%s\", expected "
			  "\"%s\"", key, value, err, want);
}

#define VALID(key, value) validate_at(__FILE__, __LINE__, (key), (value), 1)
#define INVALID(key, value) validate_at(__FILE__, __LINE__, (key), (value), 0)

void test_settings_validate(void)
{
	VALID("timeout_ms", "100");
	VALID("timeout_ms", "900000");
	VALID("timeout_ms", "0100");
	INVALID("timeout_ms", "99");
	INVALID("timeout_ms", "900001");
	INVALID("timeout_ms", "-100");
	INVALID("timeout_ms", "");
	INVALID("timeout_ms", "abc");
	INVALID("timeout_ms", "5000ms");
	INVALID("timeout_ms", " 5000");
	INVALID("timeout_ms", "5000 ");
	INVALID("timeout_ms", "+5000");
	INVALID("timeout_ms", "5e3");
	INVALID("timeout_ms", "0x400");
	INVALID("timeout_ms", "5000.0");
	INVALID("timeout_ms", "99999999999999999999999");
	/* A default written as an expression is not a number. */
	INVALID("output_bytes", "(1024 * 1024)");
	VALID("output_bytes", "1048576");
	VALID("default_quota", "-1");
	VALID("default_quota", "0");
	VALID("default_quota", "1000000000");
	INVALID("default_quota", "-2");
	INVALID("default_quota", "1000000001");
	INVALID("default_quota", "-");
	INVALID("memory_mb", "31");
	VALID("memory_mb", "32");
	VALID("memory_mb", "65536");
	INVALID("memory_mb", "65537");
	INVALID("quota_window_s", "0");
	VALID("max_concurrent", "0");
	INVALID("max_concurrent", "-1");
	INVALID("max_concurrent", "4097");

	VALID("anonymous", "allow");
	VALID("anonymous", "deny");
	INVALID("anonymous", "Allow");
	INVALID("anonymous", "");
	INVALID("anonymous", "al");
	INVALID("anonymous", "allowx");
	INVALID("anonymous", "allow|deny");
	INVALID("anonymous", "|");
	INVALID("anonymous", "yes");
	INVALID("anonymous", "1");
	VALID("audit_code", "full");
	VALID("audit_code", "hash");
	VALID("audit_code", "none");
	INVALID("audit_code", "ful");
	INVALID("audit_code", "hash ");
	INVALID("audit_code", "full|hash");

	VALID("price_gb_s", "0");
	VALID("price_gb_s", "0.5");
	VALID("price_gb_s", "0.0000025");
	VALID("price_invocation", "12");
	INVALID("price_gb_s", "-0.5");
	INVALID("price_gb_s", "-0");
	INVALID("price_invocation", "-1");
	INVALID("price_gb_s", "");
	INVALID("price_gb_s", "abc");
	INVALID("price_gb_s", " 1");
	INVALID("price_gb_s", "1.5x");
	INVALID("price_gb_s", "nan");
	INVALID("price_gb_s", "inf");
	INVALID("price_gb_s", "1e6");
	INVALID("price_gb_s", "1e400");
}

/* How each key lands in struct settings: a long field, or a special. */
static const struct key_field {
	const char *key;
	size_t off;		/* a long; (size_t)-1: handled apart */
} key_fields[] = {
	{ "timeout_ms", offsetof(struct settings, timeout_ms) },
	{ "cpu_ms", offsetof(struct settings, cpu_ms) },
	{ "memory_mb", offsetof(struct settings, memory_mb) },
	{ "output_bytes", offsetof(struct settings, output_bytes) },
	{ "code_bytes", offsetof(struct settings, code_bytes) },
	{ "input_bytes", offsetof(struct settings, input_bytes) },
	{ "body_bytes", offsetof(struct settings, body_bytes) },
	{ "body_timeout_ms", offsetof(struct settings, body_timeout_ms) },
	{ "max_timeout_ms", offsetof(struct settings, max_timeout_ms) },
	{ "max_memory_mb", offsetof(struct settings, max_memory_mb) },
	{ "default_quota", offsetof(struct settings, default_quota) },
	{ "quota_window_s", offsetof(struct settings, quota_window_s) },
	{ "audit_code_max_bytes",
	  offsetof(struct settings, audit_code_max_bytes) },
	{ "audit_error_max_bytes",
	  offsetof(struct settings, audit_error_max_bytes) },
	{ "max_concurrent", offsetof(struct settings, max_concurrent) },
	{ "concurrency_wait_ms",
	  offsetof(struct settings, concurrency_wait_ms) },
	{ "max_concurrent_per_identity",
	  offsetof(struct settings, max_concurrent_per_identity) },
	{ "anon_ipv6_prefix", offsetof(struct settings, anon_ipv6_prefix) },
	{ "trusted_proxies", (size_t)-1 },
	{ "anonymous", (size_t)-1 },
	{ "audit_code", (size_t)-1 },
	{ "price_gb_s", (size_t)-1 },
	{ "price_invocation", (size_t)-1 },
	{ "allowed_modules", (size_t)-1 },
	{ "mcp_allowed_origins", (size_t)-1 },
	{ "metrics_allow", (size_t)-1 },
};

/* Applies key=value to the defaults; checks that the result is want. */
static void apply_is_at(const char *file, int line, const char *key,
			const char *value, const struct settings *want)
{
	struct settings s;

	settings_defaults(&s);
	if (settings_apply(&s, key, value) != 0)
		unit_fail(file, line, "settings_apply(%s, \"%s\") refused",
			  key, value);
	else if (memcmp(&s, want, sizeof(s)) != 0)
		unit_fail(file, line, "settings_apply(%s, \"%s\") set another "
			  "field, or another value", key, value);
}

#define APPLY_IS(key, value, want)					\
	apply_is_at(__FILE__, __LINE__, (key), (value), (want))

void test_settings_apply(void)
{
	const size_t nkf = sizeof(key_fields) / sizeof(key_fields[0]);
	struct settings def, want;
	size_t n = 0;
	const struct setting_def *t = settings_table(&n);

	settings_defaults(&def);
	/* Every key of the table changes its own field, and only it. */
	for (size_t i = 0; i < n; i++) {
		const struct key_field *kf = NULL;
		char val[32];
		long v;

		for (size_t k = 0; k < nkf; k++)
			if (strcmp(key_fields[k].key, t[i].key) == 0)
				kf = &key_fields[k];
		if (!kf) {
			unit_fail(__FILE__, __LINE__, "setting %s: not in this "
				  "test's table", t[i].key);
			continue;
		}
		if (kf->off == (size_t)-1)
			continue;
		/* A value other than the default: a bound. */
		v = t[i].min;
		if (strtol(t[i].def, NULL, 10) == v)
			v = t[i].max;
		snprintf(val, sizeof(val), "%ld", v);
		memcpy(&want, &def, sizeof(want));
		*(long *)(void *)((char *)&want + kf->off) = v;
		APPLY_IS(t[i].key, val, &want);
	}
	for (size_t k = 0; k < nkf; k++)
		CHECKF(setting_find(key_fields[k].key) != NULL,
		       "%s is not a setting", key_fields[k].key);

	memcpy(&want, &def, sizeof(want));
	want.anonymous = 0;
	APPLY_IS("anonymous", "deny", &want);
	want.anonymous = 1;
	APPLY_IS("anonymous", "allow", &want);
	memcpy(&want, &def, sizeof(want));
	want.audit_code = AUDIT_CODE_HASH;
	APPLY_IS("audit_code", "hash", &want);
	want.audit_code = AUDIT_CODE_NONE;
	APPLY_IS("audit_code", "none", &want);
	want.audit_code = AUDIT_CODE_FULL;
	APPLY_IS("audit_code", "full", &want);
	memcpy(&want, &def, sizeof(want));
	want.price_gb_s = 1.5;
	APPLY_IS("price_gb_s", "1.5", &want);
	memcpy(&want, &def, sizeof(want));
	want.price_invocation = 0.25;
	APPLY_IS("price_invocation", "0.25", &want);
	memcpy(&want, &def, sizeof(want));
	snprintf(want.mcp_allowed_origins, sizeof(want.mcp_allowed_origins),
		 "https://a.example http://localhost:3000");
	APPLY_IS("mcp_allowed_origins", "https://a.example http://localhost:3000",
		 &want);
	CHECK(settings_apply(&want, "mcp_allowed_origins", "a\tb") != 0);
	memcpy(&want, &def, sizeof(want));
	snprintf(want.metrics_allow, sizeof(want.metrics_allow), "%s",
		 "10.0.0.0/8, ::1");
	APPLY_IS("metrics_allow", "10.0.0.0/8, ::1", &want);
	CHECK(settings_apply(&want, "metrics_allow", "10.0.0.0/33") != 0);
	CHECK(strcmp(want.metrics_allow, "10.0.0.0/8, ::1") == 0);
	memcpy(&want, &def, sizeof(want));
	APPLY_IS("metrics_allow", "", &want);
	/* 0 concurrent sandboxes means twice the cores. */
	memcpy(&want, &def, sizeof(want));
	want.max_concurrent = 7;
	APPLY_IS("max_concurrent", "7", &want);
	want.max_concurrent = def.max_concurrent;
	APPLY_IS("max_concurrent", "0", &want);
	memcpy(&want, &def, sizeof(want));
	want.cpu_ms = 1500;
	APPLY_IS("cpu_ms", "1500", &want);
	/* The default profile is the seed's; the others are masks of it. */
	CHECK(def.modules == profile_seed());
	memcpy(&want, &def, sizeof(want));
	want.modules = profile_compute();
	APPLY_IS("allowed_modules", "compute", &want);
	want.modules = ((uint64_t)1 << profile_bit("heapq", 5)) |
		       ((uint64_t)1 << profile_bit("math", 4));
	APPLY_IS("allowed_modules", "heapq, math", &want);
}

void test_settings_apply_refused(void)
{
	static const char *const bad[][2] = {
		{ "no_such_setting", "1" }, { "", "1" },
		{ "TIMEOUT_MS", "1000" },
		{ "timeout_ms", "abc" }, { "timeout_ms", "99" },
		{ "timeout_ms", "" }, { "anonymous", "maybe" },
		{ "audit_code", "FULL" }, { "price_gb_s", "-1" },
		{ "max_concurrent", "-1" },
		{ "allowed_modules", "os" }, { "allowed_modules", "" },
		{ "allowed_modules", "math,os" }, { "allowed_modules", "math," },
		{ "allowed_modules", "seed,compute" },
		{ "allowed_modules", "Math" }, { "allowed_modules", "types" },
	};
	struct settings s, before;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* Whatever the struct held, it still holds. */
		memset(&s, 0x5a, sizeof(s));
		memcpy(&before, &s, sizeof(s));
		CHECKF(settings_apply(&s, bad[i][0], bad[i][1]) == -1,
		       "settings_apply(\"%s\", \"%s\") accepted", bad[i][0],
		       bad[i][1]);
		CHECKF(memcmp(&s, &before, sizeof(s)) == 0,
		       "settings_apply(\"%s\", \"%s\") changed the settings",
		       bad[i][0], bad[i][1]);
		settings_defaults(&s);
		memcpy(&before, &s, sizeof(s));
		CHECK_EQ(settings_apply(&s, bad[i][0], bad[i][1]), -1);
		CHECK(memcmp(&s, &before, sizeof(s)) == 0);
	}
}

/*
 * store.c: opening and migrating
 */

/* The sections of the compiled-in schema are "-- migrate 1" to N, in
 * order, and N is the version this build writes. */
void test_store_schema_sections(void)
{
	const char *p = pyexec_schema_sql;
	int want = 1;

	while ((p = strstr(p, "\n-- migrate ")) != NULL) {
		char *end;
		long v = strtol(p + 12, &end, 10);

		CHECKF(v == want && *end == '\n', "section %ld where %d was "
		       "expected", v, want);
		want++;
		p = end;
	}
	CHECK(want > 1);
	CHECK_EQ(store_schema_version(), want - 1);
}

void test_store_open_new(void)
{
	struct tmp t;
	struct store *s, *s2;
	struct stat st;
	sqlite3 *db;
	char buf[64];

	if (tmp_make(&t) != 0)
		return;
	CHECK(stat(t.path, &st) != 0 && errno == ENOENT);
	s = OPEN_RW(t.path);
	CHECK(s != NULL);
	CHECK(stat(t.path, &st) == 0 && S_ISREG(st.st_mode));
	/* A second connection while the first is open, then a reopen: the
	 * migration is done once and finds nothing to do after. */
	s2 = OPEN_RW(t.path);
	CHECK(s2 != NULL);
	store_close(s2);
	store_close(s);
	s = OPEN_RW(t.path);
	CHECK(s != NULL);
	store_close(s);

	db = RAW_OPEN(t.path);
	CHECK_EQ(RAW_INT(db, "PRAGMA user_version", NULL),
		 store_schema_version());
	RAW_TEXT(db, "PRAGMA journal_mode", NULL, buf);
	CHECK_STR(buf, "wal");
	CHECK_EQ(RAW_INT(db, "SELECT count(*) FROM sqlite_master WHERE "
			 "type = 'table' AND name IN ('users', 'settings', "
			 "'runs')", NULL), 3);
	CHECK_EQ(RAW_INT(db, "SELECT count(*) FROM sqlite_master WHERE "
			 "type = 'view' AND name = 'runs_view'", NULL), 1);
	CHECK_EQ(RAW_INT(db, "SELECT count(*) FROM settings", NULL), 0);
	CHECK_EQ(RAW_INT(db, "SELECT count(*) FROM users", NULL), 0);
	sqlite3_close(db);
	tmp_clean(&t);
}

void test_store_open_schema_mismatch(void)
{
	struct tmp t;
	struct store *s = NULL;
	char want[300], old[160], sql[64];
	int v = store_schema_version();
	sqlite3 *db;

	if (tmp_make(&t) != 0)
		return;
	s = OPEN_RW(t.path);
	store_close(s);
	db = RAW_OPEN(t.path);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
	RAW_EXEC(db, sql);

	/* A newer database: neither migrated back nor used. */
	s = NULL;
	CHECK_EQ(store_open(&s, t.path, STORE_RW), STORE_UNAVAILABLE);
	snprintf(want, sizeof(want), "database schema %d is newer than this "
		 "program's (%d)", v + 1, v);
	CHECK_STR(store_error(s), want);
	store_close(s);
	s = NULL;
	CHECK_EQ(store_open(&s, t.path, STORE_RO), STORE_UNAVAILABLE);
	snprintf(want, sizeof(want), "database '%s' has schema %d, this "
		 "program %d: run pyexec-admin init", t.path, v + 1, v);
	CHECK_STR(store_error(s), want);
	store_close(s);
	CHECK_EQ(RAW_INT(db, "PRAGMA user_version", NULL), v + 1);
	sqlite3_close(db);

	/* An older one (here: version 0, someone else's table) is migrated
	 * when writable, refused when read-only. */
	tmp_file(&t, "old.db", old);
	db = NULL;
	if (sqlite3_open_v2(old, &db, SQLITE_OPEN_READWRITE |
			    SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
		unit_fail(__FILE__, __LINE__, "create %s", old);
	RAW_EXEC(db, "CREATE TABLE other (x); INSERT INTO other VALUES (1)");
	sqlite3_close(db);
	s = NULL;
	CHECK_EQ(store_open(&s, old, STORE_RO), STORE_UNAVAILABLE);
	CHECK_CONTAINS(store_error(s), "has schema 0");
	CHECK_CONTAINS(store_error(s), "run pyexec-admin init");
	store_close(s);
	s = OPEN_RW(old);
	store_close(s);
	db = RAW_OPEN(old);
	CHECK_EQ(RAW_INT(db, "PRAGMA user_version", NULL), v);
	CHECK_EQ(RAW_INT(db, "SELECT count(*) FROM sqlite_master WHERE "
			 "type = 'table' AND name IN ('users', 'settings', "
			 "'runs', 'other')", NULL), 4);
	CHECK_EQ(RAW_INT(db, "SELECT x FROM other", NULL), 1);
	sqlite3_close(db);
	tmp_clean(&t);
}

void test_store_open_ro(void)
{
	struct tmp t;
	struct store *s = NULL;
	struct settings st;
	struct stat sb;

	if (tmp_make(&t) != 0)
		return;
	/* Read-only never creates. */
	CHECK_EQ(store_open(&s, t.path, STORE_RO), STORE_UNAVAILABLE);
	CHECK_CONTAINS(store_error(s), "cannot open database");
	CHECK_CONTAINS(store_error(s), t.path);
	store_close(s);
	CHECK(stat(t.path, &sb) != 0 && errno == ENOENT);

	s = OPEN_RW(t.path);
	if (s)
		CHECK_EQ(store_setting_set(s, "timeout_ms", "4000"), STORE_OK);
	store_close(s);
	s = open_at(__FILE__, __LINE__, t.path, STORE_RO);
	if (s) {
		CHECK_EQ(store_settings_load(s, &st), STORE_OK);
		CHECK_EQ(st.timeout_ms, 4000);
		/* Writes through a read-only store fail as unavailable. */
		CHECK_EQ(store_setting_set(s, "timeout_ms", "5000"),
			 STORE_UNAVAILABLE);
		CHECK_CONTAINS(store_error(s), "readonly");
		CHECK_EQ(store_settings_load(s, &st), STORE_OK);
		CHECK_EQ(st.timeout_ms, 4000);
	}
	store_close(s);
	CHECK_STR(store_error(NULL), "out of memory");
	tmp_clean(&t);
}

static void child_exit(int code)
{
	fflush(stdout);
	_exit(code);
}

/* In a child running as NOBODY: a writable directory works, one that is
 * not gives STORE_UNAVAILABLE and creates nothing. Exits 0 when so. */
static void unwritable_child(const char *rw_db, const char *ro_db,
			     const char *ro_existing)
{
	struct store *s = NULL;
	int rc;

	if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 ||
			       setuid(NOBODY) != 0)) {
		printf("setuid(%d): %s\n", NOBODY, strerror(errno));
		child_exit(10);
	}
	rc = store_open(&s, rw_db, STORE_RW);
	if (rc != STORE_OK) {
		printf("writable directory: %d %s\n", rc, store_error(s));
		child_exit(11);
	}
	store_close(s);
	s = NULL;
	rc = store_open(&s, ro_db, STORE_RW);
	if (rc != STORE_UNAVAILABLE ||
	    !strstr(store_error(s), "cannot open database")) {
		printf("read-only directory: %d %s\n", rc, store_error(s));
		child_exit(12);
	}
	store_close(s);
	/* A database there that this user may write, but whose directory
	 * takes no journal: usable for nothing, so unavailable. */
	s = NULL;
	rc = store_open(&s, ro_existing, STORE_RW);
	if (rc == STORE_OK) {
		rc = store_setting_set(s, "timeout_ms", "1000");
		if (rc == STORE_OK) {
			printf("wrote a database in a read-only directory\n");
			child_exit(13);
		}
	}
	if (rc != STORE_UNAVAILABLE) {
		printf("existing database, read-only directory: %d %s\n", rc,
		       store_error(s));
		child_exit(14);
	}
	store_close(s);
	fflush(stdout);
	child_exit(0);
}

void test_store_open_unwritable_dir(void)
{
	struct tmp t;
	char rw[160], ro[160], rw_db[160], ro_db[160], ro_existing[160];
	struct store *s;
	struct stat sb;
	int status = -1;
	pid_t pid;

	if (tmp_make(&t) != 0)
		return;
	tmp_file(&t, "rw", rw);
	tmp_file(&t, "ro", ro);
	tmp_file(&t, "rw/pyexec.db", rw_db);
	tmp_file(&t, "ro/pyexec.db", ro_db);
	tmp_file(&t, "ro/existing.db", ro_existing);
	CHECK(chmod(t.dir, 0755) == 0);
	CHECK(mkdir(rw, 0777) == 0 && chmod(rw, 0777) == 0);
	CHECK(mkdir(ro, 0755) == 0);
	s = OPEN_RW(ro_existing);
	store_close(s);
	CHECK(chmod(ro_existing, 0666) == 0);
	CHECK(chmod(ro, 0555) == 0);

	fflush(stdout);
	pid = fork();
	if (pid == 0)
		unwritable_child(rw_db, ro_db, ro_existing);
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "child status %#x", status);
	CHECK(stat(rw_db, &sb) == 0);
	CHECK(stat(ro_db, &sb) != 0 && errno == ENOENT);
	tmp_clean(&t);
}

/*
 * Waits for the start, then opens and reads the database a few times (the
 * first open races the others' migrations; the later ones are readers
 * while those finish). Exits 0 when every open worked.
 */
static void concurrent_child(int go, const char *path)
{
	struct store *s = NULL;
	struct settings st;
	char b;
	int rc = STORE_OK;

	if (read(go, &b, 1) < 0)
		_exit(2);
	for (int i = 0; i < 5 && rc == STORE_OK; i++) {
		s = NULL;
		rc = store_open(&s, path, STORE_RW);
		if (rc == STORE_OK)
			rc = store_settings_load(s, &st);
		if (rc != STORE_OK) {
			printf("pid %d, open %d: %d %s\n", (int)getpid(), i,
			       rc, store_error(s));
			fflush(stdout);
		}
		store_close(s);
	}
	_exit(rc == STORE_OK ? 0 : 1);
}

void test_store_open_concurrent(void)
{
	enum { ROUNDS = 10, CHILDREN = 16 };
	struct tmp t;

	if (tmp_make(&t) != 0)
		return;
	for (int round = 0; round < ROUNDS; round++) {
		pid_t pids[CHILDREN];
		int go[2], failed = 0;
		char path[160], name[32], mode[16];
		sqlite3 *db;

		snprintf(name, sizeof(name), "c%d.db", round);
		tmp_file(&t, name, path);
		if (pipe(go) != 0)
			exit(2);
		fflush(stdout);
		for (int i = 0; i < CHILDREN; i++) {
			pids[i] = fork();
			if (pids[i] == 0) {
				close(go[1]);
				concurrent_child(go[0], path);
			}
		}
		close(go[0]);
		close(go[1]);	/* all start at once */
		for (int i = 0; i < CHILDREN; i++) {
			int status = -1;

			if (pids[i] < 0 || waitpid(pids[i], &status, 0) !=
			    pids[i] || !WIFEXITED(status) ||
			    WEXITSTATUS(status) != 0)
				failed++;
		}
		CHECKF(failed == 0, "round %d: %d of %d opens failed", round,
		       failed, CHILDREN);
		db = RAW_OPEN(path);
		CHECK_EQ(RAW_INT(db, "PRAGMA user_version", NULL),
			 store_schema_version());
		RAW_TEXT(db, "PRAGMA journal_mode", NULL, mode);
		CHECK_STR(mode, "wal");
		CHECK_EQ(RAW_INT(db, "SELECT count(*) FROM sqlite_master "
				 "WHERE name IN ('users', 'settings', 'runs', "
				 "'runs_view', 'runs_quota', 'runs_started')",
				 NULL), 6);
		sqlite3_close(db);
	}
	tmp_clean(&t);
}

/*
 * Another process migrates the database while this one waits for the
 * migration lock, then reads from it for a while: this one finds the work
 * done (it must not apply the schema again) and waits for the reader.
 */
static void migrating_reader_child(const char *path, int ready)
{
	sqlite3 *db = NULL;
	char sql[48];
	int ok;

	ok = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
			     SQLITE_OPEN_CREATE, NULL) == SQLITE_OK;
	sqlite3_busy_timeout(db, 5000);
	ok = ok && sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL,
				NULL) == SQLITE_OK;
	if (write(ready, "r", 1) != 1)
		ok = 0;
	sleep_ms(300);		/* the parent reads version 0, then waits */
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
		 store_schema_version());
	ok = ok && sqlite3_exec(db, pyexec_schema_sql, NULL, NULL,
				NULL) == SQLITE_OK &&
	     sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK &&
	     sqlite3_exec(db, "COMMIT; BEGIN; SELECT count(*) FROM users",
			  NULL, NULL, NULL) == SQLITE_OK;
	if (!ok)
		printf("migrating reader: %s\n", sqlite3_errmsg(db));
	fflush(stdout);
	sleep_ms(1000);		/* a reader, while the parent goes on */
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	_exit(ok ? 0 : 1);
}

void test_store_open_migrated_meanwhile(void)
{
	struct tmp t;
	struct store *s = NULL;
	int ready[2], status = -1, rc;
	char b, mode[16];
	sqlite3 *db;
	pid_t pid;

	if (tmp_make(&t) != 0)
		return;
	store_first();
	if (pipe(ready) != 0)
		exit(2);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(ready[0]);
		migrating_reader_child(t.path, ready[1]);
	}
	close(ready[1]);
	if (pid < 0 || read(ready[0], &b, 1) != 1) {
		unit_fail(__FILE__, __LINE__, "the child did not start");
	} else {
		setenv("PYEXEC_DB_BUSY_MS", "4000", 1);
		rc = store_open(&s, t.path, STORE_RW);
		unsetenv("PYEXEC_DB_BUSY_MS");
		CHECKF(rc == STORE_OK, "store_open: %d %s", rc,
		       store_error(s));
		store_close(s);
	}
	close(ready[0]);
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "child status %#x", status);
	db = RAW_OPEN(t.path);
	CHECK_EQ(RAW_INT(db, "PRAGMA user_version", NULL),
		 store_schema_version());
	RAW_TEXT(db, "PRAGMA journal_mode", NULL, mode);
	CHECK_STR(mode, "wal");
	sqlite3_close(db);
	tmp_clean(&t);
}

/*
 * A VFS that is the unix one, except that the main database file tells
 * when it is unlocked after an exclusive lock (a commit): the moment
 * between the migration's commit and the switch to WAL, made to order.
 */
static struct {
	sqlite3_vfs vfs;
	sqlite3_vfs *base;		/* the unix VFS */
	sqlite3_io_methods io;		/* unix's, with the two below */
	const sqlite3_io_methods *orig;
	int armed, exclusive;
	void (*on_commit)(void);
} hook;

static int hook_lock(sqlite3_file *f, int level)
{
	int rc = hook.orig->xLock(f, level);

	if (rc == SQLITE_OK && level == SQLITE_LOCK_EXCLUSIVE)
		hook.exclusive = 1;
	return rc;
}

static int hook_unlock(sqlite3_file *f, int level)
{
	int rc = hook.orig->xUnlock(f, level);

	if (hook.armed && hook.exclusive) {
		hook.armed = 0;
		hook.on_commit();
	}
	return rc;
}

static int hook_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
		     int flags, int *out)
{
	int rc = hook.base->xOpen(hook.base, name, f, flags, out);

	(void)vfs;
	if (rc != SQLITE_OK || !(flags & SQLITE_OPEN_MAIN_DB) || !f->pMethods)
		return rc;
	if (!hook.orig) {
		hook.orig = f->pMethods;
		hook.io = *f->pMethods;
		hook.io.xLock = hook_lock;
		hook.io.xUnlock = hook_unlock;
	}
	if (f->pMethods == hook.orig)
		f->pMethods = &hook.io;
	return rc;
}

static int locker_go[2], locker_ack[2];

/* In the parent, at the commit: a child takes the write lock, as another
 * request's store_run_begin would, before the switch to WAL. */
static void take_write_lock_now(void)
{
	char b = 0;

	if (write(locker_go[1], "g", 1) != 1 ||
	    read(locker_ack[0], &b, 1) != 1 || b != 'y')
		unit_fail(__FILE__, __LINE__, "the locker did not lock");
}

/* The child: on the signal, BEGIN IMMEDIATE, hold it 500 ms. */
static void locker_child(const char *path)
{
	sqlite3 *db = NULL;
	char b;
	int ok;

	if (read(locker_go[0], &b, 1) != 1)
		_exit(2);
	ok = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) ==
	     SQLITE_OK &&
	     sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
	if (write(locker_ack[1], ok ? "y" : "n", 1) != 1)
		_exit(2);
	sleep_ms(500);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	_exit(ok ? 0 : 1);
}

/*
 * The first process migrates a new database; right after its commit,
 * another takes the write lock for a moment. Switching to WAL needs an
 * exclusive lock: store_open must wait for it within the busy timeout, as
 * it waits for every other lock, not fail at once.
 */
void test_store_open_wal_switch_waits(void)
{
	struct tmp t;
	struct store *s = NULL;
	int status = -1, rc;
	int64_t t0, ms;
	char mode[16];
	sqlite3 *db;
	pid_t pid;

	if (tmp_make(&t) != 0)
		return;
	store_first();
	memset(&hook, 0, sizeof(hook));
	hook.base = sqlite3_vfs_find("unix");
	if (!hook.base || pipe(locker_go) != 0 || pipe(locker_ack) != 0) {
		unit_fail(__FILE__, __LINE__, "no unix VFS, or no pipe");
		tmp_clean(&t);
		return;
	}
	hook.vfs = *hook.base;
	hook.vfs.zName = "pyexec-test-hook";
	hook.vfs.xOpen = hook_open;
	hook.on_commit = take_write_lock_now;
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		locker_child(t.path);
	close(locker_go[0]);
	close(locker_ack[1]);

	sqlite3_vfs_register(&hook.vfs, 1);
	hook.armed = 1;
	setenv("PYEXEC_DB_BUSY_MS", "4000", 1);
	t0 = mono_ms();
	rc = store_open(&s, t.path, STORE_RW);
	ms = mono_ms() - t0;
	unsetenv("PYEXEC_DB_BUSY_MS");
	hook.armed = 0;
	CHECK(hook.exclusive);
	CHECKF(rc == STORE_OK, "store_open: %d %s (after %lld ms)", rc,
	       store_error(s), (long long)ms);
	store_close(s);
	sqlite3_vfs_register(hook.base, 1);
	sqlite3_vfs_unregister(&hook.vfs);

	close(locker_go[1]);
	close(locker_ack[0]);
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "locker status %#x", status);
	db = RAW_OPEN(t.path);
	CHECK_EQ(RAW_INT(db, "PRAGMA user_version", NULL),
		 store_schema_version());
	RAW_TEXT(db, "PRAGMA journal_mode", NULL, mode);
	CHECK_STR(mode, "wal");

	/* A database left out of WAL (a switch that failed, an operator's
	 * sqlite3 shell) is switched back by the next open. */
	RAW_TEXT(db, "PRAGMA journal_mode = DELETE", NULL, mode);
	CHECK_STR(mode, "delete");
	sqlite3_close(db);
	s = OPEN_RW(t.path);
	store_close(s);
	db = RAW_OPEN(t.path);
	RAW_TEXT(db, "PRAGMA journal_mode", NULL, mode);
	CHECK_STR(mode, "wal");
	sqlite3_close(db);
	tmp_clean(&t);
}

/* SQLite allocates through the data layer's zeroing allocator: SQLite's
 * own rounds sizes up to 8 bytes, it to 16. Looked at in a child, which
 * may shut SQLite down to read its configuration. */
void test_store_allocator_installed(void)
{
	int status = -1;
	pid_t pid;

	store_first();
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		sqlite3_mem_methods m;
		void *p;

		memset(&m, 0, sizeof(m));
		if (sqlite3_shutdown() != SQLITE_OK ||
		    sqlite3_config(SQLITE_CONFIG_GETMALLOC, &m) != SQLITE_OK)
			_exit(2);
		if (!m.xRoundup || m.xRoundup(1) != 16 || m.xRoundup(24) != 32)
			_exit(3);
		p = m.xMalloc(100);
		if (!p || m.xSize(p) < 100)
			_exit(4);
		m.xFree(p);
		_exit(0);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "child status %#x (3: not the zeroing allocator)", status);
}

void test_store_default_path(void)
{
	const char *old = getenv("PYEXEC_DB");
	char *saved = old ? strdup(old) : NULL;

	setenv("PYEXEC_DB", "/srv/x.db", 1);
	CHECK_STR(store_default_path(), "/srv/x.db");
	setenv("PYEXEC_DB", "", 1);
	CHECK_STR(store_default_path(), "/var/lib/pyexec/pyexec.db");
	unsetenv("PYEXEC_DB");
	CHECK_STR(store_default_path(), "/var/lib/pyexec/pyexec.db");
	if (saved)
		setenv("PYEXEC_DB", saved, 1);
	free(saved);
}

/*
 * store.c: settings
 */

void test_store_settings(void)
{
	struct tmp t;
	struct store *s;
	struct settings got, want;
	sqlite3 *db;
	char buf[64];

	if (tmp_make(&t) != 0)
		return;
	s = OPEN_RW(t.path);
	if (!s) {
		tmp_clean(&t);
		return;
	}
	CHECK_EQ(store_setting_set(s, "timeout_ms", "5000"), STORE_OK);
	CHECK_EQ(store_setting_set(s, "timeout_ms", "6000"), STORE_OK);
	CHECK_EQ(store_setting_set(s, "anonymous", "deny"), STORE_OK);
	CHECK_EQ(store_setting_set(s, "audit_code", "hash"), STORE_OK);
	CHECK_EQ(store_setting_set(s, "price_gb_s", "0.25"), STORE_OK);
	CHECK_EQ(store_setting_set(s, "default_quota", "-1"), STORE_OK);

	/* Refused, with the reason, and not written. */
	CHECK_EQ(store_setting_set(s, "timeout_ms", "99"), STORE_INVALID);
	CHECK_STR(store_error(s), "timeout_ms must be an integer from 100 to "
		  "900000");
	CHECK_EQ(store_setting_set(s, "memory_mb", "lots"), STORE_INVALID);
	CHECK_STR(store_error(s), "memory_mb must be an integer from 32 to "
		  "65536");
	CHECK_EQ(store_setting_set(s, "anonymous", "maybe"), STORE_INVALID);
	CHECK_STR(store_error(s), "anonymous must be one of allow|deny");
	CHECK_EQ(store_setting_set(s, "price_invocation", "-1"),
		 STORE_INVALID);
	CHECK_CONTAINS(store_error(s), "price_invocation must be a "
		       "non-negative number");
	CHECK_EQ(store_setting_set(s, "nope", "1"), STORE_INVALID);
	CHECK_STR(store_error(s), "unknown setting 'nope'");

	settings_defaults(&want);
	want.timeout_ms = 6000;
	want.anonymous = 0;
	want.audit_code = AUDIT_CODE_HASH;
	want.price_gb_s = 0.25;
	want.default_quota = -1;
	memset(&got, 0x5a, sizeof(got));
	CHECK_EQ(store_settings_load(s, &got), STORE_OK);
	CHECK(memcmp(&got, &want, sizeof(got)) == 0);
	store_close(s);

	/* Persisted, as the text given. */
	db = RAW_OPEN(t.path);
	CHECK_EQ(RAW_INT(db, "SELECT count(*) FROM settings", NULL), 5);
	RAW_TEXT(db, "SELECT value FROM settings WHERE key = ?1", "timeout_ms",
		 buf);
	CHECK_STR(buf, "6000");
	RAW_TEXT(db, "SELECT value FROM settings WHERE key = ?1", "anonymous",
		 buf);
	CHECK_STR(buf, "deny");
	sqlite3_close(db);
	s = OPEN_RW(t.path);
	if (!s) {
		tmp_clean(&t);
		return;
	}
	memset(&got, 0, sizeof(got));
	CHECK_EQ(store_settings_load(s, &got), STORE_OK);
	CHECK(memcmp(&got, &want, sizeof(got)) == 0);

	/* Unset: the default again; unsetting what is not set is fine. */
	CHECK_EQ(store_setting_unset(s, "timeout_ms"), STORE_OK);
	CHECK_EQ(store_setting_unset(s, "timeout_ms"), STORE_OK);
	CHECK_EQ(store_setting_unset(s, "memory_mb"), STORE_OK);
	CHECK_EQ(store_setting_unset(s, "nope"), STORE_INVALID);
	CHECK_STR(store_error(s), "unknown setting 'nope'");
	want.timeout_ms = 30000;
	CHECK_EQ(store_settings_load(s, &got), STORE_OK);
	CHECK(memcmp(&got, &want, sizeof(got)) == 0);
	store_close(s);
	tmp_clean(&t);
}

/* Values put in the table by hand that do not validate keep the
 * default; the others apply. */
void test_store_settings_invalid_rows(void)
{
	struct tmp t;
	struct store *s;
	struct settings got, want;
	sqlite3 *db;

	if (tmp_make(&t) != 0)
		return;
	s = OPEN_RW(t.path);
	db = RAW_OPEN(t.path);
	RAW_EXEC(db, "INSERT INTO settings (key, value) VALUES "
		 "('timeout_ms', 'abc'), ('memory_mb', '1'), "
		 "('anonymous', 'maybe'), ('bogus', '1'), "
		 "('code_bytes', '(1024 * 1024)'), ('price_gb_s', '-1'), "
		 "('audit_code', ''), ('quota_window_s', ' 60'), "
		 "('output_bytes', '4096'), ('audit_error_max_bytes', '10')");
	sqlite3_close(db);
	settings_defaults(&want);
	want.output_bytes = 4096;
	want.audit_error_max_bytes = 10;
	memset(&got, 0x5a, sizeof(got));
	if (s) {
		CHECK_EQ(store_settings_load(s, &got), STORE_OK);
		CHECK(memcmp(&got, &want, sizeof(got)) == 0);
		CHECK_EQ(got.timeout_ms, 30000);
		CHECK_EQ(got.memory_mb, 512);
		CHECK_EQ(got.anonymous, 1);
		CHECK_EQ(got.output_bytes, 4096);
	}
	store_close(s);
	tmp_clean(&t);
}

/*
 * users.c
 */

static int64_t counted_users(const char *path)
{
	sqlite3 *db = RAW_OPEN(path);
	long long n = RAW_INT(db, "SELECT count(*) FROM users", NULL);

	sqlite3_close(db);
	return n;
}

void test_users_add_and_find(void)
{
	struct tmp t;
	struct store *s;
	struct user u, v;
	char tok[TOKEN_LEN + 1], tok2[TOKEN_LEN + 1], bad[TOKEN_LEN + 2];
	char hash[65], buf[80];
	int64_t before, after;
	sqlite3 *db;

	if (tmp_make(&t) != 0)
		return;
	s = OPEN_RW(t.path);
	if (!s) {
		tmp_clean(&t);
		return;
	}
	before = now_ms();
	CHECK_EQ(store_user_add(s, "alice", 0, -2, tok), STORE_OK);
	after = now_ms();
	CHECK_EQ(strlen(tok), 68);
	CHECK(memcmp(tok, "pyx_", 4) == 0);
	CHECK(token_wellformed(tok));
	CHECK_EQ(store_user_add(s, "root", 1, -1, tok2), STORE_OK);
	CHECK(strcmp(tok, tok2) != 0);

	memset(&u, 0x5a, sizeof(u));
	CHECK_EQ(store_user_by_token(s, tok, &u), STORE_OK);
	CHECK_STR(u.name, "alice");
	CHECK(u.id > 0);
	CHECK_EQ(u.is_admin, 0);
	CHECK_EQ(u.disabled, 0);
	CHECK_EQ(u.quota, -2);
	CHECK_EQ(u.timeout_ms, 0);
	CHECK_EQ(u.memory_mb, 0);
	CHECK_EQ(u.quota_reset_ms, 0);
	CHECK(u.created_ms >= before && u.created_ms <= after);
	CHECK_EQ(store_user_by_name(s, "alice", &v), STORE_OK);
	CHECK_EQ(v.id, u.id);
	CHECK_EQ(v.created_ms, u.created_ms);
	CHECK_EQ(store_user_by_token(s, tok2, &v), STORE_OK);
	CHECK_STR(v.name, "root");
	CHECK_EQ(v.is_admin, 1);
	CHECK_EQ(v.quota, -1);
	CHECK(v.id != u.id);

	/* Any other token, well formed or not, is no one's. */
	memcpy(bad, tok, sizeof(tok));
	bad[67] = bad[67] == '0' ? '1' : '0';
	CHECK_EQ(store_user_by_token(s, bad, &v), STORE_NOTFOUND);
	memcpy(bad, tok, sizeof(tok));
	for (int i = 4; i < 68; i++)
		if (bad[i] >= 'a' && bad[i] <= 'f')
			bad[i] = (char)(bad[i] - 'a' + 'A');
	if (strcmp(bad, tok) != 0)
		CHECK_EQ(store_user_by_token(s, bad, &v), STORE_NOTFOUND);
	memcpy(bad, tok, sizeof(tok));
	bad[67] = 0;
	CHECK_EQ(store_user_by_token(s, bad, &v), STORE_NOTFOUND);
	memcpy(bad, tok, 68);
	memcpy(bad + 68, "0", 2);
	CHECK_EQ(store_user_by_token(s, bad, &v), STORE_NOTFOUND);
	memcpy(bad, tok, sizeof(tok));
	memcpy(bad, "pyy_", 4);
	CHECK_EQ(store_user_by_token(s, bad, &v), STORE_NOTFOUND);
	CHECK_EQ(store_user_by_token(s, "", &v), STORE_NOTFOUND);
	CHECK_EQ(store_user_by_token(s, "pyx_", &v), STORE_NOTFOUND);
	CHECK_EQ(store_user_by_name(s, "bob", &v), STORE_NOTFOUND);
	CHECK_EQ(store_user_by_name(s, "Alice", &v), STORE_NOTFOUND);
	store_close(s);

	/* The row holds the token's SHA-256. */
	db = RAW_OPEN(t.path);
	CHECK_EQ(sha256_hex(tok, 68, hash), 0);
	RAW_TEXT(db, "SELECT token_hash FROM users WHERE name = ?1", "alice",
		 buf);
	CHECK_STR(buf, hash);
	sqlite3_close(db);
	tmp_clean(&t);
}

/* The token is nowhere in the database's files; its hash is (which shows
 * the search can find what is there). */
void test_users_token_not_stored(void)
{
	static const char *const names[] = { "u1", "u2", "u3" };
	struct tmp t;
	struct store *s;
	char tok[3][TOKEN_LEN + 1], hash[65], path[160];
	static const char *const suffixes[] = { "", "-wal", "-shm",
						"-journal" };
	char *files[4];
	size_t lens[4];

	if (tmp_make(&t) != 0)
		return;
	s = OPEN_RW(t.path);
	if (!s) {
		tmp_clean(&t);
		return;
	}
	for (int i = 0; i < 3; i++)
		CHECK_EQ(store_user_add(s, names[i], i == 0, -2, tok[i]),
			 STORE_OK);
	store_close(s);
	for (int k = 0; k < 4; k++) {
		snprintf(path, sizeof(path), "%s%s", t.path, suffixes[k]);
		files[k] = slurp_file(path, &lens[k]);
	}
	CHECK(files[0] != NULL && lens[0] > 0);
	for (int i = 0; i < 3; i++) {
		int found_hash = 0;

		CHECK_EQ(sha256_hex(tok[i], TOKEN_LEN, hash), 0);
		for (int k = 0; k < 4; k++) {
			if (!files[k])
				continue;
			CHECKF(!memmem(files[k], lens[k], tok[i], TOKEN_LEN),
			       "token of %s in %s%s", names[i], t.path,
			       suffixes[k]);
			CHECKF(!memmem(files[k], lens[k], tok[i] + 4, 64),
			       "token digits of %s in %s%s", names[i], t.path,
			       suffixes[k]);
			CHECKF(!memmem(files[k], lens[k], tok[i] + 4, 32),
			       "half the token of %s in %s%s", names[i],
			       t.path, suffixes[k]);
			if (memmem(files[k], lens[k], hash, 64))
				found_hash = 1;
		}
		CHECKF(found_hash, "hash of %s not found", names[i]);
	}
	for (int k = 0; k < 4; k++)
		free(files[k]);
	tmp_clean(&t);
}

void test_users_names(void)
{
	static const char *const good[] = {
		"a", "A9", "a.b_c@d-e", "x@example.org", "0",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	static const char *const bad[] = {
		"", "has space", "a/b", "../x", "a\tb", "a'b", "a\"b",
		"\xC3\xA9t\xC3\xA9", "a*", "a?", "a[b]", "a:b", " a", "a ",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	static const char zero[TOKEN_LEN + 1];
	struct tmp t;
	struct store *s;
	struct user u;
	char tok[TOKEN_LEN + 1], want[200];

	CHECK_EQ(strlen(good[5]), 64);
	CHECK_EQ(strlen(bad[14]), 65);
	if (tmp_make(&t) != 0)
		return;
	s = OPEN_RW(t.path);
	if (!s) {
		tmp_clean(&t);
		return;
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CHECKF(store_user_add(s, good[i], 0, -2, tok) == STORE_OK,
		       "\"%s\" refused: %s", good[i], store_error(s));
		CHECKF(store_user_by_name(s, good[i], &u) == STORE_OK &&
		       strcmp(u.name, good[i]) == 0, "\"%s\" not found",
		       good[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc;

		memset(tok, 'x', sizeof(tok));
		rc = store_user_add(s, bad[i], 0, -2, tok);
		CHECKF(rc == STORE_INVALID, "\"%s\": %d, expected "
		       "STORE_INVALID", bad[i], rc);
		snprintf(want, sizeof(want), "invalid user name '%s' (1-64 "
			 "of A-Z a-z 0-9 . _ @ -)", bad[i]);
		CHECK_STR(store_error(s), want);
		/* No token is handed out for a user that does not exist. */
		CHECKF(memcmp(tok, zero, sizeof(tok)) == 0,
		       "token left for \"%s\"", bad[i]);
	}
	/* A name taken. */
	memset(tok, 'x', sizeof(tok));
	CHECK_EQ(store_user_add(s, "a", 1, 5, tok), STORE_CONFLICT);
	CHECK_STR(store_error(s), "user 'a' already exists");
	CHECK(memcmp(tok, zero, sizeof(tok)) == 0);
	CHECK_EQ(store_user_by_name(s, "a", &u), STORE_OK);
	CHECK_EQ(u.is_admin, 0);
	CHECK_EQ(u.quota, -2);
	store_close(s);
	CHECK_EQ(counted_users(t.path), sizeof(good) / sizeof(good[0]));
	tmp_clean(&t);
}

void test_users_quota(void)
{
	static const struct {
		const char *name;
		long quota;
	} cases[] = {
		{ "q_default", -2 }, { "q_unlimited", -1 }, { "q_zero", 0 },
		{ "q_five", 5 }, { "q_big", 1000000000 },
	};
	struct tmp t;
	struct store *s;
	struct user u;
	char tok[TOKEN_LEN + 1];
	sqlite3 *db;

	if (tmp_make(&t) != 0)
		return;
	s = OPEN_RW(t.path);
	if (!s) {
		tmp_clean(&t);
		return;
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_EQ(store_user_add(s, cases[i].name, 0, cases[i].quota,
					tok), STORE_OK);
		CHECK_EQ(store_user_by_token(s, tok, &u), STORE_OK);
		CHECK_STR(u.name, cases[i].name);
		CHECK_EQ(u.quota, cases[i].quota);
	}
	store_close(s);
	/* The default is no value at all, so that it follows the setting. */
	db = RAW_OPEN(t.path);
	CHECK_EQ(RAW_INT(db, "SELECT quota IS NULL FROM users WHERE name = ?1",
			 "q_default"), 1);
	CHECK_EQ(RAW_INT(db, "SELECT quota FROM users WHERE name = ?1",
			 "q_unlimited"), -1);
	CHECK_EQ(RAW_INT(db, "SELECT quota FROM users WHERE name = ?1",
			 "q_zero"), 0);
	sqlite3_close(db);
	tmp_clean(&t);
}

/*
 * identity.c, on users of a real database
 */

static int ident(struct store *s, const struct settings *cfg,
		 const char *header, const char *body_token,
		 struct identity *id, struct http_error *e)
{
	if (header)
		setenv("HTTP_AUTHORIZATION", header, 1);
	else
		unsetenv("HTTP_AUTHORIZATION");
	memset(e, 0, sizeof(*e));
	return identify(s, cfg, body_token, id, e);
}

void test_identity_users(void)
{
	struct tmp t;
	struct store *s;
	struct settings cfg;
	struct identity id;
	struct http_error e;
	char alice[TOKEN_LEN + 1], root[TOKEN_LEN + 1], bob[TOKEN_LEN + 1];
	char hdr[100];
	sqlite3 *db;

	if (tmp_make(&t) != 0)
		return;
	s = OPEN_RW(t.path);
	if (!s) {
		tmp_clean(&t);
		return;
	}
	settings_defaults(&cfg);
	CHECK_EQ(store_user_add(s, "alice", 0, -2, alice), STORE_OK);
	CHECK_EQ(store_user_add(s, "root", 1, 3, root), STORE_OK);
	CHECK_EQ(store_user_add(s, "bob", 0, 3, bob), STORE_OK);
	setenv("REMOTE_ADDR", "192.0.2.7", 1);

	/* Anonymous, while allowed. */
	CHECK_EQ(ident(s, &cfg, NULL, NULL, &id, &e), 0);
	CHECK_STR(id.key, "anon:192.0.2.7");
	CHECK_EQ(id.is_user, 0);
	CHECK_EQ(id.quota, 10);
	cfg.anonymous = 0;
	CHECK_EQ(ident(s, &cfg, NULL, NULL, &id, &e), -1);
	CHECK_EQ(e.status, 401);
	CHECK_STR(e.msg, "a token is required");
	cfg.anonymous = 1;

	/* A user by the body's token, or the header's. */
	CHECK_EQ(ident(s, &cfg, NULL, alice, &id, &e), 0);
	CHECK_EQ(id.is_user, 1);
	CHECK_STR(id.key, "user:alice");
	CHECK_STR(id.user.name, "alice");
	CHECK_EQ(id.quota, 10);
	CHECK_EQ(id.timeout_ms, 30000);
	CHECK_EQ(id.cpu_ms, 30000);
	CHECK_EQ(id.memory_mb, 512);
	snprintf(hdr, sizeof(hdr), "Bearer %s", bob);
	CHECK_EQ(ident(s, &cfg, hdr, NULL, &id, &e), 0);
	CHECK_STR(id.key, "user:bob");
	CHECK_EQ(id.quota, 3);
	CHECK_EQ(ident(s, &cfg, hdr, bob, &id, &e), 0);
	CHECK_STR(id.key, "user:bob");
	snprintf(hdr, sizeof(hdr), "bearer   %s", root);
	CHECK_EQ(ident(s, &cfg, hdr, NULL, &id, &e), 0);
	CHECK_STR(id.key, "user:root");
	CHECK_EQ(id.quota, -1);		/* admins: no limit */

	/* Refusals. */
	CHECK_EQ(ident(s, &cfg, hdr, alice, &id, &e), -1);
	CHECK_EQ(e.status, 400);
	CHECK_CONTAINS(e.msg, "differs");
	CHECK_EQ(ident(s, &cfg, "Basic YWxpY2U6eA==", NULL, &id, &e), -1);
	CHECK_EQ(e.status, 401);
	CHECK_STR(e.msg, "Authorization must be 'Bearer <token>'");
	bob[10] = bob[10] == 'a' ? 'b' : 'a';
	CHECK_EQ(ident(s, &cfg, NULL, bob, &id, &e), -1);
	CHECK_EQ(e.status, 401);
	CHECK_STR(e.msg, "unknown token");
	CHECK_EQ(ident(s, &cfg, NULL, "", &id, &e), -1);
	CHECK_EQ(e.status, 401);

	/* A user's own limits, under the host's ceilings; a reset; a
	 * disabled user. */
	db = RAW_OPEN(t.path);
	RAW_EXEC(db, "UPDATE users SET timeout_ms = 999999, memory_mb = 100, "
		 "quota_reset_ms = 1234 WHERE name = 'alice'");
	CHECK_EQ(ident(s, &cfg, NULL, alice, &id, &e), 0);
	CHECK_EQ(id.timeout_ms, 300000);
	CHECK_EQ(id.cpu_ms, 300000);
	CHECK_EQ(id.memory_mb, 100);
	CHECK_EQ(id.reset_ms, 1234);
	cfg.cpu_ms = 2000;
	CHECK_EQ(ident(s, &cfg, NULL, alice, &id, &e), 0);
	CHECK_EQ(id.timeout_ms, 300000);
	CHECK_EQ(id.cpu_ms, 2000);
	RAW_EXEC(db, "UPDATE users SET timeout_ms = 1000, memory_mb = 99999 "
		 "WHERE name = 'alice'");
	CHECK_EQ(ident(s, &cfg, NULL, alice, &id, &e), 0);
	CHECK_EQ(id.timeout_ms, 1000);
	CHECK_EQ(id.cpu_ms, 1000);
	CHECK_EQ(id.memory_mb, 4096);
	RAW_EXEC(db, "UPDATE users SET disabled = 1 WHERE name = 'alice'");
	CHECK_EQ(ident(s, &cfg, NULL, alice, &id, &e), -1);
	CHECK_EQ(e.status, 401);
	CHECK_STR(e.msg, "token of a disabled user");
	sqlite3_close(db);

	unsetenv("HTTP_AUTHORIZATION");
	unsetenv("REMOTE_ADDR");
	store_close(s);
	tmp_clean(&t);
}

/*
 * runs.c
 */

struct runs_fixture {
	struct tmp t;
	struct store *s;
	struct settings st;
	sqlite3 *db;
};

static int runs_setup(struct runs_fixture *f)
{
	memset(f, 0, sizeof(*f));
	if (tmp_make(&f->t) != 0)
		return -1;
	settings_defaults(&f->st);
	f->s = OPEN_RW(f->t.path);
	f->db = f->s ? RAW_OPEN(f->t.path) : NULL;
	if (!f->db) {
		store_close(f->s);
		tmp_clean(&f->t);
		return -1;
	}
	return 0;
}

static void runs_teardown(struct runs_fixture *f)
{
	sqlite3_close(f->db);
	store_close(f->s);
	tmp_clean(&f->t);
}

static void quota_is_at(const char *file, int line, const struct quota_state *q,
			long limit, long remaining, long reset_s, int refused)
{
	if (q->limit != limit || q->remaining != remaining ||
	    q->reset_s != reset_s || q->refused != refused)
		unit_fail(file, line, "quota {limit %ld, remaining %ld, reset "
			  "%ld, refused %d}, expected {%ld, %ld, %ld, %d}",
			  q->limit, q->remaining, q->reset_s, q->refused,
			  limit, remaining, reset_s, refused);
}

#define QUOTA_IS(q, limit, remaining, reset_s, refused)			\
	quota_is_at(__FILE__, __LINE__, (q), (limit), (remaining),	\
		    (reset_s), (refused))

/* store_run_begin of a new request; returns its rc. */
static int begin_at(const char *file, int line, struct runs_fixture *f,
		    struct run_rec *r, const char *identity, int64_t started,
		    long limit, int64_t reset_ms, struct quota_state *q)
{
	int rc;

	rec_init(r, identity, started);
	memset(q, 0x5a, sizeof(*q));
	rc = store_run_begin(f->s, r, limit, 3600, reset_ms, &f->st, q);
	if (rc != STORE_OK)
		unit_fail(file, line, "store_run_begin: %d %s", rc,
			  store_error(f->s));
	return rc;
}

#define BEGIN(f, r, identity, started, limit, reset_ms, q)		\
	begin_at(__FILE__, __LINE__, (f), (r), (identity), (started),	\
		 (limit), (reset_ms), (q))

void test_runs_quota(void)
{
	struct runs_fixture f;
	struct run_rec r[6];
	struct quota_state q;
	char buf[64];
	int64_t base = now_ms();

	if (runs_setup(&f) != 0)
		return;
	/* Three runs a second apart, then a fourth: refused. */
	BEGIN(&f, &r[0], "user:q", base, 3, 0, &q);
	QUOTA_IS(&q, 3, 2, 3600, 0);
	BEGIN(&f, &r[1], "user:q", base + 1000, 3, 0, &q);
	QUOTA_IS(&q, 3, 1, 3599, 0);
	BEGIN(&f, &r[2], "user:q", base + 2000, 3, 0, &q);
	QUOTA_IS(&q, 3, 0, 3598, 0);
	BEGIN(&f, &r[3], "user:q", base + 3000, 3, 0, &q);
	QUOTA_IS(&q, 3, 0, 3597, 1);
	/* A refusal does not count: the next is refused the same way. */
	BEGIN(&f, &r[4], "user:q", base + 3500, 3, 0, &q);
	QUOTA_IS(&q, 3, 0, 3597, 1);

	for (int i = 0; i < 3; i++) {
		RUN_COL(f.db, "outcome", r[i].id, buf);
		CHECK_STR(buf, "running");
		CHECK_EQ(RUN_INT(f.db, "counted", r[i].id), 1);
		CHECK_EQ(RUN_INT(f.db, "finished_ms IS NULL", r[i].id), 1);
		CHECK_EQ(RUN_INT(f.db, "http_status IS NULL", r[i].id), 1);
		CHECK_EQ(RUN_INT(f.db, "started_ms", r[i].id), base + 1000 * i);
		CHECK_EQ(RUN_INT(f.db, "deadline_ms", r[i].id),
			 base + 1000 * i + 60000);
		CHECK_EQ(RUN_INT(f.db, "broker_pid", r[i].id), getpid());
		RUN_COL(f.db, "identity", r[i].id, buf);
		CHECK_STR(buf, "user:q");
		RUN_COL(f.db, "client_addr", r[i].id, buf);
		CHECK_STR(buf, "192.0.2.1");
		CHECK_EQ(RUN_INT(f.db, "input_size", r[i].id), 2);
	}
	for (int i = 3; i < 5; i++) {
		RUN_COL(f.db, "outcome", r[i].id, buf);
		CHECK_STR(buf, "rejected");
		CHECK_EQ(RUN_INT(f.db, "http_status", r[i].id), 429);
		CHECK_EQ(RUN_INT(f.db, "counted", r[i].id), 0);
		CHECK_EQ(RUN_INT(f.db, "finished_ms IS NOT NULL", r[i].id), 1);
		RUN_COL(f.db, "error_type", r[i].id, buf);
		CHECK_STR(buf, "RateLimited");
		/* A refusal keeps the code's hash and size, never the code. */
		RUN_COL(f.db, "code", r[i].id, buf);
		CHECK_STR(buf, "(null)");
		CHECK_EQ(RUN_INT(f.db, "code_size", r[i].id), 8);
	}
	CHECK_EQ(RAW_INT(f.db, "SELECT count(*) FROM runs", NULL), 5);

	/* Other identities have their own count. */
	BEGIN(&f, &r[5], "anon:192.0.2.1", base + 4000, 3, 0, &q);
	QUOTA_IS(&q, 3, 2, 3600, 0);
	/* A higher limit for the same identity admits again. */
	BEGIN(&f, &r[5], "user:q", base + 5000, 5, 0, &q);
	QUOTA_IS(&q, 5, 1, 3595, 0);
	/* A limit of 0 refuses everything; the reset is the window. */
	BEGIN(&f, &r[5], "user:zero", base, 0, 0, &q);
	QUOTA_IS(&q, 0, 0, 3600, 1);
	RUN_COL(f.db, "outcome", r[5].id, buf);
	CHECK_STR(buf, "rejected");
	/* Also with runs in the window: no slot ever frees. */
	BEGIN(&f, &r[5], "user:q", base + 6000, 0, 0, &q);
	QUOTA_IS(&q, 0, 0, 3600, 1);
	runs_teardown(&f);
}

void test_runs_unlimited(void)
{
	struct runs_fixture f;
	struct run_rec r;
	struct quota_state q;
	int64_t base = now_ms();

	if (runs_setup(&f) != 0)
		return;
	for (int i = 0; i < 25; i++) {
		BEGIN(&f, &r, "user:admin", base + i, -1, 0, &q);
		CHECK_EQ(q.limit, -1);
		CHECK_EQ(q.refused, 0);
		CHECK_EQ(RUN_INT(f.db, "counted", r.id), 1);
	}
	CHECK_EQ(RAW_INT(f.db, "SELECT count(*) FROM runs WHERE outcome = "
			 "'running'", NULL), 25);
	/* The runs were counted all the same. */
	BEGIN(&f, &r, "user:admin", base + 100, 25, 0, &q);
	QUOTA_IS(&q, 25, 0, 3600, 1);
	runs_teardown(&f);
}

void test_runs_reset_and_window(void)
{
	struct runs_fixture f;
	struct run_rec r;
	struct quota_state q;
	int64_t base = now_ms(), w = 3600 * 1000;
	char sql[400];

	if (runs_setup(&f) != 0)
		return;
	/* A forgiven window: runs started at or before reset_ms do not
	 * count. */
	BEGIN(&f, &r, "user:r", base, 2, 0, &q);
	QUOTA_IS(&q, 2, 1, 3600, 0);
	BEGIN(&f, &r, "user:r", base + 1000, 2, 0, &q);
	QUOTA_IS(&q, 2, 0, 3599, 0);
	BEGIN(&f, &r, "user:r", base + 2000, 2, 0, &q);
	QUOTA_IS(&q, 2, 0, 3598, 1);
	BEGIN(&f, &r, "user:r", base + 2000, 2, base, &q);
	QUOTA_IS(&q, 2, 0, 3599, 0);
	BEGIN(&f, &r, "user:r", base + 3000, 2, base, &q);
	QUOTA_IS(&q, 2, 0, 3598, 1);
	BEGIN(&f, &r, "user:r", base + 3000, 2, base + 2000, &q);
	QUOTA_IS(&q, 2, 1, 3600, 0);

	/* Rows of another age, put in by hand: before the window, on its
	 * edge, inside it, and one inside that did not count. */
	snprintf(sql, sizeof(sql), "INSERT INTO runs (id, started_ms, "
		 "identity, outcome, counted) VALUES "
		 "('old', %lld, 'anon:w', 'ok', 1), "
		 "('edge', %lld, 'anon:w', 'ok', 1), "
		 "('inside', %lld, 'anon:w', 'ok', 1), "
		 "('refused', %lld, 'anon:w', 'rejected', 0)",
		 (long long)(base - w - 1), (long long)(base - w),
		 (long long)(base - w + 5000), (long long)(base - 10));
	RAW_EXEC(f.db, sql);
	BEGIN(&f, &r, "anon:w", base, 2, 0, &q);
	QUOTA_IS(&q, 2, 0, 5, 0);
	BEGIN(&f, &r, "anon:w", base + 1, 2, 0, &q);
	QUOTA_IS(&q, 2, 0, 5, 1);
	/* Once the inside row leaves the window, a slot is free. */
	BEGIN(&f, &r, "anon:w", base + 5001, 2, 0, &q);
	QUOTA_IS(&q, 2, 0, 3595, 0);
	runs_teardown(&f);
}

/*
 * A limit lowered under runs already counted: the refusal's reset is when
 * enough of them have left the window for one more run, not when the
 * oldest leaves (a client retrying then would be refused again).
 */
void test_runs_lowered_limit_reset(void)
{
	struct runs_fixture f;
	struct run_rec r;
	struct quota_state q;
	int64_t base = now_ms();

	if (runs_setup(&f) != 0)
		return;
	for (int i = 0; i < 5; i++)
		BEGIN(&f, &r, "user:l", base + 1000 * i, 10, 0, &q);
	/* 5 in the window, limit 2: four must leave, the last of them the
	 * one started at base + 3000. */
	BEGIN(&f, &r, "user:l", base + 10000, 2, 0, &q);
	QUOTA_IS(&q, 2, 0, 3593, 1);
	/* Then, and not a millisecond before, the next run is admitted. */
	BEGIN(&f, &r, "user:l", base + 3600000 + 2999, 2, 0, &q);
	QUOTA_IS(&q, 2, 0, 1, 1);
	BEGIN(&f, &r, "user:l", base + 3600000 + 3000, 2, 0, &q);
	QUOTA_IS(&q, 2, 0, 1, 0);
	runs_teardown(&f);
}

void test_runs_finish(void)
{
	struct runs_fixture f;
	struct run_rec r, other;
	struct quota_state q;
	int64_t before, after;
	char buf[64];

	if (runs_setup(&f) != 0)
		return;
	BEGIN(&f, &r, "user:f", now_ms(), 5, 0, &q);
	r.outcome = "error";
	r.error_type = "ZeroDivisionError";
	r.error = "division by zero";
	r.output_size = 12;
	r.truncated = 1;
	r.exec_ms = 12.5;
	r.wall_ms = 20.25;
	r.cpu_ms = 7;
	r.peak_kb = 9000;
	r.http_status = 200;
	before = now_ms();
	CHECK_EQ(store_run_finish(f.s, &r, &f.st), STORE_OK);
	after = now_ms();
	RUN_COL(f.db, "outcome", r.id, buf);
	CHECK_STR(buf, "error");
	RUN_COL(f.db, "error_type", r.id, buf);
	CHECK_STR(buf, "ZeroDivisionError");
	RUN_COL(f.db, "error", r.id, buf);
	CHECK_STR(buf, "division by zero");
	CHECK_EQ(RUN_INT(f.db, "output_size", r.id), 12);
	CHECK_EQ(RUN_INT(f.db, "truncated", r.id), 1);
	CHECK_EQ(RUN_INT(f.db, "exec_ms = 12.5", r.id), 1);
	CHECK_EQ(RUN_INT(f.db, "wall_ms = 20.25", r.id), 1);
	CHECK_EQ(RUN_INT(f.db, "cpu_ms", r.id), 7);
	CHECK_EQ(RUN_INT(f.db, "peak_kb", r.id), 9000);
	CHECK_EQ(RUN_INT(f.db, "http_status", r.id), 200);
	CHECK(RUN_INT(f.db, "finished_ms", r.id) >= before);
	CHECK(RUN_INT(f.db, "finished_ms", r.id) <= after);
	CHECK_EQ(RUN_INT(f.db, "started_ms", r.id), r.started_ms);
	CHECK_EQ(RUN_INT(f.db, "counted", r.id), 1);
	RUN_COL(f.db, "code", r.id, buf);
	CHECK_STR(buf, "print(1)");
	RAW_TEXT(f.db, "SELECT status FROM runs_view WHERE id = ?1", r.id, buf);
	CHECK_STR(buf, "error");

	/* Errors are bounded by audit_error_max_bytes, whole characters. */
	f.st.audit_error_max_bytes = 4;
	r.error = "ab\xE2\x82\xAC\xE2\x82\xAC";
	CHECK_EQ(store_run_finish(f.s, &r, &f.st), STORE_OK);
	RUN_COL(f.db, "error", r.id, buf);
	CHECK_STR(buf, "ab");
	f.st.audit_error_max_bytes = 5;
	CHECK_EQ(store_run_finish(f.s, &r, &f.st), STORE_OK);
	RUN_COL(f.db, "error", r.id, buf);
	CHECK_STR(buf, "ab\xE2\x82\xAC");
	r.outcome = "ok";
	r.error = NULL;
	r.error_type = NULL;
	CHECK_EQ(store_run_finish(f.s, &r, &f.st), STORE_OK);
	CHECK_EQ(RUN_INT(f.db, "error IS NULL AND error_type IS NULL", r.id),
		 1);

	/* A row that is not there. */
	rec_init(&other, "user:f", now_ms());
	other.outcome = "ok";
	CHECK_EQ(store_run_finish(f.s, &other, &f.st), STORE_NOTFOUND);
	CHECK_CONTAINS(store_error(f.s), other.id);
	CHECK_EQ(RAW_INT(f.db, "SELECT count(*) FROM runs", NULL), 1);
	runs_teardown(&f);
}

void test_runs_reject(void)
{
	struct runs_fixture f;
	struct run_rec r;
	struct quota_state q;
	int64_t before, after;
	char buf[64];

	if (runs_setup(&f) != 0)
		return;
	rec_init(&r, "anon:192.0.2.1", now_ms());
	r.code = NULL;
	r.code_len = 0;
	r.input_size = 0;
	r.outcome = "rejected";
	r.error_type = "BadRequest";
	r.error = "request body is not valid JSON";
	r.http_status = 400;
	before = now_ms();
	CHECK_EQ(store_run_reject(f.s, &r, &f.st), STORE_OK);
	after = now_ms();
	RUN_COL(f.db, "outcome", r.id, buf);
	CHECK_STR(buf, "rejected");
	RUN_COL(f.db, "error_type", r.id, buf);
	CHECK_STR(buf, "BadRequest");
	RUN_COL(f.db, "error", r.id, buf);
	CHECK_STR(buf, "request body is not valid JSON");
	CHECK_EQ(RUN_INT(f.db, "http_status", r.id), 400);
	CHECK_EQ(RUN_INT(f.db, "counted", r.id), 0);
	CHECK(RUN_INT(f.db, "finished_ms", r.id) >= before);
	CHECK(RUN_INT(f.db, "finished_ms", r.id) <= after);
	CHECK_EQ(RUN_INT(f.db, "code IS NULL AND code_sha256 IS NULL AND "
			 "code_size IS NULL AND user_id IS NULL AND "
			 "user_name IS NULL", r.id), 1);
	RAW_TEXT(f.db, "SELECT status FROM runs_view WHERE id = ?1", r.id, buf);
	CHECK_STR(buf, "rejected");
	/* The same id twice is a conflict, not a second row. */
	CHECK_EQ(store_run_reject(f.s, &r, &f.st), STORE_CONFLICT);
	CHECK_EQ(RAW_INT(f.db, "SELECT count(*) FROM runs", NULL), 1);

	/* Refused requests do not use the quota. */
	for (int i = 0; i < 5; i++) {
		rec_init(&r, "anon:192.0.2.1", now_ms());
		r.outcome = "rejected";
		r.http_status = 413;
		CHECK_EQ(store_run_reject(f.s, &r, &f.st), STORE_OK);
	}
	BEGIN(&f, &r, "anon:192.0.2.1", now_ms(), 1, 0, &q);
	CHECK_EQ(q.refused, 0);
	runs_teardown(&f);
}

void test_runs_audit_code(void)
{
	/* a b U+20AC U+1D11E: 9 bytes; the longest whole prefix of each
	 * length. */
	static const char code[] = "ab\xE2\x82\xAC\xF0\x9D\x84\x9E";
	static const long keep[] = { 0, 1, 2, 2, 2, 5, 5, 5, 5, 9, 9 };
	static const char *const modes[] = { "full", "hash", "none" };
	struct runs_fixture f;
	struct run_rec r;
	struct quota_state q;
	char hash[65], buf[200];

	if (runs_setup(&f) != 0)
		return;
	CHECK_EQ(sha256_hex(code, sizeof(code) - 1, hash), 0);
	for (int m = 0; m < 3; m++) {
		f.st.audit_code = (enum audit_code)m;
		/* Both ways a row is written. */
		for (int way = 0; way < 2; way++) {
			rec_init(&r, "user:c", now_ms());
			r.code = code;
			r.code_len = sizeof(code) - 1;
			if (way == 0) {
				CHECK_EQ(store_run_begin(f.s, &r, -1, 3600, 0,
							 &f.st, &q), STORE_OK);
			} else {
				r.outcome = "rejected";
				r.http_status = 400;
				CHECK_EQ(store_run_reject(f.s, &r, &f.st),
					 STORE_OK);
			}
			RUN_COL(f.db, "code_sha256", r.id, buf);
			CHECKF(strcmp(buf, hash) == 0, "audit_code %s: hash "
			       "%s", modes[m], buf);
			CHECK_EQ(RUN_INT(f.db, "code_size", r.id), 9);
			RUN_COL(f.db, "code", r.id, buf);
			/* A refused row never keeps the code. */
			CHECKF(strcmp(buf, m == 0 && way == 0 ? code :
				      "(null)") == 0,
			       "audit_code %s: code %s", modes[m], buf);
		}
	}

	/* The kept code is cut at audit_code_max_bytes, never inside a
	 * character. */
	f.st.audit_code = AUDIT_CODE_FULL;
	for (long max = 0; max < (long)(sizeof(keep) / sizeof(*keep)); max++) {
		f.st.audit_code_max_bytes = max;
		rec_init(&r, "user:c", now_ms());
		r.code = code;
		r.code_len = sizeof(code) - 1;
		CHECK_EQ(store_run_begin(f.s, &r, -1, 3600, 0, &f.st, &q),
			 STORE_OK);
		CHECKF(RUN_INT(f.db, "length(CAST(code AS BLOB))", r.id) ==
		       keep[max], "max %ld: kept %lld bytes, expected %ld",
		       max, RUN_INT(f.db, "length(CAST(code AS BLOB))", r.id),
		       keep[max]);
		RUN_COL(f.db, "code", r.id, buf);
		CHECKF(strlen(buf) == (size_t)keep[max] &&
		       memcmp(buf, code, (size_t)keep[max]) == 0,
		       "max %ld: kept \"%s\"", max, buf);
		CHECK_EQ(RUN_INT(f.db, "code_size", r.id), 9);
		RUN_COL(f.db, "code_sha256", r.id, buf);
		CHECK_STR(buf, hash);
	}

	/* From the database's settings, as the CGI reads them. */
	CHECK_EQ(store_setting_set(f.s, "audit_code", "hash"), STORE_OK);
	CHECK_EQ(store_settings_load(f.s, &f.st), STORE_OK);
	BEGIN(&f, &r, "user:c", now_ms(), -1, 0, &q);
	CHECK_EQ(RUN_INT(f.db, "code IS NULL AND code_sha256 IS NOT NULL",
			 r.id), 1);
	runs_teardown(&f);
}

/* Another connection holds the write lock: the data layer gives up after
 * its busy timeout, writes nothing, and works again once the lock goes. */
void test_runs_busy(void)
{
	struct runs_fixture f;
	struct run_rec r;
	struct quota_state q;
	int64_t t0, ms;
	int rc;

	setenv("PYEXEC_DB_BUSY_MS", "100", 1);
	rc = runs_setup(&f);
	unsetenv("PYEXEC_DB_BUSY_MS");
	if (rc != 0)
		return;
	if (RAW_EXEC(f.db, "BEGIN IMMEDIATE") != 0) {
		runs_teardown(&f);
		return;
	}
	rec_init(&r, "user:b", now_ms());
	t0 = mono_ms();
	rc = store_run_begin(f.s, &r, 5, 3600, 0, &f.st, &q);
	ms = mono_ms() - t0;
	CHECK_EQ(rc, STORE_UNAVAILABLE);
	CHECKF(ms >= 90 && ms < 1500, "gave up after %lld ms", (long long)ms);
	CHECK_CONTAINS(store_error(f.s), "lock the audit log");
	CHECK_CONTAINS(store_error(f.s), "locked");

	t0 = mono_ms();
	CHECK_EQ(store_setting_set(f.s, "timeout_ms", "1000"),
		 STORE_UNAVAILABLE);
	r.outcome = "rejected";
	CHECK_EQ(store_run_reject(f.s, &r, &f.st), STORE_UNAVAILABLE);
	ms = mono_ms() - t0;
	CHECKF(ms >= 180 && ms < 3000, "two writes gave up after %lld ms",
	       (long long)ms);
	RAW_EXEC(f.db, "ROLLBACK");

	CHECK_EQ(RAW_INT(f.db, "SELECT count(*) FROM runs", NULL), 0);
	CHECK_EQ(store_run_begin(f.s, &r, 5, 3600, 0, &f.st, &q), STORE_OK);
	CHECK_EQ(RAW_INT(f.db, "SELECT count(*) FROM runs", NULL), 1);
	runs_teardown(&f);
}

void test_runs_view_abandoned(void)
{
	struct runs_fixture f;
	struct run_rec gone, live, done;
	struct quota_state q;
	int64_t now = now_ms();
	char buf[64];

	if (runs_setup(&f) != 0)
		return;
	rec_init(&gone, "user:v", now - 5000);
	gone.deadline_ms = now - 1000;
	CHECK_EQ(store_run_begin(f.s, &gone, -1, 3600, 0, &f.st, &q), STORE_OK);
	rec_init(&live, "user:v", now);
	CHECK_EQ(store_run_begin(f.s, &live, -1, 3600, 0, &f.st, &q), STORE_OK);
	rec_init(&done, "user:v", now - 5000);
	done.deadline_ms = now - 1000;
	CHECK_EQ(store_run_begin(f.s, &done, -1, 3600, 0, &f.st, &q), STORE_OK);
	done.outcome = "timeout";
	done.http_status = 200;
	CHECK_EQ(store_run_finish(f.s, &done, &f.st), STORE_OK);

	RAW_TEXT(f.db, "SELECT status FROM runs_view WHERE id = ?1", gone.id,
		 buf);
	CHECK_STR(buf, "abandoned");
	RUN_COL(f.db, "outcome", gone.id, buf);
	CHECK_STR(buf, "running");	/* the row itself is kept as is */
	RAW_TEXT(f.db, "SELECT status FROM runs_view WHERE id = ?1", live.id,
		 buf);
	CHECK_STR(buf, "running");
	RAW_TEXT(f.db, "SELECT status FROM runs_view WHERE id = ?1", done.id,
		 buf);
	CHECK_STR(buf, "timeout");
	CHECK_EQ(RAW_INT(f.db, "SELECT count(*) FROM runs_view", NULL), 3);
	runs_teardown(&f);
}

/*
 * digest.c
 */

void test_digest_sha256(void)
{
	static const struct {
		const char *in;
		const char *hex;
	} v[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b"
		      "7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb4"
			 "10ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419"
		  "db06c1" },
	};
	char out[66];
	char *million;

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		memset(out, 'x', sizeof(out));
		CHECK_EQ(sha256_hex(v[i].in, strlen(v[i].in), out), 0);
		CHECK_STR(out, v[i].hex);
		CHECK(out[65] == 'x');
	}
	million = malloc(1000000);
	if (!million)
		exit(2);
	memset(million, 'a', 1000000);
	CHECK_EQ(sha256_hex(million, 1000000, out), 0);
	CHECK_STR(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39"
		  "ccc7112cd0");
	free(million);
	/* Bytes, not a string: a NUL inside counts. */
	CHECK_EQ(sha256_hex("a\0b", 3, out), 0);
	CHECK(strcmp(out, "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b98"
		     "07785afee48bb") != 0);
}

void test_digest_tokens(void)
{
	enum { N = 64 };
	static char toks[N][TOKEN_LEN + 1];
	char t[TOKEN_LEN + 2];

	for (int i = 0; i < N; i++) {
		memset(toks[i], 'x', sizeof(toks[i]));
		CHECK_EQ(token_new(toks[i]), 0);
		CHECK_EQ(strlen(toks[i]), TOKEN_LEN);
		CHECK(memcmp(toks[i], "pyx_", 4) == 0);
		CHECK(token_wellformed(toks[i]));
		for (int k = 0; k < i; k++)
			CHECKF(strcmp(toks[i], toks[k]) != 0, "token %d and %d "
			       "are the same", i, k);
	}
	memcpy(t, "pyx_", 4);
	memset(t + 4, '0', 64);
	t[68] = 0;
	CHECK(token_wellformed(t));
	memset(t + 4, 'f', 64);
	CHECK(token_wellformed(t));
	t[40] = 'F';
	CHECK(!token_wellformed(t));	/* lower-case hex only */
	t[40] = 'g';
	CHECK(!token_wellformed(t));
	t[40] = ' ';
	CHECK(!token_wellformed(t));
	t[40] = 'a';
	CHECK(token_wellformed(t));
	t[67] = 0;
	CHECK(!token_wellformed(t));	/* 67 characters */
	t[67] = 'a';
	t[68] = 'a';
	t[69] = 0;
	CHECK(!token_wellformed(t));	/* 69 */
	t[68] = 0;
	t[0] = 'P';
	CHECK(!token_wellformed(t));
	t[0] = 'p';
	t[3] = '-';
	CHECK(!token_wellformed(t));
	CHECK(!token_wellformed(""));
	CHECK(!token_wellformed("pyx_"));
}

/*
 * cgi/slots.c. Byte-range locks belong to a process: the holders are
 * children, each told when to let go through a pipe.
 */

struct holder {
	pid_t pid;
	int release;		/* write end: a byte written lets go (later
				 * children hold copies: no EOF to wait for) */
	int got;		/* the child took a slot */
};

/* A child that takes one of max slots and holds it until released (or
 * for hold_ms when that is not 0). */
static int holder_start(struct holder *h, const char *db, long max,
			long hold_ms)
{
	int up[2], down[2];
	char b = 0;

	if (pipe(up) != 0 || pipe(down) != 0)
		exit(2);
	fflush(stdout);
	h->pid = fork();
	if (h->pid == 0) {
		int fd = slots_acquire(db, max, 0);

		close(up[0]);
		close(down[1]);
		b = fd >= 0 ? 'y' : 'n';
		if (write(up[1], &b, 1) != 1)
			_exit(2);
		if (hold_ms)
			sleep_ms(hold_ms);
		else if (read(down[0], &b, 1) < 0)
			_exit(2);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	h->release = down[1];
	if (hold_ms) {
		close(down[1]);		/* it lets go by itself */
		h->release = -1;
	}
	if (h->pid < 0 || read(up[0], &b, 1) != 1)
		b = 0;
	close(up[0]);
	h->got = b == 'y';
	return h->got ? 0 : -1;
}

static void holder_stop(struct holder *h)
{
	int status;

	if (h->release >= 0) {
		if (write(h->release, "x", 1) != 1)
			unit_fail(__FILE__, __LINE__, "release: %s",
				  strerror(errno));
		close(h->release);
	}
	h->release = -1;
	if (h->pid > 0)
		waitpid(h->pid, &status, 0);
	h->pid = 0;
}

void test_slots(void)
{
	struct tmp t;
	struct holder a, b, c;
	char lock[160], missing[160];
	struct stat sb;
	int64_t t0, ms;
	int fd;

	if (tmp_make(&t) != 0)
		return;
	snprintf(lock, sizeof(lock), "%s/slots", t.dir);

	/* Two slots, two holders: the third waits, then gives up. */
	CHECK_EQ(holder_start(&a, t.dir, 2, 0), 0);
	CHECK_EQ(holder_start(&b, t.dir, 2, 0), 0);
	CHECK(stat(lock, &sb) == 0 && S_ISREG(sb.st_mode));
	t0 = mono_ms();
	fd = slots_acquire(t.dir, 2, 300);
	ms = mono_ms() - t0;
	CHECK_EQ(fd, -1);
	CHECKF(ms >= 290 && ms < 3000, "gave up after %lld ms", (long long)ms);
	CHECK_EQ(slots_acquire(t.dir, 2, 0), -1);
	/* Nor can another child take one. */
	CHECK_EQ(holder_start(&c, t.dir, 2, 0), -1);
	holder_stop(&c);
	/* A third slot is there for a cap of 3. */
	fd = slots_acquire(t.dir, 3, 0);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);

	/* One holder exits: its slot is free at once. */
	holder_stop(&a);
	fd = slots_acquire(t.dir, 2, 0);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);

	/* A waiter gets the slot that frees while it waits. */
	CHECK_EQ(holder_start(&a, t.dir, 2, 300), 0);
	CHECK_EQ(slots_acquire(t.dir, 2, 0), -1);
	t0 = mono_ms();
	fd = slots_acquire(t.dir, 2, 10000);
	ms = mono_ms() - t0;
	CHECK(fd >= 0);
	CHECKF(ms >= 100 && ms < 5000, "waited %lld ms", (long long)ms);
	if (fd >= 0)
		close(fd);
	holder_stop(&a);
	holder_stop(&b);

	/* With one slot, one holder is enough to fill it. */
	CHECK_EQ(holder_start(&a, t.dir, 1, 0), 0);
	CHECK_EQ(slots_acquire(t.dir, 1, 0), -1);
	holder_stop(&a);
	fd = slots_acquire(t.dir, 1, 0);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);

	/* No lock file, no slot. */
	tmp_file(&t, "no/such/dir", missing);
	CHECK_EQ(slots_acquire(missing, 2, 0), -2);
	tmp_clean(&t);
}

/* What the audit log stores of the program's error (sql/textclean.c). */
void test_text_clean(void)
{
	static const struct { const char *in; size_t cap; const char *out; } t[] = {
		{ "plain caf\xC3\xA9\tand\nlines", 64, "plain caf\xC3\xA9\tand\nlines" },
		{ "\x1B[2J\r", 64, "\\u001B[2J\\u000D" },
		{ "C1 \xC2\x9B \xC2\x85 del \x7F", 64,
		  "C1 \\u009B \\u0085 del \\u007F" },
		{ "bad \xFF\xC0\xAF \xED\xA0\x80 \xF4\x90\x80\x80", 64,
		  "bad \\xFF\\xC0\\xAF \\xED\\xA0\\x80 \\xF4\\x90\\x80\\x80" },
		{ "rtl \xE2\x80\xAE \xE2\x81\xA6", 64, "rtl \\u202E \\u2066" },
		{ "truncated \xE2\x82", 64, "truncated \\xE2\\x82" },
		/* Cut before what does not fit whole. */
		{ "ab\x1B", 7, "ab" },
		{ "ab\x1B", 8, "ab\\u001B" },
		{ "a\xC3\xA9", 2, "a" },
		{ "a\xFF", 4, "a" },
		{ "", 8, "" },
	};
	char out[128];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t n = text_clean(t[i].in, strlen(t[i].in), out, t[i].cap,
				      1);
		CHECKF(n == strlen(t[i].out) && memcmp(out, t[i].out, n) == 0,
		       "case %zu: \"%.*s\"", i, (int)n, out);
	}
	/* A name is one line: tab and newline are escaped too. */
	CHECK_EQ(text_clean("A\tB\nC", 5, out, sizeof(out), 0), 15);
	CHECK(memcmp(out, "A\\u0009B\\u000AC", 15) == 0);
}

/* The stored code's cut (text_keep): within the bound, never inside a
 * UTF-8 sequence. */
void test_text_keep(void)
{
	static const char cafe[] = "# caf\xC3\xA9!";	/* bytes 5-6: e-acute */

	CHECK_EQ(text_keep(cafe, 8, 100), 8);	/* all of it fits */
	CHECK_EQ(text_keep(cafe, 8, 7), 7);	/* after the sequence */
	CHECK_EQ(text_keep(cafe, 8, 6), 5);	/* not inside it */
	CHECK_EQ(text_keep(cafe, 8, 5), 5);
	CHECK_EQ(text_keep(cafe, 8, 0), 0);
	CHECK_EQ(text_keep("\xC3\xA9", 2, 1), 0);
}
