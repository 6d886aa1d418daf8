/* SPDX-License-Identifier: MIT */
/*
 * cmd_doctor.c: pyexec-admin doctor, a check of everything pyexec relies
 * on: the kernel's features, the database and who can write it, the
 * embedded Python, and a live self-test through the real pyexec.cgi with a
 * throw-away database (hello world, two escape attempts, the layers the
 * sandbox reports). Each check is OK, WARN (pyexec works, with less) or
 * FAIL (it does not); the exit status is 1 when anything FAILs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <cjson/cJSON.h>
#include "admin.h"
#include "fcgi_probe.h"
#include "../cgi/banned.h"

#ifndef PYEXEC_PYTHON_VERSION
#define PYEXEC_PYTHON_VERSION "?"
#endif
/* Where an installed pyexec.cgi is looked for when it is neither next to
 * pyexec-admin (the build tree) nor where make install puts it relative to
 * pyexec-admin (BINDIR/../lib/pyexec, whatever the PREFIX). */
#ifndef PYEXEC_CGI_PATH
#define PYEXEC_CGI_PATH "/usr/local/lib/pyexec/pyexec.cgi"
#endif

/* The sandbox's unprivileged identity (sandbox/ns.c). */
#define SANDBOX_ID 65534
/* How long one self-test request may take, in all. */
#define SELFTEST_DEADLINE_MS 60000
#define SELFTEST_MAX_OUTPUT (1 << 20)

enum verdict { OK, WARN, FAIL };

struct doctor {
	int json;
	const char *cgi;	/* --cgi */
	const char *fcgi;	/* --fcgi: a running pyexec-fcgi's socket */
	int count[3];
};

static void report(struct doctor *d, enum verdict v, const char *check,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void report(struct doctor *d, enum verdict v, const char *check,
		   const char *fmt, ...)
{
	static const char *const names[] = { "OK", "WARN", "FAIL" };
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	/* One line per check, whatever the detail quoted. */
	for (char *p = detail; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	d->count[v]++;
	if (d->json) {
		printf("{\"check\": \"%s\", \"status\": \"%s\", \"detail\": ",
		       check, names[v]);
		put_json_string(stdout, detail);
		printf("}\n");
	} else {
		printf("%-4s  %-20s %s\n", names[v], check, detail);
	}
	fflush(stdout);
}

/* --- the kernel ----------------------------------------------------------- */

static int read_long(const char *path, long *v)
{
	char buf[64];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return parse_int(buf, LONG_MIN, LONG_MAX, v);
}

static int action_avail(unsigned action)
{
	return (int)syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action);
}

static void check_seccomp(struct doctor *d)
{
	int mode = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);

	if (mode < 0 && errno == EINVAL) {
		report(d, FAIL, "kernel.seccomp", "the kernel has no seccomp "
		       "(CONFIG_SECCOMP_FILTER): pyexec.cgi runs nothing");
		return;
	}
	if (action_avail(SECCOMP_RET_TRAP) != 0) {
		if (errno == EINVAL)	/* before Linux 4.14: cannot ask */
			report(d, OK, "kernel.seccomp", "filter mode available "
			       "(the kernel cannot list its actions)");
		else
			report(d, FAIL, "kernel.seccomp", "SECCOMP_RET_TRAP is "
			       "not available: %s", strerror(errno));
		return;
	}
	if (action_avail(SECCOMP_RET_ERRNO) != 0) {
		report(d, FAIL, "kernel.seccomp", "SECCOMP_RET_ERRNO is not "
		       "available: %s", strerror(errno));
		return;
	}
	report(d, OK, "kernel.seccomp", "filters with SECCOMP_RET_TRAP and "
	       "SECCOMP_RET_ERRNO available%s", mode == 2 ? " (this process is "
	       "already filtered: a container?)" : "");
}

