"""PostgreSQL as the shared store of several hosts (README "Several hosts").

Against a real PostgreSQL server the suite starts itself (tests/pg.py).
Two "hosts" are two CGI environments with their own PYEXEC_RUN_DIR (their
own sandbox slots) on one database. The suites that run on both backends
take the `store` fixture (conftest.py); what is PostgreSQL's alone is here:
the shared quota, the server going away and coming back, the roles, the
URI's rules.
"""
import json
import os
import subprocess
import tempfile
import threading

import pytest

from conftest import (ADMIN_BIN, IDLE, _made_dbs, base_env, cgi_raw, finish_cgi, fresh_db,
                      pg_cluster, query, run_code, start_cgi, wait_for)


def admin(db, *args, check=True):
    p = subprocess.run([ADMIN_BIN, "--db", db] + list(args),
                       capture_output=True, text=True, timeout=120,
                       env={"PATH": "/usr/bin:/bin"})
    if check:
        assert p.returncode == 0, p
    return p


def host_env(name):
    """A second host: a run directory (slots) of its own."""
    d = tempfile.mkdtemp(prefix="pyexec-host-%s-" % name)
    _made_dbs.append(d)     # removed at the end of the session
    return {"PYEXEC_RUN_DIR": d}


def rows(db):
    return query(db, "SELECT id, outcome, http_status, counted FROM runs "
                 "ORDER BY seq")


@pytest.fixture
def pgdb():
    return fresh_db(quota=10, backend="postgresql", settings={
        "max_concurrent": "40", "max_concurrent_per_identity": "40",
        "concurrency_wait_ms": "60000"})


def test_two_hosts_share_one_exact_quota(pgdb):
    """40 concurrent anonymous requests from one address, 20 on each of two
    hosts: exactly 10 run, 30 answer 429, and the audit log has all 40."""
    # A generous lock timeout: on a slow machine 40 admissions of one
    # identity queue for seconds, and the point here is the count.
    hosts = [dict(host_env(h), PYEXEC_DB_BUSY_MS="60000") for h in "ab"]
    n = 40
    results = [None] * n
    barrier = threading.Barrier(n)

    def one(i):
        barrier.wait()
        results[i] = run_code("print(%d)" % i, db=pgdb, env=hosts[i % 2])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(r is not None for r in results), "a request did not answer"
    statuses = sorted(r.status for r in results)
    assert statuses == [200] * 10 + [429] * 30, statuses
    ok = [r for r in results if r.status == 200]
    assert sorted(int(r.headers["ratelimit-remaining"]) for r in ok) == \
        list(range(10))
    # A host that ran code took its slots in its own run directory.
    for k, h in enumerate(hosts):
        ran = any(r.status == 200 for r in results[k::2])
        assert os.path.exists(os.path.join(h["PYEXEC_RUN_DIR"], "slots")) == ran
    logged = [json.loads(l) for l in
              admin(pgdb, "logs", "--json").stdout.splitlines()]
    assert len(logged) == 40
    assert {r["id"] for r in logged} == {r["run_id"] for r in results}
    assert sorted((r["outcome"], r["http_status"], r["counted"])
                  for r in logged) == \
        sorted([("ok", 200, True)] * 10 + [("rejected", 429, False)] * 30)


def test_tcp_loopback_uri_works():
    server = pg_cluster()
    uri = server.uri(server.new_database(), tcp=True)
    admin(uri, "init")
    r = run_code("print(6 * 7)", db=uri, env=host_env("tcp"))
    assert r.status == 200 and r["output"] == "42\n", r
    assert [x["outcome"] for x in query(uri, "SELECT outcome FROM runs")] == ["ok"]


