/* SPDX-License-Identifier: MIT */
/*
 * main.c: pyexec.cgi, one request from top to bottom.
 *
 *   fork the sandbox child (MCP: after the parse, for a tools/call only)
 *   -> open the database (or 503) -> settings ->
 *   identify the Authorization header's token -> read the request ->
 *   validate -> the body's token, quota check + audit row -> take a
 *   sandbox slot -> hand the child its job -> complete the audit row ->
 *   answer
 *
 * The header's token is looked up before the body is read, so that a
 * request refused afterwards (400, 413, 415, 408, 429, 503) and a disabled
 * user's 401 are logged as that user's, not as an anonymous client's.
 *
 * A web server that gives up on the request (SIGTERM: its client went
 * away, its own timeout, a shutdown) cancels it at any phase: while the
 * body is read or a slot awaited it is refused (499, 'Cancelled'); mid-run
 * the child is killed and the row completed as 'Cancelled' (cancel.c).
 *
 * This process is the broker: it never runs the program itself, and it
 * outlives whatever the program does. Every request leaves an audit row,
 * refused ones included; when no row can be written, no code runs (503).
 * The child is forked first, before the database is opened, and executes
 * pyexec-sandbox, so it holds neither the database's descriptor nor
 * anything of the broker's memory; it confines itself while the broker
 * does its database work, and gets its job only once the
 * request is admitted (a refused request's child exits unused).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include "cancel.h"
#include "flow.h"
#include "config.h"
#include "identity.h"
#include "job.h"
#include "limits.h"
#include "mcp.h"
#include "metrics.h"
#include "request.h"
#include "response.h"
#include "slots.h"
#include "../sql/store.h"
#include "../sandbox/trace.h"
#include "banned.h"

/* Seconds a client should wait after a 503. */
#define RETRY_UNAVAILABLE_S 5
#define RETRY_BUSY_S 1

struct ctx {
	const char *db_path;
	struct store *db;
	struct settings cfg;
	struct request req;
	struct job job;
	struct identity id;
	struct run_rec rec;
	struct sb_child sb;
	struct quota_state quota;
	struct reply reply;
	struct mcp mcp;		/* the MCP front end, when via /mcp */
	char anon[80];
	int slot_fd;
	int retry_s;		/* Retry-After of a 503, when not the default;
				 * -1: none, no retry will help */
	int cancel_fd;		/* readable once the web server cancels */
	int audited;		/* the request's row is written */
	int db_failed;		/* the database refused a read or write */
};

/* This program's name in messages: pyexec-fcgi serves through here too. */
static const char *prog = "pyexec.cgi";

static void new_run_id(char out[33])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char raw[16] = { 0 };

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		memset(raw, 0, sizeof(raw));	/* still unique by time below */
	for (size_t i = 0; i < sizeof(raw); i++) {
		out[2 * i] = digits[raw[i] >> 4];
		out[2 * i + 1] = digits[raw[i] & 15];
	}
	out[32] = 0;
}

static void rate_headers(struct ctx *c)
{
	if (c->quota.limit < 0)
		return;		/* admins and unlimited users: no limit to show */
	reply_header(&c->reply, "RateLimit-Limit: %ld", c->quota.limit);
	reply_header(&c->reply, "RateLimit-Remaining: %ld", c->quota.remaining);
	reply_header(&c->reply, "RateLimit-Reset: %ld", c->quota.reset_s);
}

static void log_db_error(struct ctx *c, const char *what)
{
	fprintf(stderr, "%s: request %s: %s: %s\n", prog, c->reply.run_id,
		what, store_error(c->db));
}

/* Answers a refused request, after writing its audit row. A row that
 * cannot be written turns the answer into a 503: nothing goes unaudited. */
static int refuse(struct ctx *c, struct http_error *e)
{
	if (c->mcp.via != VIA_REST)
		mcp_refusal_status(&c->mcp, e);
	c->rec.outcome = "rejected";
	c->rec.error_type = e->type;
	c->rec.error = e->msg;
	c->rec.http_status = e->status;
	if (!c->audited && (!c->db || c->db_failed ||
			    store_run_reject(c->db, &c->rec, &c->cfg) != STORE_OK)) {
		if (c->db && !c->db_failed)
			log_db_error(c, "audit row");
		if (c->retry_s >= 0)	/* else open_db's message stands */
			http_fail(e, 503, "audit log unavailable: request "
				  "refused");
	}
	if (e->status == 405)
		reply_header(&c->reply, "Allow: POST");
	if (e->status == 401)
		reply_header(&c->reply, "WWW-Authenticate: Bearer realm=\"pyexec\"");
	if (e->status == 503 && c->retry_s >= 0)
		reply_header(&c->reply, "Retry-After: %d",
			     c->retry_s ? c->retry_s : RETRY_UNAVAILABLE_S);
	if (e->status == 429)
		reply_header(&c->reply, "Retry-After: %ld", c->retry_s ?
			     (long)c->retry_s : c->quota.reset_s);
	if (e->status == 499) {
		/* cancelled: nobody reads an answer (cancel.h) */
		fprintf(stderr, "%s: request %s: %s\n", prog,
			c->reply.run_id, e->msg);
		return 0;
	}
	if (c->mcp.via != VIA_REST)
		mcp_respond_refusal(&c->mcp, e, &c->reply);
	else
		respond_refusal(e, &c->reply);
	return 0;
}

