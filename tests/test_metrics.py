"""GET /metrics: the audit log's figures in Prometheus' text format, for an
admin's token or a client in metrics_allow; a scrape is not a run."""
import json
import os
import re
import sqlite3
import subprocess
import uuid

import pytest
from test_settings_db import LATEST

from conftest import (CGI, add_user, cgi_raw, execute, fresh_db, is_pg, now_ms, query,
                      run_code)

ADMIN = os.environ.get("PYEXEC_ADMIN", os.path.join(os.path.dirname(__file__), "..",
                                                    "pyexec-admin"))
SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')


def scrape(db, token=None, uri="/metrics", addr="127.0.0.1", method="GET", extra=None):
    env = {"REQUEST_URI": uri, "REMOTE_ADDR": addr}
    if token:
        env["HTTP_AUTHORIZATION"] = "Bearer " + token
    env.update(extra or {})
    return raw_scrape(db, env, method)


def raw_scrape(db, env, method="GET"):
    """The CGI's raw answer (a scrape's body is not JSON): status, headers,
    body, stderr."""
    e = {"PATH": "/usr/bin:/bin", "GATEWAY_INTERFACE": "CGI/1.1",
         "SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_METHOD": method, "PYEXEC_DB": db}
    e.update(env)
    p = subprocess.run([CGI], input=b"", env=e,
                       capture_output=True, timeout=60)
    head, sep, body = p.stdout.partition(b"\n\n")
    assert sep, p.stdout[:300]
    headers = {}
    for line in head.decode().split("\n"):
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(headers["status"].split()[0]), headers, body.decode(), p.stderr.decode()


def parse(text):
    """{name: [(labels dict, value)]}, checking each line's form."""
    out = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = SAMPLE.match(line)
        assert m, "not an exposition line: %r" % line
        labels = dict(re.findall(r'([a-z_]+)="([^"]*)"', m.group(2) or ""))
        out.setdefault(m.group(1), []).append((labels, float(m.group(3))))
    return out


def metrics(db, token):
    status, headers, body, _ = scrape(db, token)
    assert status == 200, body
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(body), body


