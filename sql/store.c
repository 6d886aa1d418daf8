/* SPDX-License-Identifier: MIT */
/*
 * store.c: opening, configuring and migrating the database, and the
 * settings. Users are in users.c and the audit log in runs.c; all three
 * share the helpers declared in store_int.h.
 *
 * Every connection is hardened the same way: DEFENSIVE, no extensions, an
 * untrusted schema, foreign keys on, a busy timeout, WAL. SQLite's memory
 * goes through an allocator that zeroes what it frees, so that nothing read
 * from the database (other users' code, token hashes) survives in the
 * broker's heap when it forks the sandbox.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include "store_int.h"
#include "totals.h"
#include "../cgi/banned.h"

/* How long a writer waits for another one before the request gets 503. */
#define DEFAULT_BUSY_MS 5000

extern const char pyexec_schema_sql[];	/* generated from schema.sql */

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int store_fail(struct store *s, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	if (code == STORE_UNAVAILABLE)
		s->broken = 1;
	return code;
}

/* Maps an SQLite result to ours, with the database's own message. */
int store_sqlite_fail(struct store *s, int rc, const char *what)
{
	int prim = rc & 0xff;

	if (prim == SQLITE_CONSTRAINT)
		return store_fail(s, STORE_CONFLICT, "%s: %s", what,
				  sqlite3_errmsg(s->db));
	return store_fail(s, STORE_UNAVAILABLE, "%s: %s", what,
			  s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
}

int store_prepare(struct store *s, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);

	return rc == SQLITE_OK ? STORE_OK : store_sqlite_fail(s, rc, "prepare");
}

int store_step_done(struct store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? STORE_OK : store_sqlite_fail(s, rc, what);
}

int store_exec(struct store *s, const char *sql, const char *what)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? STORE_OK : store_sqlite_fail(s, rc, what);
}

/* --- the zeroing allocator ------------------------------------------------ */

static void *z_malloc(int n)
{
	return malloc((size_t)n);
}

static void z_free(void *p)
{
	if (p) {
		explicit_bzero(p, malloc_usable_size(p));
		free(p);
	}
}

static void *z_realloc(void *p, int n)
{
	void *q;
	size_t old;

	if (!p)
		return malloc((size_t)n);
	old = malloc_usable_size(p);
	q = malloc((size_t)n);
	if (!q)
		return NULL;
	memcpy(q, p, old < (size_t)n ? old : (size_t)n);
	z_free(p);
	return q;
}

static int z_size(void *p)
{
	return (int)malloc_usable_size(p);
}

static int z_roundup(int n)
{
	return (n + 15) & ~15;
}

static int z_init(void *a)
{
	(void)a;
	return SQLITE_OK;
}

static void z_shutdown(void *a)
{
	(void)a;
}

