"""The audit log: one row in `runs` for every request, accepted or refused.

A request that may run is written as 'running' before the code runs and
completed after; a refused one is written once, as 'rejected', with its HTTP
status. A broker killed mid-run leaves its row behind, shown as 'abandoned'
by runs_view once its deadline has passed; the sandbox dies with it. The
sandbox child never holds the database (nor its -wal/-shm files, nor the slots file in PYEXEC_RUN_DIR).
"""
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import (CGI, IDLE, add_user, base_env, cgi_raw, is_pg, slots_file,
                      finish_cgi as finish, fresh_db, now_ms, proc_mem, query,
                      row, run_code, running_sandboxes, sandbox_processes,
                      start_cgi, wait_for)


def start(code, db, env=None):
    """Starts the CGI on {"code": code} as the leader of a new session."""
    return start_cgi(json.dumps({"code": code}).encode(), db, env)



# ---------------------------------------------------------------- helpers

def count_rows(db):
    return query(db, "SELECT count(*) AS n FROM runs")[0]["n"]


def fd_links(pid):
    links = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            links.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    return links


def stored_bytes(db, column, run_id):
    """A text column of a run's row as the database holds it (bytes)."""
    if is_pg(db):
        found = query(db, "SELECT encode(convert_to(%s, 'UTF8'), 'hex') AS h "
                      "FROM runs WHERE id = ?" % column, (run_id,))
        return bytes.fromhex(found[0]["h"])
    con = sqlite3.connect(db)
    con.text_factory = bytes
    try:
        return con.execute("SELECT %s FROM runs WHERE id = ?" % column,
                           (run_id,)).fetchone()[0]
    finally:
        con.close()


def file_holds(db, needle):
    """Whether the SQLite file holds needle (bytes); PostgreSQL's files are
    the server's: there the rows' columns are what the tests check."""
    if is_pg(db):
        return False
    with open(db, "rb") as f:
        return needle in f.read()


def running_row(db, pid):
    found = query(db, "SELECT * FROM runs_view WHERE broker_pid = ?", (pid,))
    return found[0] if found else None


def assert_row_matches_response(r, rec):
    assert r.headers["x-request-id"] == r["run_id"] == rec["id"]
    assert rec["http_status"] == r.status


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(request):
    """The rows' database, on each backend in turn."""
    return fresh_db(backend=request.param)


# ------------------------------------------ a broker killed mid-run (1/2)
#
# The deadline of a row is start + body timeout + the wait for a sandbox
# slot (concurrency_wait_ms, set to 0 here) + timeout + 30 s, so the
# kill happens first (this fixture) and the check for 'abandoned' comes
# last in the module, while the other tests run in between.

KILL_TIMEOUT_MS = 2000
KILL_BODY_TIMEOUT_MS = 200


BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgresql"])


@pytest.fixture(scope="module")
def killed_run():
    """A broker killed mid-run on each backend: {backend: what was seen}."""
    return {b: kill_a_broker(b) for b in ("sqlite", "postgresql")}


def kill_a_broker(backend):
    db = fresh_db(settings={"concurrency_wait_ms": "0"}, backend=backend)
    p = start(IDLE, db, env={"PYEXEC_TIMEOUT_MS": str(KILL_TIMEOUT_MS),
                             "PYEXEC_BODY_TIMEOUT_MS": str(KILL_BODY_TIMEOUT_MS)})
    try:
        children = wait_for(lambda: running_sandboxes(p.pid), 1.5)
        rec = wait_for(lambda: running_row(db, p.pid), 1.0)
        assert p.poll() is None, "the CGI ended before it could be killed"
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()
    gone = wait_for(lambda: not sandbox_processes(p.pid), 2.0)
    left = [] if gone else sandbox_processes(p.pid)
    return {"db": db, "pid": p.pid, "children": children, "row": rec,
            "left": left, "killed_ms": now_ms()}


