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

int store_open(struct store **sp, const char *name, int mode)
{
	struct store *s = calloc(1, sizeof(*s));

	*sp = s;
	if (!s)
		return STORE_UNAVAILABLE;
	s->ops = store_is_pg(name) ? &store_pg_ops : &store_sqlite_ops;
	return s->ops->open(s, name, mode);
}

void store_close(struct store *s)
{
	if (!s)
		return;
	s->ops->close(s);
	explicit_bzero(s, sizeof(*s));
	free(s);
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
