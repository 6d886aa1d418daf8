"""Faults the other suites do not already cause (SECURITY.md lists where
each fault is tested):

  - the disk is full for the WAL: the database fits, but not one more page
    of its write-ahead log (test_failclosed.test_full_database fills it with
    one large row; here nothing at all can be written);
  - the sandbox child killed by the kernel's OOM killer under a memory
    cgroup smaller than its RLIMIT_AS (RLIMIT_AS itself: test_limits);
  - a web server that kills the CGI at its own timeout, shorter than the
    run's (lighttpd's cgi.limits read-timeout);
  - pyexec-sandbox missing beside pyexec.cgi (a partial install);
  - no process can be forked (a pids cgroup that allows the CGI alone).

Covered elsewhere: the broker SIGKILLed mid-run (test_audit: the child dies
with it, the row reads 'abandoned'); the database locked, read-only,
immutable, full, not a database, newer than the program (test_failclosed);
a client that never sends its body, or stalls halfway (test_request: 408
within body_timeout_ms); a client that goes away mid-run and a wrapper's
deadline (test_servers: 'Cancelled').
"""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time

import pytest

from conftest import (CGI, IDLE, ROOT, Response, add_user, base_env, cgi_raw,
                      fresh_db, new_db, now_ms, query, require, row, run_code,
                      running_sandboxes, sandbox_processes, start_cgi)
from conftest import wait_for as cwait_for
from test_failclosed import assert_fail_closed, fill, tmpfs
from test_servers import Lighttpd, post, pyexec_procs, rows, wait_for

MARKER = "fault-marker-5e1f"


def integrity(db):
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute("PRAGMA integrity_check").fetchall()
    finally:
        con.close()


# ------------------------------------------------------- disk full for the WAL

def test_disk_full_for_the_wal():
    """The file system holding the database has no free block: the audit
    row cannot go into the WAL, so nothing runs (503, Retry-After); the
    database is intact afterwards, and runs again once there is room."""
    require(ROOT, "mounting a tmpfs needs root")
    with tmpfs(size="2m") as d:
        db = os.path.join(d, "pyexec.db")
        assert cgi_raw(b"", method="GET", db=db).status == 405
        con = sqlite3.connect(db)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        fill(d, 0)
        st = os.statvfs(d)
        assert st.f_bavail * st.f_frsize < 8192, "the file system still has room"
        code = "print(%r)" % MARKER
        for _ in range(3):
            r = run_code(code, db=db)
            assert_fail_closed(r)
        os.unlink(os.path.join(d, "filler"))
        assert integrity(db) == [("ok",)]
        con = sqlite3.connect(db)
        n = con.execute("SELECT count(*) FROM runs WHERE code_sha256 IS NOT NULL "
                        "AND code LIKE ?", ("%" + MARKER + "%",)).fetchone()[0]
        con.close()
        assert n == 0, "a refused run left a row"
        r = run_code(code, db=db)
        assert r.status == 200 and r["output"] == MARKER + "\n", r
        assert integrity(db) == [("ok",)]


# ------------------------------------------------ the child killed by the OOM killer

def own_cgroup(controller, v2_limits, v1_limits, optional=()):
    """A new cgroup under ours with the given limit files written: in the
    unified hierarchy (v2) when there is one, else in the controller's v1
    hierarchy; files in optional may be refused (memsw without swap
    accounting). Returns its path, or None."""
    name = "pyexec-test-%s-%d" % (controller, os.getpid())
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        root, key, limits = "/sys/fs/cgroup", "", v2_limits
    elif os.path.isdir("/sys/fs/cgroup/" + controller):
        root, key, limits = "/sys/fs/cgroup/" + controller, controller, v1_limits
    else:
        return None
    with open("/proc/self/cgroup") as f:
        rel = [l.split(":", 2)[2].strip() for l in f if l.split(":")[1] == key]
    path = os.path.join(root, rel[0].lstrip("/") if rel else "", name)
    try:
        os.mkdir(path)
    except OSError:
        return None
    for fname, value in limits.items():
        try:
            with open(os.path.join(path, fname), "w") as f:
                f.write(str(value))
        except OSError:
            if fname not in optional:
                os.rmdir(path)
                return None
    return path


def remove_cgroup(path):
    """rmdir, once the kernel has let go of the processes that were in it."""
    for _ in range(50):
        try:
            os.rmdir(path)
            return
        except OSError:
            time.sleep(0.1)


