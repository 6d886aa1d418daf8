/* SPDX-License-Identifier: MIT */
/*
 * pg_query.c: the PostgreSQL backend's statements: parameters as text,
 * several statements in one round trip (pipeline mode), the timeouts set
 * per transaction (SET LOCAL, through set_config), errors mapped to the
 * STORE_* codes. Nothing here keeps state on the server between
 * transactions, so a pooler in transaction mode (PgBouncer) may hand each
 * transaction to another server connection.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pg_int.h"
#include "textclean.h"
#include "../cgi/banned.h"

void pg_q_init(struct pg_q *q, const char *sql)
{
	memset(q, 0, sizeof(*q));
	q->sql = sql;
}

static char *slot(struct pg_q *q)
{
	return q->n < PG_MAXP ? q->buf[q->n] : NULL;
}

void pg_q_int(struct pg_q *q, int64_t v)
{
	char *b = slot(q);

	if (!b)
		return;
	snprintf(b, sizeof(q->buf[0]), "%" PRId64, v);
	q->v[q->n++] = b;
}

void pg_q_double(struct pg_q *q, double v)
{
	char *b = slot(q);

	if (!b)
		return;
	snprintf(b, sizeof(q->buf[0]), "%.17g", v);
	q->v[q->n++] = b;
}

void pg_q_text(struct pg_q *q, const char *v)
{
	if (q->n < PG_MAXP)
		q->v[q->n++] = v;
}

void pg_q_clean(struct pg_q *q, const char *v, size_t max, int lines)
{
	size_t n = v ? strlen(v) : 0, cap = n > max / 6 ? max : n * 6;
	char *out;

	if (!v || q->n >= PG_MAXP) {
		pg_q_text(q, NULL);
		return;
	}
	if (!(out = malloc(cap + 1))) {
		pg_q_text(q, "(not kept: out of memory)");
		return;
	}
	n = text_clean(v, n, out, cap, lines);
	out[n] = 0;
	q->owned[q->n] = out;
	q->v[q->n++] = out;
}

void pg_q_free(struct pg_q *q)
{
	for (int i = 0; i < PG_MAXP; i++) {
		free(q->owned[i]);
		q->owned[i] = NULL;
	}
}

void pg_q_timeouts(struct store *s, struct pg_q *q)
{
	pg_q_init(q, "SELECT set_config('statement_timeout', $1, true), "
		  "set_config('lock_timeout', $1, true), "
		  "set_config('idle_in_transaction_session_timeout', $1, true)");
	pg_q_int(q, s->stmt_ms);
}

int64_t pg_int(const PGresult *r, int row, int col)
{
	if (!r || row >= PQntuples(r) || PQgetisnull(r, row, col))
		return 0;
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

double pg_double(const PGresult *r, int row, int col)
{
	if (!r || row >= PQntuples(r) || PQgetisnull(r, row, col))
		return 0;
	return strtod(PQgetvalue(r, row, col), NULL);
}

const char *pg_text(const PGresult *r, int row, int col)
{
	if (!r || row >= PQntuples(r) || PQgetisnull(r, row, col))
		return NULL;
	return PQgetvalue(r, row, col);
}

/* The message's first line: libpq's may go on with a DETAIL or a HINT
 * that quotes a row's values. */
static int first_line(const char *m)
{
	return (int)strcspn(m ? m : "", "\n");
}

int pg_fail(struct store *s, const PGresult *r, const char *what)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *m = r ? PQresultErrorMessage(r) : "";
	int code = STORE_UNAVAILABLE;

	if (!m || !*m)
		m = s->pg ? PQerrorMessage(PG(s)) : "no connection";
	if (state && strcmp(state, "23505") == 0)
		code = STORE_CONFLICT;
	else if (state && (strcmp(state, "23514") == 0 ||
			   strcmp(state, "22P02") == 0))
		code = STORE_INVALID;
	return store_fail(s, code, "%s: %.*s", what, first_line(m), m);
}

static int exec_commit(struct store *s, const char *what)
{
	PGresult *r = PQexec(PG(s), "COMMIT");
	int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? STORE_OK :
		 pg_fail(s, r, what);

	PQclear(r);
	return rc;
}

void pg_rollback(struct store *s)
{
	PGresult *r;

	if (PQtransactionStatus(PG(s)) == PQTRANS_IDLE ||
	    PQtransactionStatus(PG(s)) == PQTRANS_UNKNOWN)
		return;
	r = PQexec(PG(s), "ROLLBACK");
	PQclear(r);
}

static int send_one(PGconn *c, const struct pg_q *q)
{
	return PQsendQueryParams(c, q->sql, q->n, NULL, q->v, NULL, NULL, 0);
}

/* The results of one statement: the first kept, the rest (none, in
 * practice) dropped, up to the NULL that ends them. */
static PGresult *collect(PGconn *c)
{
	PGresult *first = PQgetResult(c), *r;

	if (!first)
		return NULL;
	while ((r = PQgetResult(c)) != NULL)
		PQclear(r);
	return first;
}

static int ok(const PGresult *r)
{
	ExecStatusType t = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;

	return t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK;
}

/* Sends n statements and a Sync; reads a result for each, then the
 * Sync's. */
