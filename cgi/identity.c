/* SPDX-License-Identifier: MIT */
/* identity.c: tokens to users, limits and quota per identity. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "identity.h"
#include "banned.h"

/* The token of "Bearer <token>"; NULL (and e set) for anything else. */
static const char *bearer(const char *h, struct http_error *e)
{
	if (strncasecmp(h, "Bearer ", 7) != 0) {
		http_fail(e, 401, "Authorization must be 'Bearer <token>'");
		return NULL;
	}
	h += 7;
	while (*h == ' ')
		h++;
	return h;
}

static void limits_for(struct identity *id, const struct settings *cfg)
{
	const struct user *u = &id->user;

	id->timeout_ms = cfg->timeout_ms;
	id->memory_mb = cfg->memory_mb;
	/* A trusted user's own limits, never above the host's ceilings. */
	if (id->is_user && u->timeout_ms > 0)
		id->timeout_ms = u->timeout_ms < cfg->max_timeout_ms ?
				 u->timeout_ms : cfg->max_timeout_ms;
	if (id->is_user && u->memory_mb > 0)
		id->memory_mb = u->memory_mb < cfg->max_memory_mb ?
				u->memory_mb : cfg->max_memory_mb;
	id->cpu_ms = cfg->cpu_ms > 0 && cfg->cpu_ms < id->timeout_ms ?
		     cfg->cpu_ms : id->timeout_ms;
}

/* The modules: a user's own grant, else the setting (always for the
 * anonymous identity). A grant that no longer parses gives the setting. */
static void profile_for(struct identity *id, const struct settings *cfg)
{
	char err[160];
	uint64_t m;

	id->modules = cfg->modules;
	if (id->is_user && id->user.modules[0] &&
	    profile_parse(id->user.modules, &m, err, sizeof(err)) == 0)
		id->modules = m;
	profile_describe(id->modules, id->profile, sizeof(id->profile));
}

static int as_user(struct store *s, const char *token, struct identity *id,
		   struct http_error *e)
{
	int rc = store_user_by_token(s, token, &id->user);

	if (rc == STORE_NOTFOUND)
		return http_fail(e, 401, "unknown token");
	if (rc != STORE_OK)
		return http_fail(e, 503, "database unavailable: %s",
				 store_error(s));
	if (id->user.disabled)
		return http_fail(e, 401, "token of a disabled user");
	id->is_user = 1;
	snprintf(id->key, sizeof(id->key), "user:%s", id->user.name);
	id->reset_ms = id->user.quota_reset_ms;
	return 0;
}

int identify(struct store *s, const struct settings *cfg,
	     const char *body_token, struct identity *id, struct http_error *e)
{
	const char *h = getenv("HTTP_AUTHORIZATION");
	const char *token = body_token;
	const char *addr = getenv("REMOTE_ADDR");

	memset(id, 0, sizeof(*id));
	id->client = addr && *addr && strlen(addr) < 64 ? addr : "unknown";
	if (h && *h) {
		if (!(token = bearer(h, e)))
			return -1;
		if (body_token && strcmp(body_token, token) != 0)
			return http_fail(e, 400, "the body's token differs from "
					 "the Authorization header's");
	}
	if (token) {
		if (as_user(s, token, id, e) != 0)
			return -1;
		id->quota = id->user.is_admin ? -1 :
			    id->user.quota == -2 ? cfg->default_quota :
			    id->user.quota;
	} else if (cfg->anonymous) {
		snprintf(id->key, sizeof(id->key), "anon:%s", id->client);
		id->quota = cfg->default_quota;
	} else {
		return http_fail(e, 401, "a token is required");
	}
	limits_for(id, cfg);
	profile_for(id, cfg);
	return 0;
}