@BACKENDS
def test_killed_broker_leaves_a_running_row_and_takes_the_child_with_it(killed_run, backend):
    k = killed_run[backend]
    assert k["children"], "the sandbox child was never seen running"
    assert k["row"] is not None, "no audit row while the program was running"
    assert k["left"] == [], "sandbox processes outlived the broker: %r" % k["left"]
    rec = row(k["db"], k["row"]["id"])
    assert rec["outcome"] == "running"
    assert rec["finished_ms"] is None
    assert rec["http_status"] is None
    assert rec["deadline_ms"] == (rec["started_ms"] + KILL_TIMEOUT_MS +
                                  KILL_BODY_TIMEOUT_MS + 0 + 30000)
    assert now_ms() < rec["deadline_ms"]
    assert rec["status"] == "running"   # not yet past its deadline
    # Exactly one row: the killed request's, nothing lost, nothing doubled.
    assert [r["id"] for r in query(k["db"], "SELECT id FROM runs "
                                   "WHERE outcome != 'rejected'")] == [rec["id"]]


# ---------------------------------------------------------------- rows

def test_accepted_run_row_has_every_field(db):
    code = "import json\nprint(json.dumps(input_data))\n"
    data = {"a": [1, 2, 3], "b": "\u00e9"}
    before = count_rows(db)
    t0 = now_ms()
    r = run_code(code, input_data=data, db=db,
                 env={"REMOTE_ADDR": "192.0.2.17"})
    t1 = now_ms()
    assert r.status == 200 and r["success"] is True, r
    assert count_rows(db) == before + 1
    rec = row(db, r["run_id"])
    assert_row_matches_response(r, rec)
    assert rec["identity"] == "anon:192.0.2.17"
    assert rec["client_addr"] == "192.0.2.17"
    assert rec["user_id"] is None and rec["user_name"] is None
    assert t0 <= rec["started_ms"] <= rec["finished_ms"] <= t1
    assert rec["code_sha256"] == hashlib.sha256(code.encode()).hexdigest()
    assert rec["code_size"] == len(code.encode())
    assert rec["code"] == code
    # input_data's bytes as sent (run_code sends json.dumps' default form).
    assert rec["input_size"] == len(json.dumps(data).encode())
    assert rec["outcome"] == "ok" and rec["status"] == "ok"
    assert rec["error_type"] is None and rec["error"] is None
    assert rec["output_size"] == len(r["output"].encode())
    assert rec["truncated"] == 0
    assert rec["exec_ms"] == pytest.approx(r["execution_time_ms"], abs=0.01)
    assert rec["exec_ms"] <= rec["wall_ms"] + 1
    assert rec["wall_ms"] <= t1 - t0
    assert rec["cpu_ms"] == r["cpu_time_ms"]
    assert rec["peak_kb"] == r["peak_memory_kb"] > 0
    assert rec["counted"] == 1


def test_user_run_row_names_the_user(db):
    token = add_user(db, "auditee")
    uid = query(db, "SELECT id FROM users WHERE name = 'auditee'")[0]["id"]
    r = run_code("print('hi')", db=db,
                 env={"HTTP_AUTHORIZATION": "Bearer " + token})
    assert r.status == 200 and r["success"] is True, r
    rec = row(db, r["run_id"])
    assert rec["identity"] == "user:auditee"
    assert rec["user_id"] == uid
    assert rec["user_name"] == "auditee"
    assert rec["client_addr"] == "127.0.0.1"


@pytest.mark.parametrize("code,env,outcome,error_type", [
    ("print(1 / 0)", {}, "error", "ZeroDivisionError"),
    ("while True:\n    pass", {"PYEXEC_TIMEOUT_MS": "400"}, "timeout",
     "TimeoutError"),
    ("x = bytearray(10**9)", {"PYEXEC_MEMORY_MB": "128"}, "memory",
     "MemoryError"),
    ("while True:\n    print('x' * 99)", {"PYEXEC_OUTPUT_BYTES": "1000"},
     "output_limit", "OutputLimitExceeded"),
    ("import random\nrandom._os.fork()", {}, "security", "SecurityViolation"),
], ids=["error", "timeout", "memory", "output_limit", "security"])
def test_outcome_of_a_failed_run_is_recorded(db, code, env, outcome, error_type):
    r = run_code(code, db=db, env=env)
    assert r.status == 200 and r["success"] is False, r
    assert r["error_type"] == error_type, r
    rec = row(db, r["run_id"])
    assert_row_matches_response(r, rec)
    assert rec["outcome"] == outcome
    assert rec["error_type"] == error_type
    assert rec["error"] == r["error"]
    assert rec["output_size"] == len(r["output"].encode())
    assert rec["truncated"] == int(r["truncated"])
    assert rec["cpu_ms"] == r["cpu_time_ms"]
    assert rec["peak_kb"] == r["peak_memory_kb"]
    assert rec["finished_ms"] >= rec["started_ms"]
    if outcome == "timeout":
        assert rec["exec_ms"] >= 280
    if outcome == "output_limit":
        assert rec["output_size"] == 1000 and rec["truncated"] == 1