static int pipeline(struct store *s, struct pg_q **q, int n, PGresult **res,
		    const char *what)
{
	PGconn *c = PG(s);
	int rc = STORE_OK, sent = 1;
	PGresult *r;

	if (!PQenterPipelineMode(c))
		return pg_fail(s, NULL, what);
	for (int i = 0; i < n && sent; i++)
		sent = send_one(c, q[i]);
	if (!sent || !PQpipelineSync(c)) {
		rc = pg_fail(s, NULL, what);
		PQexitPipelineMode(c);
		return rc;
	}
	for (int i = 0; i < n; i++) {
		res[i] = collect(c);
		if (rc == STORE_OK && !ok(res[i]))
			rc = PQresultStatus(res[i]) == PGRES_PIPELINE_ABORTED ?
			     STORE_UNAVAILABLE : pg_fail(s, res[i], what);
	}
	/* The Sync's result, then nothing more. */
	while ((r = PQgetResult(c)) != NULL) {
		ExecStatusType t = PQresultStatus(r);
		PQclear(r);
		if (t == PGRES_PIPELINE_SYNC)
			break;
	}
	if (!PQexitPipelineMode(c) && rc == STORE_OK)
		rc = pg_fail(s, NULL, what);
	return rc;
}

static int run_once(struct store *s, struct pg_q *q, int n, PGresult **res,
		    int tx, const char *what)
{
	struct pg_q begin, limits, commit, *all[PG_MAXP + 3];
	PGresult *r[PG_MAXP + 3] = { 0 };
	int m = 0, rc;

	if (n > PG_MAXP)
		return store_fail(s, STORE_INVALID, "%s: too many statements",
				  what);
	pg_q_init(&begin, "BEGIN");
	pg_q_timeouts(s, &limits);
	pg_q_init(&commit, "COMMIT");
	if (tx) {
		all[m++] = &begin;
		all[m++] = &limits;
	}
	for (int i = 0; i < n; i++)
		all[m++] = &q[i];
	if (tx)
		all[m++] = &commit;
	s->err[0] = 0;
	rc = pipeline(s, all, m, r, what);
	if (rc == STORE_UNAVAILABLE && !s->err[0])
		store_fail(s, rc, "%s: %s", what, "aborted");
	for (int i = 0; i < m; i++) {
		int j = tx ? i - 2 : i;
		if (j >= 0 && j < n && res)
			res[j] = r[i];
		else
			PQclear(r[i]);
	}
	if (rc != STORE_OK)
		pg_rollback(s);
	return rc;
}

/*
 * A connection lost since the last statement (the server restarted while
 * the sandbox ran: the broker keeps its connection) is made again once,
 * and a whole transaction of ours sent again: each is one statement that
 * may be repeated (a read, or a write of one row by its id). A
 * transaction the caller opened itself is not: it fails.
 */
int pg_run(struct store *s, struct pg_q *q, int n, PGresult **res, int tx,
	   const char *what)
{
	int rc = run_once(s, q, n, res, tx, what);

	if (rc == STORE_OK || !tx || PQstatus(PG(s)) != CONNECTION_BAD)
		return rc;
	for (int i = 0; res && i < n; i++) {
		PQclear(res[i]);
		res[i] = NULL;
	}
	PQreset(PG(s));
	if (PQstatus(PG(s)) != CONNECTION_OK)
		return pg_fail(s, NULL, "cannot connect to PostgreSQL");
	return run_once(s, q, n, res, tx, what);
}

static int begin_stream(struct store *s, const char *what)
{
	char sql[160];
	PGresult *r;
	int rc;

	snprintf(sql, sizeof(sql), "BEGIN READ ONLY; SET LOCAL "
		 "statement_timeout = 0; SET LOCAL lock_timeout = %ld",
		 s->stmt_ms);
	r = PQexec(PG(s), sql);
	rc = PQresultStatus(r) == PGRES_COMMAND_OK ? STORE_OK :
	     pg_fail(s, r, what);
	PQclear(r);
	return rc;
}

/* Reads the query's results to their end, each row to fn until it says
 * stop; the first error wins. */
static int stream_rows(struct store *s, pg_row_fn fn, void *arg,
		       const char *what)
{
	PGresult *r;
	int rc = STORE_OK, stop = 0;

	while ((r = PQgetResult(PG(s))) != NULL) {
		ExecStatusType t = PQresultStatus(r);
		if (t == PGRES_SINGLE_TUPLE && rc == STORE_OK && !stop)
			stop = fn(r, arg);
		else if (t != PGRES_SINGLE_TUPLE && t != PGRES_TUPLES_OK &&
			 rc == STORE_OK)
			rc = pg_fail(s, r, what);
		PQclear(r);
	}
	return rc;
}

int pg_each_row(struct store *s, struct pg_q *q, pg_row_fn fn, void *arg,
		const char *what)
{
	int rc;

	if ((rc = begin_stream(s, what)))
		return rc;
	if (!send_one(PG(s), q) || !PQsetSingleRowMode(PG(s))) {
		rc = pg_fail(s, NULL, what);
		while (PQgetResult(PG(s)) != NULL)
			;
	} else {
		rc = stream_rows(s, fn, arg, what);
	}
	if (rc == STORE_OK)
		rc = exec_commit(s, what);
	else
		pg_rollback(s);
	return rc;
}

int pg_one(struct store *s, struct pg_q *q, PGresult **res, const char *what)
{
	PGresult *r = NULL;
	int rc = pg_run(s, q, 1, &r, 1, what);

	if (res)
		*res = r;
	else
		PQclear(r);
	return rc;
}
