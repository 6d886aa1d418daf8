/* SPDX-License-Identifier: MIT */
/*
 * mcp_tool.c: what the MCP front end answers. The tool's description and
 * the server's instructions state the modules and the limits in force
 * (the settings of this request); a run's result carries the REST answer
 * as structuredContent, so both front ends give the same object.
 */
#include <stdio.h>
#include <string.h>
#include "mcp_tool.h"
#include "../sandbox/profile.h"
#include "banned.h"

#ifndef PYEXEC_VERSION
#define PYEXEC_VERSION "0.1"
#endif

static void raw(struct jw *w, const char *s)
{
	jw_raw(w, s, strlen(s));
}

static void str(struct jw *w, const char *s, size_t n)
{
	raw(w, "\"");
	jw_escape(w, s, n);
	raw(w, "\"");
}

static void open_result(struct jw *w, const struct mcp *m)
{
	memset(w, 0, sizeof(*w));
	raw(w, "{\"jsonrpc\": \"2.0\", \"id\": ");
	raw(w, m->id);
	raw(w, ", \"result\": ");
}

void mcp_answer_raw(const struct mcp *m, const char *result,
		    const struct reply *r)
{
	struct jw w;

	open_result(&w, m);
	raw(&w, result);
	raw(&w, "}\n");
	respond_raw(200, r, &w);
}

/* The modules and limits in force, one paragraph. */
static void limits_text(const struct settings *cfg, char *out, size_t n)
{
	char names[1024];

	profile_names(cfg->modules, names, sizeof(names));
	snprintf(out, n, "Runs a Python %s program in a kernel sandbox (no "
		 "network, no files, no processes) and returns what it "
		 "printed. Only these modules can be imported (a user's own "
		 "grant may add some): %s. The "
		 "argument input_data (any JSON value) is bound to the global "
		 "`input_data`. Limits per run: %ld ms of wall time, %ld MB "
		 "of memory, %ld bytes of output (more is cut), code up to "
		 "%ld bytes, input_data up to %ld bytes as JSON. Quota: %ld "
		 "runs per %ld s for a client without a token of its own "
		 "(pass one as the `token` argument or a Bearer header).",
		 PYEXEC_PYTHON_VERSION, names, cfg->timeout_ms,
		 cfg->memory_mb, cfg->output_bytes, cfg->code_bytes,
		 cfg->input_bytes, cfg->default_quota, cfg->quota_window_s);
}

void mcp_answer_initialize(const struct mcp *m, const char *version,
			   const struct settings *cfg, const struct reply *r)
{
	char text[2048];
	struct jw w;

	limits_text(cfg, text, sizeof(text));
	open_result(&w, m);
	raw(&w, "{\"protocolVersion\": ");
	str(&w, version, strlen(version));
	raw(&w, ", \"capabilities\": {\"tools\": {\"listChanged\": false}}, "
	    "\"serverInfo\": {\"name\": \"pyexec\", \"title\": \"pyexec\", "
	    "\"version\": \"" PYEXEC_VERSION "\"}, \"instructions\": ");
	str(&w, text, strlen(text));
	raw(&w, "}}\n");
	respond_raw(200, r, &w);
}

static const char input_schema[] =
	"{\"type\": \"object\", \"properties\": {"
	"\"code\": {\"type\": \"string\", \"description\": "
	"\"The Python program; what it prints is the output.\"}, "
	"\"input_data\": {\"description\": \"Any JSON value, bound to the "
	"global input_data (default {}).\"}, "
	"\"token\": {\"type\": \"string\", \"description\": \"A pyexec "
	"token (pyx_...), when not sent as an Authorization header.\"}}, "
	"\"required\": [\"code\"], \"additionalProperties\": false}";

static const char output_schema[] =
	"{\"type\": \"object\", \"properties\": {"
	"\"success\": {\"type\": \"boolean\"}, "
	"\"output\": {\"type\": \"string\"}, "
	"\"error\": {\"type\": [\"string\", \"null\"]}, "
	"\"execution_time_ms\": {\"type\": \"number\"}, "
	"\"error_type\": {\"type\": [\"string\", \"null\"]}, "
	"\"truncated\": {\"type\": \"boolean\"}, "
	"\"cpu_time_ms\": {\"type\": \"integer\"}, "
	"\"peak_memory_kb\": {\"type\": \"integer\"}, "
	"\"sandbox\": {\"type\": [\"string\", \"null\"]}, "
	"\"modules\": {\"type\": [\"string\", \"null\"]}, "
	"\"run_id\": {\"type\": \"string\"}}, "
	"\"required\": [\"success\", \"output\", \"error\", "
	"\"execution_time_ms\"]}";

