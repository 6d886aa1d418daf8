/* SPDX-License-Identifier: MIT */
/*
 * mcp.c: MCP over Streamable HTTP, stateless: one JSON-RPC message per
 * POST, answered with one application/json body (or 202 and none). Checks
 * in order: the headers (mcp_check_headers), then the body as JSON (as the
 * REST path checks it: UTF-8, depth, \u0000, syntax), then the JSON-RPC
 * envelope, then the method. Batches are refused: 2025-06-18 and later
 * have none, and a batch of runs would be one request for many audit rows.
 */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdio.h>
#include <unistd.h>
#include "mcp.h"
#include "mcp_tool.h"
#include "jsonscan.h"
#include "limits.h"
#include "utf8.h"
#include "banned.h"

static const char *const versions[] = {
	"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05",
};
#define NVERSIONS (sizeof(versions) / sizeof(versions[0]))

static int version_supported(const char *v)
{
	for (size_t i = 0; i < NVERSIONS; i++)
		if (strcmp(v, versions[i]) == 0)
			return 1;
	return 0;
}

/* 1 when the path p[0..n) ends in the segment "mcp" (or "mcp/"). */
static int path_is_mcp(const char *p, size_t n)
{
	if (n > 0 && p[n - 1] == '/')
		n--;
	return n >= 4 && memcmp(p + n - 4, "/mcp", 4) == 0;
}

enum mcp_via mcp_route(void)
{
	const char *pi = getenv("PATH_INFO"), *uri = getenv("REQUEST_URI");

	/* Only pyexec-mcp sets this, and a web server always sets
	 * GATEWAY_INTERFACE: no HTTP client can reach the local transport. */
	if (getenv("PYEXEC_MCP_STDIO") && !getenv("GATEWAY_INTERFACE"))
		return VIA_STDIO;
	if (pi && path_is_mcp(pi, strlen(pi)))
		return VIA_MCP;
	if (uri && path_is_mcp(uri, strcspn(uri, "?#")))
		return VIA_MCP;
	return VIA_REST;
}

const char *mcp_via_name(enum mcp_via via)
{
	return via == VIA_MCP ? "mcp" : via == VIA_STDIO ? "stdio" : "rest";
}

/* 1 when origin is one of the list's entries (space or comma separated). */
static int origin_listed(const char *list, const char *origin)
{
	size_t on = strlen(origin);

	while (*list) {
		size_t n = strcspn(list, " ,");
		if (n == on && memcmp(list, origin, n) == 0)
			return 1;
		list += n;
		list += strspn(list, " ,");
	}
	return 0;
}

static int accept_ok(const char *a)
{
	return !a || !*a || strcasestr(a, "application/json") ||
	       strstr(a, "*/*") || strcasestr(a, "application/*");
}

int mcp_check_headers(struct mcp *m, const struct settings *cfg,
		      struct http_error *e)
{
	const char *origin = getenv("HTTP_ORIGIN");
	const char *ver = getenv("HTTP_MCP_PROTOCOL_VERSION");
	const char *method = getenv("REQUEST_METHOD");

	snprintf(m->id, sizeof(m->id), "null");
	if (origin && *origin && !origin_listed(cfg->mcp_allowed_origins, origin))
		return http_fail(e, 403, "Origin '%.100s' is not allowed "
				 "(setting mcp_allowed_origins)", origin);
	if (!method || strcmp(method, "POST") != 0)
		return 0;	/* request_read answers 405 */
	if (ver && *ver && !version_supported(ver))
		return http_fail(e, 400, "unsupported MCP-Protocol-Version "
				 "'%.32s' (supported: 2025-11-25, 2025-06-18, "
				 "2025-03-26, 2024-11-05)", ver);
	if (!accept_ok(getenv("HTTP_ACCEPT")))
		return http_fail(e, 406, "Accept must admit application/json "
				 "(the only answer given)");
	return 0;
}

static int rpc_fail(struct mcp *m, int code, struct http_error *e,
		    const char *msg)
{
	m->rpc_code = code;
	http_fail(e, code == -32700 || code == -32600 ? 400 : 200, "%s", msg);
	e->type = code == -32700 ? "ParseError" :
		  code == -32600 ? "InvalidRequest" :
		  code == -32601 ? "MethodNotFound" : "InvalidParams";
	return -1;
}

/* The body as JSON, as the REST path checks it. */
static int parse_body(struct mcp *m, const char *body, size_t len,
		      cJSON **root, struct http_error *e)
{
	const char *end = NULL, *problem;

	if (!utf8_valid(body, len))
		return rpc_fail(m, -32700, e, "request body is not valid UTF-8");
	if ((problem = json_scan_problem(json_scan(body, len,
						     JSON_MAX_DEPTH))) != NULL)
		return rpc_fail(m, -32700, e, problem);
	*root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
	if (!*root)
		return rpc_fail(m, -32700, e, "request body is not valid JSON");
	while (end < body + len && strchr(" \t\r\n", *end) && *end)
		end++;
	if (end != body + len)
		return rpc_fail(m, -32700, e, "trailing data after the JSON message");
	return 0;
}

/* The id, exactly as sent. */
static int take_id(struct mcp *m, const cJSON *root, const char *body,
		   size_t len, struct http_error *e)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
	const char *v;
	size_t vn;

	if (!id)
		return 0;
	if (!cJSON_IsString(id) && !cJSON_IsNumber(id))
		return rpc_fail(m, -32600, e, "id must be a string or a number");
	if (json_member(body, len, "id", &v, &vn) != 0 || vn >= sizeof(m->id))
		return rpc_fail(m, -32600, e, "id must be at most 120 bytes, "
				"under a key written without escapes");
	memcpy(m->id, v, vn);
	m->id[vn] = 0;
	return 0;
}

