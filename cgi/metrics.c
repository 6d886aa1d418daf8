/* SPDX-License-Identifier: MIT */
/*
 * metrics.c: GET /metrics (any path ending in /metrics): the audit log's
 * figures (sql/metrics.c) in the Prometheus text exposition format 0.0.4.
 * The figures are the store's, so a fleet of hosts sharing one database
 * reports fleet-wide counts, the same as pyexec-admin stats over the same
 * rows.
 *
 * Not public: the request needs an admin's bearer token (a non-admin's is
 * a 403), or, without a token, a client address in the metrics_allow
 * setting (REMOTE_ADDR, the web server's peer; empty by default); else
 * 401. A scrape is not a run: no sandbox is started, no audit row is
 * written, no quota is used. A refused scrape is logged on stderr (the web
 * server's error log).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cidr.h"
#include "config.h"
#include "identity.h"
#include "metrics.h"
#include "../sql/metrics.h"
#include "../sql/store.h"
#include "banned.h"

#ifndef PYEXEC_VERSION
#define PYEXEC_VERSION "unknown"
#endif

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define PATH_MAX_SEEN 4096

/* s (up to len bytes) ends with "/metrics". */
static const char *prog = "pyexec.cgi";	/* for messages */

static int ends_in_metrics(const char *s, size_t len)
{
	static const char tail[] = "/metrics";
	size_t n = sizeof(tail) - 1;

	return s && len >= n && len <= PATH_MAX_SEEN &&
	       memcmp(s + len - n, tail, n) == 0;
}

static int var_ends_in_metrics(const char *name)
{
	const char *v = getenv(name);

	return v && ends_in_metrics(v, strnlen(v, PATH_MAX_SEEN + 1));
}

int metrics_requested(void)
{
	const char *m = getenv("REQUEST_METHOD");
	const char *uri = getenv("REQUEST_URI");

	if (!m || (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0))
		return 0;
	/* REQUEST_URI: the path before any query string. */
	if (uri && ends_in_metrics(uri, strcspn(uri, "?")))
		return 1;
	return var_ends_in_metrics("PATH_INFO") ||
	       var_ends_in_metrics("SCRIPT_NAME");
}

/* An admin's token, or no token from an address in metrics_allow. */
static int authorize(struct store *db, const struct settings *cfg,
		     struct http_error *e)
{
	const char *h = getenv("HTTP_AUTHORIZATION");
	const char *addr = getenv("REMOTE_ADDR");
	struct identity id;

	if (h && *h) {
		if (identify(db, cfg, NULL, &id, e) != 0)
			return -1;
		if (!id.is_user || !id.user.is_admin)
			return http_fail(e, 403, "/metrics needs an admin's "
					 "token");
		return 0;
	}
	if (cfg->metrics_allow[0] && addr &&
	    cidr_list_match(cfg->metrics_allow, addr))
		return 0;
	return http_fail(e, 401, "/metrics needs an admin's token (or a "
			 "client address in metrics_allow)");
}

/* A bounded text buffer; once full, everything after is dropped and the
 * scrape fails rather than answer half the figures. */
struct out {
	char buf[32768];
	size_t len;
	int full;
};

static void put(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, sizeof(o->buf) - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(o->buf) - o->len)
		o->full = 1;
	else
		o->len += (size_t)n;
}