def test_child_killed_by_the_oom_killer():
    """The CGI runs in a 64 MiB memory cgroup while the sandbox's RLIMIT_AS
    is 512 MiB: the program touches memory until the kernel's OOM killer
    SIGKILLs it. The broker survives, answers 200 with MemoryError, the row
    is completed as 'memory', and no process is left."""
    require(ROOT, "a memory cgroup of its own needs root")
    path = own_cgroup("memory", {"memory.max": 64 << 20, "memory.swap.max": 0},
                      {"memory.limit_in_bytes": 64 << 20,
                       "memory.memsw.limit_in_bytes": 64 << 20},
                      optional=("memory.memsw.limit_in_bytes",))
    assert path is not None, ("no writable memory cgroup (v1, or v2 with memory in the parent's "
                              "cgroup.subtree_control: the controller is not "
                              "delegated here)")
    db = new_db(quota=-1)
    try:
        code = ("x = []\nwhile True:\n    x.append(bytearray(4 * 1024 * 1024))\n# %s" % MARKER)
        env = {"PYEXEC_MEMORY_MB": "512", "PYEXEC_TIMEOUT_MS": "10000"}

        r = run_in_cgroup(os.path.join(path, "cgroup.procs"), code, db, env)
        assert r.status == 200, r
        assert r["success"] is False and r["error_type"] == "MemoryError", r
        assert "killed by the kernel" in r["error"], r
        con = sqlite3.connect(db)
        outcome, = con.execute("SELECT status FROM runs_view WHERE id = ?",
                               (r["run_id"],)).fetchone()
        con.close()
        assert outcome == "memory"
        with open(os.path.join(path, "cgroup.procs")) as f:
            assert f.read().split() == [], "processes left in the cgroup"
    finally:
        remove_cgroup(path)


def run_in_cgroup(procs_file, code, db, env=None):
    """Runs the CGI on {"code": code}, moved into a cgroup (procs_file) before
    it starts; returns its Response."""
    body = json.dumps({"code": code}).encode()
    e = base_env(db)
    e.update({"REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/json",
              "CONTENT_LENGTH": str(len(body))})
    e.update(env or {})

    def join():
        with open(procs_file, "w") as f:
            f.write(str(os.getpid()))
    p = subprocess.run([CGI], input=body, env=e, capture_output=True,
                       timeout=60, preexec_fn=join)
    return Response(p.stdout, p.returncode, p.stderr)


def test_fork_failure_is_an_audited_internal_error():
    """The CGI in a cgroup that allows it no second process: the request is
    admitted, the sandbox child cannot be forked, and the answer is a 500
    that says so, with its audit row completed. Nothing ran."""
    require(ROOT, "a pids cgroup of its own needs root")
    path = own_cgroup("pids", {"pids.max": 1}, {"pids.max": 1})
    assert path is not None, ("no writable pids cgroup (v1, or v2 with pids in the parent's "
                              "cgroup.subtree_control: the controller is not "
                              "delegated here)")
    db = new_db(quota=-1)
    try:
        r = run_in_cgroup(os.path.join(path, "cgroup.procs"),
                          "print('%s')" % MARKER, db)
        assert r.status == 500, r
        assert r["error_type"] == "InternalError" and r["output"] == "", r
        assert r["error"] == "fork: Resource temporarily unavailable", r
        rec = row(db, r["run_id"])
        assert (rec["status"], rec["http_status"]) == ("internal", 500), rec
        with open(os.path.join(path, "cgroup.procs")) as f:
            assert f.read().split() == [], "processes left in the cgroup"
    finally:
        remove_cgroup(path)


# ------------------------------------------ the web server's own timeout fires first

class ImpatientLighttpd(Lighttpd):
    """The shipped lighttpd.conf, but with a CGI read timeout of 2 s: shorter
    than the run's own limit, the misconfiguration the README warns about."""

    def edits(self):
        e = super().edits()
        e[r'cgi\.limits = \("read-timeout" => \d+, "write-timeout" => \d+,'] = \
            'cgi.limits = ("read-timeout" => 2, "write-timeout" => 2,'
        return e


