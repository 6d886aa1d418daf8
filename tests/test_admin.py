"""pyexec-admin, black box: every command but logs, stats and cost (see
test_admin_logs.py), checked through its output, the database it leaves,
and what pyexec.cgi does next (tokens, quotas and settings are only proven
when the CGI obeys them).

The admin binary is $PYEXEC_ADMIN, else ./pyexec-admin. Every command runs
with TZ set far from UTC, so that printed times prove they are UTC."""
import calendar
import csv
import glob
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import (CGI, base_env, new_db, run_code, can_mount_tmpfs,
                      is_pg, pg_sql, run_dir,
                      require, ROOT)

HERE = os.path.dirname(os.path.abspath(__file__))
ADMIN = os.environ.get("PYEXEC_ADMIN", os.path.join(HERE, "..", "pyexec-admin"))
SCHEMA = os.path.join(HERE, "..", "sql", "schema.sql")

TOKEN_RE = re.compile(r"^pyx_[0-9a-f]{64}$")
ISO_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
LINE_RE = re.compile(r"^(OK|WARN|FAIL)\s+(\S+)\s+(.*)$")

LAYERS = ["python", "audit_hook", "seccomp", "no_new_privs", "rlimits",
          "uid_drop", "userns", "netns", "landlock"]

# Every command of the dispatch table, for --help and help COMMAND.
COMMANDS = ["init", "user add", "user list", "user show", "user set",
            "user disable",
            "user enable", "user remove", "user rotate", "admin grant",
            "admin revoke", "quota default", "quota set", "quota show",
            "quota reset", "config list", "config get", "config set",
            "config unset", "logs", "logs show", "stats", "cost estimate",
            "cost report", "prune", "vacuum", "roles", "doctor"]


def schema_version():
    with open(SCHEMA) as f:
        return max(int(n) for n in re.findall(r"^-- migrate (\d+)", f.read(), re.M))


def admin(*args, db=None, env=None, timeout=120):
    """Runs pyexec-admin; db goes in PYEXEC_DB (None: unset)."""
    e = {"PATH": "/usr/bin:/bin", "TZ": "America/Los_Angeles"}
    if db is not None:
        e["PYEXEC_DB"] = db
    e.update(env or {})
    return subprocess.run([ADMIN, *args], env=e, capture_output=True,
                          text=True, timeout=timeout)


def ok(*args, db=None, env=None):
    p = admin(*args, db=db, env=env)
    assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
    return p.stdout


def fails(rc, *args, db=None):
    """The command exits rc, with nothing on stdout and a prefixed message."""
    p = admin(*args, db=db)
    assert p.returncode == rc, (args, p.returncode, p.stdout, p.stderr)
    assert p.stdout == "", (args, p.stdout)
    assert p.stderr.startswith("pyexec-admin: "), (args, p.stderr)
    return p.stderr


def new_user(db, name, *opts):
    p = admin("user", "add", name, *opts, db=db)
    assert p.returncode == 0, p.stderr
    token = p.stdout.strip()
    assert TOKEN_RE.match(token), p.stdout
    return token


def bearer(token):
    return {"HTTP_AUTHORIZATION": "Bearer " + token}


def run_as(db, token, code="print('hi')"):
    return run_code(code, db=db, env=bearer(token))


def iso_to_unix(s):
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


def sql(db, query, *params):
    if is_pg(db):
        return [tuple(r.values()) for r in pg_sql(db, query, params)]
    with sqlite3.connect(db) as c:
        return c.execute(query, params).fetchall()


def db_files_bytes(db):
    data = b""
    for f in [db, db + "-wal", db + "-shm"]:
        if os.path.exists(f):
            with open(f, "rb") as fh:
                data += fh.read()
    return data


@pytest.fixture
def db(request):
    """A new database: SQLite's, or the backend a test names with BOTH."""
    path = new_db(backend=getattr(request, "param", "sqlite"))
    yield path
    shutil.rmtree(run_dir(path), ignore_errors=True)


