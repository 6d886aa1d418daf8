"""pyexec-admin backup: a consistent copy of the live database, taken while
the CGI keeps writing, renamed into place, never over a file without
--force."""
import os
import re
import sqlite3
import subprocess
import threading

from conftest import fresh_db, query, run_code

ADMIN = os.environ.get("PYEXEC_ADMIN", os.path.join(os.path.dirname(__file__), "..",
                                                    "pyexec-admin"))
CLIENTS = 8
RUNS_PER_CLIENT = 25		# bounded: the stream ends by itself


def admin(db, *args):
    return subprocess.run([ADMIN, "--db", db] + list(args), capture_output=True,
                          text=True, timeout=120)


def run_ids(db):
    return {r["id"] for r in query(db, "SELECT id FROM runs")}


class Stream:
    """CLIENTS threads sending requests to the CGI until stopped."""

    def __init__(self, db):
        self.db, self.stop, self.errors = db, threading.Event(), []
        self.threads = [threading.Thread(target=self.client) for _ in range(CLIENTS)]

    def client(self):
        for i in range(RUNS_PER_CLIENT):
            if self.stop.is_set():
                return
            r = run_code("print(%d)" % i, db=self.db)
            if r.status != 200:
                self.errors.append(r)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(300)
        assert not any(t.is_alive() for t in self.threads)


def wait_rows(db, n):
    for _ in range(3000):
        if len(run_ids(db)) >= n:
            return
        threading.Event().wait(0.02)
    raise AssertionError("the clients wrote fewer than %d rows" % n)


def test_backup_during_concurrent_writes():
    db = fresh_db(quota=-1)
    dest = os.path.join(os.path.dirname(db), "copy.db")
    with Stream(db) as stream:
        wait_rows(db, CLIENTS)
        before = run_ids(db)		# committed before the backup starts
        p = admin(db, "backup", dest)
        during = run_ids(db)
        wait_rows(db, len(during) + 1)	# the stream went on meanwhile
    assert not stream.errors, stream.errors[:3]
    assert p.returncode == 0, p.stderr
    con = sqlite3.connect(dest)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        copied = {r[0] for r in con.execute("SELECT id FROM runs")}
    finally:
        con.close()
    assert before <= copied, before - copied
    assert copied <= during
    m = re.search(r"(\d+) runs, (\d+) users, (\d+) settings, (\d+) bytes", p.stdout)
    assert m, p.stdout
    assert int(m.group(1)) == len(copied)
    assert int(m.group(4)) == os.path.getsize(dest)
    # The copy is a database pyexec-admin opens; no temporary file is left.
    s = admin(dest, "stats", "--json")
    assert s.returncode == 0, s.stderr
    assert [f for f in os.listdir(os.path.dirname(db)) if ".backup-" in f] == []
    assert len(run_ids(db)) > len(copied)


def test_backup_needs_force_to_overwrite():
    db = fresh_db(quota=-1)
    dest = os.path.join(os.path.dirname(db), "copy.db")
    with open(dest, "wb") as f:
        f.write(b"an operator's file")
    p = admin(db, "backup", dest)
    assert p.returncode == 1 and "--force" in p.stderr, p
    with open(dest, "rb") as f:
        assert f.read() == b"an operator's file"
    assert run_code("print(1)", db=db).status == 200
    p = admin(db, "backup", "--force", dest)
    assert p.returncode == 0, p.stderr
    assert run_ids(dest) == run_ids(db) and len(run_ids(db)) >= 1
    # Never over the live database, even with --force.
    p = admin(db, "backup", "--force", db)
    assert p.returncode == 1 and "database itself" in p.stderr, p
    assert run_code("print(2)", db=db).status == 200
    assert [f for f in os.listdir(os.path.dirname(db)) if ".backup-" in f] == []


def test_backup_usage():
    db = fresh_db(quota=-1)
    assert admin(db, "backup").returncode == 2
    assert admin(db, "backup", "a", "b").returncode == 2
    p = admin(db, "backup", "/nonexistent-dir/copy.db")
    assert p.returncode == 1 and p.stderr.startswith("pyexec-admin: "), p
