/* SPDX-License-Identifier: MIT */
/*
 * mcp.h: the MCP front end (Streamable HTTP, stateless, at /mcp). It only
 * parses JSON-RPC and shapes answers: identity, admission, the audit row
 * and the run are main.c's, the same as for the REST path. A tools/call
 * becomes a struct job parsed from its `arguments` by job_parse, so the
 * tool takes exactly the REST body's fields and limits.
 */
#ifndef PYEXEC_MCP_H
#define PYEXEC_MCP_H

#include <stddef.h>
#include "http.h"
#include "identity.h"
#include "job.h"
#include "response.h"
#include "../sql/settings.h"
#include "../sandbox/sandbox.h"

#define MCP_TOOL "execute-python-code"
#define MCP_VERSION_NEWEST "2025-11-25"

enum mcp_via { VIA_REST, VIA_MCP, VIA_STDIO };

struct mcp {
	enum mcp_via via;
	char id[128];		/* the request's id as sent (JSON text) */
	int rpc_code;		/* set with an error of the front end's own */
	int in_call;		/* a tools/call: errors of its arguments */
	const char *args;	/* tools/call arguments, raw JSON text */
	size_t args_len;
};

/* Which front end this request is for: the path (PATH_INFO, or
 * REQUEST_URI as a rewriting server delivers it) ending in /mcp, and
 * pyexec-mcp's local transport. */
enum mcp_via mcp_route(void);

/* "rest", "mcp", "stdio": the audit row's `via`. */
const char *mcp_via_name(enum mcp_via via);

/* Origin (403 unless in mcp_allowed_origins), MCP-Protocol-Version (400
 * when unsupported), Accept (406 when it admits no JSON); before the body
 * is read. Returns 0, or -1 with e. */
int mcp_check_headers(struct mcp *m, const struct settings *cfg,
		      struct http_error *e);

/*
 * One JSON-RPC message in body. Returns 1 for a tools/call, with j parsed
 * from its arguments (m->args holds them: the child's input); 0 when the
 * message was answered here (initialize, ping, tools/list, notifications
 * and responses); -1 with e (and m->rpc_code) for a refusal.
 */
int mcp_handle(struct mcp *m, const char *body, size_t len,
	       const struct settings *cfg, struct job *j,
	       const struct reply *r, struct http_error *e);

/* The identity: as the REST path's, except that pyexec-mcp's local
 * transport without a token is "local:<user>". */
int mcp_identify(const struct mcp *m, struct store *s,
		 const struct settings *cfg, const char *token,
		 struct identity *id, struct http_error *e);

/* "local:<user>": the local transport's identity, also the row's of a
 * request refused before it is identified. */
void mcp_local_key(char *out, size_t n);

/* The HTTP status a refusal is answered with (a bad tools/call argument
 * is a JSON-RPC error in a 200); call before the audit row is written. */
void mcp_refusal_status(const struct mcp *m, struct http_error *e);

/* A refusal: e's HTTP status and the reply's headers, a JSON-RPC error. */
void mcp_respond_refusal(const struct mcp *m, const struct http_error *e,
			 const struct reply *r);

/* A run, whatever its outcome: a tools/call result. */
void mcp_respond_result(const struct mcp *m, const struct sb_result *res,
			const struct reply *r);

/* The JSON-RPC error code of a refusal with HTTP status st. */
int mcp_error_code(int status);

/* Finds member key of the JSON object text s[0..n) (already validated):
 * its value's text in *v, *vn. 0, or -1 when absent. A key written with
 * escapes never matches. */
int json_member(const char *s, size_t n, const char *key,
		const char **v, size_t *vn);

#endif
