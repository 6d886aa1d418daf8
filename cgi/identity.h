/* SPDX-License-Identifier: MIT */
/*
 * identity.h: who is asking. A bearer token (Authorization header, or the
 * MCP tool's `token` field) names a user; no token means anonymous,
 * identified by client address (client.h), when the settings allow it.
 */
#ifndef PYEXEC_IDENTITY_H
#define PYEXEC_IDENTITY_H

#include <stdint.h>
#include "client.h"
#include "http.h"
#include "../sql/store.h"

struct identity {
	char key[128];		/* "user:NAME" or "anon:ADDR": the quota's key */
	char client[CLIENT_ADDR_MAX];	/* the client's address (client.h) */
	int is_user;		/* a user's request, allowed to go on */
	int named;		/* the token names a user (disabled ones too):
				 * the row carries that user, whatever the
				 * request's fate */
	const char *header_token;	/* Authorization's, or NULL */
	struct user user;
	long quota;		/* -1: unlimited */
	int64_t reset_ms;	/* runs before this do not count */
	long timeout_ms, cpu_ms, memory_mb;	/* effective limits */
	uint64_t modules;	/* effective profile (sandbox/profile.h) */
	char profile[PROFILE_TEXT_MAX + 1];	/* ... as the log says it */
};

/*
 * The first half of identify, before the body is read: a token in the
 * Authorization header names its user (a hash lookup), so a request that
 * is refused later (400, 413, 415, 408, ...) is still that user's. Without
 * the header, id is anonymous for now (the body may carry a token).
 * Returns 0, or -1 with e set (401: malformed, unknown or a disabled
 * user's token, id->named set for the latter; 503).
 */
int identify_header(struct store *s, const struct settings *cfg,
		    struct identity *id, struct http_error *e);

/*
 * The second half, once the body is parsed: the body's token (may be
 * NULL; it must match the header's when both are given), then quota and
 * limits. Returns 0, or -1 with e set (400, 401 or 503).
 */
int identify_finish(struct store *s, const struct settings *cfg,
		    const char *body_token, struct identity *id,
		    struct http_error *e);

/*
 * Both halves at once: fills id from the request's token (body_token may be NULL) and the
 * settings. Returns 0, or -1 with e set (400, 401 or 503).
 */
int identify(struct store *s, const struct settings *cfg,
	     const char *body_token, struct identity *id, struct http_error *e);

#endif