def test_web_server_kills_the_cgi_at_its_own_timeout():
    """lighttpd gives up on the CGI after 2 s while the run may take 10 s:
    it kills the CGI (SIGTERM). The broker stops the sandbox, completes the
    row as Cancelled (never left 'running' or 'abandoned'), and no broker or
    sandbox process is left."""
    s = ImpatientLighttpd("lighttpd")
    try:
        s.start()
        with sqlite3.connect(s.db) as c:
            c.execute("UPDATE settings SET value = '10000' WHERE key = 'timeout_ms'")
        code = "while True:\n    pass\n# %s" % MARKER
        # lighttpd's answer (5xx) and the row 'Cancelled' (below) show
        # that it gave up first: the run itself would have ended as a
        # TimeoutError in a 200 at 10 s. How soon is the machine's speed.
        r = post(s.port, code, bearer=s.token)
        assert r.status >= 500, r
        wait_for("no process left", lambda: not pyexec_procs(s.roots()), 30)
        found = wait_for("the row to be completed", lambda: [
            x for x in rows(s.db, "SELECT outcome, status, error_type, error, http_status "
                            "FROM runs_view WHERE code LIKE ?", "%" + MARKER + "%")
            if x[0] != "running"], 30)
        assert len(found) == 1, found
        outcome, status, error_type, error, http_status = found[0]
        assert (outcome, status, error_type, http_status) == \
            ("internal", "internal", "Cancelled", 499), found
        assert "SIGTERM" in error, error
        assert integrity(s.db) == [("ok",)]
    finally:
        s.stop()


def test_missing_pyexec_sandbox_is_an_audited_internal_error():
    """pyexec.cgi copied alone: the request is admitted, the child cannot
    execute its program, and the answer says so (without the server's
    paths) in a 500 whose audit row is complete."""
    d = tempfile.mkdtemp(prefix="pyexec-alone-")
    try:
        cgi = os.path.join(d, "pyexec.cgi")
        shutil.copy2(CGI, cgi)
        db = new_db()
        r = run_code("print('never')", cgi=cgi, db=db)
        assert r.status == 500, r
        assert r["error_type"] == "InternalError" and r["output"] == ""
        assert r["error"] == ("pyexec-sandbox (beside pyexec.cgi): "
                              "No such file or directory"), r["error"]
        assert d.encode() not in r.raw, "the answer names the server's paths"
        rec = row(db, r["run_id"])
        assert (rec["outcome"], rec["status"], rec["http_status"]) == \
            ("internal", "internal", 500), rec
        assert b"pyexec-sandbox" in r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------ the broker killed at every phase
#
# What "every request leaves a row" covers (README): SIGTERM (what a web
# server sends when it gives up) at any phase ends the request with its
# row; SIGKILL after the row is written leaves it 'running', read as
# 'abandoned' past its deadline; SIGKILL before the row is written leaves
# none (nothing ran: the row is written before any code does).

PHASE_WAIT_MS = 60000     # waits the kill must cut short


def broker_rows(db, pid):
    return query(db, "SELECT * FROM runs_view WHERE broker_pid = ?", (pid,))


def count_rows(db):
    return query(db, "SELECT count(*) AS n FROM runs")[0]["n"]


def sandboxes_gone(p):
    return cwait_for(lambda: not sandbox_processes(p.pid), 5.0)


def reap(p, timeout=30):
    """Waits for a CGI (SIGKILLed past timeout); its stdout, raw (a
    killed or cancelled broker may have written nothing)."""
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError("the broker was still there after %d s" % timeout)
    finally:
        out = p.stdout.read()
        for f in (p.stdin, p.stdout, p.stderr):
            if f and not f.closed:
                f.close()
    return out


def end(p, sig):
    assert p.poll() is None, "the CGI ended before the phase was reached"
    os.kill(p.pid, sig)
    # A SIGTERM must end the wait at once: the wait itself is 60 s, so a
    # broker that ignored the signal is still there when this gives up.
    return reap(p)


def assert_cancelled_unrun(rec, doing):
    assert rec["outcome"] == "rejected" and rec["status"] == "rejected", rec
    assert rec["error_type"] == "Cancelled" and rec["http_status"] == 499, rec
    assert "SIGTERM" in rec["error"] and doing in rec["error"], rec
    assert rec["counted"] == 0 and rec["finished_ms"] is not None


def assert_abandoned_later(db, rec):
    """A killed broker's row stays 'running'; past its deadline the view
    reads it 'abandoned' (the deadline is moved here rather than waited
    for: test_audit waits for a real one)."""
    assert rec["outcome"] == "running" and rec["status"] == "running", rec
    assert rec["finished_ms"] is None and rec["deadline_ms"] > now_ms()
    with sqlite3.connect(db) as c:
        c.execute("UPDATE runs SET deadline_ms = ? WHERE id = ?",
                  (now_ms() - 1, rec["id"]))
    assert row(db, rec["id"])["status"] == "abandoned"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGTERM", "SIGKILL"])