REFUSALS = [
    # status, body, cgi_raw keyword arguments
    (400, b"{", {}),
    (400, b'{"code": "print(1)", "extra": 1}', {}),
    (401, b'{"code": "print(1)"}', {"env": {"HTTP_AUTHORIZATION": "Basic dTpw"}}),
    (401, b'{"code": "print(1)", "token": "pyx_' + b"0" * 64 + b'"}', {}),
    (405, b"", {"method": "GET"}),
    (411, b'{"code": "print(1)"}', {"content_length": False}),
    (413, b'{"code": "print(1)"}', {"content_length": "999999999"}),
    (415, b'{"code": "print(1)"}', {"content_type": "text/plain"}),
    (500, b'{"code": "print(1)"}', {"env": {"PYEXEC_TIMEOUT_MS": "soon"}}),
]


@pytest.mark.parametrize("status,body,kw", REFUSALS,
                         ids=["400-json", "400-field", "401-basic",
                              "401-unknown", "405", "411", "413", "415", "500"])
def test_refused_request_is_audited(db, status, body, kw):
    kw = dict(kw)
    env = dict(kw.pop("env", {}))
    env["REMOTE_ADDR"] = "198.51.100.7"
    before = count_rows(db)
    t0 = now_ms()
    r = cgi_raw(body, db=db, env=env, **kw)
    t1 = now_ms()
    assert r.status == status, r
    assert r["success"] is False
    assert r["output"] == ""
    assert count_rows(db) == before + 1
    rec = row(db, r["run_id"])
    assert_row_matches_response(r, rec)
    assert rec["outcome"] == "rejected" and rec["status"] == "rejected"
    assert rec["error_type"] == r["error_type"]
    assert rec["error"] == r["error"]
    assert rec["identity"] == "anon:198.51.100.7"
    assert rec["client_addr"] == "198.51.100.7"
    assert t0 <= rec["started_ms"] <= rec["finished_ms"] <= t1
    assert rec["counted"] == 0


def test_rate_limited_request_is_audited(store):
    db = store()
    token = add_user(db, "zero", quota=0)
    r = run_code("print('MARKER')", db=db,
                 env={"HTTP_AUTHORIZATION": "Bearer " + token})
    assert r.status == 429, r
    assert "MARKER" not in r.body.decode()
    rec = row(db, r["run_id"])
    assert_row_matches_response(r, rec)
    assert rec["outcome"] == "rejected"
    assert rec["identity"] == "user:zero"
    assert rec["code_sha256"] == hashlib.sha256(b"print('MARKER')").hexdigest()
    assert rec["counted"] == 0


# ---------------------------------------------------------------- audit_code

CODE = "# caf\u00e9\nprint('\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9')\n"


@pytest.mark.parametrize("mode", ["hash", "none"])
def test_audit_code_setting_drops_the_code(mode, store):
    db = store(settings={"audit_code": mode})
    r = run_code(CODE, db=db)
    assert r.status == 200 and r["success"] is True, r
    rec = row(db, r["run_id"])
    assert rec["code"] is None
    assert rec["code_size"] == len(CODE.encode())
    if mode == "hash":
        assert rec["code_sha256"] == hashlib.sha256(CODE.encode()).hexdigest()
    assert not file_holds(db, "print('\u00e9".encode())


