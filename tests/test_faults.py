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
import sqlite3
import subprocess
import tempfile
import time

from conftest import (CGI, ROOT, Response, base_env, cgi_raw, new_db, require,
                      row, run_code)
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
        t0 = time.monotonic()
        r = post(s.port, code, bearer=s.token)
        took = time.monotonic() - t0
        assert took < 8, "lighttpd did not give up at its own timeout (%.1f s)" % took
        assert r.status >= 500, r
        wait_for("no process left", lambda: not pyexec_procs(s.roots()), 10)
        found = wait_for("the row to be completed", lambda: [
            x for x in rows(s.db, "SELECT outcome, status, error_type, error, http_status "
                            "FROM runs_view WHERE code LIKE ?", "%" + MARKER + "%")
            if x[0] != "running"], 5)
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