/* The database and the settings in force; 503 when unusable. */
static int open_db(struct ctx *c, struct http_error *e)
{
	char err[200];

	settings_defaults(&c->cfg);
	if (store_open(&c->db, c->db_path, STORE_RW) != STORE_OK ||
	    store_settings_load(c->db, &c->cfg) != STORE_OK) {
		log_db_error(c, "database");
		c->retry_s = store_never(c->db) ? -1 : 0;
		store_close(c->db);
		c->db = NULL;
		return http_fail(e, 503, "audit log unavailable%s: request "
				 "refused", c->retry_s < 0 ? " (the server is "
				 "misconfigured: retrying will not help)" : "");
	}
	if (config_env_override(&c->cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return http_fail(e, 500, "server misconfigured: %s", err);
	}
	return 0;
}

/*
 * A sandbox slot, after the quota check: an over-quota request gets its
 * 429 at once instead of waiting for a slot. A request that finds none
 * free did not run, so its row becomes a refusal that does not count.
 */
static int take_slot(struct ctx *c, struct http_error *e)
{
	long own = settings_identity_cap(&c->cfg);
	/* Admins, like their quota, have no cap of their own; nor has anyone
	 * when it would be the host's. */
	int capped = !(c->id.is_user && c->id.user.is_admin) &&
		     own < c->cfg.max_concurrent;

	c->slot_fd = slots_acquire_for(slots_run_dir(), c->cfg.max_concurrent,
				       capped ? c->id.key : NULL, own,
				       c->cfg.concurrency_wait_ms);
	if (c->slot_fd >= 0)
		return 0;
	c->retry_s = RETRY_BUSY_S;
	if (c->slot_fd == SLOTS_CANCELLED)
		cancel_fail(e, "it waited for a sandbox slot");
	else if (c->slot_fd == SLOTS_IDENTITY_FULL)
		http_fail(e, 429, "%ld sandboxes of this identity are running "
			  "already (max_concurrent_per_identity): retry when "
			  "one ends", own);
	else
		http_fail(e, 503, c->slot_fd == -1 ?
			  "all %ld sandboxes are busy: retry shortly" :
			  "sandbox slots unavailable (lock file)",
			  c->cfg.max_concurrent);
	c->quota.remaining++;
	rate_headers(c);
	c->rec.outcome = "rejected";
	c->rec.error_type = e->type;
	c->rec.error = e->msg;
	c->rec.http_status = e->status;
	if (store_run_unrun(c->db, &c->rec, &c->cfg) != STORE_OK)
		log_db_error(c, "audit row");
	return -1;
}

/* The row carries the identity known so far: the user a token names
 * (a disabled one too), else the anonymous client. */
static void name_row(struct ctx *c)
{
	c->rec.identity = c->id.key;
	/* pyexec-mcp's local transport has no client address. */
	c->rec.client_addr = c->mcp.via == VIA_STDIO ? NULL : c->id.client;
	c->rec.user_id = c->id.named ? c->id.user.id : 0;
	c->rec.user_name = c->id.named ? c->id.user.name : NULL;
}

/* The header's token, before a byte of the body is read. */
static int identify_early(struct ctx *c, struct http_error *e)
{
	int rc = identify_header(c->db, &c->cfg, &c->id, e);

	if (c->mcp.via == VIA_STDIO && !c->id.named)
		mcp_local_key(c->id.key, sizeof(c->id.key));
	name_row(c);
	if (rc != 0)
		c->db_failed = e->status == 503;
	return rc;
}

/* Identity, quota and the audit row, then a sandbox slot: a request over
 * its quota is a 429 whether or not the host is busy, and a busy 503 still
 * carries the identity's rate-limit headers. */
static int admit(struct ctx *c, struct http_error *e)
{
	int rc;

	rc = mcp_identify(&c->mcp, c->db, &c->cfg, c->job.token, &c->id, e);
	name_row(c);
	if (rc != 0) {
		c->db_failed = e->status == 503;
		return -1;
	}
	c->rec.profile = c->id.profile;
	c->reply.profile = c->id.profile;
	/* Past this the broker must have finished, whatever happened: the
	 * body's wait, a slot's wait, the run, and a grace for the database. */
	c->rec.deadline_ms = c->rec.started_ms + c->cfg.body_timeout_ms +
			     c->cfg.concurrency_wait_ms + c->id.timeout_ms +
			     30000;
	TRACE(TR_IDENTIFY);
	rc = store_run_begin(c->db, &c->rec, c->id.quota, c->cfg.quota_window_s,
			     c->id.reset_ms, &c->cfg, &c->quota);
	if (rc != STORE_OK) {
		log_db_error(c, "audit row");
		c->db_failed = 1;
		return http_fail(e, 503, "audit log unavailable: request refused");
	}
	c->audited = 1;		/* as running, or as refused for the quota */
	TRACE(TR_ADMIT);
	if (c->quota.refused) {
		rate_headers(c);
		return http_fail(e, 429, "rate limit of %ld runs per %ld s "
				 "exceeded: retry in %ld s%s", c->quota.limit,
				 c->cfg.quota_window_s, c->quota.reset_s,
				 c->id.is_user ? "" : "; this limit is shared by "
				 "anonymous clients: a token from the service's "
				 "operator lifts it");
	}
	if (take_slot(c, e) != 0)
		return -1;
	TRACE(TR_SLOT);
	rate_headers(c);
	return 0;
}

static void complete(struct ctx *c, const struct sb_result *res, double wall)
{
	c->rec.outcome = sb_outcome_name(res->outcome);
	c->rec.error_type = res->outcome == SB_OK ? NULL : res->error_type;
	c->rec.error = res->outcome == SB_OK ? NULL : res->error;
	c->rec.output_size = res->output_len;
	c->rec.truncated = res->truncated;
	c->rec.exec_ms = res->exec_ms;
	c->rec.wall_ms = wall;
	c->rec.cpu_ms = res->cpu_ms;
	c->rec.peak_kb = res->peak_kb;
	c->rec.http_status = result_status(res);
	/* A row that cannot be completed stays 'running' and reads as
	 * 'abandoned' past its deadline: it is never missing. */
	if ((!c->db && store_open(&c->db, c->db_path, STORE_RW) != STORE_OK) ||
	    store_run_finish(c->db, &c->rec, &c->cfg) != STORE_OK)
		log_db_error(c, "complete audit row");
	store_close(c->db);
	c->db = NULL;
}

/* Nobody is reading the answer any more: the row says why, and the HTTP
 * status there is nginx's 499 (no response was sent). */
static void cancelled(struct ctx *c, struct sb_result *res)
{
	const char *sig = sigabbrev_np(cancel_signal());
	char msg[512];

	snprintf(msg, sizeof(msg), "%s (SIG%s from the web server: its client "
		 "went away, its own timeout or a shutdown)",
		 res->error ? res->error : "the run was stopped",
		 sig ? sig : "?");
	free(res->error);
	res->error = strdup(msg);
	fprintf(stderr, "%s: request %s: %s\n", prog, c->reply.run_id,
		msg);
}

static void run(struct ctx *c)
{
	struct sb_job sj = {
		.code = c->job.code, .code_len = c->job.code_len,
		.input_json = c->job.input, .input_json_len = c->job.input_len,
		.input_empty = c->job.input_empty,
		.cancel_fd = c->cancel_fd, .modules = c->id.modules,
	};
	struct sb_limits lim = {
		.timeout_ms = c->id.timeout_ms, .cpu_ms = c->id.cpu_ms,
		.memory_mb = c->id.memory_mb,
		.output_bytes = c->cfg.output_bytes,
	};
	struct sb_result res;
	int64_t t0 = now_ms();

	sandbox_run(&c->sb, &sj, &lim, &res);
	if (res.outcome == SB_INTERNAL)
		fprintf(stderr, "%s: request %s: sandbox failed: %s\n", prog,
			c->reply.run_id, res.error ? res.error : "?");
	if (res.outcome == SB_CANCELLED)
		cancelled(c, &res);
	complete(c, &res, (double)(now_ms() - t0));
	TRACE(TR_COMPLETE);
	if (res.outcome != SB_CANCELLED && c->mcp.via != VIA_REST)
		mcp_respond_result(&c->mcp, &res, &c->reply);
	else if (res.outcome != SB_CANCELLED)
		respond_result(&res, &c->reply);
	TRACE(TR_ANSWERED);
	sb_result_release(&res);
}

/*
 * The sandbox child, forked first (a failure is reported by the run). Not
 * for MCP: most of its messages run nothing (initialize, ping, tools/list,
 * notifications, refusals), so the child is forked only once the message
 * is a tools/call (handle), still before the quota check and the audit
 * row; the database is open by then, but the child closes every
 * descriptor but its pipes and executes pyexec-sandbox before anything
 * else, so neither it nor the broker's memory reaches the program.
 */
static void start_child(struct ctx *c)
{
	c->sb.pid = 0;
	c->sb.out_fd = c->sb.res_fd = c->sb.job_fd = -1;
	if (c->mcp.via == VIA_REST)
		sandbox_start(&c->sb);
}

static void handle(struct ctx *c)
{
	struct http_error e;

	if (open_db(c, &e) != 0)
		goto refused;
	TRACE(TR_DB_OPEN);
	if (identify_early(c, &e) != 0)
		goto refused;
	if (c->mcp.via != VIA_REST &&
	    mcp_check_headers(&c->mcp, &c->cfg, &e) != 0)
		goto refused;
	if (request_read(&c->req, STDIN_FILENO, c->cfg.body_bytes,
			 c->cfg.body_timeout_ms, &e) != 0)
		goto refused;
	TRACE(TR_READ);
	if (c->mcp.via != VIA_REST) {
		int rc = mcp_handle(&c->mcp, c->req.body, c->req.len, &c->cfg,
				    &c->job, &c->reply, &e);
		if (rc < 0)
			goto refused;
		if (rc == 0)	/* answered: nothing to run, nothing to audit */
			return;
		sandbox_start(&c->sb);	/* a tools/call: see start_child */
	} else if (job_parse(&c->job, c->req.body, c->req.len, &c->cfg, &e) != 0) {
		goto refused;
	}
	TRACE(TR_PARSE);
	c->rec.code = c->job.code;
	c->rec.code_len = c->job.code_len;
	c->rec.input_size = c->job.input_len;
	if (admit(c, &e) != 0)
		goto refused;
	run(c);
	return;
refused:
	sandbox_discard(&c->sb);
	refuse(c, &e);
	/* Refused before its body was read (not after a stalled or short
	 * one): take it in, or some servers lose the answer. */
	if (!c->req.body)
		request_discard(STDIN_FILENO, c->cfg.body_timeout_ms);
}

/*
 * One request, from the environment and fds 0 and 1 to its audit row and
 * answer: pyexec.cgi's whole life, and one turn of pyexec-fcgi's worker
 * loop (cgi/fcgi_worker.c), which gives it the request the same way.
 */
void pyexec_request(int cancel_fd, const char *db_path, const char *mode)
{
	static struct ctx c;

	prog = strcmp(mode, "fcgi") == 0 ? "pyexec-fcgi" : "pyexec.cgi";
	memset(&c, 0, sizeof(c));
	c.cancel_fd = cancel_fd;
	c.slot_fd = -1;
	c.db_path = db_path;
	new_run_id(c.reply.run_id);
	memcpy(c.rec.id, c.reply.run_id, sizeof(c.rec.id));
	c.rec.started_ms = now_ms();
	c.rec.mode = mode;
	c.rec.client_addr = getenv("REMOTE_ADDR");
	snprintf(c.anon, sizeof(c.anon), "anon:%.64s",
		 c.rec.client_addr ? c.rec.client_addr : "unknown");
	c.rec.identity = c.anon;
	c.mcp.via = mcp_route();
	if (c.mcp.via == VIA_STDIO)
		mcp_local_key(c.anon, sizeof(c.anon));
	c.rec.via = mcp_via_name(c.mcp.via);
	if (metrics_requested()) {	/* not a run: no sandbox, no row */
		metrics_serve(c.db_path, &c.reply, prog);
		return;
	}
	start_child(&c);
	handle(&c);
	sandbox_release(&c.sb);
	store_close(c.db);
	job_release(&c.job);
	request_release(&c.req);
	if (c.slot_fd >= 0)
		close(c.slot_fd);
}

#ifndef PYEXEC_NO_MAIN
/* fds 0-2 must exist, or the first file we open would become stdout. */
static void sane_stdio(void)
{
	int fd;

	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
		;
	if (fd > 2)
		close(fd);
}

int main(void)
{
	int cancel;

	trace_init();
	sane_stdio();
	signal(SIGPIPE, SIG_IGN);
	/* A SIGCHLD ignored by whoever started us (exec keeps SIG_IGN) would
	 * have the kernel reap the child itself: wait4 would never see it end
	 * (every run a timeout) nor report its usage. */
	signal(SIGCHLD, SIG_DFL);
	cancel = cancel_init();
	pyexec_request(cancel, store_default_path(), "cgi");
	trace_report();
	return 0;
}
#endif
