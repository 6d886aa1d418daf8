"""pyexec-admin's read-only views of the audit log: logs, logs show, stats,
cost estimate and cost report.

Every figure is checked against the database itself (conftest's query, on
SQLite or PostgreSQL: the tests run on both backends), which real
pyexec.cgi requests filled: runs that succeed, fail and time out,
refusals (400, 401, 429), a user's runs, runs from another client address,
and two requests whose broker was killed mid-run (one still 'running', one
past its deadline, so 'abandoned'). A few rows are moved back in time, so
that the time filters and the per-day groups have something to separate.
"""
import calendar
import concurrent.futures
import csv
import datetime
import io
import json
import os
import queue
import signal
import subprocess
import threading
import time

import pytest

import conftest
from conftest import (CGI, add_user, base_env, cgi_raw, execute, is_pg,
                      fresh_db, query, run_code)

ADMIN = os.environ.get("PYEXEC_ADMIN",
                       os.path.join(os.path.dirname(__file__), "..",
                                    "pyexec-admin"))

DAY_MS = 86400 * 1000
HOUR_MS = 3600 * 1000
# An exception whose name carries a newline and terminal escapes: the audit
# log stores them escaped (sql/textclean.c), so every view shows them so.
EVIL_CODE = ("class E(Exception): pass\n"
             "E.__name__ = 'Evil' + chr(10) + 'Name' + chr(27) + '[31m'\n"
             "raise E('boom' + chr(27) + ']0;title' + chr(7))\n")
EVIL_TYPE = "Evil\\u000AName\\u001B[31m"
# Runs for most of a second (long enough to be seen 'running' by a poll of
# --follow), then fails.
SLOW_FAILURE = ("import datetime\n"
                "end = datetime.datetime.now() + datetime.timedelta(seconds=0.8)\n"
                "while datetime.datetime.now() < end:\n"
                "    pass\n"
                "1/0\n")
MULTILINE_CODE = "total = 0\nfor i in range(3):\n    total += i\nprint('total', total)\n"


def admin(db, *args, timeout=60):
    return subprocess.run([ADMIN, "--db", db] + list(args),
                          capture_output=True, text=True, timeout=timeout)


def ok(db, *args):
    p = admin(db, *args)
    assert p.returncode == 0, (args, p.stderr)
    return p.stdout


def lines(text):
    """Lines of output; never str.splitlines(), which also splits at the
    U+0085 and U+2028 that JSON strings may carry raw."""
    return [x for x in text.split("\n") if x]


def json_rows(db, *args):
    return [json.loads(x) for x in lines(ok(db, "logs", "--json", *args))]


def iso_to_ms(s):
    dt = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
    return calendar.timegm(dt.timetuple()) * 1000 + dt.microsecond // 1000


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def db_rows(db, where="1 = 1", params=()):
    """runs_view's rows in the order they were written (SQLite's rowid,
    PostgreSQL's seq), as dicts."""
    order = "seq" if is_pg(db) else "rowid"
    return query(db, "SELECT r.%s AS rowid, v.* FROM runs AS r JOIN runs_view "
                 "AS v ON v.id = r.id WHERE %s ORDER BY r.%s"
                 % (order, where, order), params)


def db_ids(db, where="1 = 1", params=()):
    return [r["id"] for r in db_rows(db, where, params)]