def test_audit_code_full_is_bounded_and_never_cuts_a_character(store):
    db = store(settings={"audit_code": "full", "audit_code_max_bytes": "6"})
    # bytes 5-6 are the e-acute of "caf\u00e9": a cut at 6 would split it
    r = run_code(CODE, db=db)
    assert r.status == 200 and r["success"] is True, r
    kept = stored_bytes(db, "code", r["run_id"])
    assert CODE.encode().startswith(kept)
    assert kept == "# caf".encode()     # 5 bytes: the 6th would split \u00e9
    kept.decode("utf-8")
    rec = row(db, r["run_id"])
    assert rec["code_sha256"] == hashlib.sha256(CODE.encode()).hexdigest()
    assert rec["code_size"] == len(CODE.encode())


def test_audit_code_default_is_full(store):
    db = store()
    code = "print(%r)\n" % ("z" * 5000)
    r = run_code(code, db=db)
    assert r.status == 200, r
    assert row(db, r["run_id"])["code"] == code


def test_error_message_is_bounded_in_the_audit_log(store):
    db = store(settings={"audit_error_max_bytes": "41"})
    r = run_code("raise ValueError('\u00e9' * 200)", db=db)
    assert r.status == 200 and r["error_type"] == "ValueError", r
    assert len(r["error"].encode()) > 400      # the client gets it whole
    kept = stored_bytes(db, "error", r["run_id"])
    assert 0 < len(kept) <= 41
    assert len(kept) >= 38
    assert r["error"].encode().startswith(kept)
    kept.decode("utf-8")


# ---------------------------------------------------------------- while running

def test_row_is_running_before_the_code_ends_and_completed_after(db):
    p = start(IDLE, db, env={"PYEXEC_TIMEOUT_MS": "1500"})
    try:
        children = wait_for(lambda: running_sandboxes(p.pid), 1.2)
        assert children, "the program never started"
        rec = running_row(db, p.pid)
        assert rec is not None, "no row while the program runs"
        assert p.poll() is None
        assert rec["outcome"] == "running" and rec["status"] == "running"
        assert rec["finished_ms"] is None
        assert rec["code"] == IDLE
        assert rec["counted"] == 1
    finally:
        r = finish(p)
    assert r.status == 200 and r["error_type"] == "TimeoutError", r
    done = row(db, rec["id"])
    assert r["run_id"] == r.headers["x-request-id"] == rec["id"]
    assert done["outcome"] == "timeout" and done["status"] == "timeout"
    assert done["finished_ms"] >= done["started_ms"] + 1400
    assert done["http_status"] == 200
    assert done["output_size"] == len("waiting\n")


def memory_holds(pid, needle, chunk=1 << 20):
    """Whether any readable mapping of pid contains needle (bytes). Read
    by chunks (overlapping by the needle's length); mappings over 1 GiB
    are skipped: reserved address space, such as ASan's shadow memory in
    the sanitizer build's broker, not data."""
    with open("/proc/%d/maps" % pid) as maps, \
            proc_mem(pid) as mem:
        for line in maps:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if not fields[1].startswith("r") or fields[-1] == "[vvar]" or \
                    hi - lo > 1 << 30:
                continue
            for at in range(lo, hi, chunk):
                try:
                    mem.seek(at)
                    if needle in mem.read(min(chunk + len(needle), hi - at)):
                        return True
                except OSError:
                    break
    return False


def test_sandbox_child_holds_nothing_from_the_database(db):
    """The child is forked before the broker opens the database: it holds
    none of its descriptors and none of what the broker read from it (the
    caller's user row), nor the token the request came with."""
    name = "canary-" + os.urandom(8).hex()
    token = add_user(db, name)
    p = start(IDLE, db, env={"PYEXEC_TIMEOUT_MS": "1500",
                             "HTTP_AUTHORIZATION": "Bearer " + token})
    base = os.path.basename(db)
    if is_pg(db):   # the broker's connection is a socket to the server
        def db_link(l):
            return l.startswith("socket:")
    else:
        def db_link(l):
            return l.endswith(base)
    try:
        children = wait_for(lambda: running_sandboxes(p.pid), 1.2)
        assert children, "the program never started"
        time.sleep(0.1)      # well into the blocked program
        assert p.poll() is None
        broker = fd_links(p.pid)
        child_links = {pid: fd_links(pid) for pid in children}
        # The scan finds what is there: the broker has the name it read.
        assert memory_holds(p.pid, name.encode())
        child_memory = {pid: (memory_holds(pid, name.encode()),
                              memory_holds(pid, token.encode()))
                        for pid in children}
    finally:
        r = finish(p)
    assert r.status == 200, r
    assert row(db, r["run_id"])["user_name"] == name
    # The scan can see such files: the broker holds its slot and the
    # database (it completes the row on the same connection).
    assert any(l.endswith(slots_file(db)) for l in broker), broker
    assert any(db_link(l) for l in broker), broker
    for pid, links in child_links.items():
        assert links, "no descriptors listed for %d" % pid
        bad = [l for l in links if db_link(l) or base in l or "-wal" in l
               or "-shm" in l or l.endswith("/slots")]
        assert not bad, "child %d holds %r" % (pid, bad)
        assert child_memory[pid] == (False, False), \
            "child %d holds the user's name or token" % pid