# The commands that behave the same on both backends run on both. The
# others are SQLite's alone: init's file, the read-only mount and opening,
# vacuum's PRAGMAs, doctor's www-data check of the file's directory, and
# the argument parsing (usage errors, before any database is opened).
BOTH = pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def tmpdir_path():
    d = tempfile.mkdtemp(prefix="pyexec-admin-test-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


# --- init -------------------------------------------------------------------

def test_init_creates_the_database(tmpdir_path):
    path = os.path.join(tmpdir_path, "new.db")
    out = ok("init", db=path)
    assert "schema %d" % schema_version() in out
    assert sql(path, "PRAGMA user_version")[0][0] == schema_version()
    assert sql(path, "PRAGMA journal_mode")[0][0] == "wal"
    tables = {r[0] for r in sql(path, "SELECT name FROM sqlite_master")}
    assert {"users", "settings", "runs", "runs_view"} <= tables


def test_init_twice_changes_nothing(tmpdir_path):
    path = os.path.join(tmpdir_path, "twice.db")
    ok("--db", path, "init")
    new_user(path, "keep")
    ok("config", "set", "timeout_ms", "2000", db=path)
    before = (sql(path, "SELECT sql FROM sqlite_master ORDER BY name"),
              sql(path, "SELECT name, token_hash FROM users"),
              sql(path, "SELECT * FROM settings"))
    out = ok("--db", path, "init")
    assert "1 users" in out
    after = (sql(path, "SELECT sql FROM sqlite_master ORDER BY name"),
             sql(path, "SELECT name, token_hash FROM users"),
             sql(path, "SELECT * FROM settings"))
    assert before == after
    assert sql(path, "PRAGMA user_version")[0][0] == schema_version()


def test_init_migrates_an_empty_file(tmpdir_path):
    path = os.path.join(tmpdir_path, "empty.db")
    open(path, "wb").close()
    ok("init", db=path)
    assert sql(path, "PRAGMA user_version")[0][0] == schema_version()


def test_init_refuses_a_newer_schema(tmpdir_path):
    path = os.path.join(tmpdir_path, "future.db")
    ok("init", db=path)
    sql(path, "PRAGMA user_version = %d" % (schema_version() + 1))
    assert "newer" in fails(1, "init", db=path)


def test_read_only_command_never_creates_the_database(tmpdir_path):
    path = os.path.join(tmpdir_path, "absent.db")
    fails(1, "user", "list", db=path)
    fails(1, "config", "get", "timeout_ms", db=path)
    assert not os.path.exists(path)


def test_db_option_wins_over_the_environment(db, tmpdir_path):
    other = os.path.join(tmpdir_path, "other.db")
    ok("init", db=other)
    new_user(db, "in-env")
    assert "in-env" in ok("user", "list", db=db)
    assert "in-env" not in ok("--db", other, "user", "list", db=db)


# --- users and tokens -------------------------------------------------------

@BOTH
def test_user_add_prints_the_token_once(db):
    p = admin("user", "add", "alice", db=db)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 1 and TOKEN_RE.match(lines[0])
    token = lines[0]
    assert "alice" in p.stderr and token not in p.stderr
    # Stored as its SHA-256, never as itself.
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert sql(db, "SELECT token_hash FROM users WHERE name = 'alice'") == [(digest,)]
    assert token.encode() not in db_files_bytes(db)
    assert token[4:].encode() not in db_files_bytes(db)


@BOTH
def test_user_token_works_as_bearer_and_in_the_body(db):
    token = new_user(db, "bob")
    r = run_as(db, token, "print('as bob')")
    assert r.status == 200 and r["output"] == "as bob\n", r
    r = run_code("print('body token')", db=db, token=token)
    assert r.status == 200 and r["output"] == "body token\n", r
    rows = sql(db, "SELECT identity, user_name FROM runs WHERE outcome = 'ok'")
    assert rows == [("user:bob", "bob")] * 2
    bad = run_as(db, "pyx_" + "0" * 64)
    assert bad.status == 401


@BOTH
def test_user_add_tokens_differ_and_options_apply(db):
    t1 = new_user(db, "one")
    t2 = new_user(db, "two", "--admin", "--quota", "unlimited")
    t3 = new_user(db, "three", "--quota", "7")
    assert len({t1, t2, t3}) == 3
    rows = dict((r[0], r[1:]) for r in
                sql(db, "SELECT name, is_admin, quota FROM users"))
    assert rows == {"one": (0, None), "two": (1, -1), "three": (0, 7)}


@BOTH
def test_user_add_refuses_duplicates_and_bad_names(db):
    new_user(db, "dup")
    assert "exists" in fails(1, "user", "add", "dup", db=db)
    assert "invalid user name" in fails(1, "user", "add", "bad name!", db=db)
    fails(1, "user", "add", "x" * 65, db=db)
    assert sql(db, "SELECT count(*) FROM users") == [(1,)]


@BOTH
def test_user_list_formats(db):
    assert admin("user", "list", db=db).stdout == ""
    new_user(db, "ann")
    new_user(db, "root-ish", "--admin")
    new_user(db, "capped", "--quota", "3")
    ok("user", "disable", "capped", db=db)

    table = ok("user", "list", db=db).splitlines()
    assert table[0].split() == ["NAME", "ADMIN", "STATE", "QUOTA",
                                "TIMEOUT_MS", "MEMORY_MB", "CREATED"]
    assert [l.split()[0] for l in table[1:]] == ["ann", "capped", "root-ish"]
    capped = table[2].split()
    assert capped[1:6] == ["no", "disabled", "3", "default", "default"]
    assert ISO_RE.fullmatch(capped[6])

    rows = [json.loads(l) for l in ok("user", "list", "--json", db=db).splitlines()]
    assert [r["name"] for r in rows] == ["ann", "capped", "root-ish"]
    byname = {r["name"]: r for r in rows}
    assert byname["root-ish"]["admin"] is True
    assert byname["capped"]["disabled"] is True
    # Numbers everywhere, and where each comes from.
    assert (byname["ann"]["quota"], byname["ann"]["quota_from"]) == \
        (10, "default")
    assert (byname["capped"]["quota"], byname["capped"]["quota_from"]) == \
        (3, "own")
    assert (byname["root-ish"]["quota"], byname["root-ish"]["quota_from"]) \
        == (-1, "admin")
    for r in rows:
        assert (r["timeout_ms"], r["memory_mb"]) == (30000, 512)
        assert r["timeout_from"] == r["memory_from"] == "default"
    for r in rows:
        assert abs(iso_to_unix(r["created"]) - time.time()) < 300

    rows = list(csv.DictReader(io.StringIO(ok("user", "list", "--csv", db=db))))
    assert [r["name"] for r in rows] == ["ann", "capped", "root-ish"]
    assert rows[1]["disabled"] == "1" and rows[1]["quota"] == "3"
    assert rows[0]["quota"] == "10" and rows[0]["quota_from"] == "default"
    assert rows[0]["timeout_ms"] == "30000"
    assert rows[2]["admin"] == "1"


@BOTH
def test_user_show_usage_in_the_window(db):
    token = new_user(db, "carol", "--quota", "5")
    t0 = time.time()
    for _ in range(2):
        assert run_as(db, token).status == 200
    run_code("print('anonymous')", db=db)    # not carol's
    show = json.loads(ok("user", "show", "carol", "--json", db=db))
    assert show["name"] == "carol" and show["quota"] == 5
    assert show["used"] == 2 and show["remaining"] == 3
    assert show["window_s"] == 3600
    reset = iso_to_unix(show["reset"])
    assert t0 + 3600 - 5 <= reset <= time.time() + 3600 + 1
    assert abs(iso_to_unix(show["created"]) - t0) < 300

    text = ok("user", "show", "carol", db=db)
    assert re.search(r"^quota:\s+5\b", text, re.M), text
    assert re.search(r"^used:\s+2, remaining 3, a slot frees at " + show["reset"],
                     text, re.M), text


@BOTH
def test_user_show_follows_the_default_quota(db):
    ok("quota", "default", "4", db=db)
    token = new_user(db, "dora")
    assert run_as(db, token).status == 200
    show = json.loads(ok("user", "show", "dora", "--json", db=db))
    assert (show["quota"], show["used"], show["remaining"]) == (4, 1, 3)


@BOTH
def test_user_show_unknown(db):
    assert "no user 'ghost'" in fails(1, "user", "show", "ghost", db=db)


@BOTH
def test_user_disable_and_enable(db):
    token = new_user(db, "erin")
    out = ok("user", "disable", "erin", db=db)
    assert "disabled" in out
    r = run_as(db, token)
    assert r.status == 401 and r["error_type"] == "Unauthorized", r
    assert "disabled" in r["error"]
    assert json.loads(ok("user", "show", "erin", "--json", db=db))["disabled"] is True
    ok("user", "enable", "erin", db=db)
    assert run_as(db, token).status == 200


@BOTH
def test_user_remove_keeps_the_audit_rows(db):
    token = new_user(db, "frank")
    assert run_as(db, token).status == 200
    assert run_as(db, token).status == 200
    out = ok("user", "remove", "frank", db=db)
    assert "kept" in out
    assert "frank" not in ok("user", "list", db=db)
    rows = sql(db, "SELECT user_name, user_id, outcome FROM runs "
               "WHERE identity = 'user:frank'")
    assert rows == [("frank", None, "ok")] * 2
    assert run_as(db, token).status == 401
    fails(1, "user", "remove", "frank", db=db)


@BOTH
def test_user_rotate(db):
    old = new_user(db, "gina")
    assert run_as(db, old).status == 200
    p = admin("user", "rotate", "gina", db=db)
    assert p.returncode == 0, p.stderr
    new = p.stdout.strip()
    assert TOKEN_RE.match(new) and new != old and p.stdout == new + "\n"
    assert new not in p.stderr
    r = run_as(db, old)
    assert r.status == 401, r
    assert run_as(db, new).status == 200
    assert new.encode() not in db_files_bytes(db)
    fails(1, "user", "rotate", "nobody-here", db=db)


# --- admins -----------------------------------------------------------------

@BOTH
def test_admin_grant_and_revoke(db):
    ok("quota", "default", "1", db=db)
    token = new_user(db, "hal")
    ok("admin", "grant", "hal", db=db)
    assert json.loads(ok("user", "list", "--json", db=db))["admin"] is True
    for _ in range(3):
        r = run_as(db, token)
        assert r.status == 200, r
        assert not any(h.startswith("ratelimit") for h in r.headers), r.headers
    ok("admin", "revoke", "hal", db=db)
    r = run_as(db, token)
    assert r.status == 429 and r["error_type"] == "RateLimited", r
    assert r.headers["ratelimit-limit"] == "1"
    assert int(r.headers["retry-after"]) > 0
    fails(1, "admin", "grant", "nobody-here", db=db)
    fails(1, "admin", "revoke", "nobody-here", db=db)


# --- quotas -----------------------------------------------------------------

@BOTH
def test_quota_default_limits_anonymous(db):
    out = ok("quota", "default", "2", "--window", "1h", db=db)
    assert "2 runs per 1h" in out
    assert ok("config", "get", "default_quota", db=db) == "2\n"
    assert ok("config", "get", "quota_window_s", db=db) == "3600\n"
    r1, r2, r3 = (run_code("print(1)", db=db) for _ in range(3))
    assert (r1.status, r2.status, r3.status) == (200, 200, 429)
    assert r1.headers["ratelimit-limit"] == "2"
    assert r2.headers["ratelimit-remaining"] == "0"
    assert r3["error_type"] == "RateLimited" and "retry-after" in r3.headers
    assert "2 runs per 3600 s" in ok("quota", "show", db=db)


@BOTH
def test_quota_default_window(db):
    ok("quota", "default", "3", "--window", "15m", db=db)
    assert ok("config", "get", "quota_window_s", db=db) == "900\n"
    r = run_code("print(1)", db=db)
    assert 0 < int(r.headers["ratelimit-reset"]) <= 900


@BOTH
def test_quota_default_unlimited(db):
    ok("quota", "default", "unlimited", db=db)
    assert ok("config", "get", "default_quota", db=db) == "-1\n"
    assert "unlimited" in ok("quota", "show", db=db)
    r = run_code("print(1)", db=db)
    assert r.status == 200 and "ratelimit-limit" not in r.headers


@BOTH
def test_quota_set(db):
    ok("quota", "default", "5", db=db)
    token = new_user(db, "ivy")
    ok("quota", "set", "ivy", "1", db=db)
    assert "1 runs per 3600 s (own)" in ok("quota", "show", "ivy", db=db)
    assert run_as(db, token).status == 200
    r = run_as(db, token)
    assert r.status == 429 and r.headers["ratelimit-limit"] == "1", r
    ok("quota", "set", "ivy", "unlimited", db=db)
    assert "unlimited" in ok("quota", "show", "ivy", db=db)
    r = run_as(db, token)
    assert r.status == 200 and "ratelimit-limit" not in r.headers
    ok("quota", "set", "ivy", "default", db=db)
    assert "(default)" in ok("quota", "show", "ivy", db=db)
    assert sql(db, "SELECT quota FROM users WHERE name = 'ivy'") == [(None,)]
    r = run_as(db, token)
    assert r.status == 200 and r.headers["ratelimit-limit"] == "5"
    fails(1, "quota", "set", "nobody-here", "3", db=db)


@BOTH
def test_quota_show(db):
    out = ok("quota", "show", db=db)
    assert "10 runs per 3600 s" in out and "allowed" in out
    ok("config", "set", "anonymous", "deny", db=db)
    assert "refused" in ok("quota", "show", db=db)
    token = new_user(db, "jack", "--quota", "3")
    assert run_as(db, token).status == 200
    out = ok("quota", "show", "jack", db=db)
    assert "jack: 3 runs per 3600 s (own); 1 used" in out
    new_user(db, "boss", "--admin")
    assert "unlimited (admin)" in ok("quota", "show", "boss", db=db)
    fails(1, "quota", "show", "nobody-here", db=db)


@BOTH
def test_quota_reset(db):
    token = new_user(db, "kim", "--quota", "1")
    assert run_as(db, token).status == 200
    assert run_as(db, token).status == 429
    out = ok("quota", "reset", "kim", db=db)
    assert "kept" in out
    assert json.loads(ok("user", "show", "kim", "--json", db=db))["used"] == 0
    assert run_as(db, token).status == 200
    assert run_as(db, token).status == 429
    rows = sql(db, "SELECT http_status FROM runs WHERE identity = 'user:kim' "
               "ORDER BY started_ms")
    assert rows == [(200,), (429,), (200,), (429,)]
    fails(1, "quota", "reset", "nobody-here", db=db)


# --- settings ---------------------------------------------------------------

KEYS = ["timeout_ms", "cpu_ms", "memory_mb", "output_bytes", "code_bytes",
        "input_bytes", "body_bytes", "body_timeout_ms", "max_timeout_ms",
        "max_memory_mb", "default_quota", "quota_window_s", "anonymous",
        "audit_code", "audit_code_max_bytes", "audit_error_max_bytes",
        "max_concurrent", "concurrency_wait_ms",
        "max_concurrent_per_identity", "anon_ipv6_prefix", "trusted_proxies",
        "price_gb_s", "price_invocation", "allowed_modules",
        "mcp_allowed_origins", "metrics_allow"]


@BOTH
def test_config_list(db):
    table = ok("config", "list", db=db).splitlines()
    assert table[0].split()[:3] == ["KEY", "VALUE", "SOURCE"]
    assert [l.split()[0] for l in table[1:]] == KEYS
    ok("config", "set", "memory_mb", "256", db=db)
    rows = [json.loads(l) for l in ok("config", "list", "--json", db=db).splitlines()]
    assert [r["key"] for r in rows] == KEYS
    byk = {r["key"]: r for r in rows}
    assert byk["memory_mb"] == {"key": "memory_mb", "value": "256",
                                "source": "set", "default": "512"}
    assert byk["timeout_ms"]["source"] == "default"
    assert byk["timeout_ms"]["value"] == byk["timeout_ms"]["default"] == "30000"


@BOTH
def test_config_invalid_stored_value_shows_the_default(db):
    sql(db, "INSERT INTO settings VALUES ('timeout_ms', 'soon')")
    assert ok("config", "get", "timeout_ms", db=db) == "30000\n"
    rows = [json.loads(l) for l in ok("config", "list", "--json", db=db).splitlines()]
    assert {r["key"]: r["source"] for r in rows}["timeout_ms"] == "invalid"


@BOTH
def test_config_get_set_unset(db):
    assert ok("config", "get", "anonymous", db=db) == "allow\n"
    assert ok("config", "set", "anonymous", "deny", db=db) == "anonymous = deny\n"
    assert ok("config", "get", "anonymous", db=db) == "deny\n"
    ok("config", "set", "default_quota", "-1", db=db)
    assert ok("config", "get", "default_quota", db=db) == "-1\n"
    ok("config", "set", "price_gb_s", "0.00001", db=db)
    assert ok("config", "get", "price_gb_s", db=db) == "0.00001\n"
    out = ok("config", "unset", "anonymous", db=db)
    assert "allow" in out and "default" in out
    assert ok("config", "get", "anonymous", db=db) == "allow\n"
    assert sql(db, "SELECT key FROM settings WHERE key = 'anonymous'") == []


@pytest.mark.parametrize("key,value", [
    ("timeout_ms", "5"), ("timeout_ms", "ten"), ("timeout_ms", "99999999999"),
    ("memory_mb", "-1"), ("anonymous", "maybe"), ("audit_code", "some"),
    ("price_gb_s", "cheap"), ("default_quota", "-2"), ("output_bytes", "0"),
    ("quota_window_s", ""),
])
@BOTH
def test_config_set_validates(db, key, value):
    before = ok("config", "get", key, db=db)
    msg = fails(1, "config", "set", key, value, db=db)
    assert key in msg or "must" in msg, msg
    assert ok("config", "get", key, db=db) == before


@BOTH
def test_config_unknown_key_is_a_usage_error(db):
    for args in (["get", "nope"], ["set", "nope", "1"], ["unset", "nope"]):
        msg = fails(2, "config", *args, db=db)
        assert "unknown setting 'nope'" in msg and "usage:" in msg


@BOTH
def test_config_set_applies_to_the_next_request(db):
    r = run_code("print('x' * 100)", db=db)
    assert r.status == 200 and r["success"], r
    ok("config", "set", "output_bytes", "10", db=db)
    r = run_code("print('x' * 100)", db=db)
    assert r["error_type"] == "OutputLimitExceeded" and r["truncated"] is True, r
    assert r["output"] == "x" * 10
    ok("config", "unset", "output_bytes", db=db)
    assert run_code("print('x' * 100)", db=db)["success"]
    ok("config", "set", "anonymous", "deny", db=db)
    r = run_code("print(1)", db=db)
    assert r.status == 401 and "token is required" in r["error"], r


# --- prune and vacuum -------------------------------------------------------

def insert_old(db, rid, days, outcome="ok", deadline_ms=None):
    started = int((time.time() - days * 86400) * 1000)
    sql(db, "INSERT INTO runs (id, started_ms, finished_ms, identity, outcome, "
        "deadline_ms, counted, http_status) VALUES (?, ?, ?, 'anon:10.0.0.1', "
        "?, ?, 1, 200)", rid, started,
        None if outcome == "running" else started + 5, outcome,
        deadline_ms if deadline_ms is not None else started + 60000)


@BOTH
def test_prune(db):
    for i in range(3):
        insert_old(db, "old%d" % i, 100)
    # Still running: its deadline is ahead (whenever it started).
    insert_old(db, "older-but-running", 200, outcome="running",
               deadline_ms=int((time.time() + 3600) * 1000))
    # Its broker died: 'running' in the table, past its deadline.
    insert_old(db, "old-abandoned", 200, outcome="running")
    insert_old(db, "recent", 30)
    first = sql(db, "SELECT count(*) FROM runs")[0][0] - 6
    assert run_code("print(1)", db=db).status == 200
    total = sql(db, "SELECT count(*) FROM runs")[0][0]
    assert total == first + 7   # new_db()'s first request, if any, and the run
    assert sql(db, "SELECT status FROM runs_view WHERE id = 'old-abandoned'") \
        == [("abandoned",)]

    t0 = time.time()
    out = ok("prune", "--older-than", "90d", "--dry-run", db=db)
    assert out.startswith("would delete 4 audit rows"), out
    assert "still running are kept (abandoned ones are not)" in out, out
    cutoff = iso_to_unix(ISO_RE.search(out).group(0))
    assert abs(cutoff - (t0 - 90 * 86400)) < 60
    assert sql(db, "SELECT count(*) FROM runs")[0][0] == total

    out = ok("prune", "--older-than", "90d", db=db)
    assert out.startswith("deleted 4 audit rows"), out
    left = {r[0] for r in sql(db, "SELECT id FROM runs")}
    assert "older-but-running" in left and "recent" in left
    assert not any(i.startswith("old") and i != "older-but-running" for i in left)
    assert len(left) == total - 4

    out = ok("prune", "--older-than", "4w", db=db)
    assert out.startswith("deleted 1 audit row "), out
    out = ok("prune", "--older-than", "1000d", db=db)
    assert out.startswith("deleted 0 audit rows"), out
    assert "older-but-running" in {r[0] for r in sql(db, "SELECT id FROM runs")}


@BOTH
def test_prune_never_deletes_the_quota_window(db):
    """The audit rows are the rate limit: a prune inside the quota window
    would give every identity its quota back, so it is refused."""
    token = new_user(db, "once", "--quota", "1")
    auth = {"HTTP_AUTHORIZATION": "Bearer " + token}
    assert run_code("print(1)", db=db, env=auth).status == 200
    assert run_code("print(2)", db=db, env=auth).status == 429
    before = sql(db, "SELECT count(*) FROM runs")[0][0]
    for asked in ("1s", "10m", "59m"):
        err = fails(1, "prune", "--older-than", asked, db=db)
        assert ("--older-than %s is inside the quota window (3600 s" % asked
                in err), err
        assert "ask for 3600 s or more" in err, err
        err = fails(1, "prune", "--older-than", asked, "--dry-run", db=db)
        assert "inside the quota window" in err, err
    assert sql(db, "SELECT count(*) FROM runs")[0][0] == before
    assert run_code("print(3)", db=db, env=auth).status == 429

    ok("config", "set", "quota_window_s", "86400", db=db)
    err = fails(1, "prune", "--older-than", "12h", db=db)
    assert "inside the quota window (86400 s" in err, err
    out = ok("prune", "--older-than", "1d", db=db)
    assert out.startswith("deleted 0 audit rows"), out
    assert run_code("print(4)", db=db, env=auth).status == 429


def kill_broker_mid_run(db, env):
    """Starts a run that never ends and SIGKILLs its broker once its row
    says 'running' (an OOM killer, a host crash); returns the row's id."""
    env = dict(base_env(db), **env)
    body = json.dumps({"code": "while True: pass"}).encode()
    env.update({"REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/json",
                "CONTENT_LENGTH": str(len(body)), "PYEXEC_TIMEOUT_MS": "20000"})
    before = {r[0] for r in sql(db, "SELECT id FROM runs")}
    p = subprocess.Popen([CGI], env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    p.stdin.write(body)
    p.stdin.close()
    try:
        for _ in range(1000):               # at most ~20 s
            new = {r[0] for r in sql(db, "SELECT id FROM runs WHERE "
                                     "outcome = 'running'")} - before
            if new:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the request never showed as running")
    finally:
        p.send_signal(9)
        p.wait(timeout=30)
    return new.pop()


@BOTH
def test_a_killed_brokers_row_counts_then_goes_by_age(db):
    """A broker SIGKILLed mid-run leaves its row 'running'. Past its
    deadline it reads 'abandoned' (stats count it so); inside the quota
    window it still counts, so the kill gave no free run; once older than
    the window, prune deletes it like any other row."""
    token = new_user(db, "killed", "--quota", "1")
    rid = kill_broker_mid_run(db, {"HTTP_AUTHORIZATION": "Bearer " + token})
    assert sql(db, "SELECT outcome, counted FROM runs WHERE id = ?", rid) == \
        [("running", 1)]
    # The deadline (the time limit and a grace) passes: moved back, as the
    # test cannot wait 20 s for it.
    now = int(time.time() * 1000)
    sql(db, "UPDATE runs SET deadline_ms = ? WHERE id = ?", now - 1000, rid)
    assert sql(db, "SELECT status FROM runs_view WHERE id = ?", rid) == \
        [("abandoned",)]
    by = ok("stats", "--by", "outcome", "--json", db=db)
    assert '"abandoned"' in by and '"running"' not in by, by
    r = run_code("print(1)", db=db, env={"HTTP_AUTHORIZATION": "Bearer " + token})
    assert r.status == 429, r               # the abandoned run counted
    ok("config", "set", "quota_window_s", "60", db=db)
    out = ok("prune", "--older-than", "60s", db=db)
    assert rid in {r[0] for r in sql(db, "SELECT id FROM runs")}, out
    # Two minutes later, outside the window: gone, and the quota is back.
    sql(db, "UPDATE runs SET started_ms = started_ms - 120000, deadline_ms = "
        "deadline_ms - 120000 WHERE identity = 'user:killed'")
    out = ok("prune", "--older-than", "60s", db=db)
    assert rid not in {r[0] for r in sql(db, "SELECT id FROM runs")}, out
    assert run_code("print(2)", db=db,
                    env={"HTTP_AUTHORIZATION": "Bearer " + token}).status == 200


def test_vacuum(db):
    for i in range(200):
        insert_old(db, "bulk%d" % i, 400)
    sql(db, "UPDATE runs SET code = ? WHERE id LIKE 'bulk%'", "x" * 4000)
    ok("prune", "--older-than", "1w", db=db)
    out = ok("vacuum", db=db)
    m = re.search(r"(\d+) bytes on disk before, (\d+) after", out)
    assert m and int(m.group(2)) < int(m.group(1)), out
    assert sql(db, "PRAGMA integrity_check") == [("ok",)]
    assert sql(db, "PRAGMA freelist_count") == [(0,)]
    assert run_code("print('after vacuum')", db=db).status == 200


# --- doctor -----------------------------------------------------------------

def doctor_lines(out):
    checks = {}
    for line in out.splitlines():
        m = LINE_RE.match(line)
        if m:
            checks[m.group(2)] = (m.group(1), m.group(3))
    return checks


def www_data():
    import pwd
    try:
        return pwd.getpwnam("www-data")
    except KeyError:
        return None


def deployed(db):
    """Gives the database's directory to www-data, as README's deployment
    does, where this process can (root, and the user exists). Returns the
    verdict doctor's db.www-data must then give. A PostgreSQL database
    has no file here to give: None."""
    if is_pg(db):
        return None
    www = www_data()
    if not www:
        return "WARN"
    if os.geteuid() != 0:
        return "FAIL"
    d = os.path.dirname(db)
    for f in [d] + glob.glob(db + "*"):
        os.chown(f, www.pw_uid, www.pw_gid)
    return "OK"


@BOTH
def test_doctor(db):
    verdict = deployed(db)
    p = admin("doctor", db=db)
    assert p.returncode == (1 if verdict == "FAIL" else 0), p.stdout + p.stderr
    checks = doctor_lines(p.stdout)
    files = ["db.owner", "db.www-data"]
    if verdict is None:     # PostgreSQL: no file here to own or to give
        assert "db.www-data" not in checks, p.stdout
        assert checks["db.owner"][0] == "OK" and \
            "no local database files" in checks["db.owner"][1], p.stdout
        assert "PostgreSQL" in checks["db.journal"][1], checks["db.journal"]
        files = ["db.owner"]
    else:
        assert checks["db.www-data"][0] == verdict, checks["db.www-data"]
    assert re.search(r"^\d+ OK, \d+ WARN, %d FAIL$" % (verdict == "FAIL"),
                     p.stdout, re.M), p.stdout
    for name in ["kernel.seccomp", "kernel.userns", "kernel.landlock",
                 "python", "db.open", "db.integrity", "db.journal",
                 "db.schema", "cgi", "selftest.hello", "selftest.open",
                 "selftest.audit_hook"] + files:
        assert name in checks, (name, p.stdout)
    for name in ["kernel.seccomp", "python", "db.open", "db.integrity",
                 "db.journal", "db.schema", "cgi", "selftest.hello",
                 "selftest.open", "selftest.audit_hook"]:
        assert checks[name][0] == "OK", (name, checks[name])
    assert "3." in checks["python"][1] and "/usr/lib/python3" in checks["python"][1]
    assert "audit event" in checks["selftest.audit_hook"][1]
    # Each layer is working, unless the kernel said it cannot be.
    kernel_for = {"userns": "kernel.userns", "netns": "kernel.userns",
                  "landlock": "kernel.landlock"}
    for layer in LAYERS:
        status, detail = checks["layer." + layer]
        if checks.get(kernel_for.get(layer), ("OK",))[0] == "OK":
            assert status == "OK", (layer, status, detail)
            assert detail.startswith("working") or (
                layer == "uid_drop" and os.geteuid() != 0), detail


@BOTH
def test_doctor_json(db):
    verdict = deployed(db)
    p = admin("doctor", "--json", db=db)
    assert p.returncode == (1 if verdict == "FAIL" else 0), p.stdout
    rows = [json.loads(l) for l in p.stdout.splitlines()]
    assert rows and all(set(r) == {"check", "status", "detail"} for r in rows)
    assert all(r["status"] in ("OK", "WARN") for r in rows
               if r["check"] != "db.www-data"), rows
    names = [r["check"] for r in rows]
    assert ["layer." + l for l in LAYERS] == [n for n in names if n.startswith("layer.")]
    assert dict((r["check"], r["status"]) for r in rows)["selftest.hello"] == "OK"


@BOTH
def test_doctor_fails_without_a_working_cgi(db, tmpdir_path):
    p = admin("doctor", "--cgi", "/bin/false", db=db)
    assert p.returncode == 1
    checks = doctor_lines(p.stdout)
    assert checks["selftest.hello"][0] == "FAIL"
    assert all(checks["layer." + l][0] == "FAIL" for l in LAYERS)
    p = admin("doctor", "--cgi", os.path.join(tmpdir_path, "none"), db=db)
    assert p.returncode == 1 and doctor_lines(p.stdout)["cgi"][0] == "FAIL"


def test_doctor_never_creates_the_database(tmpdir_path):
    path = os.path.join(tmpdir_path, "not-yet.db")
    os.chmod(tmpdir_path, 0o755)
    verdict = deployed(path)
    p = admin("doctor", db=path)
    checks = doctor_lines(p.stdout)
    assert checks["db.open"][0] == "WARN", p.stdout
    assert checks["db.www-data"][0] == verdict, p.stdout
    assert p.returncode == (1 if verdict == "FAIL" else 0), p.stdout
    assert not os.path.exists(path)
    assert sorted(os.listdir(tmpdir_path)) == []


def test_doctor_reports_www_data_access(tmpdir_path):
    import grp
    import pwd
    path = os.path.join(tmpdir_path, "perm.db")
    ok("init", db=path)
    os.chmod(tmpdir_path, 0o755)
    checks = doctor_lines(admin("doctor", db=path).stdout)
    # The files are the creator's: root's, or ours when not root.
    me = "%s:%s" % (pwd.getpwuid(os.geteuid()).pw_name,
                    grp.getgrgid(os.getegid()).gr_name)
    assert "file %s 0" % me in checks["db.owner"][1], checks["db.owner"]
    try:
        www = pwd.getpwnam("www-data")
    except KeyError:
        assert checks["db.www-data"][0] == "WARN"
        return
    # A database the web server's user cannot write is a failure, with
    # the fix, and doctor exits 1.
    p = admin("doctor", db=path)
    checks = doctor_lines(p.stdout)
    assert checks["db.www-data"][0] == "FAIL", checks["db.www-data"]
    assert "fix: chown -R www-data:www-data '%s'" % \
        os.path.realpath(tmpdir_path) in checks["db.www-data"][1]
    assert p.returncode == 1
    # Applying the fix takes root.
    require(ROOT, "chown to www-data needs root", root=True)
    for f in glob.glob(path + "*") + [tmpdir_path]:
        os.chown(f, www.pw_uid, www.pw_gid)
    p = admin("doctor", db=path)
    checks = doctor_lines(p.stdout)
    assert checks["db.www-data"][0] == "OK", checks["db.www-data"]
    assert p.returncode == 0, p.stdout


def test_init_as_root_in_a_directory_another_user_owns(tmpdir_path):
    """pyexec-admin as root on a deployment's directory (www-data's)
    creates every file as that user, and the CGI run as that user can then
    use the database."""
    if os.geteuid() != 0:
        # Not root: pyexec-admin creates its files as itself, as ever.
        path = os.path.join(tmpdir_path, "mine.db")
        ok("init", db=path)
        for f in os.listdir(tmpdir_path):
            st = os.stat(os.path.join(tmpdir_path, f))
            assert st.st_uid == os.geteuid(), f
        return
    www = www_data()
    owner = (www.pw_uid, www.pw_gid) if www else (65534, 65534)
    os.chmod(tmpdir_path, 0o755)
    d = os.path.join(tmpdir_path, "var")
    os.mkdir(d, 0o750)
    os.chown(d, *owner)
    path = os.path.join(d, "pyexec.db")
    ok("init", db=path)
    token = new_user(db=path, name="ann")
    assert "ann" in ok("user", "list", db=path)
    files = os.listdir(d)
    assert "pyexec.db" in files
    for f in files:
        st = os.stat(os.path.join(d, f))
        assert (st.st_uid, st.st_gid) == owner, (f, st.st_uid, st.st_gid)
    # The CGI as that user (installed where it may run it) writes its row.
    bindir = os.path.join(tmpdir_path, "bin")
    os.mkdir(bindir, 0o755)
    for name in ("pyexec.cgi", "pyexec-sandbox"):
        shutil.copy2(os.path.join(os.path.dirname(CGI), name), bindir)
    env = dict(base_env(path), REQUEST_METHOD="POST",
               CONTENT_TYPE="application/json",
               HTTP_AUTHORIZATION="Bearer " + token)
    body = json.dumps({"code": "print(6 * 7)"}).encode()
    env["CONTENT_LENGTH"] = str(len(body))
    p = subprocess.run([os.path.join(bindir, "pyexec.cgi")], input=body,
                       env=env, capture_output=True, timeout=120,
                       user=owner[0], group=owner[1], extra_groups=[])
    head, _, reply = p.stdout.partition(b"\r\n\r\n")
    if not reply:
        head, _, reply = p.stdout.partition(b"\n\n")
    assert head.startswith(b"Status: 200"), (p.stdout, p.stderr)
    assert json.loads(reply)["output"] == "42\n"
    assert sql(path, "SELECT user_name FROM runs WHERE http_status = 200") \
        == [("ann",)]


# --- help, usage and errors -------------------------------------------------

@pytest.mark.parametrize("command", COMMANDS)
def test_help_for_every_command(command, tmpdir_path):
    nodb = os.path.join(tmpdir_path, "missing", "x.db")
    words = command.split()
    for args in ([*words, "--help"], ["help", *words], [*words, "-h"]):
        p = admin(*args, db=nodb)
        assert p.returncode == 0, (args, p.stderr)
        assert p.stdout.startswith("usage: pyexec-admin " + command), p.stdout
        assert p.stderr == ""
    assert not os.path.exists(os.path.dirname(nodb))


def test_help_lists_the_commands():
    for args in (["help"], ["--help"], ["-h"]):
        out = ok(*args)
        for command in COMMANDS:
            assert re.search(r"^\s+%s\s" % re.escape(command), out, re.M), command
    out = ok("help", "user")
    assert "user rotate" in out and "quota set" not in out


USAGE_ERRORS = [
    [], ["bogus"], ["user"], ["user", "bogus"], ["--bogus", "init"], ["--db"],
    ["init", "extra"],
    ["user", "add"], ["user", "add", "a", "b"], ["user", "add", "a", "--quota"],
    ["user", "add", "a", "--quota", "many"], ["user", "add", "a", "--quota", "-3"],
    ["user", "add", "a", "--bogus"],
    ["user", "list", "--bogus"], ["user", "list", "extra"],
    ["user", "show"], ["user", "show", "a", "--csv"], ["user", "show", "a", "b"],
    ["user", "disable"], ["user", "enable", "a", "b"], ["user", "remove"],
    ["user", "rotate"], ["user", "rotate", "a", "--all"],
    ["admin", "grant"], ["admin", "revoke", "a", "b"],
    ["user", "set"], ["user", "set", "taken"], ["user", "set", "--quota", "3"],
    ["user", "set", "taken", "--timeout-ms", "soon"],
    ["user", "set", "taken", "--timeout-ms", "99"],
    ["user", "set", "taken", "--memory-mb", "-5"],
    ["user", "set", "taken", "--memory-mb", "31"],
    ["user", "set", "taken", "--quota", "lots"],
    ["user", "set", "taken", "--timeout-ms"], ["user", "set", "taken", "--cpu", "1"],
    ["user", "set", "taken", "other", "--quota", "3"],
    ["quota", "default"], ["quota", "default", "1x"], ["quota", "default", "-5"],
    ["quota", "default", "5", "--window", "0s"],
    ["quota", "default", "5", "--window", "soon"], ["quota", "default", "1", "2"],
    ["quota", "set", "a"], ["quota", "set", "a", "1.5"], ["quota", "set", "a", "-2"],
    ["quota", "set", "a", "1", "2"], ["quota", "show", "a", "b"],
    ["quota", "show", "--json"], ["quota", "reset"], ["quota", "reset", "--all"],
    ["config", "get"], ["config", "get", "nope"], ["config", "set", "timeout_ms"],
    ["config", "set", "a", "b", "c"], ["config", "unset"], ["config", "list", "--csv"],
    ["config", "get", "--all"],
    ["prune"], ["prune", "--older-than"], ["prune", "--older-than", "ninety"],
    ["prune", "--older-than", "90"], ["prune", "--older-than", "-9d"],
    ["prune", "--older-than", "90d", "extra"], ["prune", "--dry-run"],
    ["prune", "--bogus"],
    ["vacuum", "now"], ["vacuum", "--full"],
    ["doctor", "--bogus"], ["doctor", "extra"], ["doctor", "--cgi"],
]


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=lambda a: " ".join(a) or "(none)")
def test_usage_errors_exit_2(db, args):
    before = sql(db, "SELECT count(*) FROM users"), sql(db, "SELECT * FROM settings")
    p = admin(*args, db=db)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == ""
    assert p.stderr.startswith("pyexec-admin: "), p.stderr
    assert "usage:" in p.stderr or "see pyexec-admin help" in p.stderr, p.stderr
    assert (sql(db, "SELECT count(*) FROM users"), sql(db, "SELECT * FROM settings")) == before


ERRORS = [
    ["user", "show", "ghost"], ["user", "disable", "ghost"],
    ["user", "enable", "ghost"], ["user", "remove", "ghost"],
    ["user", "rotate", "ghost"], ["admin", "grant", "ghost"],
    ["admin", "revoke", "ghost"], ["quota", "set", "ghost", "3"],
    ["quota", "show", "ghost"], ["quota", "reset", "ghost"],
    ["user", "add", "taken"], ["user", "add", "no/slash"],
    ["config", "set", "timeout_ms", "1"],
    ["user", "set", "ghost", "--quota", "3"],
    ["user", "set", "taken", "--timeout-ms", "300001"],
    ["user", "set", "taken", "--memory-mb", "4097"],
]


@pytest.mark.parametrize("args", ERRORS, ids=" ".join)
@BOTH
def test_errors_exit_1(db, args):
    new_user(db, "taken")
    msg = fails(1, *args, db=db)
    assert "\n" == msg[-1] and msg.count("\n") == 1, msg


def test_unusable_database_is_an_error(tmpdir_path):
    path = os.path.join(tmpdir_path, "garbage.db")
    with open(path, "wb") as f:
        f.write(b"this is not a database" * 100)
    fails(1, "user", "list", db=path)
    fails(1, "user", "add", "x", db=path)
    fails(1, "init", db=path)
    fails(1, "--db", os.path.join(tmpdir_path, "no", "dir.db"), "init")


@BOTH
def test_tokens_are_printed_only_by_add_and_rotate(db):
    verdict = deployed(db)
    token = new_user(db, "leaky", "--admin")
    rotated = admin("user", "rotate", "leaky", db=db).stdout.strip()
    assert run_as(db, rotated).status == 200
    deployed(db)	# the CGI, run here as root, made the slots file
    outputs = []
    for args in (["user", "list"], ["user", "list", "--json"],
                 ["user", "list", "--csv"], ["user", "show", "leaky"],
                 ["user", "show", "leaky", "--json"], ["quota", "show"],
                 ["quota", "show", "leaky"], ["config", "list"],
                 ["config", "list", "--json"], ["config", "get", "anonymous"],
                 ["init"], ["user", "disable", "leaky"],
                 ["user", "enable", "leaky"], ["admin", "revoke", "leaky"],
                 ["quota", "reset", "leaky"], ["quota", "set", "leaky", "3"],
                 ["prune", "--older-than", "1d", "--dry-run"], ["vacuum"],
                 ["doctor"], ["user", "remove", "leaky"]):
        p = admin(*args, db=db)
        assert p.returncode == (1 if args == ["doctor"] and
                                verdict == "FAIL" else 0), (args, p.stdout)
        outputs.append(p.stdout + p.stderr)
    for out in outputs:
        assert "pyx_" not in out and token[4:] not in out and rotated[4:] not in out


# --- read-only opening ------------------------------------------------------

@pytest.fixture
def ro_mount(db):
    """A copy of db (with users and runs) on a tmpfs remounted read-only."""
    require(can_mount_tmpfs(), "mounting a tmpfs needs root with CAP_SYS_ADMIN",
            root=True)
    token = new_user(db, "reader", "--quota", "5")
    assert run_as(db, token).status == 200
    ok("config", "set", "timeout_ms", "4000", db=db)
    mnt = tempfile.mkdtemp(prefix="pyexec-ro-")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt],
                      capture_output=True).returncode != 0:
        os.rmdir(mnt)
        pytest.fail("mounting a tmpfs failed after a probe mount worked")
    try:
        for f in glob.glob(db + "*"):
            shutil.copy2(f, mnt)
        subprocess.run(["mount", "-o", "remount,ro", mnt], check=True)
        yield os.path.join(mnt, os.path.basename(db))
    finally:
        subprocess.run(["umount", mnt], check=False)
        os.rmdir(mnt)