def nearest_rank(values, p):
    values = sorted(values)
    return values[(p * len(values) + 99) // 100 - 1]


def kill_mid_run(db, code="while True: pass"):
    """Starts a request and SIGKILLs its broker once the row is written as
    'running', as an OOM killer or an operator would; returns the id."""
    env = base_env(db)
    env.update({"REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/json",
                "PYEXEC_TIMEOUT_MS": "20000"})
    body = json.dumps({"code": code}).encode()
    env["CONTENT_LENGTH"] = str(len(body))
    before = set(db_ids(db, "v.outcome = 'running'"))
    p = subprocess.Popen([CGI], env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    p.stdin.write(body)
    p.stdin.close()
    deadline = time.time() + 20
    while time.time() < deadline:
        new = set(db_ids(db, "v.outcome = 'running'")) - before
        if new:
            break
        time.sleep(0.02)
    else:
        p.kill()
        pytest.fail("the request never showed as running")
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    return new.pop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def log(request):
    """A database filled by real requests, on each backend in turn;
    returns (path or URI, ids by name)."""
    db = fresh_db(quota=-1, backend=request.param)
    ids = {}

    def run(name, code, **kw):
        r = run_code(code, db=db, **kw)
        ids[name] = r["run_id"]
        return r

    assert run("ok1", "print('hello')").status == 200
    assert run("ok2", MULTILINE_CODE).status == 200
    assert run("error", "1/0")["error_type"] == "ZeroDivisionError"
    r = run("timeout", "while True: pass", env={"PYEXEC_TIMEOUT_MS": "1000"})
    assert r["error_type"] == "TimeoutError", r
    assert run("evil", EVIL_CODE)["success"] is False
    for i in range(2):
        assert run("far%d" % i, "print(%d)" % i,
                   env={"REMOTE_ADDR": "10.0.0.7"}).status == 200
    r = cgi_raw(b'{"code": ', db=db)
    assert r.status == 400
    ids["bad"] = r["run_id"]
    r = cgi_raw(json.dumps({"code": "print(1)"}).encode(), db=db,
                env={"HTTP_AUTHORIZATION": "Bearer pyx_" + "0" * 64})
    assert r.status == 401
    ids["unknown_token"] = r["run_id"]
    alice = add_user(db, "alice")
    for i in range(3):
        assert run("alice%d" % i, "print(sum(range(%d)))" % (i * 1000),
                   token=alice).status == 200
    assert run("alice_error", "import os", token=alice)["success"] is False
    carol = add_user(db, "carol", quota=2)
    for i in range(3):
        r = run("carol%d" % i, "print(%d)" % i, token=carol)
    assert r.status == 429, r
    ids["abandoned"] = kill_mid_run(db)
    ids["running"] = kill_mid_run(db)
    now = int(time.time() * 1000)
    # Past its deadline, a row still 'running' reads as 'abandoned';
    # the other one's deadline is pushed out of the suite's reach.
    execute(db, "UPDATE runs SET deadline_ms = ? WHERE id = ?",
            (now - 1000, ids["abandoned"]))
    execute(db, "UPDATE runs SET deadline_ms = ? WHERE id = ?",
            (now + DAY_MS, ids["running"]))
    # Two days and three hours back: something for the time filters.
    for name, back in (("ok1", 2 * DAY_MS), ("error", 2 * DAY_MS),
                       ("bad", 2 * DAY_MS), ("ok2", 3 * HOUR_MS),
                       ("far0", 3 * HOUR_MS)):
        execute(db, "UPDATE runs SET started_ms = started_ms - ?, "
                "finished_ms = finished_ms - ? WHERE id = ?",
                (back, back, ids[name]))
    statuses = {r["id"]: r["status"] for r in db_rows(db)}
    assert statuses[ids["abandoned"]] == "abandoned"
    assert statuses[ids["running"]] == "running"
    assert statuses[ids["timeout"]] == "timeout"
    yield db, ids


# --- logs: filters -----------------------------------------------------------

def test_logs_lists_every_row_oldest_first(log):
    db, _ = log
    assert [r["id"] for r in json_rows(db, "--limit", "0")] == db_ids(db)


@pytest.mark.parametrize("args, where", [
    (["--user", "alice"], "v.user_name = 'alice'"),
    (["--user", "carol"], "v.user_name = 'carol'"),
    (["--user", "nobody"], "1 = 0"),
    (["--anonymous"], "v.identity LIKE 'anon:%'"),
    (["--client", "10.0.0.7"], "v.client_addr = '10.0.0.7'"),
    (["--outcome", "ok"], "v.status = 'ok'"),
    (["--outcome", "error"], "v.status = 'error'"),
    (["--outcome", "timeout"], "v.status = 'timeout'"),
    (["--outcome", "rejected"], "v.status = 'rejected'"),
    (["--outcome", "running"], "v.status = 'running'"),
    (["--outcome", "abandoned"], "v.status = 'abandoned'"),
    (["--outcome", "memory"], "1 = 0"),
    (["--failed"], "v.status <> 'ok'"),
    (["--user", "alice", "--failed"],
     "v.user_name = 'alice' AND v.status <> 'ok'"),
    (["--anonymous", "--client", "10.0.0.7", "--outcome", "ok"],
     "v.client_addr = '10.0.0.7' AND v.identity LIKE 'anon:%' "
     "AND v.status = 'ok'"),
], ids=lambda x: " ".join(x) if isinstance(x, list) else None)
def test_logs_filter_narrows_to_exactly_the_matching_rows(log, args, where):
    db, _ = log
    expected = db_ids(db, where)
    got = [r["id"] for r in json_rows(db, "--limit", "0", *args)]
    assert got == expected
    assert len(got) < len(db_ids(db))


def test_logs_filters_name_the_expected_requests(log):
    db, ids = log
    get = lambda *a: {r["id"] for r in json_rows(db, "--limit", "0", *a)}
    assert get("--user", "alice") == {ids["alice0"], ids["alice1"],
                                      ids["alice2"], ids["alice_error"]}
    assert get("--user", "carol", "--outcome", "rejected") == {ids["carol2"]}
    assert get("--client", "10.0.0.7") == {ids["far0"], ids["far1"]}
    assert get("--outcome", "timeout") == {ids["timeout"]}
    assert get("--outcome", "abandoned") == {ids["abandoned"]}
    assert get("--outcome", "running") == {ids["running"]}
    refused = get("--outcome", "rejected")
    assert {ids["bad"], ids["unknown_token"], ids["carol2"]} <= refused


def test_logs_since_and_until(log):
    db, ids = log
    now = int(time.time() * 1000)
    day = {r["id"] for r in json_rows(db, "--limit", "0", "--since", "1d")}
    assert day == set(db_ids(db, "v.started_ms >= ?", (now - DAY_MS,)))
    assert ids["ok1"] not in day and ids["ok2"] in day
    hours = {r["id"] for r in json_rows(db, "--limit", "0", "--since", "2h")}
    assert ids["ok2"] not in hours and ids["ok1"] not in hours
    assert ids["timeout"] in hours
    # An ISO time in UTC, to the second; until is exclusive.
    cut = now - HOUR_MS
    old = [r["id"] for r in json_rows(db, "--limit", "0", "--until", iso(cut))]
    assert old == db_ids(db, "v.started_ms < ?", (cut // 1000 * 1000,))
    assert set(old) == {ids[n] for n in ("ok1", "error", "bad", "ok2", "far0")}
    both = [r["id"] for r in json_rows(db, "--limit", "0", "--since", "1d",
                                       "--until", iso(cut))]
    assert set(both) == {ids["ok2"], ids["far0"]}
    date = time.strftime("%Y-%m-%d", time.gmtime(now / 1000 + 86400))
    assert json_rows(db, "--since", date) == []


def test_exports_are_complete_and_the_table_says_what_it_left_out(store):
    db = store(quota=-1)
    # 120 rows, with the 405 that created an SQLite file.
    for i in range(120 - len(db_ids(db))):
        assert cgi_raw(b"[%d" % i, db=db).status == 400
    everything = db_ids(db)
    assert len(everything) == 120
    # --json and --csv: every row, oldest first.
    assert [r["id"] for r in json_rows(db)] == everything
    out = ok(db, "logs", "--csv")
    assert len(lines(out)) == 121
    assert [t["id"] for t in csv.DictReader(io.StringIO(out, newline=""))] \
        == everything
    assert [r["id"] for r in json_rows(db, "--limit", "3")] == everything[-3:]
    assert len(lines(ok(db, "logs", "--csv", "--limit", "3"))) == 4
    assert [r["id"] for r in json_rows(db, "--limit", "0")] == everything
    # The table: the last 50, and a word on stderr for the 70 others.
    p = admin(db, "logs")
    assert p.returncode == 0
    table = lines(p.stdout)
    assert len(table) == 51
    assert table[1].split()[1] == everything[-50][:12]
    assert table[-1].split()[1] == everything[-1][:12]
    assert "70 older matching requests not shown" in p.stderr
    assert "--limit 0" in p.stderr and "--csv" in p.stderr
    # Asked for, or all of them shown: no word.
    for args in (["--limit", "50"], ["--limit", "0"], ["--user", "nobody"]):
        p = admin(db, "logs", *args)
        assert "not shown" not in p.stderr, args
    assert len(lines(admin(db, "logs", "--limit", "0").stdout)) == 121
    # A filter counts what it matches, not the whole log.
    p = admin(db, "logs", "--outcome", "ok")
    assert "not shown" not in p.stderr and "no request matches" in p.stderr


def test_logs_help_says_what_each_format_writes():
    p = subprocess.run([ADMIN, "logs", "--help"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0
    text = " ".join(p.stdout.split())
    assert "last 50" in text and "every matching request" in text
    assert "from now on" in text


def test_an_export_streams_rows_instead_of_holding_them(store):
    """200,000 rows of about 600 bytes (some 120 MB of CSV) go through a
    process whose peak memory stays a small part of that."""
    db = store(quota=-1)
    n, pad = 200000, "x" * 500
    if is_pg(db):
        execute(db, "INSERT INTO runs (id, started_ms, finished_ms, identity, "
                "code_sha256, code_size, code, outcome, http_status) SELECT "
                "lpad(to_hex(i), 32, '0'), 1700000000000 + i, "
                "1700000000001 + i, 'anon:10.0.0.1', lpad(to_hex(i), 64, '0'), "
                "500, ?, 'ok', 200 FROM generate_series(1, ?) AS i", (pad, n))
    else:
        execute(db, "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
                "FROM k WHERE i < ?) INSERT INTO runs (id, started_ms, "
                "finished_ms, identity, code_sha256, code_size, code, "
                "outcome, http_status) SELECT printf('%032x', i), "
                "1700000000000 + i, 1700000000001 + i, 'anon:10.0.0.1', "
                "printf('%064x', i), 500, ?, 'ok', 200 FROM k", (n, pad))
    stored = query(db, "SELECT count(*) AS n FROM runs")[0]["n"]
    assert stored >= n
    # A child's ru_maxrss starts at its parent's (fork), so the figure that
    # counts is the export's growth over a one-row export's. Under the
    # sanitizer build ASan's quarantine keeps what is freed (on PostgreSQL
    # a result per row) on purpose: without it, the figure is the
    # program's own.
    env = dict(os.environ, ASAN_OPTIONS=":".join(filter(None, [
        os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=0"])))

    def peak(*args):
        p = subprocess.Popen([ADMIN, "--db", db, "logs"] + list(args),
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
        return os.wait4(p.pid, 0)[2].ru_maxrss
    for fmt in ("--csv", "--json"):
        base = peak(fmt, "--limit", "1")
        p = subprocess.Popen([ADMIN, "--db", db, "logs", fmt], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        count = size = 0
        for line in p.stdout:
            count += 1
            size += len(line)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        assert p.returncode == 0, p.stderr.read()
        assert count == stored + (fmt == "--csv")
        assert size > 100 * 2**20
        # ru_maxrss is in KiB: a gathering export would need > 100 MB more.
        assert usage.ru_maxrss - base < 16 * 1024, (fmt, usage.ru_maxrss,
                                                   base)


def test_csv_cells_are_never_spreadsheet_formulas(store):
    db = store(quota=-1)
    codes = ["=1+1", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1)",
             "=HYPERLINK(\"http://x\",\"y\")", "\t=1"]
    ids = [run_code(c, db=db)["run_id"] for c in codes]
    out = ok(db, "logs", "--csv")
    table = {t["id"]: t for t in csv.DictReader(io.StringIO(out, newline=""))}
    for i, code in zip(ids, codes):
        assert table[i]["code"] == "'" + code
        assert table[i]["code"][0] not in "=+-@\t\r"
        # The other formats keep the text exactly.
        [j] = [r for r in json_rows(db) if r["id"] == i]
        assert j["code"] == code
    # Numbers stay numbers.
    assert all(t["http_status"].isdigit() for t in table.values())


# --- logs: formats -----------------------------------------------------------

def test_logs_json_has_every_field_as_the_database_has_it(log):
    db, _ = log
    rows = {r["id"]: r for r in db_rows(db)}
    got = json_rows(db, "--limit", "0")
    assert len(got) == len(rows)
    for j in got:
        r = rows[j["id"]]
        assert iso_to_ms(j["started"]) == r["started_ms"]
        if r["finished_ms"] is None:
            assert j["finished"] is None
        else:
            assert iso_to_ms(j["finished"]) == r["finished_ms"]
        if r["deadline_ms"]:
            assert iso_to_ms(j["deadline"]) == r["deadline_ms"]
        else:
            assert j["deadline"] is None
        assert j["user"] == r["user_name"]
        assert j["client"] == r["client_addr"]
        for key in ("identity", "broker_pid", "code_sha256", "code_size",
                    "code", "input_size", "outcome", "status", "error_type",
                    "error", "output_size", "exec_ms", "wall_ms", "cpu_ms",
                    "peak_kb", "http_status"):
            assert j[key] == r[key], (key, j[key], r[key])
            if r[key] is not None and key not in ("exec_ms", "wall_ms"):
                assert type(j[key]) is type(r[key]), key
        assert j["truncated"] is (None if r["truncated"] is None
                                  else bool(r["truncated"]))
        assert j["counted"] is bool(r["counted"])


def test_logs_json_rows_of_a_running_request_say_null(log):
    db, ids = log
    [j] = json_rows(db, "--outcome", "running")
    assert j["id"] == ids["running"]
    for key in ("finished", "exec_ms", "http_status", "output_size",
                "error_type"):
        assert j[key] is None, key


def test_logs_csv_parses_and_matches(log):
    db, ids = log
    out = ok(db, "logs", "--csv", "--limit", "0")
    table = list(csv.DictReader(io.StringIO(out, newline="")))
    rows = db_rows(db)
    assert [t["id"] for t in table] == [r["id"] for r in rows]
    for t, r in zip(table, rows):
        assert t["status"] == r["status"]
        assert t["code"] == (r["code"] or "")
        assert t["error"] == (r["error"] or "")
        assert t["http_status"] == ("" if r["http_status"] is None
                                    else str(r["http_status"]))
        if r["exec_ms"] is None:
            assert t["exec_ms"] == ""
        else:
            assert float(t["exec_ms"]) == r["exec_ms"]
        assert t["counted"] == str(r["counted"])
    evil = next(t for t in table if t["id"] == ids["evil"])
    assert evil["error_type"] == EVIL_TYPE and "\n" in evil["code"]
    # Header only, when nothing matches.
    assert lines(ok(db, "logs", "--csv", "--user", "nobody")) == [
        ",".join(table[0].keys())]


def test_logs_table_one_line_per_row_and_no_raw_controls(log):
    db, ids = log
    out = ok(db, "logs", "--limit", "0")
    rows = db_rows(db)
    table = out.split("\n")
    assert table[-1] == ""
    table = table[:-1]
    assert len(table) == len(rows) + 1
    assert table[0].split() == ["TIME", "ID", "IDENTITY", "STATUS", "TYPE",
                                "HTTP", "EXEC_MS", "OUTPUT"]
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out
    for line, r in zip(table[1:], rows):
        cells = line.split()
        assert cells[0] == iso(r["started_ms"])
        assert cells[1] == r["id"][:12]
        assert cells[2] == r["identity"]
        assert cells[3] == r["status"]
    evil = next(x for x in table if ids["evil"][:12] in x)
    assert EVIL_TYPE in evil
    # Every row lines up under the header.
    col = table[0].index("STATUS")
    assert all(x[col - 1] == " " and x[col] != " " for x in table[1:])


def test_logs_table_says_when_nothing_matches(log):
    db, _ = log
    p = admin(db, "logs", "--user", "nobody")
    assert p.returncode == 0 and p.stdout == ""
    assert "no request matches" in p.stderr


# --- logs show ---------------------------------------------------------------

def test_logs_show_prints_the_code_and_the_error(log):
    db, ids = log
    out = ok(db, "logs", "show", ids["ok2"])
    assert "id:           " + ids["ok2"] in out
    for line in MULTILINE_CODE.splitlines():
        assert "    " + line + "\n" in out
    out = ok(db, "logs", "show", ids["error"])
    assert "ZeroDivisionError: division by zero" in out
    assert "    1/0\n" in out
    assert "status:       error" in out


def test_logs_show_and_json_print_the_stored_escapes(log):
    db, ids = log
    out = ok(db, "logs", "show", ids["evil"])
    assert "\x1b" not in out and "\x07" not in out
    assert EVIL_TYPE in out
    [j] = lines(ok(db, "logs", "show", "--json", ids["evil"]))
    j = json.loads(j)
    [r] = db_rows(db, "v.id = ?", (ids["evil"],))
    assert j["code"] == EVIL_CODE == r["code"]
    assert j["error"] == r["error"] and "\\u001B]0;title\\u0007" in j["error"]
    assert j["error_type"] == EVIL_TYPE


def test_logs_show_by_the_tables_short_id(log):
    db, ids = log
    short = ids["timeout"][:12]
    out = ok(db, "logs", "show", short.upper())
    assert ids["timeout"] in out and "status:       timeout" in out
    assert "TimeoutError" in out


def test_logs_show_of_a_refused_request(log):
    db, ids = log
    out = ok(db, "logs", "show", ids["bad"])
    assert "status:       rejected" in out and "http status:  400" in out
    assert "refused before the code was read" in out


def test_logs_show_ambiguous_prefix(log):
    db, _ = log
    ids = db_ids(db)
    assert len(ids) > 16
    firsts = [i[0] for i in ids]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    p = admin(db, "logs", "show", shared)
    assert p.returncode == 1 and "ambiguous" in p.stderr


@pytest.mark.parametrize("what", ["0123456789abcdef0123456789abcdef",
                                  "xyz", "'; DROP TABLE runs; --"])
def test_logs_show_unknown_id(log, what):
    db, _ = log
    assert what not in db_ids(db)
    p = admin(db, "logs", "show", what)
    assert p.returncode == 1
    assert p.stderr.strip() == "pyexec-admin: no request '%s'" % what
    assert p.stdout == ""


# --- logs --follow -----------------------------------------------------------

def reader(stream):
    q = queue.Queue()

    def pump():
        for line in iter(stream.readline, ""):
            q.put(line)
        q.put(None)
    threading.Thread(target=pump, daemon=True).start()
    return q


def read_until(q, pred, timeout):
    seen = []
    end = time.time() + timeout
    while time.time() < end:
        try:
            line = q.get(timeout=max(0.05, end - time.time()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if pred(line):
            return line, seen
    return None, seen


@pytest.mark.parametrize("look_back", [[], ["--limit", "1"], ["--since", "1h"]],
                         ids=["from-now", "limit", "since"])
@pytest.mark.parametrize("fmt", ["--json", "--table"])
def test_logs_follow_prints_rows_that_land_after_it_started(fmt, look_back,
                                                           store):
    db = store(quota=-1)
    first = run_code("print('before')", db=db)["run_id"]
    args = [ADMIN, "--db", db, "logs", "--follow"] + look_back
    if fmt == "--json":
        args.append("--json")
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        q = reader(p.stdout)
        if look_back:
            line, _ = read_until(q, lambda x: first[:12] in x, 10)
            assert line, "the existing row was not printed"
        else:
            if fmt == "--table":
                line, _ = read_until(q, lambda x: True, 10)
                assert line.split()[:3] == ["TIME", "ID", "IDENTITY"]
            # Nothing says when it has started: refused requests until
            # one shows (the ones before it started stay unshown).
            for _ in range(20):
                probe = cgi_raw(b"probe", db=db)["run_id"]
                line, seen = read_until(q, lambda x: probe[:12] in x, 1)
                if line:
                    break
            assert line, "--follow never showed a new row"
        new = run_code("print('after')", db=db)["run_id"]
        refused = cgi_raw(b"nope", db=db)["run_id"]
        line, seen = read_until(q, lambda x: refused[:12] in x, 10)
        assert line, ("new rows not followed", seen)
        got = [x for x in seen if new[:12] in x]
        assert len(got) == 1
        if not look_back:
            assert not any(first[:12] in x for x in seen), \
                "--follow printed the past without --since or --limit"
        if fmt == "--json":
            row = json.loads(got[0])
            assert row["id"] == new and row["status"] == "ok"
            assert row["exec_ms"] is not None
        else:
            assert " ok " in got[0]
        assert p.poll() is None, "--follow ended by itself"
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_logs_follow_table_columns_do_not_drift(store):
    """Rows of very different identities and error types, followed as they
    come, keep their columns where the header put them."""
    db = store(quota=-1)
    token = add_user(db, "a-rather-long-user-name-for-a-column")
    p = subprocess.Popen([ADMIN, "--db", db, "logs", "--follow"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        q = reader(p.stdout)
        header, _ = read_until(q, lambda x: True, 10)
        assert header and header.startswith("TIME")
        short = run_code("1/0", db=db)["run_id"]
        long_ = run_code("class AVeryLongExceptionNameIndeed(Exception): "
                         "pass\nraise AVeryLongExceptionNameIndeed()",
                         db=db, token=token)["run_id"]
        last = run_code("print(1)", db=db)["run_id"]
        line, seen = read_until(q, lambda x: last[:12] in x, 15)
        assert line, seen
        rows = [x for x in seen if any(i[:12] in x for i in (short, long_,
                                                              last))]
        assert len(rows) == 3
        for col in ("STATUS", "TYPE"):
            at = header.index(col)
            assert all(r[at - 1] == " " and r[at] != " " for r in rows), col
        # HTTP is right-aligned: its last digit under the header's P.
        end = header.index("HTTP") + 3
        assert all(r[end].isdigit() and r[end + 1] == " " for r in rows)
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_logs_follow_with_a_filter_waits_for_the_final_status(store):
    """A row is written 'running' first; --failed must not show a run that
    ends ok, and shows a failing one with its final status, once."""
    db = store(quota=-1)
    p = subprocess.Popen([ADMIN, "--db", db, "logs", "--follow", "--failed",
                          "--json"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        q = reader(p.stdout)
        time.sleep(0.3)
        good = run_code("print('fine')", db=db)["run_id"]
        bad = run_code(SLOW_FAILURE, db=db)["run_id"]
        line, seen = read_until(q, lambda x: bad in x, 15)
        assert line, seen
        row = json.loads(line)
        assert row["status"] == "error"
        assert not any(good in x for x in seen)
        extra, _ = read_until(q, lambda x: True, 1.2)
        assert extra is None or bad not in extra
    finally:
        p.terminate()
        p.wait(timeout=10)


# --- stats -------------------------------------------------------------------

def figures(rows):
    runs = [r for r in rows if r["outcome"] != "rejected"]
    done = [r["exec_ms"] for r in rows
            if r["outcome"] not in ("rejected", "running")
            and r["exec_ms"] is not None]
    okc = sum(r["status"] == "ok" for r in rows)
    f = {"requests": len(rows), "runs": len(runs), "ok": okc,
         "success_rate": okc / len(runs) if runs else None,
         "finished": len(done),
         "rate_limited": sum(r["outcome"] == "rejected"
                             and r["http_status"] == 429 for r in rows),
         "refused": sum(r["outcome"] == "rejected"
                        and r["http_status"] != 429 for r in rows)}
    for p in (50, 95, 99):
        f["p%d_ms" % p] = nearest_rank(done, p) if done else None
    return f


def subset(f, keys):
    return {k: f[k] for k in keys}


KEYS = ("requests", "runs", "ok", "success_rate", "finished", "p50_ms",
        "p95_ms", "p99_ms", "rate_limited", "refused")


def test_stats_figures_match_the_database(log):
    db, _ = log
    s = json.loads(ok(db, "stats", "--json"))
    rows = db_rows(db)
    assert subset(s, KEYS) == figures(rows)
    # The 400, the 401, and on SQLite the 405 that created the file.
    created = 0 if is_pg(db) else 1
    assert s["rate_limited"] == 1 and s["refused"] == 2 + created
    assert s["since"] is None and s["until"] is None
    # Top users: by runs, refused requests aside; anonymous by identity.
    counts = {}
    for r in rows:
        if r["outcome"] != "rejected":
            counts[r["identity"]] = counts.get(r["identity"], 0) + 1
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    assert [(t["identity"], t["runs"]) for t in s["top_users"]] == top
    assert ("user:alice", 4) in top and ("user:carol", 2) in top


def test_stats_human_output(log):
    db, _ = log
    out = ok(db, "stats")
    f = figures(db_rows(db))
    assert "requests:      %d\n" % f["requests"] in out
    assert "runs:          %d " % f["runs"] in out
    assert "success rate:  %.1f%% (%d ok of %d runs)" % (
        100 * f["success_rate"], f["ok"], f["runs"]) in out
    assert "p50 %.2f, p95 %.2f, p99 %.2f (over %d finished runs)" % (
        f["p50_ms"], f["p95_ms"], f["p99_ms"], f["finished"]) in out
    assert "rate limited:  1 (429)" in out
    assert "user:alice" in out


@pytest.mark.parametrize("by", ["user", "day", "hour", "outcome"])
def test_stats_by_group(log, by):
    db, _ = log
    s = json.loads(ok(db, "stats", "--by", by, "--json"))
    rows = db_rows(db)

    def key(r):
        if by == "user":
            return r["identity"]
        if by == "outcome":
            return r["status"]
        fmt = "%Y-%m-%d" if by == "day" else "%Y-%m-%dT%H:00:00Z"
        return time.strftime(fmt, time.gmtime(r["started_ms"] // 1000))
    groups = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    assert s["by"] == by
    assert [g["key"] for g in s["groups"]] == sorted(groups)
    for g in s["groups"]:
        assert subset(g, KEYS) == figures(groups[g["key"]]), g["key"]
    assert subset(s, KEYS) == figures(rows)
    out = ok(db, "stats", "--by", by)
    for k in groups:
        assert "\n" + k + " " in out


def test_stats_range(log):
    db, _ = log
    now = int(time.time() * 1000)
    s = json.loads(ok(db, "stats", "--since", "1d", "--json"))
    rows = [r for r in db_rows(db) if r["started_ms"] >= now - DAY_MS]
    assert subset(s, KEYS) == figures(rows)
    assert s["since"] is not None
    cut = now - HOUR_MS
    s = json.loads(ok(db, "stats", "--until", iso(cut), "--json"))
    rows = [r for r in db_rows(db) if r["started_ms"] < cut // 1000 * 1000]
    assert subset(s, KEYS) == figures(rows)
    assert s["requests"] == 5


def test_stats_without_data_says_na(log):
    db, _ = log
    future = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 2 * 86400))
    out = ok(db, "stats", "--since", future)
    assert "requests:      0" in out
    assert "success rate:  n/a" in out
    assert "p50 n/a, p95 n/a, p99 n/a" in out
    s = json.loads(ok(db, "stats", "--since", future, "--json"))
    assert s["success_rate"] is None and s["p50_ms"] is None
    assert s["top_users"] == []


# --- cost --------------------------------------------------------------------

def estimate(db, *args):
    return json.loads(ok(db, "cost", "estimate", "--json", *args))


def test_cost_estimate_the_seeds_table_corrected(store):
    """The seed: 512 MB, $0.0000025 per GB-s, $0.0000004 per invocation.
    An execution under 100 ms is billed 100 ms: 0.5 GB x 0.1 s = 0.05 GB-s,
    0.05 x 0.0000025 + 0.0000004 = $0.000000525 (the seed says $0.0000004
    and "400 GB-seconds"); 1000 a day: $0.000525 a day, $0.01575 a month
    (the seed: $0.012 and $0.36); 10,000: $0.00525 and $0.1575 (the seed:
    $0.12 and $3.60)."""
    db = store()
    for per_day, day, month in ((1000, "0.000525", "0.01575"),
                                (10000, "0.00525", "0.1575")):
        args = ("--per-day", str(per_day), "--avg-ms", "100",
                "--memory-mb", "512")
        out = ok(db, "cost", "estimate", *args)
        assert ("per execution: $0.000000525 (compute $0.000000125 + "
                "invocation $0.0000004)\n") in out
        assert "per day:       $%s (%d executions)\n" % (day, per_day) in out
        assert "per month:     $%s (30 days)\n" % month in out
        assert "$0.0000025 per GB-second, $0.0000004 per invocation" in out
        assert "100 ms billed, 0.05 GB-seconds" in out
        e = estimate(db, *args)
        assert e["per_execution"] == 0.000000525
        assert e["compute_per_execution"] == 0.000000125
        assert e["per_day"] == float(day)
        assert e["per_month"] == float(month)
        assert e["gb_seconds"] == 0.05 and e["billed_ms"] == 100


def test_cost_estimate_rounds_up_to_100ms_and_the_worst_case(store):
    db = store()
    e = estimate(db, "--per-day", "1000", "--avg-ms", "250")
    assert e["billed_ms"] == 300 and e["gb_seconds"] == 0.15
    assert e["per_execution"] == 0.000000775
    e = estimate(db, "--per-day", "1000", "--avg-ms", "100.5")
    assert e["billed_ms"] == 200
    # The seed's "30s timeout is worst case": 15 GB-s an execution.
    e = estimate(db, "--per-day", "1000", "--avg-ms", "30000")
    assert e["per_execution"] == 0.0000379
    assert e["per_day"] == 0.0379 and e["per_month"] == 1.137
    e = estimate(db, "--per-day", "10000", "--avg-ms", "30000")
    assert e["per_day"] == 0.379 and e["per_month"] == 11.37


def test_cost_estimate_defaults_without_data(store):
    db = store()
    e = estimate(db, "--per-day", "1000")
    assert e["avg_ms"] == 100 and e["avg_ms_source"] == "default"
    assert e["memory_mb"] == 512 and e["memory_mb_source"] == "setting"
    assert e["per_execution"] == 0.000000525
    out = ok(db, "cost", "estimate", "--per-day", "1000")
    assert "100 ms: the default, no run logged yet" in out
    assert "512 MB = 0.5 GB (the memory_mb setting)" in out


def test_cost_estimate_uses_the_median_and_the_settings(log):
    db, _ = log
    done = [r["exec_ms"] for r in db_rows(db)
            if r["outcome"] not in ("rejected", "running")
            and r["exec_ms"] is not None]
    e = estimate(db, "--per-day", "1000")
    assert e["avg_ms_source"] == "median"
    assert e["median_of_runs"] == len(done)
    assert e["avg_ms"] == pytest.approx(nearest_rank(done, 50), rel=1e-9)
    out = ok(db, "cost", "estimate", "--per-day", "1000")
    assert "the median exec_ms of %d logged runs" % len(done) in out
    db2 = fresh_db(backend="postgresql" if is_pg(db) else "sqlite",
                 settings={"memory_mb": "256", "price_gb_s": "0.00001",
                           "price_invocation": "0.000001"})
    e = estimate(db2, "--per-day", "100")
    # 0.25 GB x 0.1 s = 0.025 GB-s x 0.00001 + 0.000001
    assert e["memory_mb"] == 256 and e["gb_seconds"] == 0.025
    assert e["per_execution"] == 0.00000125
    assert e["per_day"] == 0.000125 and e["per_month"] == 0.00375


def bill(rows, memory_mb=512, price_gb_s=0.0000025, price_inv=0.0000004):
    runs = [r for r in rows if r["outcome"] != "rejected"]
    billed = 0
    untimed = 0
    for r in runs:
        if r["outcome"] != "running" and r["exec_ms"] is not None:
            billed += -(-r["exec_ms"] // 100) * 100
        else:
            untimed += 1
    gb_s = memory_mb * billed / 1024000
    return {"runs": len(runs), "untimed": untimed, "billed_ms": int(billed),
            "gb_seconds": gb_s, "compute": gb_s * price_gb_s,
            "invocations": len(runs) * price_inv,
            "cost": gb_s * price_gb_s + len(runs) * price_inv}


def assert_bill(got, want):
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-15), k


def test_cost_report_prices_the_logged_runs(log):
    db, _ = log
    now = int(time.time() * 1000)
    rep = json.loads(ok(db, "cost", "report", "--json"))
    rows = db_rows(db)
    assert_bill(rep["total"], bill(rows))
    assert rep["total"]["untimed"] == 2     # the running and the abandoned
    assert rep["memory_mb"] == 512
    rep = json.loads(ok(db, "cost", "report", "--since", "1d", "--json"))
    assert_bill(rep["total"], bill([r for r in rows
                                    if r["started_ms"] >= now - DAY_MS]))
    out = ok(db, "cost", "report")
    assert "runs:          %d" % bill(rows)["runs"] in out
    assert "refused requests are not billed" in out


@pytest.mark.parametrize("by", ["user", "day"])
def test_cost_report_by_group(log, by):
    db, _ = log
    rep = json.loads(ok(db, "cost", "report", "--by", by, "--json"))
    groups = {}
    for r in db_rows(db):
        if r["outcome"] == "rejected":
            continue
        k = r["identity"] if by == "user" else time.strftime(
            "%Y-%m-%d", time.gmtime(r["started_ms"] // 1000))
        groups.setdefault(k, []).append(r)
    assert [g["key"] for g in rep["groups"]] == sorted(groups)
    for g in rep["groups"]:
        assert_bill(g, bill(groups[g["key"]]))
    out = ok(db, "cost", "report", "--by", by)
    for k in groups:
        assert "\n" + k + " " in out


def test_cost_report_memory_and_prices_from_the_settings(store):
    db = store(quota=-1, settings={"memory_mb": "1024",
                                   "price_gb_s": "0.001",
                                   "price_invocation": "0.01"})
    run_code("print(1)", db=db)
    run_code("1/0", db=db)
    rep = json.loads(ok(db, "cost", "report", "--json"))
    assert_bill(rep["total"], bill(db_rows(db), 1024, 0.001, 0.01))
    # Two runs, each under 100 ms: 2 x 1 GB x 0.1 s.
    assert rep["total"]["gb_seconds"] == 0.2
    assert rep["total"]["cost"] == pytest.approx(0.0202)


# --- errors ------------------------------------------------------------------

@pytest.mark.parametrize("args, fragment", [
    (["logs", "--outcome", "bogus"], "--outcome"),
    (["logs", "--outcome", "OK"], "--outcome"),
    (["logs", "--limit", "-1"], "--limit"),
    (["logs", "--limit", "ten"], "--limit"),
    (["logs", "--since", "yesterday"], "--since"),
    (["logs", "--until", "5x"], "--until"),
    (["logs", "--since", "2026-13-01"], "--since"),
    (["logs", "--since", "1h", "--until", "2h"], "--since"),
    (["logs", "--user", "a", "--anonymous"], "--anonymous"),
    (["logs", "--outcome", "ok", "--failed"], "--failed"),
    (["logs", "--json", "--csv"], "--csv"),
    (["logs", "--bogus"], "--bogus"),
    (["logs", "--user"], "--user"),
    (["logs", "extra"], "extra"),
    (["logs", "show"], "ID"),
    (["logs", "show", "a", "b"], "too many"),
    (["logs", "show", "--csv", "abc"], "--csv"),
    (["stats", "--by", "week"], "--by"),
    (["stats", "--since", "soon"], "--since"),
    (["stats", "--verbose"], "--verbose"),
    (["cost", "estimate"], "--per-day"),
    (["cost", "estimate", "--per-day", "-5"], "--per-day"),
    (["cost", "estimate", "--per-day", "many"], "--per-day"),
    (["cost", "estimate", "--per-day", "10", "--avg-ms", "abc"], "--avg-ms"),
    (["cost", "estimate", "--per-day", "10", "--avg-ms", "-1"], "--avg-ms"),
    (["cost", "estimate", "--per-day", "10", "--memory-mb", "0"],
     "--memory-mb"),
    (["cost", "estimate", "--per-day", "10", "--memory-mb", "1e3"],
     "--memory-mb"),
    (["cost", "report", "--by", "hour"], "--by"),
    (["cost", "report", "--since", "never"], "--since"),
    (["cost", "report", "--until", "1d"], "--until"),
])
def test_bad_arguments_are_usage_errors(log, args, fragment):
    db, _ = log
    p = admin(db, *args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stderr.startswith("pyexec-admin: ")
    assert fragment in p.stderr.split("\n")[0], p.stderr
    assert "usage: pyexec-admin " in p.stderr
    assert p.stdout == ""


# --- read-only, while the CGI writes -----------------------------------------

def test_read_only_commands_while_the_cgi_writes(store):
    db = store(quota=-1)
    before = len(db_ids(db))    # SQLite's: the 405 that created the file
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(run_code, "print(%d * %d)" % (i, i), db=db)
                   for i in range(20)]
        calls = 0
        while not all(f.done() for f in futures) or calls < 6:
            for args in (["logs", "--limit", "0", "--json"], ["logs"],
                         ["stats", "--json"], ["stats", "--by", "outcome"],
                         ["cost", "report", "--json"]):
                p = admin(db, *args)
                assert p.returncode == 0, (args, p.stderr)
                if args[0] == "logs" and "--json" in args:
                    for x in lines(p.stdout):
                        json.loads(x)
                results.append(p)
            calls += 1
        responses = [f.result() for f in futures]
    assert all(r.status == 200 and r["success"] for r in responses)
    assert calls >= 6
    ids = {r["run_id"] for r in responses}
    got = {r["id"] for r in json_rows(db, "--limit", "0", "--outcome", "ok")}
    assert got == ids
    s = json.loads(ok(db, "stats", "--json"))
    assert s["runs"] == 20 and s["ok"] == 20 and s["requests"] == 20 + before