/* What the sandbox does: drop root to 65534, then unshare. 0 or errno. */
static int try_userns(void)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return errno;
	if (pid == 0) {
		if (geteuid() == 0 &&
		    (setgroups(0, NULL) != 0 ||
		     setresgid(SANDBOX_ID, SANDBOX_ID, SANDBOX_ID) != 0 ||
		     setresuid(SANDBOX_ID, SANDBOX_ID, SANDBOX_ID) != 0))
			_exit(255);
		_exit(unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0 ? 0 :
		      errno & 0xff);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return errno;
	if (!WIFEXITED(status))
		return EINTR;
	return WEXITSTATUS(status);
}

static void check_userns(struct doctor *d)
{
	long max = -1, unpriv = -1, apparmor = -1;
	char why[160] = "";
	int err;

	read_long("/proc/sys/user/max_user_namespaces", &max);
	read_long("/proc/sys/kernel/unprivileged_userns_clone", &unpriv);
	read_long("/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
		  &apparmor);
	if (max == 0)
		snprintf(why, sizeof(why), "; user.max_user_namespaces = 0");
	else if (unpriv == 0)
		snprintf(why, sizeof(why), "; kernel.unprivileged_userns_clone "
			 "= 0");
	else if (apparmor == 1)
		snprintf(why, sizeof(why), "; kernel.apparmor_restrict_"
			 "unprivileged_userns = 1");
	err = try_userns();
	if (err == 0)
		report(d, OK, "kernel.userns", "unshare(CLONE_NEWUSER|"
		       "CLONE_NEWNET) works as %s (max_user_namespaces %ld)",
		       geteuid() == 0 ? "uid 65534" : "this user", max);
	else if (err == 255)
		report(d, WARN, "kernel.userns", "cannot switch to uid 65534 to "
		       "try user namespaces");
	else
		report(d, WARN, "kernel.userns", "unshare(CLONE_NEWUSER) refused "
		       "as %s: %s%s: runs get no user or network namespace",
		       geteuid() == 0 ? "uid 65534" : "this user", strerror(err),
		       why);
}

static void check_landlock(struct doctor *d)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
			   LANDLOCK_CREATE_RULESET_VERSION);

	if (abi < 1)
		report(d, WARN, "kernel.landlock", "%s: runs get no Landlock "
		       "ruleset", errno == ENOSYS ? "the kernel has no Landlock "
		       "(CONFIG_SECURITY_LANDLOCK)" : errno == EOPNOTSUPP ?
		       "Landlock is built in but not enabled (lsm= boot "
		       "parameter)" : strerror(errno));
	else if (abi < 6)
		report(d, OK, "kernel.landlock", "ABI %ld: the file system is "
		       "denied (ABI 6, Linux 6.12, would also scope signals and "
		       "abstract sockets)", abi);
	else
		report(d, OK, "kernel.landlock", "ABI %ld: the file system is "
		       "denied, signals and abstract sockets scoped", abi);
}

/* --- the embedded Python -------------------------------------------------- */

static void check_python(struct doctor *d)
{
	struct stat st;

	if (stat(PYEXEC_PYTHON_STDLIB_NARROW "/os.py", &st) != 0)
		report(d, FAIL, "python", "Python %s's standard library is not "
		       "at %s (python3 upgraded? rebuild pyexec)",
		       PYEXEC_PYTHON_VERSION, PYEXEC_PYTHON_STDLIB_NARROW);
	else if (stat(PYEXEC_PYTHON_STDLIB_NARROW "/lib-dynload", &st) != 0)
		report(d, FAIL, "python", "Python %s: no %s/lib-dynload "
		       "(install libpython%s-stdlib)", PYEXEC_PYTHON_VERSION,
		       PYEXEC_PYTHON_STDLIB_NARROW, PYEXEC_PYTHON_VERSION);
	else
		report(d, OK, "python", "embedded Python %s, standard library "
		       "%s", PYEXEC_PYTHON_VERSION, PYEXEC_PYTHON_STDLIB_NARROW);
}

