/* SPDX-License-Identifier: MIT */
/*
 * identity.h: who is asking. A bearer token (Authorization header, or the
 * MCP tool's `token` field) names a user; no token means anonymous,
 * identified by client address, when the settings allow it.
 */
#ifndef PYEXEC_IDENTITY_H
#define PYEXEC_IDENTITY_H

#include <stdint.h>
#include "http.h"
#include "../sql/store.h"

struct identity {
	char key[128];		/* "user:NAME" or "anon:ADDR": the quota's key */
	const char *client;	/* REMOTE_ADDR, or "unknown" */
	int is_user;
	struct user user;
	long quota;		/* -1: unlimited */
	int64_t reset_ms;	/* runs before this do not count */
	long timeout_ms, cpu_ms, memory_mb;	/* effective limits */
	uint64_t modules;	/* effective profile (sandbox/profile.h) */
	char profile[PROFILE_TEXT_MAX + 1];	/* ... as the log says it */
};

/*
 * Fills id from the request's token (body_token may be NULL) and the
 * settings. Returns 0, or -1 with e set (400, 401 or 503).
 */
int identify(struct store *s, const struct settings *cfg,
	     const char *body_token, struct identity *id, struct http_error *e);

#endif