static int install_allocator(void)
{
	static int rc = -1;
	static const sqlite3_mem_methods m = {
		z_malloc, z_free, z_realloc, z_size, z_roundup, z_init,
		z_shutdown, NULL
	};

	/* Remembered either way: if SQLite was started before us, every open
	 * keeps failing rather than running without the zeroing allocator. */
	if (rc != -1)
		return rc;
	/* No memory statistics: they would take a mutex on every call. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	rc = sqlite3_config(SQLITE_CONFIG_MALLOC, &m);
	return rc;
}

/* --- schema migrations ---------------------------------------------------- */

int store_schema_version(void)
{
	const char *p = pyexec_schema_sql;
	int v = 0;

	while ((p = strstr(p, "-- migrate ")) != NULL) {
		p += 11;
		v = (int)strtol(p, NULL, 10);
	}
	return v;
}

static int user_version(struct store *s, int *v)
{
	sqlite3_stmt *st;
	int rc = store_prepare(s, "PRAGMA user_version", &st);

	if (rc)
		return rc;
	rc = sqlite3_step(st);
	*v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? STORE_OK : store_sqlite_fail(s, rc, "read schema version");
}

/* Applies the sections of schema.sql after version `from`. */
static int apply_sections(struct store *s, int from)
{
	const char *p = strstr(pyexec_schema_sql, "-- migrate ");

	while (p) {
		int v = (int)strtol(p + 11, NULL, 10);
		const char *next = strstr(p + 11, "-- migrate ");
		size_t n = next ? (size_t)(next - p) : strlen(p);
		if (v > from) {
			char *sql = sqlite3_mprintf("%.*s", (int)n, p);
			int rc = sql ? store_exec(s, sql, "migrate") :
				       store_fail(s, STORE_UNAVAILABLE, "out of memory");
			sqlite3_free(sql);
			if (rc)
				return rc;
		}
		p = next;
	}
	return STORE_OK;
}

/*
 * WAL is persistent: readers no longer block the writer, nor it them. The
 * switch needs an exclusive lock, which SQLite takes by upgrading a read
 * transaction, without calling the busy handler: a process that takes the
 * write lock at that moment (another request) makes it fail at once. So
 * retry for as long as the busy timeout. A no-op once the file is in WAL.
 */
static int enable_wal(struct store *s)
{
	struct timespec pause = { 0, 5 * 1000000 };
	long waited = 0;
	int rc;

	while ((rc = sqlite3_exec(s->db, "PRAGMA journal_mode = WAL", NULL,
				  NULL, NULL)) != SQLITE_OK &&
	       (rc & 0xff) == SQLITE_BUSY && waited < s->busy_ms) {
		nanosleep(&pause, NULL);
		waited += 5;
	}
	return rc == SQLITE_OK ? STORE_OK : store_sqlite_fail(s, rc, "enable WAL");
}

/*
 * Brings the database to this build's version, under a write lock so two
 * processes starting at once cannot both migrate: the second one waits,
 * then finds the work done.
 */
static int migrate(struct store *s)
{
	int target = store_schema_version(), v, rc;
	char pragma[48];

	if ((rc = user_version(s, &v)))
		return rc;
	if (v == target)
		return enable_wal(s);	/* a switch that failed before */
	if (v > target)
		return store_fail(s, STORE_UNAVAILABLE, "database schema %d is "
				  "newer than this program's (%d)", v, target);
	if ((rc = store_exec(s, "BEGIN IMMEDIATE", "lock for migration")))
		return rc;
	if ((rc = user_version(s, &v)) == STORE_OK && v < target) {
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", target);
		rc = apply_sections(s, v);
		/* Version 4 added the totals, which start from the log. */
		if (rc == STORE_OK && v < 4)
			rc = totals_rebuild(s);
		if (rc == STORE_OK)
			rc = store_exec(s, pragma, "set schema version");
	}
	if (rc) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	if ((rc = store_exec(s, "COMMIT", "commit migration")))
		return rc;
	return enable_wal(s);
}

/*
 * The WAL's upkeep, after each commit. A CGI is a new process per request:
 * with no connection left open between requests, each open rebuilds the
 * WAL's index from the whole WAL file, and SQLite's own auto-checkpoint
 * never rewinds a WAL it has just recovered, so the file grew by every
 * write (~14 KB per request) and every open read all of it: 1500 requests
 * in a row averaged 9.2 ms each against 4.3 ms with this. Past
 * WAL_CHECKPOINT_FRAMES the committer copies the WAL into the database and
 * truncates it, without waiting: a busy database (another request
 * reading) gets a passive checkpoint and the next commit tries again. Never
 * an error of the request's.
 */
#define WAL_CHECKPOINT_FRAMES 256

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct store *s = arg;

	if (frames < WAL_CHECKPOINT_FRAMES)
		return SQLITE_OK;
	sqlite3_busy_timeout(db, 0);
	sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_TRUNCATE, NULL,
				  NULL);
	sqlite3_busy_timeout(db, (int)s->busy_ms);
	return SQLITE_OK;
}

/* The busy timeout: PYEXEC_DB_BUSY_MS, else the default. */
static void set_busy(struct store *s)
{
	const char *b = getenv("PYEXEC_DB_BUSY_MS");
	long busy = DEFAULT_BUSY_MS;
	char *end;

	if (b && *b) {
		busy = strtol(b, &end, 10);
		if (*end || busy < 0 || busy > 600000)
			busy = DEFAULT_BUSY_MS;
	}
	s->busy_ms = busy;
	sqlite3_busy_timeout(s->db, (int)busy);
}