/* --- the database --------------------------------------------------------- */

/* The modules programs may import, by default (users may have a grant). */
static void report_profile(struct doctor *d, struct store *db)
{
	struct settings cfg;
	char text[PROFILE_TEXT_MAX + 1];

	settings_defaults(&cfg);
	if (store_settings_load(db, &cfg) != STORE_OK) {
		report(d, FAIL, "sandbox.modules", "%s", store_error(db));
		return;
	}
	profile_describe(cfg.modules, text, sizeof(text));
	report(d, OK, "sandbox.modules", "allowed_modules %s (the anonymous "
	       "identity and users without a grant)", text);
}

static void check_database(struct doctor *d, const char *path)
{
	struct store *db = NULL;
	struct store_health h;
	struct stat st;

	if (store_is_file(path) && stat(path, &st) != 0) {
		report(d, errno == ENOENT ? WARN : FAIL, "db.open", "%s: %s%s",
		       path, strerror(errno), errno == ENOENT ? " (pyexec-admin "
		       "init, or the CGI's first request, creates it)" : "");
		return;
	}
	if (store_open(&db, path, STORE_RO) != STORE_OK) {
		report(d, FAIL, "db.open", "%s", store_error(db));
		store_close(db);
		return;
	}
	if (store_health(db, &h) != STORE_OK) {
		report(d, FAIL, "db.open", "%s", store_error(db));
		store_close(db);
		return;
	}
	report_profile(d, db);
	store_close(db);
	report(d, OK, "db.open", "%s: %lld users, %lld requests logged, "
	       "%lld KiB (%lld KiB free)", path, (long long)h.users,
	       (long long)h.runs, (long long)(h.pages * h.page_size / 1024),
	       (long long)(h.freelist * h.page_size / 1024));
	if (strcmp(h.integrity, "ok") == 0)
		report(d, OK, "db.integrity", "integrity_check: ok");
	else
		report(d, FAIL, "db.integrity", "integrity_check: %s",
		       h.integrity);
	if (strcmp(h.journal_mode, "postgresql") == 0)
		report(d, OK, "db.journal", "a PostgreSQL server: its WAL, its "
		       "durability, its backups (pg_dump)");
	else if (strcmp(h.journal_mode, "wal") == 0)
		report(d, OK, "db.journal", "WAL");
	else
		report(d, WARN, "db.journal", "journal mode %s, not WAL: readers "
		       "and the CGI block each other (pyexec-admin init sets it)",
		       h.journal_mode);
	if (h.totals_off == 0)
		report(d, OK, "db.totals", "/metrics' totals agree with the log");
	else
		report(d, FAIL, "db.totals", "%s (pyexec-admin vacuum rebuilds "
		       "them from the log)", h.totals_off < 0 ? "cannot read "
		       "/metrics' totals" : "/metrics' totals differ from the "
		       "log, as after rows written by hand");
	if (h.schema_version == store_schema_version())
		report(d, OK, "db.schema", "version %d, this program's",
		       h.schema_version);
	else
		report(d, FAIL, "db.schema", "version %d, this program's is %d",
		       h.schema_version, store_schema_version());
}

static void owner_text(const struct stat *st, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(st->st_uid);
	struct group *gr = getgrgid(st->st_gid);
	char u[32], g[32];

	if (pw)
		snprintf(u, sizeof(u), "%s", pw->pw_name);
	else
		snprintf(u, sizeof(u), "%u", (unsigned)st->st_uid);
	if (gr)
		snprintf(g, sizeof(g), "%s", gr->gr_name);
	else
		snprintf(g, sizeof(g), "%u", (unsigned)st->st_gid);
	snprintf(buf, len, "%s:%s %04o", u, g, (unsigned)(st->st_mode & 07777));
}

struct who {
	uid_t uid;
	gid_t groups[256];
	int ngroups;
};