def test_read_only_commands_open_read_only(ro_mount):
    path = ro_mount
    snapshot = {f: open(f, "rb").read() for f in glob.glob(path + "*")}
    assert "reader" in ok("user", "list", db=path)
    assert "reader" in ok("user", "list", "--json", db=path)
    assert json.loads(ok("user", "show", "reader", "--json", db=path))["used"] == 1
    assert "5 runs" in ok("quota", "show", "reader", db=path)
    ok("quota", "show", db=path)
    assert ok("config", "get", "timeout_ms", db=path) == "4000\n"
    ok("config", "list", db=path)
    checks = doctor_lines(admin("doctor", db=path).stdout)
    assert checks["db.open"][0] == "OK" and checks["db.integrity"][0] == "OK"
    for args in (["user", "add", "writer"], ["user", "disable", "reader"],
                 ["user", "rotate", "reader"], ["config", "set", "timeout_ms", "5000"],
                 ["config", "unset", "timeout_ms"], ["quota", "reset", "reader"],
                 ["quota", "default", "3"], ["admin", "grant", "reader"],
                 ["prune", "--older-than", "1s"], ["vacuum"]):
        p = admin(*args, db=path)
        assert p.returncode == 1, (args, p.returncode, p.stdout, p.stderr)
        assert p.stderr.startswith("pyexec-admin: ") and p.stdout == "", (args, p.stderr)
    assert snapshot == {f: open(f, "rb").read() for f in glob.glob(path + "*")}