/* A notification or a response: accepted, nothing to answer. */
static void accepted(const struct reply *r)
{
	struct jw w;

	memset(&w, 0, sizeof(w));
	respond_raw(202, r, &w);
}

static int call(struct mcp *m, const cJSON *params, const char *body,
		size_t len, const struct settings *cfg, struct job *j,
		struct http_error *e)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(params, "name");
	const cJSON *args = cJSON_GetObjectItemCaseSensitive(params, "arguments");
	const char *ps;
	size_t pn;

	if (!cJSON_IsString(name))
		return rpc_fail(m, -32602, e, "params.name must be a string");
	if (strcmp(name->valuestring, MCP_TOOL) != 0)
		return rpc_fail(m, -32602, e, "unknown tool (the only one is "
				MCP_TOOL ")");
	if (!cJSON_IsObject(args))
		return rpc_fail(m, -32602, e, "params.arguments must be an "
				"object with at least `code`");
	if (json_member(body, len, "params", &ps, &pn) != 0 ||
	    json_member(ps, pn, "arguments", &m->args, &m->args_len) != 0)
		return rpc_fail(m, -32602, e, "params.arguments not found");
	m->in_call = 1;
	return job_parse(j, m->args, m->args_len, cfg, e) == 0 ? 1 : -1;
}

static int dispatch(struct mcp *m, const cJSON *root, const char *body,
		    size_t len, const struct settings *cfg, struct job *j,
		    const struct reply *r, struct http_error *e)
{
	const char *method = cJSON_GetObjectItemCaseSensitive(root, "method")->valuestring;
	const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "params");

	if (params && !cJSON_IsObject(params))
		return rpc_fail(m, -32602, e, "params must be an object");
	if (strcmp(method, "initialize") == 0) {
		const cJSON *v = params ? cJSON_GetObjectItemCaseSensitive(
					params, "protocolVersion") : NULL;
		const char *want = cJSON_IsString(v) ? v->valuestring : "";

		if (!cJSON_IsString(v))
			return rpc_fail(m, -32602, e, "params.protocolVersion "
					"must be a string");
		mcp_answer_initialize(m, version_supported(want) ? want :
				      MCP_VERSION_NEWEST, cfg, r);
		return 0;
	}
	if (strcmp(method, "ping") == 0) {
		mcp_answer_raw(m, "{}", r);
		return 0;
	}
	if (strcmp(method, "tools/list") == 0) {
		mcp_answer_tools(m, cfg, r);
		return 0;
	}
	if (strcmp(method, "tools/call") == 0)
		return params ? call(m, params, body, len, cfg, j, e) :
		       rpc_fail(m, -32602, e, "tools/call needs params");
	return rpc_fail(m, -32601, e, "method not found");
}

static int envelope(struct mcp *m, const cJSON *root, const char *body,
		    size_t len, const struct settings *cfg, struct job *j,
		    const struct reply *r, struct http_error *e)
{
	const cJSON *rpc = cJSON_GetObjectItemCaseSensitive(root, "jsonrpc");
	const cJSON *method = cJSON_GetObjectItemCaseSensitive(root, "method");

	if (cJSON_IsArray(root))
		return rpc_fail(m, -32600, e, "batches are not supported: send "
				"one JSON-RPC message per request");
	if (!cJSON_IsObject(root))
		return rpc_fail(m, -32600, e, "a JSON-RPC message is an object");
	if (take_id(m, root, body, len, e) != 0)
		return -1;
	if (!cJSON_IsString(rpc) || strcmp(rpc->valuestring, "2.0") != 0)
		return rpc_fail(m, -32600, e, "jsonrpc must be \"2.0\"");
	if (!method && (cJSON_GetObjectItemCaseSensitive(root, "result") ||
			cJSON_GetObjectItemCaseSensitive(root, "error")) &&
	    cJSON_GetObjectItemCaseSensitive(root, "id")) {
		accepted(r);	/* a response: we never ask the client */
		return 0;
	}
	if (!cJSON_IsString(method))
		return rpc_fail(m, -32600, e, "method must be a string");
	if (!cJSON_GetObjectItemCaseSensitive(root, "id")) {
		accepted(r);	/* a notification: nothing to act on */
		return 0;
	}
	return dispatch(m, root, body, len, cfg, j, r, e);
}

int mcp_handle(struct mcp *m, const char *body, size_t len,
	       const struct settings *cfg, struct job *j,
	       const struct reply *r, struct http_error *e)
{
	cJSON *root = NULL;
	int rc;

	memset(j, 0, sizeof(*j));
	if (parse_body(m, body, len, &root, e) != 0) {
		cJSON_Delete(root);
		return -1;
	}
	rc = envelope(m, root, body, len, cfg, j, r, e);
	cJSON_Delete(root);
	return rc;
}

int mcp_identify(const struct mcp *m, struct store *s,
		 const struct settings *cfg, const char *token,
		 struct identity *id, struct http_error *e)
{
	struct settings local = *cfg;

	if (m->via != VIA_STDIO || token || id->header_token)
		return identify_finish(s, cfg, token, id, e);
	/* The local user: limits and quota of an anonymous client, counted
	 * under its own key, whatever the anonymous setting says. */
	local.anonymous = 1;
	if (identify_finish(s, &local, NULL, id, e) != 0)
		return -1;
	mcp_local_key(id->key, sizeof(id->key));
	return 0;
}

void mcp_local_key(char *out, size_t n)
{
	struct passwd *pw = getpwuid(geteuid());

	if (pw && pw->pw_name && strlen(pw->pw_name) < 64)
		snprintf(out, n, "local:%s", pw->pw_name);
	else
		snprintf(out, n, "local:uid%u", (unsigned)geteuid());
}