/* Whether who may do `want` (bits of 07) by the mode bits, as the kernel
 * decides without ACLs: the owner's bits if it owns the file, else the
 * group's if it is in the file's group, else the others'. */
static int mode_allows(const struct who *w, const struct stat *st, int want)
{
	int bits;

	if (w->uid == 0)
		return 1;
	if (st->st_uid == w->uid) {
		bits = (st->st_mode >> 6) & 7;
	} else {
		bits = st->st_mode & 7;
		for (int i = 0; i < w->ngroups; i++)
			if (w->groups[i] == st->st_gid) {
				bits = (st->st_mode >> 3) & 7;
				break;
			}
	}
	return (bits & want) == want;
}

/* The first ancestor of dir (dir excluded) that who cannot search. */
static const char *unsearchable(const struct who *w, const char *dir,
				char *buf, size_t len)
{
	struct stat st;

	for (const char *p = dir; (p = strchr(p, '/')) != NULL; p++) {
		size_t n = p == dir ? 1 : (size_t)(p - dir);
		if (n >= len)
			return NULL;
		memcpy(buf, dir, n);
		buf[n] = 0;
		if (stat(buf, &st) == 0 && !mode_allows(w, &st, 1))
			return buf;
	}
	return NULL;
}

/* PYEXEC_RUN_DIR, as the CGI reads it (cgi/slots.c). */
static const char *slots_dir(void)
{
	const char *r = getenv("PYEXEC_RUN_DIR");

	return r && *r ? r : "/run/pyexec";
}

static void check_access(struct doctor *d, const char *path)
{
	static const char *const extra[] = { "-wal", "-shm" };
	char dir[PATH_MAX], real[PATH_MAX], anc[PATH_MAX], f[PATH_MAX + 8];
	char fown[96] = "", down[96], *slash;
	struct stat fst, dst, st;
	struct passwd *pw;
	struct who w;
	const char *bad = NULL;
	int have_file;

	if (!store_is_file(path)) {
		report(d, OK, "db.owner", "a PostgreSQL server: no local "
		       "database files (the sandbox slots are in %s)",
		       slots_dir());
		return;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = 0;
	else
		*slash = 0;
	if (!realpath(dir, real) || stat(real, &dst) != 0) {
		report(d, FAIL, "db.owner", "directory %s: %s", dir,
		       strerror(errno));
		return;
	}
	have_file = stat(path, &fst) == 0;
	if (have_file)
		owner_text(&fst, fown, sizeof(fown));
	owner_text(&dst, down, sizeof(down));
	if (have_file)
		report(d, OK, "db.owner", "file %s, directory %s %s", fown, real,
		       down);
	else
		report(d, OK, "db.owner", "no file yet; directory %s %s", real,
		       down);

	if (!(pw = getpwnam("www-data"))) {
		report(d, WARN, "db.www-data", "no user www-data on this host: "
		       "make sure the web server's user can write %s and %s",
		       real, path);
		return;
	}
	w.uid = pw->pw_uid;
	w.ngroups = (int)(sizeof(w.groups) / sizeof(w.groups[0]));
	if (getgrouplist(pw->pw_name, pw->pw_gid, w.groups, &w.ngroups) < 0)
		w.ngroups = 0;
	if (unsearchable(&w, real, anc, sizeof(anc)))
		bad = anc;
	else if (!mode_allows(&w, &dst, 3))
		bad = real;
	else if (have_file && !mode_allows(&w, &fst, 6))
		bad = path;
	for (size_t i = 0; !bad && have_file && i < 2; i++) {
		snprintf(f, sizeof(f), "%s%s", path, extra[i]);
		if (stat(f, &st) == 0 && !mode_allows(&w, &st, 6))
			bad = f;
	}
	if (bad) {
		if (stat(bad, &st) == 0)
			owner_text(&st, fown, sizeof(fown));
		report(d, FAIL, "db.www-data", "www-data (uid %u) cannot %s %s "
		       "(%s, by its mode bits): a CGI run as www-data answers "
		       "every request 503; fix: %s '%s'", (unsigned)pw->pw_uid,
		       bad == anc ? "search" : "write", bad, fown,
		       bad == anc ? "chmod o+x" : "chown -R www-data:www-data",
		       bad == anc ? anc : real);
	} else {
		report(d, OK, "db.www-data", "www-data (uid %u) can %s (by the "
		       "mode bits)", (unsigned)pw->pw_uid, have_file ?
		       "write the database, its -wal and -shm files and its "
		       "directory" : "create the database in its "
		       "directory");
	}
}

/* --- the live self-test --------------------------------------------------- */

struct reply {
	int status;		/* HTTP status; 0 when the CGI did not answer */
	cJSON *json;
	char err[256];		/* why there is no answer */
};

static const char *str_member(const struct reply *r, const char *key)
{
	const cJSON *v = r->json ? cJSON_GetObjectItemCaseSensitive(r->json,
								    key) : NULL;

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int true_member(const struct reply *r, const char *key)
{
	return r->json && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r->json,
									 key));
}