IN_CLOSE_WRITE, IN_CLOSE_NOWRITE, IN_NONBLOCK = 0x8, 0x10, 0o4000


def close_events(paths, action):
    """The inotify close events of paths while action runs: IN_CLOSE_WRITE
    means a file opened for writing was closed, whether written or not."""
    import ctypes
    import struct
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(IN_NONBLOCK)
    assert fd >= 0
    try:
        wds = {}
        for p in paths:
            wd = libc.inotify_add_watch(fd, p.encode(),
                                        IN_CLOSE_WRITE | IN_CLOSE_NOWRITE)
            assert wd >= 0, p
            wds[wd] = p
        action()
        events = []
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                break
            off = 0
            while off < len(data):
                wd, mask, _, n = struct.unpack_from("iIII", data, off)
                off += 16 + n
                events.append((wds[wd], mask))
        return events
    finally:
        os.close(fd)


def test_read_only_commands_never_open_the_database_for_writing(db):
    token = new_user(db, "watched")
    assert run_as(db, token).status == 200
    # The database file only: SQLite opens the -wal and -shm read-write
    # whenever it can, even for a read-only connection.
    files = [db]
    for args in (["user", "list"], ["user", "list", "--csv"],
                 ["user", "show", "watched"], ["user", "show", "watched", "--json"],
                 ["quota", "show"], ["quota", "show", "watched"],
                 ["config", "list"], ["config", "get", "timeout_ms"],
                 ["doctor"]):
        events = close_events(files, lambda: admin(*args, db=db))
        assert any(p == db for p, _ in events), (args, "not opened at all?")
        assert not any(m & IN_CLOSE_WRITE for _, m in events), (args, events)
    # The control: a command that writes opens it read-write.
    events = close_events(files, lambda: ok("config", "set", "timeout_ms",
                                            "5000", db=db))
    assert any(p == db and m & IN_CLOSE_WRITE for p, m in events), events


