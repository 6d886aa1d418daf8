/* SPDX-License-Identifier: MIT */
/*
 * main.c: pyexec.cgi, one request from top to bottom.
 *
 *   limits -> read the request -> validate the job -> run it in the
 *   sandbox -> answer
 *
 * This process is the broker: it never runs the program itself. It
 * outlives whatever the program does, so an answer is always written.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "config.h"
#include "job.h"
#include "limits.h"
#include "request.h"
#include "response.h"
#include "banned.h"

/* fds 0-2 must exist, or the first file we open would become stdout. */
static void sane_stdio(void)
{
	int fd;

	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
		;
	if (fd > 2)
		close(fd);
}

static int run(const struct config *cfg, const struct request *req,
	       const struct job *job)
{
	struct sb_job sj = {
		.code = job->code, .code_len = job->code_len,
		.input_json = req->body, .input_json_len = req->len,
		.input_key = "input_data", .input_empty = job->input_empty,
	};
	struct sb_limits lim = {
		.timeout_ms = cfg->timeout_ms, .cpu_ms = cfg->cpu_ms,
		.memory_mb = cfg->memory_mb, .output_bytes = cfg->output_bytes,
	};
	struct sb_result res;
	struct http_error e;
	char err[256];

	if (sandbox_prepare(err, sizeof(err)) != 0) {
		http_fail(&e, 500, "sandbox unavailable: %s", err);
		respond_refusal(&e);
		return 1;
	}
	sandbox_run(&sj, &lim, &res);
	if (res.outcome == SB_INTERNAL)
		fprintf(stderr, "pyexec.cgi: sandbox failed: %s\n",
			res.error ? res.error : "?");
	respond_result(&res);
	sb_result_release(&res);
	return 0;
}

int main(void)
{
	struct config cfg;
	struct request req = { 0 };
	struct job job = { 0 };
	struct http_error e;
	char err[200];
	int rc = 0;

	sane_stdio();
	signal(SIGPIPE, SIG_IGN);
	if (config_load(&cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "pyexec.cgi: %s\n", err);
		http_fail(&e, 500, "server misconfigured: %s", err);
		respond_refusal(&e);
		return 0;
	}
	if (request_read(&req, STDIN_FILENO, cfg.body_bytes,
			 cfg.body_timeout_ms, &e) != 0 ||
	    job_parse(&job, req.body, req.len, &cfg, &e) != 0)
		respond_refusal(&e);
	else
		rc = run(&cfg, &req, &job);
	job_release(&job);
	request_release(&req);
	return rc;
}