# ---------------------------------------------------------------- every request

def test_every_request_has_exactly_one_row(store):
    db = store()
    start_count = count_rows(db)
    ids = []
    for body, kw in [(b'{"code": "print(1)"}', {}),
                     (b'{"code": 1}', {}),
                     (b"", {"method": "PUT"}),
                     (b'{"code": "1/0"}', {})]:
        r = cgi_raw(body, db=db, **kw)
        ids.append(r["run_id"])
    assert len(set(ids)) == 4
    assert count_rows(db) == start_count + 4
    assert sorted(r["id"] for r in query(db, "SELECT id FROM runs WHERE id IN "
                                         "(?, ?, ?, ?)", ids)) == sorted(ids)


# ------------------------------------------ a broker killed mid-run (2/2)

@BACKENDS
def test_killed_broker_row_reads_abandoned_after_its_deadline(killed_run, backend):
    k = killed_run[backend]
    assert k["row"] is not None
    rec = row(k["db"], k["row"]["id"])
    wait = (rec["deadline_ms"] + 300 - now_ms()) / 1000.0
    assert wait < 40, wait
    if wait > 0:
        time.sleep(wait)
    rec = row(k["db"], k["row"]["id"])
    assert rec["outcome"] == "running"      # never rewritten, never dropped
    assert rec["status"] == "abandoned"
    assert rec["finished_ms"] is None
    assert sandbox_processes(k["pid"]) == []


# ---------------------------------------------------------------- the WAL

def test_wal_stays_bounded_over_many_requests():
    """One process per request never leaves a connection open, so SQLite's
    own auto-checkpoint never rewinds the WAL: without the broker's
    checkpoint it grew by every request (~14 KB each) and every open read
    all of it. No Python connection touches the file during the loop (its
    close would checkpoint). SQLite's alone: the WAL is its file."""
    db = fresh_db(quota=0)
    n = 200
    for _ in range(n):
        r = cgi_raw(b'{"code": "print(1)"}', db=db)
        assert r.status == 429, r
    wal = os.path.getsize(db + "-wal")
    frame = 4096 + 24
    # 256 frames between checkpoints (sql/store.c), and one request's own.
    assert wal <= 32 + (256 + 8) * frame, wal
    assert query(db, "SELECT count(*) AS n FROM runs WHERE http_status = "
                 "429")[0]["n"] == n
    assert query(db, "PRAGMA integrity_check")[0]["integrity_check"] == "ok"


# ------------------------------------------------- the child before its job

def test_child_waiting_for_its_job_holds_only_its_pipes(store):
    """The child is forked before the broker reads the request: while the
    broker waits for a body that never comes, the child holds /dev/null,
    its output, result and job pipes and nothing else (not the request's
    pipe), has no job, and is gone once the refusal is answered."""
    db = store()
    body = json.dumps({"code": "print(1)"}).encode()
    p = start_cgi(body, db, env={"PYEXEC_BODY_TIMEOUT_MS": "1500"},
                  send=False)
    try:
        waiting = wait_for(lambda: sandbox_processes(p.pid), 1.2)
        assert waiting, "no child while the broker waits for the body"
        assert running_sandboxes(p.pid) == []
        request_pipe = os.readlink("/proc/%d/fd/0" % p.pid)
        fds = {pid: sorted(int(fd) for fd in os.listdir("/proc/%d/fd" % pid))
               for pid in waiting}
        links = {pid: fd_links(pid) for pid in waiting}
    finally:
        r = finish(p)
    assert r.status == 408, r
    assert sandbox_processes(p.pid) == []
    for pid in waiting:
        assert fds[pid] == [0, 1, 2, 3, 4], fds
        assert request_pipe not in links[pid], links
        assert "/dev/null" in links[pid], links
    rec = row(db, r["run_id"])
    assert rec["outcome"] == "rejected" and rec["http_status"] == 408


