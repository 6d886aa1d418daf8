/* SPDX-License-Identifier: MIT */
/*
 * pg_int.h: what the PostgreSQL backend's files share (pg_conn.c,
 * pg_runs.c, pg_users.c, pg_manage.c). Values travel as text parameters,
 * never spliced into SQL.
 */
#ifndef PYEXEC_PG_INT_H
#define PYEXEC_PG_INT_H

#include <libpq-fe.h>
#include "store_int.h"

#define PG(s) ((PGconn *)(s)->pg)

/* A statement and its parameters (NULL: SQL NULL). */
#define PG_MAXP 32
struct pg_q {
	const char *sql;
	int n;
	const char *v[PG_MAXP];
	char buf[PG_MAXP][32];	/* the numbers' text */
	char *owned[PG_MAXP];	/* text made for it (pg_q_free) */
};

void pg_q_init(struct pg_q *q, const char *sql);
void pg_q_int(struct pg_q *q, int64_t v);
void pg_q_double(struct pg_q *q, double v);
void pg_q_text(struct pg_q *q, const char *v);	/* NULL: SQL NULL */
/* Text as the audit log keeps it: text_clean()ed, at most max bytes. */
void pg_q_clean(struct pg_q *q, const char *v, size_t max, int lines);
void pg_q_free(struct pg_q *q);

/*
 * Sends the statements in one round trip (libpq's pipeline mode) and
 * collects a result for each into res[] (the caller PQclear()s them).
 * STORE_OK when every one succeeded; else the first failure, mapped by
 * pg_fail, and res[] holds what came back. With tx, the statements run in
 * one transaction under the timeouts (BEGIN, SET LOCAL, ..., COMMIT added
 * here); without it the caller writes its own BEGIN/COMMIT.
 */
int pg_run(struct store *s, struct pg_q *q, int n, PGresult **res, int tx,
	   const char *what);
/* pg_run of one statement in its own transaction; *res is kept when res
 * is not NULL. */
int pg_one(struct store *s, struct pg_q *q, PGresult **res, const char *what);
/*
 * Runs q in a read-only transaction of its own and hands its rows to fn
 * one at a time as they arrive (libpq's single-row mode): an export of
 * any size takes the memory of one row. fn returns non-zero to stop. No
 * statement timeout (an export takes as long as it takes), the lock
 * timeout as usual.
 */
typedef int (*pg_row_fn)(const PGresult *r, void *arg);
int pg_each_row(struct store *s, struct pg_q *q, pg_row_fn fn, void *arg,
		const char *what);
/* The timeouts, first statement of a transaction the caller opened. */
void pg_q_timeouts(struct store *s, struct pg_q *q);
/* Ends a transaction that failed midway. */
void pg_rollback(struct store *s);

/* Maps a failed result (NULL: the connection's error) to a STORE_* code
 * with its message: a unique violation is STORE_CONFLICT, a check
 * violation STORE_INVALID, anything else STORE_UNAVAILABLE. */
int pg_fail(struct store *s, const PGresult *r, const char *what);

int64_t pg_int(const PGresult *r, int row, int col);
double pg_double(const PGresult *r, int row, int col);
const char *pg_text(const PGresult *r, int row, int col);	/* NULL */
void pg_read_user(const PGresult *r, int row, struct user *u);

/* The columns pg_read_user expects: those of SQLite's USER_COLUMNS. */
#define PG_USER_COLUMNS USER_COLUMNS

int pg_schema_version(void);

/* The running totals (pg_totals.c). Makes in buf, once (buf starts
 * zeroed), "WITH <ctes>, <upsert of CTE d's signed rows> <result>"; NULL
 * if it does not fit. */
const char *pg_totals_with(char *buf, size_t size, const char *ctes,
			   const char *result);
/* Recomputes the totals from the log, in a transaction of its own or in
 * the caller's (own_tx 0: the migration). */
int pg_totals_rebuild(struct store *s, int own_tx);
/* The statement counting the groups where totals and log differ. */
void pg_q_totals_check(struct pg_q *q);

/* The operations (backend.h), in pg_users.c, pg_runs.c, pg_manage.c. */
#define PG_DECL(name, params, args) int pg_##name params;
STORE_OPS(PG_DECL)

#endif