static int configure(struct store *s)
{
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL);
	/* Each CGI process is a short-lived connection: without these, every
	 * request's close would checkpoint the WAL into the database and
	 * delete it (fsyncs and an unlink per request). Checkpoints happen
	 * instead when the WAL reaches its auto-checkpoint size. */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	{
		int persist = 1;
		sqlite3_file_control(s->db, "main", SQLITE_FCNTL_PERSIST_WAL,
				     &persist);
	}
	sqlite3_limit(s->db, SQLITE_LIMIT_LENGTH, 64 << 20);
	sqlite3_limit(s->db, SQLITE_LIMIT_SQL_LENGTH, 1 << 20);
	set_busy(s);
	sqlite3_wal_hook(s->db, wal_hook, s);
	/* WAL with NORMAL: a crash of any process loses nothing committed;
	 * a power cut may lose the last transactions, never the database. */
	return store_exec(s, "PRAGMA foreign_keys = ON; "
			  "PRAGMA synchronous = NORMAL", "configure");
}

/* --- "never" or "not now" ------------------------------------------------ */

static int denied(int err)
{
	return err == EACCES || err == EPERM || err == EROFS;
}

/* Adds to the message; the open has failed for good. */
static void never(struct store *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void never(struct store *s, const char *fmt, ...)
{
	size_t n = strlen(s->err);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err + n, sizeof(s->err) - n, fmt, ap);
	va_end(ap);
	s->never = 1;
}

/* The uid files are opened as (pyexec-admin may set it, setfsuid). */
static unsigned fs_uid(void)
{
	return (unsigned)setfsuid((uid_t)-1);
}

/* Who should own the database: this process, unless it is root, which the
 * web server's user is not. */
static void owner_arg(char *buf, size_t len)
{
	if (fs_uid() == 0)
		snprintf(buf, len, "www-data:www-data (the web server's user)");
	else
		snprintf(buf, len, "%u:%u", fs_uid(),
			 (unsigned)setfsgid((gid_t)-1));
}

/* Whether one of the files SQLite needs is denied to this process. */
static int file_denied(struct store *s, const char *dir, const char *path,
		       int readonly)
{
	static const char *const suffix[] = { "", "-wal", "-shm" };
	char f[PATH_MAX + 8], who[64];
	struct stat st;

	owner_arg(who, sizeof(who));
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(f, sizeof(f), "%s%s", path, suffix[i]);
		if (lstat(f, &st) != 0 || S_ISDIR(st.st_mode) ||
		    access(f, readonly ? R_OK : R_OK | W_OK) == 0 ||
		    !denied(errno))
			continue;
		never(s, "; '%s' (owner %u, mode %04o) is not %s by uid %u: %s"
		      "; fix: chown -R %s '%s'", f, (unsigned)st.st_uid,
		      (unsigned)(st.st_mode & 07777), readonly ? "readable" :
		      "writable", fs_uid(), strerror(errno), who,
		      dir);
		return 1;
	}
	return 0;
}

/*
 * After a failed open: whether it failed for good, from what the kernel
 * says this process may do (access(2), so root, read-only mounts and
 * immutable files are judged as they are). A missing directory, or a
 * directory or file denied, will not pass by itself; a lock or a full disk
 * may.
 */
static void diagnose(struct store *s, const char *path, int readonly)
{
	char dir[PATH_MAX], who[64];
	const char *slash = strrchr(path, '/');
	struct stat st;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 :
			 (int)(slash - path), path);
	owner_arg(who, sizeof(who));
	if (stat(dir, &st) != 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			never(s, "; the directory '%s' does not exist; fix: "
			      "install -d -o %.*s -m 0750 '%s'", dir,
			      (int)strcspn(who, ":"), who, dir);
		else if (denied(errno))
			never(s, "; uid %u cannot reach the directory '%s' "
			      "(%s); fix: let it search every directory above "
			      "(chmod o+x)", fs_uid(), dir, strerror(errno));
		return;
	}
	if (access(dir, readonly ? X_OK : W_OK | X_OK) != 0 && denied(errno)) {
		if (errno == EROFS)
			never(s, "; '%s' is on a read-only file system; fix: "
			      "a database on a writable one (PYEXEC_DB)", dir);
		else
			never(s, "; the directory '%s' (owner %u, mode %04o) is "
			      "not writable by uid %u; fix: chown -R %s '%s'",
			      dir, (unsigned)st.st_uid,
			      (unsigned)(st.st_mode & 07777),
			      fs_uid(), who, dir);
		return;
	}
	file_denied(s, dir, path, readonly);
}

static int open_store(struct store *s, const char *path, int mode);
static void file_id(const char *path, dev_t *dev, ino_t *ino);