# ------------------------------------------------ refusals cost the sender
#
# A refused request keeps the code's SHA-256 and size, never the code, and
# every text of its row is bounded: README "Audit log" states the bound.

REFUSED_ROW_BYTES = 1024
BIG_CODE = "x = 1  # " + "A" * (48 * 1024)


def disk_bytes(db):
    """The database's size on disk once its WAL is written back."""
    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    wal = db + "-wal"
    return os.path.getsize(db) + (os.path.getsize(wal)
                                  if os.path.exists(wal) else 0)


def flood_requests(token):
    """The refusals of the flood, in turn: 401 (no token, anonymous denied),
    429 (a user whose quota is 0), 401 (an unknown token), 400 (an unknown
    member beside the code)."""
    body = json.dumps({"code": BIG_CODE}).encode()
    bad = json.dumps({"code": BIG_CODE, "extra": 1}).encode()
    unknown = json.dumps({"code": BIG_CODE,
                          "token": "pyx_" + "0" * 64}).encode()
    return [(401, body, {}),
            (429, body, {"HTTP_AUTHORIZATION": "Bearer " + token}),
            (401, unknown, {}),
            (400, bad, {})]


def test_a_flood_of_refusals_grows_the_database_within_the_bound():
    # SQLite's alone: the bound is on the file's size, and 2000 requests
    # are the suite's longest loop (the rows' contents, the same on both
    # backends, are the next test's).
    db = fresh_db(settings={"anonymous": "deny"})
    token = add_user(db, "zero", quota=0)
    kinds = flood_requests(token)
    env = base_env(db)
    env.update(REQUEST_METHOD="POST", CONTENT_TYPE="application/json",
               REMOTE_ADDR="2001:db8::" + "f" * 300)    # bounded in the row
    n = 2000
    before = disk_bytes(db)
    for i in range(n):
        status, body, extra = kinds[i % len(kinds)]
        e = dict(env, CONTENT_LENGTH=str(len(body)), **extra)
        p = subprocess.run([CGI], input=body, env=e, capture_output=True,
                           timeout=30)
        assert p.stdout.startswith(b"Status: %d " % status), p.stdout[:300]
    grown = disk_bytes(db) - before
    rows = query(db, "SELECT http_status, count(*) AS n, "
                 "count(code) AS with_code, max(length(client_addr)) AS addr "
                 "FROM runs WHERE outcome = 'rejected' AND http_status <> 405 "
                 "GROUP BY http_status")
    assert {r["http_status"]: r["n"] for r in rows} == {401: n // 2,
                                                        429: n // 4,
                                                        400: n // 4}
    assert all(r["with_code"] == 0 for r in rows), rows
    assert all(r["addr"] <= 64 for r in rows), rows
    assert grown < n * REFUSED_ROW_BYTES, (grown, grown / n)


def test_refused_rows_keep_the_hash_and_size_not_the_code(store):
    db = store(settings={"anonymous": "deny"})
    token = add_user(db, "zero", quota=0)
    digest = hashlib.sha256(BIG_CODE.encode()).hexdigest()
    for status, body, extra in flood_requests(token)[:3]:
        r = cgi_raw(body, db=db, env=extra)
        assert r.status == status, r
        rec = row(db, r["run_id"])
        assert rec["code"] is None, status
        assert rec["code_sha256"] == digest, status
        assert rec["code_size"] == len(BIG_CODE.encode()), status
    assert not file_holds(db, b"A" * 1024)


def test_a_run_refused_for_want_of_a_slot_drops_its_code(store):
    db = store(settings={"max_concurrent": "1", "concurrency_wait_ms": "0"})
    holder = start(IDLE, db, env={"PYEXEC_TIMEOUT_MS": "3000"})
    try:
        wait_for(lambda: running_sandboxes(holder.pid), 5.0)
        code = "print('BUSY')  # " + "B" * 4096
        r = run_code(code, db=db)
        assert r.status == 503, r
        rec = row(db, r["run_id"])
        assert rec["outcome"] == "rejected" and rec["http_status"] == 503
        assert rec["code"] is None
        assert rec["code_sha256"] == hashlib.sha256(code.encode()).hexdigest()
        assert rec["code_size"] == len(code.encode())
    finally:
        assert finish(holder).status == 200     # its time limit ended it


# ------------------------------------------ stored errors are safe to print
#
# The error and error_type come from the child, whose text the program
# controls: the name of its exception's class and the message (a record of
# its own on fd 3 is not believed: tests/test_escapes.py::test_forged_*).
# What is stored is valid UTF-8 with controls escaped.

ADMIN = os.environ.get("PYEXEC_ADMIN", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "pyexec-admin"))

