-- SPDX-License-Identifier: MIT
-- schema.sql: the one schema of pyexec's database, as migrations.
--
-- Each section below starts with a line "-- migrate N" and brings a
-- database from user_version N-1 to N. The data layer (sql/store.c) applies
-- the sections a database lacks, in order, inside one write transaction,
-- and sets PRAGMA user_version. Sections are never edited once released:
-- a change is a new section.

-- migrate 1
CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE
                CHECK (length(name) BETWEEN 1 AND 64 AND name NOT GLOB '*[^A-Za-z0-9._@-]*'),
    -- SHA-256 of the bearer token, hex; the token itself (256 random bits)
    -- is shown once and never stored.
    token_hash  TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    is_admin    INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    disabled    INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    -- Runs per window: NULL follows the default quota, -1 is unlimited.
    quota       INTEGER CHECK (quota IS NULL OR quota >= -1),
    -- Trusted users' own limits, capped by the host-wide maxima at use.
    timeout_ms  INTEGER CHECK (timeout_ms IS NULL OR timeout_ms > 0),
    memory_mb   INTEGER CHECK (memory_mb IS NULL OR memory_mb > 0),
    -- Runs started before this time (unix ms) do not count: a forgiven window.
    quota_reset_ms INTEGER NOT NULL DEFAULT 0,
    created_ms  INTEGER NOT NULL
) STRICT;

-- Values an operator changed (pyexec-admin config set); the rest take the
-- defaults compiled into sql/settings.c.
CREATE TABLE settings (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL
) STRICT;

-- One row per request, accepted or refused. Written before the code runs
-- (outcome 'running') and completed after; a row still 'running' whose
-- broker is gone reads as 'abandoned' in runs_view.
CREATE TABLE runs (
    id          TEXT PRIMARY KEY,           -- the request id (X-Request-Id)
    started_ms  INTEGER NOT NULL,           -- unix ms, UTC
    finished_ms INTEGER,
    identity    TEXT NOT NULL,              -- 'user:NAME' or 'anon:ADDR'
    user_id     INTEGER REFERENCES users(id) ON DELETE SET NULL,
    user_name   TEXT,                       -- kept when the user is removed
    client_addr TEXT,
    broker_pid  INTEGER,
    -- When the broker must have finished, whatever the code did: the time
    -- limit plus a grace for the database; past it a 'running' row is
    -- 'abandoned'.
    deadline_ms INTEGER,
    code_sha256 TEXT,
    code_size   INTEGER,
    code        TEXT,                       -- per the audit_code setting
    input_size  INTEGER,
    outcome     TEXT NOT NULL CHECK (outcome IN ('running', 'ok', 'error',
                'timeout', 'memory', 'output_limit', 'security', 'crash',
                'internal', 'rejected')),
    error_type  TEXT,
    error       TEXT,                       -- bounded
    output_size INTEGER,
    truncated   INTEGER,
    exec_ms     REAL,
    wall_ms     REAL,
    cpu_ms      INTEGER,
    peak_kb     INTEGER,
    http_status INTEGER,
    -- 1 for runs that count against the identity's quota (accepted ones).
    counted     INTEGER NOT NULL DEFAULT 0 CHECK (counted IN (0, 1))
) STRICT;

CREATE INDEX runs_quota ON runs (identity, started_ms) WHERE counted = 1;
CREATE INDEX runs_started ON runs (started_ms);

-- A run still 'running' past its deadline lost its broker (killed
-- mid-run): it is shown as 'abandoned', never dropped.
CREATE VIEW runs_view AS
SELECT runs.*,
       CASE WHEN outcome = 'running'
             AND deadline_ms < CAST((julianday('now') - 2440587.5) * 86400000
                                    AS INTEGER)
            THEN 'abandoned' ELSE outcome END AS status
FROM runs;

-- migrate 2
-- Module profiles: the one a run had, and a user's own grant (NULL: the
-- allowed_modules setting).
ALTER TABLE users ADD COLUMN modules TEXT;
ALTER TABLE runs ADD COLUMN profile TEXT;

-- migrate 3
-- The way a request came in: the REST API, MCP over HTTP at /mcp, or MCP
-- over stdio (pyexec-mcp). Rows from before are REST's.
ALTER TABLE runs ADD COLUMN via TEXT NOT NULL DEFAULT 'rest'
    CHECK (via IN ('rest', 'mcp', 'stdio'));

-- migrate 4
-- The audit log's running totals, for GET /metrics: one row per HTTP
-- status, outcome and histogram bucket (-1: not a finished run) of the
-- rows no longer running, kept in the transactions that write runs
-- (sql/totals.c) and filled from the log by this migration. Rows still
-- running are counted from runs itself, through runs_running.
CREATE TABLE run_totals (
    http_status INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    bucket      INTEGER NOT NULL,
    requests    INTEGER NOT NULL,
    exec_ms     REAL NOT NULL,
    cpu_ms      INTEGER NOT NULL,
    PRIMARY KEY (http_status, outcome, bucket)
) STRICT, WITHOUT ROWID;
CREATE INDEX runs_running ON runs (outcome, deadline_ms)
    WHERE outcome = 'running';

-- migrate 5
-- How the service ran the request: pyexec.cgi, one process per request,
-- or pyexec-fcgi's broker and zygote. Rows from before are the CGI's.
ALTER TABLE runs ADD COLUMN mode TEXT NOT NULL DEFAULT 'cgi'
    CHECK (mode IN ('cgi', 'fcgi'));

-- migrate 6
-- Nothing on SQLite: PostgreSQL's run_totals (sql/pg_schema.sql's migrate
-- 6), which SQLite has had since migrate 4. The section keeps the numbers
-- of both files the same.