static void family(struct out *o, const char *name, const char *type,
		   const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_requests(struct out *o, const struct store_metrics *m)
{
	family(o, "pyexec_requests_total", "counter", "Requests in the audit "
	       "log, by HTTP status (empty while running) and outcome.");
	for (size_t i = 0; i < m->npairs; i++) {
		const struct metrics_pair *p = &m->pair[i];
		char status[16] = "";

		if (p->http_status > 0)
			snprintf(status, sizeof(status), "%d", p->http_status);
		/* outcome: the schema's lower-case words, never quoted. */
		put(o, "pyexec_requests_total{status=\"%s\",outcome=\"%s\"} "
		    "%lld\n", status, strspn(p->outcome,
		    "abcdefghijklmnopqrstuvwxyz_") == strlen(p->outcome) ?
		    p->outcome : "other", (long long)p->requests);
	}
	family(o, "pyexec_rate_limited_total", "counter", "Requests refused "
	       "for their quota (429).");
	put(o, "pyexec_rate_limited_total %lld\n", (long long)m->rate_limited);
}

static void put_histogram(struct out *o, const struct store_metrics *m)
{
	family(o, "pyexec_run_duration_seconds", "histogram", "Execution "
	       "time of the finished runs (neither refused nor running).");
	for (int i = 0; i < METRICS_NBOUNDS; i++)
		put(o, "pyexec_run_duration_seconds_bucket{le=\"%g\"} %lld\n",
		    metrics_bound_ms[i] / 1000, (long long)m->le[i]);
	put(o, "pyexec_run_duration_seconds_bucket{le=\"+Inf\"} %lld\n",
	    (long long)m->finished);
	put(o, "pyexec_run_duration_seconds_sum %.6f\n", m->exec_ms_sum / 1000);
	put(o, "pyexec_run_duration_seconds_count %lld\n",
	    (long long)m->finished);
}

static void put_rest(struct out *o, const struct store_metrics *m)
{
	family(o, "pyexec_cpu_seconds_total", "counter", "CPU time the runs "
	       "used, user and system.");
	put(o, "pyexec_cpu_seconds_total %.3f\n", (double)m->cpu_ms_sum / 1000);
	family(o, "pyexec_users", "gauge", "Users (tokens) in the database.");
	put(o, "pyexec_users %lld\n", (long long)m->users);
	family(o, "pyexec_build_info", "gauge", "The build of pyexec.cgi "
	       "answering.");
	put(o, "pyexec_build_info{version=\"%s\"} 1\n", PYEXEC_VERSION);
}

static int answer(struct store *db, struct reply *r, struct http_error *e)
{
	static struct out o;
	struct store_metrics m;
	const char *method = getenv("REQUEST_METHOD");

	o.len = 0;	/* pyexec-fcgi answers many requests in one process */
	o.full = 0;
	if (store_metrics(db, &m) != STORE_OK) {
		fprintf(stderr, "%s: /metrics: %s\n", prog,
			store_error(db));
		return http_fail(e, 503, "audit log unavailable");
	}
	put_requests(&o, &m);
	put_histogram(&o, &m);
	put_rest(&o, &m);
	if (o.full)
		return http_fail(e, 500, "metrics too large");
	respond_text(CONTENT_TYPE, o.buf, o.len,
		     method && strcmp(method, "HEAD") == 0, r);
	return 0;
}

static void refuse(const struct http_error *e, struct reply *r)
{
	const char *addr = getenv("REMOTE_ADDR");

	fprintf(stderr, "%s: request %s: /metrics refused (%d) for "
		"%.64s: %s\n", prog, r->run_id, e->status,
		addr ? addr : "unknown",
		e->msg);
	if (e->status == 401)
		reply_header(r, "WWW-Authenticate: Bearer realm=\"pyexec\"");
	if (e->status == 503)
		reply_header(r, "Retry-After: 5");
	respond_refusal(e, r);
}

void metrics_serve(const char *db_path, struct reply *r, const char *name)
{
	struct http_error e;
	struct settings cfg;
	struct store *db = NULL;
	char err[200];

	prog = name;
	settings_defaults(&cfg);
	if (store_open(&db, db_path, STORE_RW) != STORE_OK ||
	    store_settings_load(db, &cfg) != STORE_OK) {
		fprintf(stderr, "%s: /metrics: %s\n", prog,
			store_error(db));
		http_fail(&e, 503, "audit log unavailable");
	} else if (config_env_override(&cfg, err, sizeof(err)) != 0) {
		http_fail(&e, 500, "server misconfigured: %s", err);
	} else if (authorize(db, &cfg, &e) == 0 && answer(db, r, &e) == 0) {
		store_close(db);
		return;
	}
	refuse(&e, r);
	store_close(db);
}