@pytest.mark.usefixtures("both_modes")
def test_server_down_is_503_with_retry_after_and_nothing_runs(pgdb):
    """In FastCGI mode the workers keep their connections: the ones the
    restart dropped are seen dropped at the next request and opened again
    (the first request after the restart runs)."""
    env = host_env("down")
    assert run_code("print(1)", db=pgdb, env=env).status == 200
    before = rows(pgdb)
    server = pg_cluster()
    server.stop()
    try:
        r = run_code("print(2)", db=pgdb, env=env)
        assert r.status == 503, r
        assert r.headers.get("retry-after", "").isdigit(), r.headers
        assert r["output"] in ("", None) and "unavailable" in r["error"], r
    finally:
        server.start()
    # Nothing ran: no row was written, and the service is back by itself.
    assert rows(pgdb) == before
    r = run_code("print(3)", db=pgdb, env=env)
    assert r.status == 200 and r["output"] == "3\n", r


def test_server_killed_mid_run_loses_nothing_committed(pgdb):
    env = host_env("kill")
    for i in range(3):
        assert run_code("print(%d)" % i, db=pgdb, env=env).status == 200
    # Waits (in the kernel) until its time limit, by when the server is
    # back.
    p = start_cgi(json.dumps({"code": IDLE}).encode(), pgdb,
                  env=dict(env, PYEXEC_TIMEOUT_MS="8000"))
    running = wait_for(lambda: [r for r in rows(pgdb)
                                if r["outcome"] == "running"], 30)
    assert running, rows(pgdb)
    server = pg_cluster()
    server.kill()
    try:
        down = run_code("print(4)", db=pgdb, env=env)
        assert down.status == 503 and "retry-after" in down.headers, down
    finally:
        server.start()
    r = finish_cgi(p, timeout=60)
    assert r["error_type"] == "TimeoutError" and r["output"] == "waiting\n", \
        (r, r.stderr)
    after = rows(pgdb)
    # The three committed runs are there, and the one in flight was
    # completed by its broker once the server was back.
    assert [x["outcome"] for x in after] == ["ok"] * 3 + ["timeout"], after
    assert after[3]["id"] == r["run_id"]
    r = run_code("print(5)", db=pgdb, env=env)
    assert r.status == 200 and r["output"] == "5\n", r