def test_killed_while_the_body_is_read(sig):
    """Before the row: the body is still coming."""
    db = fresh_db(settings={"body_timeout_ms": str(PHASE_WAIT_MS)})
    before = count_rows(db)
    body = json.dumps({"code": "print('%s')" % MARKER}).encode()
    p = start_cgi(body, db, send=False)
    try:
        p.stdin.write(body[:4])
        p.stdin.flush()
        # The child is forked first, the database opened, then the read.
        assert cwait_for(lambda: sandbox_processes(p.pid), 5.0)
        time.sleep(0.3)
        r = end(p, sig)
    finally:
        if not p.stdin.closed:
            p.stdin.close()
    assert sandboxes_gone(p), "a sandbox outlived its broker"
    found = broker_rows(db, p.pid)
    if sig == signal.SIGKILL:
        assert found == [] and count_rows(db) == before
        assert r == b""
        return
    assert len(found) == 1 and count_rows(db) == before + 1, found
    assert_cancelled_unrun(found[0], "body")
    assert MARKER.encode() not in r


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGTERM", "SIGKILL"])
def test_killed_while_waiting_for_a_slot(sig):
    """After admission: the row is written, the request waits for a slot."""
    db = fresh_db(settings={"max_concurrent": "1",
                          "concurrency_wait_ms": str(PHASE_WAIT_MS)})
    holder = add_user(db, "holder", admin=True)
    body = json.dumps({"code": IDLE}).encode()
    h = start_cgi(body, db, env={"HTTP_AUTHORIZATION": "Bearer " + holder,
                                 "PYEXEC_TIMEOUT_MS": "20000"})
    try:
        assert cwait_for(lambda: running_sandboxes(h.pid), 5.0)
        p = start_cgi(json.dumps({"code": "print('%s')" % MARKER}).encode(), db)
        rec = cwait_for(lambda: broker_rows(db, p.pid), 10.0)
        assert rec and rec[0]["outcome"] == "running", rec
        time.sleep(0.2)
        r = end(p, sig)
        assert sandboxes_gone(p)
        found = broker_rows(db, p.pid)
        assert len(found) == 1, found
        if sig == signal.SIGKILL:
            assert_abandoned_later(db, found[0])
        else:
            assert_cancelled_unrun(found[0], "slot")
        assert MARKER.encode() not in r
    finally:
        if h.poll() is None:
            os.kill(h.pid, signal.SIGKILL)
        reap(h)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGTERM", "SIGKILL"])
def test_killed_while_running(sig):
    db = fresh_db()
    p = start_cgi(json.dumps({"code": IDLE}).encode(), db,
                  env={"PYEXEC_TIMEOUT_MS": str(PHASE_WAIT_MS)})
    assert cwait_for(lambda: running_sandboxes(p.pid), 5.0)
    end(p, sig)
    assert sandboxes_gone(p), "a sandbox outlived its broker"
    found = broker_rows(db, p.pid)
    assert len(found) == 1, found
    if sig == signal.SIGKILL:
        assert_abandoned_later(db, found[0])
        return
    rec = found[0]
    assert (rec["outcome"], rec["error_type"], rec["http_status"]) == \
        ("internal", "Cancelled", 499), rec
    assert "SIGTERM" in rec["error"] and rec["finished_ms"] is not None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGTERM", "SIGKILL"])
def test_killed_while_completing(sig):
    """The run is over, the broker waits for the database to complete the
    row (the test holds the write lock): SIGTERM lets it finish the row
    with the run's own outcome; SIGKILL leaves the row 'running'."""
    db = fresh_db()
    p = start_cgi(json.dumps({"code": IDLE}).encode(), db,
                  env={"PYEXEC_TIMEOUT_MS": "1500",
                       "PYEXEC_DB_BUSY_MS": str(PHASE_WAIT_MS)})
    lock = None
    try:
        assert cwait_for(lambda: running_sandboxes(p.pid), 5.0)
        assert cwait_for(lambda: broker_rows(db, p.pid), 5.0)
        lock = sqlite3.connect(db, isolation_level=None, timeout=10)
        lock.execute("BEGIN IMMEDIATE")
        # The run ends at its time limit; the broker then waits for the lock.
        assert cwait_for(lambda: not sandbox_processes(p.pid), 10.0)
        time.sleep(0.3)
        assert p.poll() is None, "the broker completed the row under the lock"
        os.kill(p.pid, sig)
        time.sleep(0.3)
    finally:
        if lock is not None:
            lock.execute("ROLLBACK")
            lock.close()
    reap(p)
    found = broker_rows(db, p.pid)
    assert len(found) == 1, found
    if sig == signal.SIGKILL:
        assert_abandoned_later(db, found[0])
        return
    rec = found[0]
    assert rec["outcome"] == "timeout" and rec["finished_ms"] is not None, rec
    assert rec["error_type"] == "TimeoutError" and rec["http_status"] == 200