def stats(db):
    p = subprocess.run([ADMIN, "--db", db, "stats", "--json"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def by_label(samples):
    return {(l["status"], l["outcome"]): v for l, v in samples}


def check_against_rows(db, token):
    """Every figure against the rows themselves and pyexec-admin stats."""
    m, _ = metrics(db, token)
    want = {(str(r["h"]) if r["h"] is not None else "", r["status"]): r["n"] for r in query(
        db, "SELECT http_status AS h, status, count(*) AS n FROM runs_view GROUP BY 1, 2")}
    got = {k: v for k, v in by_label(m["pyexec_requests_total"]).items() if v}
    assert got == want
    st = stats(db)
    assert sum(got.values()) == st["requests"] == len(query(db, "SELECT id FROM runs"))
    assert m["pyexec_rate_limited_total"][0][1] == st["rate_limited"]
    assert sum(v for (s, o), v in got.items() if o == "rejected" and s != "429") == st["refused"]
    assert got.get(("200", "ok"), 0) == st["ok"]
    finished = query(db, "SELECT exec_ms, cpu_ms FROM runs WHERE outcome NOT IN "
                         "('rejected', 'running') AND exec_ms IS NOT NULL")
    hist = {l["le"]: v for l, v in m["pyexec_run_duration_seconds_bucket"]}
    assert hist["+Inf"] == len(finished) == st["finished"]
    assert m["pyexec_run_duration_seconds_count"][0][1] == len(finished)
    for le, v in hist.items():
        if le != "+Inf":
            assert v == sum(1 for r in finished if r["exec_ms"] <= float(le) * 1000), le
    assert m["pyexec_run_duration_seconds_sum"][0][1] == pytest.approx(
        sum(r["exec_ms"] for r in finished) / 1000, abs=1e-3)
    cpu = query(db, "SELECT coalesce(sum(cpu_ms), 0) AS c FROM runs")[0]["c"]
    assert m["pyexec_cpu_seconds_total"][0][1] == pytest.approx(cpu / 1000, abs=1e-3)
    assert m["pyexec_users"][0][1] == len(query(db, "SELECT id FROM users"))
    return m


@pytest.fixture
def db(store):
    """The tests about figures run on both backends (the same figures from
    the same log); those about the path and access run on SQLite (sdb)."""
    return store(quota=2)


@pytest.fixture
def sdb():
    return fresh_db(quota=2)


def test_figures_equal_the_rows_and_stats(db):
    admin = add_user(db, "ops", admin=True)
    add_user(db, "bob")
    for code in ("print(1)", "1/0"):
        assert run_code(code, db=db).status == 200
    assert run_code("print(2)", db=db).status == 429	# anonymous quota of 2
    assert cgi_raw(b"{", db=db).status == 400
    assert run_code("print(3)", db=db, env={"HTTP_AUTHORIZATION": "Bearer " + admin}).status == 200
    m = check_against_rows(db, admin)
    assert m["pyexec_build_info"][0][1] == 1 and m["pyexec_build_info"][0][0]["version"]
    assert m["pyexec_rate_limited_total"][0][1] == 1


def test_a_scrape_is_not_a_run(db):
    admin = add_user(db, "ops", admin=True)
    user = add_user(db, "bob")
    rows = len(query(db, "SELECT id FROM runs"))
    for token, want in ((None, 401), ("pyx_" + "0" * 64, 401), (user, 403), (admin, 200)):
        status, headers, body, err = scrape(db, token)
        assert status == want, body
        if want != 200:
            reply = json.loads(body)
            assert reply["success"] is False and reply["error"], reply
            assert "/metrics refused (%d)" % want in err
        if want == 401:
            assert headers["www-authenticate"].startswith("Bearer")
    # Scrapes write no row and use no quota: both anonymous runs still go.
    assert len(query(db, "SELECT id FROM runs")) == rows
    assert run_code("print(1)", db=db).status == 200
    assert run_code("print(1)", db=db).status == 200
    assert run_code("print(1)", db=db).status == 429


def test_metrics_allow(sdb):
    db = sdb
    assert scrape(db)[0] == 401
    p = subprocess.run([ADMIN, "--db", db, "config", "set", "metrics_allow", "10.0.0.0/33"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "metrics_allow" in p.stderr
    p = subprocess.run([ADMIN, "--db", db, "config", "set", "metrics_allow",
                        "127.0.0.0/8, 2001:db8::/32"], capture_output=True, timeout=60)
    assert p.returncode == 0
    assert scrape(db, addr="127.0.0.1")[0] == 200
    assert scrape(db, addr="2001:db8::7")[0] == 200
    assert scrape(db, addr="10.1.2.3")[0] == 401
    assert scrape(db, addr="2001:db9::7")[0] == 401
    # A token still has to be an admin's, from anywhere.
    assert scrape(db, add_user(db, "bob"), addr="127.0.0.1")[0] == 403
    # An invalid value stored behind the admin command's back allows nobody.
    with sqlite3.connect(db) as c:
        c.execute("UPDATE settings SET value = '127.0.0.1/99' WHERE key = 'metrics_allow'")
    assert scrape(db, addr="127.0.0.1")[0] == 401


def test_paths_the_servers_pass(sdb):
    db = sdb
    admin = add_user(db, "ops", admin=True)
    rows = len(query(db, "SELECT id FROM runs"))
    for env in ({"REQUEST_URI": "/metrics?x=1"}, {"REQUEST_URI": "/pyexec/metrics"},
                {"REQUEST_URI": None, "PATH_INFO": "/metrics"},
                {"REQUEST_URI": None, "SCRIPT_NAME": "/metrics"}):
        env = {k: v for k, v in env.items() if v is not None}
        env["HTTP_AUTHORIZATION"] = "Bearer " + admin
        status, headers, body, _ = raw_scrape(db, env)
        assert status == 200 and "pyexec_requests_total" in body, env
    status, headers, body, _ = scrape(db, admin, method="HEAD")
    assert status == 200 and body == "" and int(headers["content-length"]) > 0
    assert len(query(db, "SELECT id FROM runs")) == rows
    # Not /metrics: a GET elsewhere is refused and audited as before; a
    # POST to /metrics is a run like any other path.
    r = cgi_raw(b"", method="GET", db=db, env={"REQUEST_URI": "/metricsx"})
    assert r.status == 405
    r = run_code("print(5)", db=db, env={"REQUEST_URI": "/metrics",
                                         "HTTP_AUTHORIZATION": "Bearer " + admin})
    assert r.status == 200 and r["output"] == "5\n"
    assert len(query(db, "SELECT id FROM runs")) == rows + 2


def hand_rows(db, old):
    """Rows written straight into the log, as an import would: every kind
    of outcome and bucket, two still running (one past its deadline)."""
    rows = [(uuid.uuid4().hex, old + i, "anon:10.0.0.%d" % i, o, h, e, cpu, d)
            for i, (o, h, e, cpu, d) in enumerate([
                ("ok", 200, 3.0, 2, None), ("ok", 200, 7000.0, 6000, None),
                ("ok", 200, 99999.0, 1, None), ("timeout", 200, 500.0, 400, None),
                ("rejected", 429, None, None, None), ("error", 200, 0.0, 0, None),
                ("running", None, None, None, old + 10**9),
                ("running", None, None, None, now_ms() + 10**9)])]
    execute(db, "INSERT INTO runs (id, started_ms, identity, outcome, http_status, "
            "exec_ms, cpu_ms, deadline_ms) VALUES " +
            ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(rows)),
            [v for r in rows for v in r])
    return rows


def doctor_totals(db):
    p = subprocess.run([ADMIN, "--db", db, "doctor"], capture_output=True, text=True,
                       timeout=120)
    line = [l for l in p.stdout.splitlines() if "db.totals" in l]
    assert len(line) == 1, p.stdout
    return line[0]


def test_totals_follow_refusals_completion_abandonment_and_prune(db):
    """/metrics reads running totals, kept by the writers of the log: rows
    written by hand are not in them (doctor says so, vacuum rebuilds them);
    after that every refusal, completion and prune keeps them equal to a
    count of the rows, and rows running past their deadline are abandoned."""
    admin = add_user(db, "ops", admin=True)
    old = now_ms() - 40 * 86400 * 1000
    assert doctor_totals(db).startswith("OK")
    rows = hand_rows(db, old)
    assert "differ from the log" in doctor_totals(db)
    p = subprocess.run([ADMIN, "--db", db, "vacuum"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert doctor_totals(db).startswith("OK")
    m = check_against_rows(db, admin)
    assert by_label(m["pyexec_requests_total"])[("", "abandoned")] == 1
    assert by_label(m["pyexec_requests_total"])[("", "running")] == 1
    # Real requests: two runs (an ok, an error), then the quota's refusal.
    assert run_code("print(1)", db=db).status == 200
    assert run_code("1/0", db=db).status == 200
    assert run_code("print(2)", db=db).status == 429
    assert cgi_raw(b"{", db=db).status == 400
    # Admitted, then refused for want of a sandbox slot (the run
    # directory is a file): the row ends 'rejected', 503 (an unrun).
    slots = os.path.join(os.path.dirname(fresh_db()), "not-a-dir")
    open(slots, "w").close()
    r = run_code("print(4)", db=db, env={"HTTP_AUTHORIZATION": "Bearer " + admin,
                                         "PYEXEC_RUN_DIR": slots})
    assert r.status == 503, r
    m = check_against_rows(db, admin)
    assert by_label(m["pyexec_requests_total"])[("429", "rejected")] == 2
    assert by_label(m["pyexec_requests_total"])[("503", "rejected")] == 1
    # A row edited by hand, outside the writers: doctor sees it.
    execute(db, "UPDATE runs SET outcome = 'ok', http_status = 200, exec_ms = 42.5, "
            "cpu_ms = 40, finished_ms = ? WHERE id = ?", (now_ms(), rows[-1][0]))
    assert "differ from the log" in doctor_totals(db)
    subprocess.run([ADMIN, "--db", db, "vacuum"], check=True, capture_output=True, timeout=60)
    p = subprocess.run([ADMIN, "--db", db, "prune", "--older-than", "30d"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    # Every old row goes, the abandoned one too (its broker is gone: it
    # goes by age, cmd_prune.c); the totals never held it.
    assert len(query(db, "SELECT id FROM runs WHERE started_ms < ?", (old + 100,))) == 0
    m = check_against_rows(db, admin)
    assert doctor_totals(db).startswith("OK")
    assert len(query(db, "SELECT * FROM run_totals WHERE requests = 0")) == 0


def test_migration_fills_the_totals(db):
    """A log from before the totals existed: the first open by this build
    fills them from the rows, in the migration's transaction."""
    admin = add_user(db, "ops", admin=True)
    hand_rows(db, now_ms() - 86400 * 1000)
    assert run_code("print(1)", db=db).status == 200
    if is_pg(db):
        # back to version 5, before PostgreSQL's totals (pg_schema.sql)
        execute(db, "DROP TABLE run_totals; UPDATE schema_version SET version = 5")
    else:
        with sqlite3.connect(db) as c:
            # back to version 3: the later migrations' changes undone too
            c.executescript("DROP TABLE run_totals; DROP INDEX runs_running; "
                            "ALTER TABLE runs DROP COLUMN mode; "
                            "PRAGMA user_version = 3;")
    m = check_against_rows(db, admin)
    # the hand-written rows too: only the migration's fill counts them
    assert sum(v for _, v in m["pyexec_requests_total"]) == \
        len(query(db, "SELECT id FROM runs"))
    version = ("SELECT max(version) AS v FROM schema_version" if is_pg(db) else
               "SELECT user_version AS v FROM pragma_user_version")
    assert query(db, version)[0]["v"] == LATEST


def test_unavailable_database_is_a_503():
    d = fresh_db()
    status, headers, body, _ = scrape(os.path.join(os.path.dirname(d), "no", "such.db"))
    assert status == 503 and json.loads(body)["success"] is False
    assert "retry-after" in headers