void mcp_answer_tools(const struct mcp *m, const struct settings *cfg,
		      const struct reply *r)
{
	char text[2048];
	struct jw w;

	limits_text(cfg, text, sizeof(text));
	open_result(&w, m);
	raw(&w, "{\"tools\": [{\"name\": \"" MCP_TOOL "\", "
	    "\"title\": \"Run Python in a sandbox\", \"description\": ");
	str(&w, text, strlen(text));
	raw(&w, ", \"inputSchema\": ");
	raw(&w, input_schema);
	raw(&w, ", \"outputSchema\": ");
	raw(&w, output_schema);
	/* Nothing outside the sandbox changes and nothing is reached; a
	 * program may use random, so a repeat may differ. */
	raw(&w, ", \"annotations\": {\"title\": \"Run Python in a sandbox\", "
	    "\"readOnlyHint\": true, \"destructiveHint\": false, "
	    "\"idempotentHint\": false, \"openWorldHint\": false}}]}}\n");
	respond_raw(200, r, &w);
}

/* The text block: the output, then the error (its traceback) if any. */
static void content_text(struct jw *w, const struct sb_result *res)
{
	raw(w, "\"");
	if (res->output)
		jw_escape(w, res->output, res->output_len);
	if (res->outcome != SB_OK) {
		if (res->output_len && res->output[res->output_len - 1] != '\n')
			raw(w, "\\n");
		if (res->error_type[0] && (!res->error ||
					   !strstr(res->error, res->error_type))) {
			jw_escape(w, res->error_type, strlen(res->error_type));
			raw(w, ": ");
		}
		if (res->error)
			jw_escape(w, res->error, strlen(res->error));
	}
	raw(w, "\"");
}

void mcp_respond_result(const struct mcp *m, const struct sb_result *res,
			const struct reply *r)
{
	struct jw obj, w;
	const char *text;
	size_t len = 0;

	if (res->outcome == SB_INTERNAL) {
		struct http_error e;
		http_fail(&e, 500, "%.200s", res->error ? res->error :
			  "the sandbox failed");
		mcp_respond_refusal(m, &e, r);
		return;
	}
	result_object(res, r, &obj);
	text = jw_finish(&obj, &len);
	open_result(&w, m);
	raw(&w, "{\"content\": [{\"type\": \"text\", \"text\": ");
	content_text(&w, res);
	raw(&w, "}], \"structuredContent\": ");
	if (text)
		jw_raw(&w, text, len - 1);	/* without its newline */
	else
		w.failed = 1;
	raw(&w, res->outcome == SB_OK ? ", \"isError\": false}}\n" :
	    ", \"isError\": true}}\n");
	jw_release(&obj);
	respond_raw(200, r, &w);
}

int mcp_error_code(int status)
{
	if (status == 500)
		return -32603;		/* JSON-RPC's internal error */
	if (status > 400 && status < 500)
		return -32000 - (status - 400);	/* 401 -> -32001, 429 -> -32029 */
	if (status == 400)
		return -32600;
	return -32000;		/* 503 and the rest: server error */
}

void mcp_refusal_status(const struct mcp *m, struct http_error *e)
{
	/* A tools/call the server understood, with arguments it refuses,
	 * is a JSON-RPC error in a 200, as an unknown method is. */
	if (m->in_call && e->status == 400 && !m->rpc_code)
		e->status = 200;
}

void mcp_respond_refusal(const struct mcp *m, const struct http_error *e,
			 const struct reply *r)
{
	int code = m->rpc_code ? m->rpc_code :
		   m->in_call && e->status == 200 ? -32602 :
		   mcp_error_code(e->status);
	struct jw obj, w;
	const char *text;
	size_t len = 0;
	char num[32];

	refusal_object(e, r, &obj);
	jw_long(&obj, "http_status", e->status);
	text = jw_finish(&obj, &len);
	memset(&w, 0, sizeof(w));
	raw(&w, "{\"jsonrpc\": \"2.0\", \"id\": ");
	raw(&w, m->id[0] ? m->id : "null");
	snprintf(num, sizeof(num), "%d", code);
	raw(&w, ", \"error\": {\"code\": ");
	raw(&w, num);
	raw(&w, ", \"message\": ");
	str(&w, e->msg, strlen(e->msg));
	raw(&w, ", \"data\": ");
	if (text)
		jw_raw(&w, text, len - 1);
	else
		w.failed = 1;
	raw(&w, "}}\n");
	jw_release(&obj);
	respond_raw(e->status, r, &w);
}