# --- concurrency ------------------------------------------------------------

@BOTH
def test_commands_while_the_cgi_writes(db):
    token = new_user(db, "busy", "--quota", "unlimited")
    statuses, stop = [], threading.Event()

    def requests():
        while not stop.is_set():
            statuses.append(run_as(db, token, "print(sum(range(1000)))").status)

    threads = [threading.Thread(target=requests) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        deadline = time.time() + 60
        while len(statuses) < 4 and time.time() < deadline:
            time.sleep(0.05)
        for i in range(15):
            show = json.loads(ok("user", "show", "busy", "--json", db=db))
            assert show["name"] == "busy" and show["used"] >= 0
            assert ok("config", "get", "timeout_ms", db=db).strip().isdigit()
            ok("quota", "show", "busy", db=db)
            ok("user", "list", "--csv", db=db)
            ok("config", "set", "audit_error_max_bytes", str(4000 + i), db=db)
            if i % 5 == 0:
                ok("user", "add", "extra%d" % i, db=db)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    assert statuses and set(statuses) == {200}, statuses
    used = json.loads(ok("user", "show", "busy", "--json", db=db))["used"]
    assert used == len(statuses)
    assert ok("config", "get", "audit_error_max_bytes", db=db) == "4014\n"


# --- user set ---------------------------------------------------------------

@BOTH
def test_user_set_limits_are_shown_and_applied(db):
    token = new_user(db, "bob")
    out = ok("user", "set", "bob", "--timeout-ms", "2000", db=db)
    assert "timeout 2000 ms (own)" in out
    assert sql(db, "SELECT timeout_ms, memory_mb, quota FROM users "
               "WHERE name = 'bob'") == [(2000, None, None)]
    show = json.loads(ok("user", "show", "bob", "--json", db=db))
    assert (show["timeout_ms"], show["timeout_from"]) == (2000, "own")
    assert (show["memory_mb"], show["memory_from"]) == (512, "default")
    assert "timeout 2000 ms (own), memory 512 MB (the default)" in \
        ok("user", "show", "bob", db=db)
    [row] = [json.loads(l) for l in
             ok("user", "list", "--json", db=db).splitlines()]
    assert (row["timeout_ms"], row["timeout_from"]) == (2000, "own")
    assert ok("user", "list", db=db).splitlines()[1].split()[4] == "2000"
    # The CGI applies it: an endless loop ends as a TimeoutError, far
    # sooner than the service's 30 s.
    r = run_as(db, token, "while True: pass")
    assert r.status == 200 and r["error_type"] == "TimeoutError", r
    [(wall,)] = sql(db, "SELECT wall_ms FROM runs WHERE id = ?", r["run_id"])
    assert wall < 15000, wall
    # Anonymous requests keep the service's limit.
    assert "timeout 30000 ms (default)" in \
        ok("user", "set", "bob", "--timeout-ms", "default", db=db)
    assert sql(db, "SELECT timeout_ms FROM users WHERE name = 'bob'") == \
        [(None,)]


@BOTH
def test_user_set_every_option_and_back_to_the_defaults(db):
    new_user(db, "eve")
    ok("user", "set", "eve", "--memory-mb", "256", "--quota", "unlimited",
       "--timeout-ms", "5000", db=db)
    assert sql(db, "SELECT timeout_ms, memory_mb, quota FROM users "
               "WHERE name = 'eve'") == [(5000, 256, -1)]
    show = json.loads(ok("user", "show", "eve", "--json", db=db))
    assert (show["quota"], show["quota_from"]) == (-1, "own")
    assert show["memory_mb"] == 256
    ok("user", "set", "eve", "--quota", "7", db=db)
    assert json.loads(ok("user", "show", "eve", "--json", db=db))["quota"] == 7
    ok("user", "set", "eve", "--memory-mb", "default", "--quota", "default",
       "--timeout-ms", "default", db=db)
    assert sql(db, "SELECT timeout_ms, memory_mb, quota FROM users "
               "WHERE name = 'eve'") == [(None, None, None)]


@BOTH
def test_user_set_checks_every_value_before_writing_any(db):
    new_user(db, "zed")
    ok("config", "set", "max_memory_mb", "1024", db=db)
    msg = fails(1, "user", "set", "zed", "--timeout-ms", "3000",
                "--memory-mb", "2048", db=db)
    assert "max_memory_mb (1024)" in msg and "config set max_memory_mb" in msg
    assert sql(db, "SELECT timeout_ms, memory_mb FROM users "
               "WHERE name = 'zed'") == [(None, None)]
    ok("user", "set", "zed", "--memory-mb", "1024", db=db)
    assert sql(db, "SELECT memory_mb FROM users WHERE name = 'zed'") == \
        [(1024,)]


@BOTH
def test_cost_and_stats_use_the_brokers_time_not_a_forged_one(db):
    """A busy program fills its result pipe with 'ok' records claiming one
    nanosecond of execution. The cost report bills, and stats ranks, the
    time the broker measured (READY to exit), the time the answer gave."""
    rec = struct.pack("<IIQIIII16s", 0x70797831, 2, 1, 0, 0, 0, 0, bytes(16))
    code = ("n = 0\nfor i in range(10_000_000):\n    n += i\n"
            "import random\np = random._os.sys.modules['posix']\n"
            "for _ in range(512):\n    p.write(3, %r * 64)\n" % rec)
    r = run_code(code, db=db)
    assert r.status == 200 and r["success"] is True, r
    exec_ms, cpu_ms = sql(db, "SELECT exec_ms, cpu_ms FROM runs WHERE id = ?",
                          r["run_id"])[0]
    assert cpu_ms >= 100, cpu_ms                 # the loop really ran
    assert exec_ms >= cpu_ms / 2, (exec_ms, cpu_ms)
    assert r["execution_time_ms"] == pytest.approx(exec_ms, abs=0.01)
    cost = json.loads(ok("cost", "report", "--json", db=db))
    step = cost["billing_step_ms"]
    assert cost["total"]["billed_ms"] == -(-int(exec_ms * 1000) // (step * 1000)) * step
    assert cost["total"]["billed_ms"] > step, cost     # not the forged 1 ns
    stats = json.loads(ok("stats", "--json", db=db))
    assert stats["p50_ms"] == pytest.approx(exec_ms), stats
