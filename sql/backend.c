/* SPDX-License-Identifier: MIT */
/*
 * backend.c: the data layer's front: store_open picks the backend by the
 * database's name (a postgres:// or postgresql:// URI is PostgreSQL's,
 * anything else SQLite's file), and every other store_* function hands
 * its call to the backend's table of operations (backend.h).
 */
#include <stdlib.h>
#include <string.h>
#include "store_int.h"
#include "../cgi/banned.h"

#ifndef PYEXEC_DB_DEFAULT
#define PYEXEC_DB_DEFAULT "/var/lib/pyexec/pyexec.db"
#endif

const char *store_default_path(void)
{
	const char *p = getenv("PYEXEC_DB");

	return p && *p ? p : PYEXEC_DB_DEFAULT;
}

const char *store_error(const struct store *s)
{
	return s ? s->err : "out of memory";
}

int store_never(const struct store *s)
{
	return s && s->never;
}

int store_is_pg(const char *name)
{
	return strncmp(name, "postgres://", 11) == 0 ||
	       strncmp(name, "postgresql://", 13) == 0;
}

int store_is_file(const char *name)
{
	return !store_is_pg(name);
}

static int keeping;		/* store_keep_open was called */
static struct store *kept;	/* the store kept between requests */

static void release(struct store *s)
{
	if (!s)
		return;
	s->ops->close(s);
	free(s->name);
	explicit_bzero(s, sizeof(*s));
	free(s);
}

void store_keep_open(void)
{
	keeping = 1;
}

void store_forget(void)
{
	release(kept);
	kept = NULL;
}

/*
 * The kept store into *sp when it is name's and still sound (STORE_OK), or
 * the error its check met (as an open's: *sp set, the caller closes it);
 * else 1, with the kept one closed (one connection at most, never two
 * databases) and *sp NULL.
 */
static int take_kept(struct store **sp, const char *name)
{
	struct store *s = kept;
	int rc = 1;

	kept = NULL;
	*sp = NULL;
	if (!s)
		return 1;
	if (strcmp(s->name, name) == 0) {
		s->err[0] = '\0';
		rc = s->ops->reuse(s, name);
	}
	if (rc == 1)
		release(s);
	else
		*sp = s;
	return rc;
}

int store_open(struct store **sp, const char *name, int mode)
{
	struct store *s;
	int rc;

	if (keeping && mode == STORE_RW && (rc = take_kept(sp, name)) != 1)
		return rc;
	*sp = s = calloc(1, sizeof(*s));
	if (!s)
		return STORE_UNAVAILABLE;
	s->ops = store_is_pg(name) ? &store_pg_ops : &store_sqlite_ops;
	rc = s->ops->open(s, name, mode);
	/* Named only when open: only a store with a name is ever kept. */
	if (rc == STORE_OK && keeping && mode == STORE_RW && s->ops->reuse)
		s->name = strdup(name);
	return rc;
}

void store_close(struct store *s)
{
	if (s && s->name && !s->broken && !kept && s->ops->idle(s)) {
		kept = s;
		return;
	}
	release(s);
}

static int unsupported(struct store *s, const char *what)
{
	return store_fail(s, STORE_INVALID, "%s is not available on %s", what,
			  s->ops->name);
}

#define DISPATCH(name, params, args) \
	int store_##name params \
	{ \
		if (!s->ops->name) \
			return unsupported(s, #name); \
		return s->ops->name args; \
	}
STORE_OPS(DISPATCH)