HOSTILE_TYPE = "Val\x1b[2J\x9b"
HOSTILE_MSG = ("\x1b]0;owned\x07 C1:\x9b\x85 del:\x7f bidi:\u202e "
               "ok:caf\u00e9\tend\n2")


def hostile_exception(typ, msg):
    """A program raising an exception whose class is named typ, with msg
    (both str, written raw into the source, so the quoted source line in
    the traceback carries them too)."""
    return ("E = type(%r, (Exception,), {})\nraise E(%r)\n" % (typ, msg))


def safe_text(data):
    """data (bytes) is valid UTF-8 with no control but tab and newline, no
    C1 control and no bidirectional override."""
    text = data.decode("utf-8")          # raises on invalid UTF-8
    bad = [c for c in text if (ord(c) < 0x20 and c not in "\t\n")
           or 0x7f <= ord(c) <= 0x9f or 0x202a <= ord(c) <= 0x202e
           or 0x2066 <= ord(c) <= 0x2069]
    assert not bad, (bad, text)
    return text


def test_stored_errors_are_valid_utf8_with_controls_escaped(store):
    db = store()
    r = cgi_raw(json.dumps({"code": hostile_exception(HOSTILE_TYPE,
                                                      HOSTILE_MSG)}).encode(),
                db=db)
    assert r.status == 200 and r["success"] is False, r
    etype = stored_bytes(db, "error_type", r["run_id"])
    err = stored_bytes(db, "error", r["run_id"])
    assert safe_text(etype) == "Val\\u001B[2J\\u009B", etype
    text = safe_text(err)
    for shown in ("\\u001B]0;owned\\u0007", "C1:\\u009B\\u0085",
                  "del:\\u007F", "bidi:\\u202E", "ok:caf\u00e9\tend\n2"):
        assert shown in text, (shown, text)
    env = {"PATH": "/usr/bin:/bin", "PYEXEC_DB": db}
    for args in (["logs"], ["logs", "--json"], ["logs", "show", r["run_id"]]):
        p = subprocess.run([ADMIN, *args], env=env, capture_output=True,
                           timeout=30)
        assert p.returncode == 0, (args, p.stderr)
        assert r["run_id"][:8].encode() in p.stdout, (args, p.stdout)
        safe_text(p.stdout)


def test_a_stored_error_is_cut_whole_after_escaping(store):
    # The stored error is the traceback, which quotes the source line the
    # program wrote: "    raise E('ab<U+009B>cdefgh')". The cuts are set
    # relative to where that text starts in an uncut row.
    code = "E = type('E', (Exception,), {})\nraise E('ab\x9bcdefgh')\n"

    def stored(cap):
        db = store(settings={"audit_error_max_bytes": str(cap)})
        r = cgi_raw(json.dumps({"code": code}).encode(), db=db)
        assert r.status == 200, r
        return row(db, r["run_id"])["error"]

    whole = stored(4096)
    head = whole[:whole.index("ab\\u009Bcdefgh")]
    assert head.startswith("Traceback") and head.isascii(), whole
    for cap, kept in ((len(head) + 2 + 6 + 5, "ab\\u009Bcdefg"),
                      (len(head) + 2 + 3, "ab")):    # never half an escape
        assert stored(cap) == head + kept, (cap, whole)