static void first_line_of(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	buf[0] = 0;
	if (fd < 0)
		return;
	n = read(fd, buf, len - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	buf[strcspn(buf, "\n")] = 0;
}

static void parse_reply(const char *out, size_t n, struct reply *r)
{
	const char *body = memmem(out, n, "\n\n", 2);

	if (!body || strncmp(out, "Status: ", 8) != 0) {
		snprintf(r->err, sizeof(r->err), "no CGI response (%zu bytes of "
			 "output)", n);
		return;
	}
	r->status = (int)strtol(out + 8, NULL, 10);
	body += 2;
	r->json = cJSON_ParseWithLength(body, n - (size_t)(body - out));
	if (!r->json)
		snprintf(r->err, sizeof(r->err), "HTTP %d with a body that is "
			 "not JSON", r->status);
}

/* Reads the child's stdout until EOF or the deadline; returns the bytes. */
static char *drain(int fd, pid_t pid, size_t *len)
{
	char *out = malloc(SELFTEST_MAX_OUTPUT + 1);
	int64_t deadline = now_ms() + SELFTEST_DEADLINE_MS;
	size_t n = 0;

	if (!out)
		return NULL;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - now_ms();
		ssize_t got;
		if (left <= 0 || n >= SELFTEST_MAX_OUTPUT) {
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			break;
		got = read(fd, out + n, SELFTEST_MAX_OUTPUT - n);
		if (got == 0)
			break;
		if (got < 0 && errno != EINTR && errno != EAGAIN)
			break;
		if (got > 0)
			n += (size_t)got;
	}
	out[n] = 0;
	*len = n;
	return out;
}

/* Runs pyexec.cgi as a web server would, with {"code": code} as the
 * body and the throw-away database in dir. */
static void run_cgi(const char *cgi, const char *dir, const char *code,
		    struct reply *r)
{
	char env_len[48], env_db[PATH_MAX + 16], errpath[PATH_MAX];
	char *envp[] = {
		"PATH=/usr/bin:/bin", "GATEWAY_INTERFACE=CGI/1.1",
		"SERVER_PROTOCOL=HTTP/1.1", "REQUEST_METHOD=POST",
		"CONTENT_TYPE=application/json", env_len, env_db,
		"REMOTE_ADDR=127.0.0.1", "PYEXEC_TIMEOUT_MS=10000", NULL,
	};
	char *argv[] = { (char *)cgi, NULL };
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errfd, status;
	cJSON *req = cJSON_CreateObject();
	char *body = NULL, *resp;
	size_t blen, rlen = 0;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	if (!req || !cJSON_AddStringToObject(req, "code", code) ||
	    !(body = cJSON_PrintUnformatted(req))) {
		snprintf(r->err, sizeof(r->err), "out of memory");
		cJSON_Delete(req);
		return;
	}
	cJSON_Delete(req);
	blen = strlen(body);
	snprintf(env_len, sizeof(env_len), "CONTENT_LENGTH=%zu", blen);
	snprintf(env_db, sizeof(env_db), "PYEXEC_DB=%s/pyexec.db", dir);
	snprintf(errpath, sizeof(errpath), "%s/stderr", dir);
	errfd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (errfd < 0 || pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
		snprintf(r->err, sizeof(r->err), "pipe: %s", strerror(errno));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(r->err, sizeof(r->err), "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 ||
		    dup2(errfd, 2) < 0)
			_exit(127);
		execve(cgi, argv, envp);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	in[0] = out[1] = -1;
	for (size_t done = 0; done < blen;) {
		ssize_t w = write(in[1], body + done, blen - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;	/* it stopped reading: its answer says why */
		done += (size_t)w;
	}
	close(in[1]);
	in[1] = -1;
	resp = drain(out[0], pid, &rlen);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (resp)
		parse_reply(resp, rlen, r);
	free(resp);
	if (!r->json) {
		char first[200];
		first_line_of(errpath, first, sizeof(first));
		if (first[0])
			snprintf(r->err, sizeof(r->err), "%s", first);
		else if (WIFSIGNALED(status))
			snprintf(r->err, sizeof(r->err), "pyexec.cgi killed by "
				 "signal %d", WTERMSIG(status));
		else if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
			snprintf(r->err, sizeof(r->err), "cannot execute %s",
				 cgi);
		else if (WIFEXITED(status) && !r->status)
			snprintf(r->err, sizeof(r->err), "pyexec.cgi exited "
				 "with status %d and no CGI response (%zu bytes "
				 "of output)", WEXITSTATUS(status), rlen);
	}
out:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	if (errfd >= 0)
		close(errfd);
	cJSON_free(body);
}

/* What a response says, for a FAIL line. */
static void describe(const struct reply *r, char *buf, size_t len)
{
	const char *t = str_member(r, "error_type"), *e = str_member(r, "error");

	if (!r->json)
		snprintf(buf, len, "%s", r->err);
	else
		snprintf(buf, len, "HTTP %d, %s: %.200s", r->status,
			 t ? t : "no error", e ? e : str_member(r, "output") ?
			 str_member(r, "output") : "");
}

static void rm_tree(const char *dir)
{
	char p[PATH_MAX + 256];
	struct dirent *e;
	DIR *dp = opendir(dir);

	if (dp) {
		while ((e = readdir(dp)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 ||
			    strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
		closedir(dp);
	}
	rmdir(dir);
}

/* Where pyexec.cgi is looked for, relative to pyexec-admin's directory:
 * beside it (the build tree), then where make install puts it. */
static const char *const cgi_beside[] = {
	"pyexec.cgi", "../lib/pyexec/pyexec.cgi",
};

/* buf without its "..": the path the report names. */
static int tidy_path(char *buf, size_t len)
{
	char real[PATH_MAX];

	if (realpath(buf, real) && strlen(real) < len)
		snprintf(buf, len, "%s", real);
	return 0;
}

/* --cgi, else beside this program, else the compiled-in path. */
static int find_cgi(const struct doctor *d, char *buf, size_t len)
{
	char self[PATH_MAX];
	char *slash;
	ssize_t n;

	if (d->cgi) {
		snprintf(buf, len, "%s", d->cgi);
		return access(buf, X_OK);
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = 0;
		slash = strrchr(self, '/');
		if (slash)
			*slash = 0;
		for (size_t i = 0; slash && i < sizeof(cgi_beside) /
		     sizeof(cgi_beside[0]); i++)
			if (snprintf(buf, len, "%s/%s", self, cgi_beside[i]) <
			    (int)len && access(buf, X_OK) == 0)
				return tidy_path(buf, len);
	}
	snprintf(buf, len, "%s", PYEXEC_CGI_PATH);
	return access(buf, X_OK);
}

static const struct layer {
	const char *name, *what;
	enum verdict missing;	/* when absent */
} layers[] = {
	{ "python", "import allowlist and restricted builtins", FAIL },
	{ "audit_hook", "the audit hook refuses open, os.*, sockets ...", FAIL },
	{ "seccomp", "the system call allowlist", FAIL },
	{ "no_new_privs", "no privilege gain through execve", FAIL },
	{ "rlimits", "memory, CPU, file size, processes", FAIL },
	{ "uid_drop", "root dropped to uid 65534", FAIL },
	{ "userns", "own user namespace", WARN },
	{ "netns", "own network namespace: no interface", WARN },
	{ "landlock", "the file system denied", WARN },
};

static int has_layer(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == n && strncmp(p, name, n) == 0)
			return 1;
		p = end ? end + 1 : NULL;
	}
	return 0;
}

static void check_layers(struct doctor *d, const char *list)
{
	for (size_t i = 0; i < sizeof(layers) / sizeof(layers[0]); i++) {
		const struct layer *l = &layers[i];
		char check[40];

		snprintf(check, sizeof(check), "layer.%s", l->name);
		if (!list) {
			report(d, FAIL, check, "unknown: the self-test did not run");
		} else if (has_layer(list, l->name)) {
			report(d, OK, check, "working: %s%s", l->what,
			       strcmp(l->name, "landlock") == 0 &&
			       has_layer(list, "landlock_scope") ?
			       ", signals and abstract sockets scoped" :
			       strcmp(l->name, "userns") == 0 &&
			       has_layer(list, "ipcns") ? " (and IPC, UTS)" : "");
		} else if (strcmp(l->name, "uid_drop") == 0 && geteuid() != 0) {
			report(d, OK, check, "not needed: pyexec.cgi does not run "
			       "as root here");
		} else {
			report(d, l->missing, check, "not active: %s", l->what);
		}
	}
}

static void self_test(struct doctor *d)
{
	static const char hello[] = "print('hello, world')";
	static const char open_probe[] = "print(open('/etc/passwd').read())";
	static const char audit_probe[] =
		"import random\n"
		"print(random._os.open('/etc/passwd', random._os.O_RDONLY))";
	char cgi[PATH_MAX], tmpl[PATH_MAX], why[320];
	const char *tmp = getenv("TMPDIR"), *out, *type, *err;
	const char *sandbox = NULL;
	struct reply r[3];

	if (find_cgi(d, cgi, sizeof(cgi)) != 0) {
		report(d, FAIL, "cgi", d->cgi ? "%s is not an executable" :
		       "no pyexec.cgi beside pyexec-admin, in ../lib/pyexec/ "
		       "from it, nor at %s (give --cgi PATH)", d->cgi ? cgi : PYEXEC_CGI_PATH);
		check_layers(d, NULL);
		return;
	}
	report(d, OK, "cgi", "%s", cgi);
	snprintf(tmpl, sizeof(tmpl), "%s/pyexec-doctor-XXXXXX",
		 tmp && *tmp == '/' ? tmp : "/tmp");
	if (!mkdtemp(tmpl)) {
		report(d, FAIL, "selftest", "cannot make a temporary directory "
		       "in %s: %s", tmp && *tmp == '/' ? tmp : "/tmp",
		       strerror(errno));
		check_layers(d, NULL);
		return;
	}
	run_cgi(cgi, tmpl, hello, &r[0]);
	run_cgi(cgi, tmpl, open_probe, &r[1]);
	run_cgi(cgi, tmpl, audit_probe, &r[2]);
	rm_tree(tmpl);

	out = str_member(&r[0], "output");
	if (r[0].status == 200 && true_member(&r[0], "success") && out &&
	    strcmp(out, "hello, world\n") == 0) {
		const cJSON *ms = cJSON_GetObjectItemCaseSensitive(r[0].json,
						"execution_time_ms");
		report(d, OK, "selftest.hello", "printed 'hello, world' "
		       "(%.3f ms of execution)", cJSON_IsNumber(ms) ?
		       ms->valuedouble : 0.0);
	} else {
		describe(&r[0], why, sizeof(why));
		report(d, FAIL, "selftest.hello", "%s", why);
	}

	type = str_member(&r[1], "error_type");
	out = str_member(&r[1], "output");
	if (r[1].status == 200 && !true_member(&r[1], "success") && type &&
	    strcmp(type, "NameError") == 0) {
		report(d, OK, "selftest.open", "open('/etc/passwd') refused by "
		       "the Python layer (NameError)");
	} else {
		describe(&r[1], why, sizeof(why));
		report(d, FAIL, "selftest.open", "%s%s", out && strstr(out,
		       "root:") ? "THE CODE READ /etc/passwd: " : "", why);
	}

	type = str_member(&r[2], "error_type");
	err = str_member(&r[2], "error");
	out = str_member(&r[2], "output");
	if (r[2].status == 200 && !true_member(&r[2], "success") && type &&
	    strcmp(type, "SecurityViolation") == 0 && err &&
	    strstr(err, "audit event")) {
		report(d, OK, "selftest.audit_hook", "random._os.open refused: "
		       "%s", err);
	} else {
		describe(&r[2], why, sizeof(why));
		report(d, FAIL, "selftest.audit_hook", "%s%s", out &&
		       strspn(out, "0123456789") ? "THE CODE OPENED /etc/passwd: " :
		       "", why);
	}

	for (int i = 0; i < 3 && !sandbox; i++)
		sandbox = str_member(&r[i], "sandbox");
	check_layers(d, sandbox);
	for (int i = 0; i < 3; i++)
		cJSON_Delete(r[i].json);
}

/* A running pyexec-fcgi, by a request that runs nothing (fcgi_probe.c). */
static void check_fcgi(struct doctor *d)
{
	char why[320];
	int status = fcgi_probe(d->fcgi, why, sizeof(why));

	if (status == 200 || status == 401)
		report(d, OK, "fcgi", "pyexec-fcgi answers at %s and reads its "
		       "database", d->fcgi);
	else if (status == 503)
		report(d, FAIL, "fcgi", "pyexec-fcgi at %s answers, but its "
		       "database is unavailable (503): it refuses every run",
		       d->fcgi);
	else if (status > 0)
		report(d, FAIL, "fcgi", "pyexec-fcgi at %s answered %d", d->fcgi,
		       status);
	else
		report(d, FAIL, "fcgi", "%s", why);
}

/* --- the command ---------------------------------------------------------- */

static int doctor_opt(int opt, const char *arg, void *state)
{
	struct doctor *d = state;

	if (opt == 'j')
		d->json = 1;
	else if (opt == 'c')
		d->cgi = arg;
	else if (opt == 'f')
		d->fcgi = arg;
	return 0;
}

int cmd_doctor(int argc, char **argv, struct admin_ctx *ctx)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "cgi", required_argument, NULL, 'c' },
		{ "fcgi", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	struct doctor d = { 0 };

	if (get_options(argc, argv, opts, ctx, doctor_opt, &d) != 0)
		return EXIT_USAGE;
	if (argc - optind != 0)
		return usage_error(ctx->usage, "too many arguments");
	/* A CGI that stops reading its body must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	check_seccomp(&d);
	check_userns(&d);
	check_landlock(&d);
	check_python(&d);
	check_database(&d, ctx->db_path);
	check_access(&d, ctx->db_path);
	self_test(&d);
	if (d.fcgi)
		check_fcgi(&d);
	if (!d.json)
		printf("\n%d OK, %d WARN, %d FAIL\n", d.count[OK], d.count[WARN],
		       d.count[FAIL]);
	return d.count[FAIL] ? 1 : 0;
}