def test_lock_held_past_the_timeout_is_503_and_nothing_runs(pgdb):
    """Another transaction holds the identity's admission lock: the request
    waits lock_timeout (PYEXEC_DB_BUSY_MS), then gets 503; no row, no run."""
    server = pg_cluster()
    dbname = pgdb.split("?")[0].rsplit("/", 1)[1]
    holder = subprocess.Popen(
        ["psql", "-X", "-q", "-h", server.sock, "-p", str(server.port),
         "-U", "postgres", "-d", dbname, "-c",
         "BEGIN; SELECT pg_advisory_xact_lock(hashtextextended("
         "'anon:127.0.0.1', 0)); SELECT pg_sleep(20); COMMIT"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: server.psql(
            dbname, "SELECT count(*) FROM pg_locks WHERE locktype = "
            "'advisory' AND granted").stdout.strip() == "1", 30)
        r = run_code("print(1)", db=pgdb, env=dict(host_env("lock"),
                                                   PYEXEC_DB_BUSY_MS="300"))
        assert r.status == 503 and r.headers.get("retry-after"), r
        assert rows(pgdb) == []
    finally:
        holder.kill()
        holder.wait()


def test_a_password_in_the_uri_is_refused_and_never_shown():
    server = pg_cluster()
    secret = "s3cr3t-pw-%d" % os.getpid()
    uri = "postgresql://postgres:%s@/%s?host=%s&port=%d" % (
        secret, server.new_database(), server.sock, server.port)
    r = cgi_raw(b"", method="GET", db=uri, env=host_env("pw"))
    assert r.status == 503 and "retry-after" not in r.headers, r
    assert secret.encode() not in r.raw + r.stderr
    p = admin(uri, "logs", check=False)
    assert p.returncode != 0 and "password file" in p.stderr, p
    assert secret not in p.stdout + p.stderr
    uri2 = "postgresql://postgres@/x?host=%s&password=%s" % (server.sock, secret)
    p = admin(uri2, "init", check=False)
    assert p.returncode != 0 and secret not in p.stdout + p.stderr, p


def test_the_cgi_role_cannot_change_a_user():
    """pyexec-admin roles' SQL, applied: the CGI works as pyexec_cgi, and
    that role can neither make a user an admin nor rewrite the audit log."""
    server = pg_cluster()
    dbname = server.new_database()
    assert admin("-", "roles").stdout == \
        admin("-", "roles", "--create").stdout + \
        admin("-", "roles", "--grants").stdout
    server.psql("postgres", "DROP ROLE IF EXISTS pyexec_cgi; "
                "DROP ROLE IF EXISTS pyexec_admin", check=False)
    server.psql(dbname, admin("-", "roles", "--create").stdout)
    operator = server.uri(dbname, user="pyexec_admin")
    admin(operator, "init")
    server.psql(dbname, admin("-", "roles", "--grants").stdout,
                user="pyexec_admin")
    token = admin(operator, "user", "add", "alice").stdout.strip().split()[-1]
    cgi = server.uri(dbname, user="pyexec_cgi")
    env = host_env("roles")
    r = run_code("print(1)", db=cgi, env=dict(env, HTTP_AUTHORIZATION="Bearer " + token))
    assert r.status == 200, r
    for attack in ("UPDATE users SET is_admin = 1 WHERE name = 'alice'",
                   "INSERT INTO settings VALUES ('default_quota', '-1')",
                   "DELETE FROM runs",
                   "UPDATE runs SET identity = 'x'"):
        p = server.psql(dbname, attack, user="pyexec_cgi", check=False)
        assert p.returncode != 0 and "permission denied" in p.stderr, (attack, p)
    u = query(cgi, "SELECT is_admin FROM users WHERE name = 'alice'")
    assert u == [{"is_admin": 0}]
    # pyexec-admin as the CGI's role cannot change a user either.
    p = admin(cgi, "admin", "grant", "alice", check=False)
    assert p.returncode != 0 and "permission denied" in p.stderr, p
    d = admin(operator, "doctor", check=False).stdout
    assert "postgresql" in d.lower()


def test_authentication_refused_is_503_with_retry_after(pgdb):
    """A role the server refuses: 503 and Retry-After (the server may yet
    be fixed), no code run, and the log untouched."""
    server = pg_cluster()
    name = pgdb.split("?")[0].rsplit("/", 1)[1]
    uri = server.uri(name, user="nosuchrole")
    before = rows(pgdb)
    r = run_code("print('MARKER')", db=uri, env=host_env("auth"))
    assert r.status == 503 and r.headers.get("retry-after", "").isdigit(), r
    assert "MARKER" not in r.body.decode()
    assert b"nosuchrole" in r.stderr    # the operator's log says why
    assert rows(pgdb) == before


def test_migrations_run_once_under_the_lock_whoever_comes_first():
    """An empty database met by four programs at once (three pyexec-admin
    init, one CGI request): one migrates, the others wait for its lock and
    find the work done; every one succeeds."""
    server = pg_cluster()
    dbname = server.new_database()
    uri = server.uri(dbname)
    procs = [subprocess.Popen([ADMIN_BIN, "--db", uri, "init"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={"PATH": "/usr/bin:/bin"})
             for _ in range(3)]
    r = run_code("print('first')", db=uri, env=host_env("migrate"))
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert r.status == 200 and r["output"] == "first\n", r
    with open(os.path.join(os.path.dirname(__file__), "..", "sql",
                           "pg_schema.sql")) as f:
        target = max(int(l.split()[2]) for l in f if l.startswith("-- migrate "))
    assert query(uri, "SELECT version FROM schema_version") == \
        [{"version": target}]
    assert "schema %d" % target in outs[0][0].decode()