/* The SQLite backend's open (sql/backend.c allocated s). */
int sq_open(struct store *s, const char *path, int mode)
{
	int rc = open_store(s, path, mode);

	if (rc == STORE_UNAVAILABLE)
		diagnose(s, path, mode == STORE_RO);
	return rc;
}

static int open_store(struct store *s, const char *path, int mode)
{
	int flags = SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE;
	int rc;

	s->readonly = mode == STORE_RO;
	flags |= s->readonly ? SQLITE_OPEN_READONLY :
			       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	if (install_allocator() != SQLITE_OK)
		return store_fail(s, STORE_UNAVAILABLE, "sqlite3 allocator");
	rc = sqlite3_open_v2(path, &s->db, flags, NULL);
	if (rc != SQLITE_OK)
		return store_fail(s, STORE_UNAVAILABLE, "cannot open database "
				  "'%s': %s", path, s->db ? sqlite3_errmsg(s->db) :
				  sqlite3_errstr(rc));
	file_id(path, &s->dev, &s->ino);	/* sq_reuse compares */
	if ((rc = configure(s)))
		return rc;
	/* SQLite quietly opens a write-protected file read-only; say so now
	 * rather than at the first write. */
	if (!s->readonly && sqlite3_db_readonly(s->db, "main") == 1)
		return store_fail(s, STORE_UNAVAILABLE, "database '%s' is "
				  "read-only", path);
	if (s->readonly) {
		int v;
		if ((rc = user_version(s, &v)))
			return rc;
		if (v != store_schema_version())
			return store_fail(s, STORE_UNAVAILABLE, "database '%s' "
					  "has schema %d, this program %d: run "
					  "pyexec-admin init", path, v,
					  store_schema_version());
		return STORE_OK;
	}
	return migrate(s);
}

/* Which file path names now (0, 0 when none): a kept store checks that
 * it still writes where the operator's path leads (a restored backup, a
 * file moved away: sq_reuse). */
static void file_id(const char *path, dev_t *dev, ino_t *ino)
{
	struct stat st;

	*dev = 0;
	*ino = 0;
	if (lstat(path, &st) == 0) {
		*dev = st.st_dev;
		*ino = st.st_ino;
	}
}

int sq_idle(const struct store *s)
{
	return s->db && sqlite3_get_autocommit(s->db);
}

/* backend.h, reuse: the same file, this build's schema, no transaction
 * left open; the busy timeout the request's environment asks for. */
int sq_reuse(struct store *s, const char *path)
{
	dev_t dev;
	ino_t ino;
	int v, rc;

	file_id(path, &dev, &ino);
	if (!sq_idle(s) || !s->ino || dev != s->dev || ino != s->ino)
		return 1;
	set_busy(s);
	if ((rc = user_version(s, &v)) != STORE_OK)
		return rc;
	return v == store_schema_version() ? STORE_OK : 1;
}

void sq_close(struct store *s)
{
	sqlite3_close_v2(s->db);
	s->db = NULL;
}

/* --- settings ------------------------------------------------------------- */

int sq_settings_load(struct store *s, struct settings *out)
{
	sqlite3_stmt *st;
	int rc;

	settings_defaults(out);
	if ((rc = store_prepare(s, "SELECT key, value FROM settings", &st)))
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);
		const char *v = (const char *)sqlite3_column_text(st, 1);
		/* A value that no longer validates keeps the default. */
		if (k && v)
			settings_apply(out, k, v);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? STORE_OK : store_sqlite_fail(s, rc, "read settings");
}

int sq_setting_set(struct store *s, const char *key, const char *value)
{
	const struct setting_def *d = setting_find(key);
	sqlite3_stmt *st;
	int rc;

	if (!d)
		return store_fail(s, STORE_INVALID, "unknown setting '%s'", key);
	if (setting_validate(d, value, s->err, sizeof(s->err)) != 0)
		return STORE_INVALID;
	if ((rc = store_prepare(s, "INSERT INTO settings (key, value) "
				"VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE "
				"SET value = excluded.value", &st)))
		return rc;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? STORE_OK : store_sqlite_fail(s, rc, "write setting");
}

int sq_setting_unset(struct store *s, const char *key)
{
	sqlite3_stmt *st;
	int rc;

	if (!setting_find(key))
		return store_fail(s, STORE_INVALID, "unknown setting '%s'", key);
	if ((rc = store_prepare(s, "DELETE FROM settings WHERE key = ?1", &st)))
		return rc;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? STORE_OK : store_sqlite_fail(s, rc, "unset setting");
}
