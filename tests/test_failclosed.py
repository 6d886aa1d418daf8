"""Fail closed: when the audit log cannot be written, no code runs.

A database that cannot be opened, is read-only, is locked past the busy
timeout, is full, is not a database or is newer than the program: every
request is answered 503 with a JSON error, the program is never started,
and no row appears later. The 503 carries Retry-After unless no retry can
help (a missing directory, a directory or file this user or the mount
denies): then the CGI's stderr names the path and the fix instead.
The tests taking `store` (or a backend) run on SQLite and on PostgreSQL:
a database locked past the busy timeout (on PostgreSQL, its tables locked
by another transaction past lock_timeout) and one whose schema is newer.
PostgreSQL's own ways to fail, the server stopped, killed, the identity's
admission lock held, a login refused, are in test_pg.py; the others here
are SQLite's alone, as the file is (its mount, mode, lock, size, contents).

Root ignores file modes, so read-only here means a read-only mount (or an
immutable file); full means a small tmpfs filled up. Every mount is undone
in a finally block.
"""
import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import (ADMIN_BIN, CGI, add_user, cgi_raw, execute, fresh_db,
                      is_pg, pg_cluster, query, run_code, can_mount_tmpfs,
                      require, wait_for)
from test_admin import schema_version


MARKER = "FAILCLOSED_MARKER_7f3a"
CODE = "print('%s')\n" % MARKER


# ---------------------------------------------------------------- helpers

@contextlib.contextmanager
def tmpfs(size="4m", options=""):
    require(can_mount_tmpfs(), "mounting a tmpfs needs root with "
            "CAP_SYS_ADMIN", root=True)
    d = tempfile.mkdtemp(prefix="pyexec-mnt-")
    opts = "size=%s,mode=0755" % size + ("," + options if options else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", d],
                   check=True, capture_output=True)
    try:
        yield d
    finally:
        if subprocess.run(["umount", d], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", d], capture_output=True)
        os.rmdir(d)


def remount_ro(d):
    subprocess.run(["mount", "-o", "remount,ro", d], check=True,
                   capture_output=True)


def assert_fail_closed(r, never=False):
    """never: the database can never be opened as things stand."""
    assert r.status == 503, r
    ra = [l for l in r.raw.partition(b"\n\n")[0].decode().split("\n")
          if l.lower().startswith("retry-after:")]
    if never:
        assert ra == [], ra
        assert "retrying will not help" in r["error"], r["error"]
        assert b"; fix: " in r.stderr, r.stderr
    else:
        assert len(ra) == 1, ra
        assert int(ra[0].partition(":")[2]) > 0
        assert b"fix:" not in r.stderr, r.stderr
    assert r.headers["content-type"] == "application/json"
    for field in ("success", "output", "error", "execution_time_ms"):
        assert field in r.json, field
    assert r["success"] is False
    assert r["output"] == ""
    assert "unavailable" in r["error"], r["error"]
    assert MARKER not in r.raw.decode()
    assert r.headers["x-request-id"] == r["run_id"]


def requests(db, env=None):
    """A request that would run code, and one that would be refused."""
    return [run_code(CODE, db=db, env=env),
            cgi_raw(b"", method="GET", db=db, env=env)]


def file_digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def copy_db(src, dst_dir):
    """Copies a database with its WAL (which holds recent transactions)."""
    for suffix in ("", "-wal"):
        if os.path.exists(src + suffix):
            shutil.copy(src + suffix, os.path.join(dst_dir, "pyexec.db" + suffix))
    return os.path.join(dst_dir, "pyexec.db")


# ---------------------------------------------------------------- read-only

def test_database_on_a_read_only_mount():
    src = fresh_db()
    assert run_code("print(1)", db=src).status == 200
    with tmpfs() as d:
        db = copy_db(src, d)
        before = len(query(db, "SELECT id FROM runs"))
        assert before >= 2
        remount_ro(d)
        digest = file_digest(db)
        for r in requests(db):
            assert_fail_closed(r, never=True)
            assert b"read-only file system" in r.stderr, r.stderr
        assert file_digest(db) == digest
    # the same database on a writable mount works
    with tmpfs() as d:
        db = copy_db(src, d)
        r = run_code(CODE, db=db)
        assert r.status == 200 and r["output"] == MARKER + "\n", r


def test_immutable_database_file():
    db = fresh_db()
    p = subprocess.run(["chattr", "+i", db], capture_output=True)
    require(p.returncode == 0, "chattr +i (CAP_LINUX_IMMUTABLE and a file "
            "system with the flag): %s" % p.stderr.decode().strip()
            .replace(db, "<db>"), root=True)
    try:
        try:
            open(db, "r+b").close()
            writable = True
        except OSError:
            writable = False
        assert not writable, "chattr +i did not make the file read-only"
        results = requests(db)
        for r in results:
            assert_fail_closed(r, never=True)
            assert ("'%s'" % db).encode() in r.stderr, r.stderr
    finally:
        subprocess.run(["chattr", "-i", db], check=True, capture_output=True)
    ids = [r["run_id"] for r in results]
    assert query(db, "SELECT id FROM runs WHERE id IN (?, ?)", ids) == []


def test_missing_database_in_an_unwritable_directory():
    with tmpfs(options="ro") as d:
        db = os.path.join(d, "pyexec.db")
        for r in requests(db):
            assert_fail_closed(r, never=True)
        assert os.listdir(d) == []


def test_missing_directory_says_so_and_how_to_make_it():
    d = tempfile.mkdtemp(prefix="pyexec-test-")
    try:
        db = os.path.join(d, "absent", "pyexec.db")
        for r in requests(db):
            assert_fail_closed(r, never=True)
            line = r.stderr.decode()
            assert "the directory '%s/absent' does not exist" % d in line
            assert "install -d -o " in line and "'%s/absent'" % d in line
            assert line.count("\n") == 1, line
        assert os.listdir(d) == []
    finally:
        shutil.rmtree(d)


def test_directory_another_user_owns_says_whom_to_give_it_to():
    """The CGI as a user who may not write the database's directory (as
    www-data on a directory root made): no Retry-After, and the fix."""
    d = tempfile.mkdtemp(prefix="pyexec-test-")
    try:
        os.chmod(d, 0o755)
        db_dir = os.path.join(d, "var")
        os.mkdir(db_dir, 0o755)
        bindir = os.path.join(d, "bin")
        os.mkdir(bindir, 0o755)
        for name in ("pyexec.cgi", "pyexec-sandbox"):
            shutil.copy2(os.path.join(os.path.dirname(CGI), name), bindir)
        cgi = os.path.join(bindir, "pyexec.cgi")
        if os.geteuid() == 0:
            # Root may write anything: the CGI runs as nobody instead.
            wrapper = os.path.join(bindir, "as-nobody")
            with open(wrapper, "w") as f:
                f.write("#!/bin/sh\nexec setpriv --reuid=65534 "
                        "--regid=65534 --clear-groups %s\n" % cgi)
            os.chmod(wrapper, 0o755)
            cgi, uid = wrapper, 65534
        else:
            os.chmod(db_dir, 0o555)
            uid = os.geteuid()
        db = os.path.join(db_dir, "pyexec.db")
        for r in (run_code(CODE, db=db, cgi=cgi),
                  cgi_raw(b"", method="GET", db=db, cgi=cgi)):
            assert_fail_closed(r, never=True)
            line = r.stderr.decode()
            assert "'%s'" % db in line, line
            assert "not writable by uid %d" % uid in line, line
            assert "fix: chown -R %d:" % uid in line, line
        assert os.listdir(db_dir) == []
    finally:
        os.chmod(os.path.join(d, "var"), 0o755)
        shutil.rmtree(d)


def test_missing_database_is_created_when_its_directory_is_writable():
    d = tempfile.mkdtemp(prefix="pyexec-test-")
    try:
        db = os.path.join(d, "sub.db")
        r = run_code(CODE, db=db)
        assert r.status == 200 and r["output"] == MARKER + "\n", r
        assert query(db, "PRAGMA user_version")[0]["user_version"] == \
            schema_version()
        assert [x["id"] for x in query(db, "SELECT id FROM runs")] == [r["run_id"]]
    finally:
        shutil.rmtree(d)


# ---------------------------------------------------------------- locked

class Lock:
    """Another writer holding the database until release(): on SQLite an
    exclusive transaction (in exclusive locking mode if asked); on
    PostgreSQL a transaction (psql's, fed on its stdin) holding the tables
    a request writes or reads in ACCESS EXCLUSIVE mode."""

    TABLES = ("runs", "settings", "users")

    def __init__(self, db, exclusive_mode=False):
        self.db = db
        if is_pg(db):
            self._pg_hold()
            return
        self.con = sqlite3.connect(db, isolation_level=None,
                                   check_same_thread=False)
        if exclusive_mode:
            self.con.execute("PRAGMA locking_mode = EXCLUSIVE")
        self.con.execute("BEGIN EXCLUSIVE")
        self.con.execute("INSERT INTO settings (key, value) VALUES ('held', 'x')")

    def _pg_hold(self):
        server = pg_cluster()
        dbname = self.db.split("?")[0].rsplit("/", 1)[1]
        self.proc = subprocess.Popen(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", server.sock,
             "-p", str(server.port), "-U", "postgres", "-d", dbname],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, text=True)
        self.proc.stdin.write("BEGIN;\nLOCK TABLE %s IN ACCESS EXCLUSIVE "
                              "MODE;\n" % ", ".join(self.TABLES))
        self.proc.stdin.flush()
        held = "SELECT count(*) AS n FROM pg_locks AS l JOIN pg_class AS c " \
               "ON c.oid = l.relation WHERE l.granted AND l.mode = " \
               "'AccessExclusiveLock' AND c.relname IN ('runs', 'settings', " \
               "'users') AND l.pid <> pg_backend_pid()"
        if not wait_for(lambda: query(self.db, held)[0]["n"] == 3, 30):
            self.release()
            raise AssertionError("psql never held the tables' locks")

    def release(self):
        if not is_pg(self.db):
            if self.con is not None:
                self.con.execute("ROLLBACK")
                self.con.close()
                self.con = None
            return
        if self.proc.poll() is None:
            self.proc.stdin.write("ROLLBACK;\n")
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.mark.parametrize("backend,exclusive_mode", [
    ("sqlite", False), ("sqlite", True), ("postgresql", False)],
    ids=["writer", "exclusive-locking-mode", "postgresql"])
@pytest.mark.usefixtures("both_modes")	# pyexec-fcgi's broker too
def test_database_locked_past_the_busy_timeout(backend, exclusive_mode):
    # Made by pyexec.cgi: SQLite grants locking_mode=EXCLUSIVE only to a
    # program that comes before any other holds the file, and a worker of
    # pyexec-fcgi that made it would hold it still (that case, where the
    # locker is the one refused: test_fcgi.py).
    db = fresh_db(backend=backend, mode="cgi" if exclusive_mode else None)
    lock = Lock(db, exclusive_mode)
    try:
        t = time.monotonic()
        results = requests(db, env={"PYEXEC_DB_BUSY_MS": "200"})
        elapsed = time.monotonic() - t
    finally:
        lock.release()
    for r in results:
        assert_fail_closed(r)
    # 200 ms each, not the 5 s default: the only bound from above is the
    # default itself, so that a slow shared machine does not fail it.
    assert elapsed < 5.0, elapsed
    ids = [r["run_id"] for r in results]
    assert query(db, "SELECT id FROM runs WHERE id IN (?, ?)", ids) == []
    # with the lock gone, the same database serves again
    r = run_code(CODE, db=db, env={"PYEXEC_DB_BUSY_MS": "200"})
    assert r.status == 200 and r["output"] == MARKER + "\n", r


def test_busy_timeout_is_waited_for(store):
    db = store()
    token = add_user(db, "waiter")
    lock = Lock(db)
    try:
        t = time.monotonic()
        r = run_code(CODE, db=db, env={"PYEXEC_DB_BUSY_MS": "1500",
                                       "HTTP_AUTHORIZATION": "Bearer " + token})
        elapsed = time.monotonic() - t
    finally:
        lock.release()
    assert_fail_closed(r)
    # at least the 1.5 s asked for, and not the 5 s default
    assert 1.4 <= elapsed < 5.0, elapsed


def test_default_busy_timeout_is_five_seconds(store):
    db = store()
    lock = Lock(db)
    try:
        t = time.monotonic()
        r = cgi_raw(b"", method="GET", db=db, env={"PYEXEC_DB_BUSY_MS": None})
        elapsed = time.monotonic() - t
    finally:
        lock.release()
    assert_fail_closed(r)
    # waited the default out (an endless wait is cgi_raw's timeout)
    assert elapsed >= 4.9, elapsed


def test_lock_released_within_the_busy_timeout_is_waited_out(store):
    db = store()
    lock = Lock(db)
    timer = threading.Timer(0.5, lock.release)
    timer.start()
    try:
        t = time.monotonic()
        r = run_code(CODE, db=db, env={"PYEXEC_DB_BUSY_MS": "3000"})
        elapsed = time.monotonic() - t
    finally:
        timer.join()
        lock.release()
    assert r.status == 200 and r["output"] == MARKER + "\n", r
    assert elapsed >= 0.4, elapsed


# ---------------------------------------------------------------- full

def fill(d, leave):
    """Fills the file system at d, then frees `leave` bytes."""
    path = os.path.join(d, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        chunk = b"\0" * 65536
        for _ in range(100000):
            try:
                os.write(fd, chunk)
            except OSError:
                break
        else:
            raise AssertionError("the file system never filled")
        size = os.fstat(fd).st_size
        os.ftruncate(fd, max(0, size - leave))
    finally:
        os.close(fd)


def test_full_database():
    big = {"PYEXEC_CODE_BYTES": "2000000", "PYEXEC_BODY_BYTES": "4000000"}
    with tmpfs(size="2m") as d:
        db = os.path.join(d, "pyexec.db")
        assert cgi_raw(b"", method="GET", db=db).status == 405
        con = sqlite3.connect(db)
        with con:
            con.execute("INSERT INTO settings (key, value) VALUES "
                        "('audit_code_max_bytes', '2000000')")
        con.close()
        fill(d, 200 * 1024)
        st = os.statvfs(d)
        assert st.f_bavail * st.f_frsize <= 256 * 1024
        # A small request still fits ...
        r = run_code(CODE, db=db, env=big)
        assert r.status == 200 and r["output"] == MARKER + "\n", r
        # ... one whose audit row (the code is kept whole) cannot, is refused.
        code = CODE + "#" + "x" * 600000 + "\n"
        r = run_code(code, db=db, env=big)
        assert_fail_closed(r)
        assert r.stderr, "nothing logged about the refusal"
        os.unlink(os.path.join(d, "filler"))
        ids = [x["id"] for x in query(db, "SELECT id FROM runs")]
        assert r["run_id"] not in ids
        assert len(ids) == 2          # the 405 and the small run
        # with space again, the same request runs
        r = run_code(code, db=db, env=big)
        assert r.status == 200 and r["output"] == MARKER + "\n", r


# ---------------------------------------------------------------- not usable

def test_not_a_database():
    d = tempfile.mkdtemp(prefix="pyexec-test-")
    try:
        db = os.path.join(d, "pyexec.db")
        with open(db, "wb") as f:
            f.write(b"this is not an SQLite database\n" * 512)
        digest = file_digest(db)
        for r in requests(db):
            assert_fail_closed(r)
        assert file_digest(db) == digest
    finally:
        shutil.rmtree(d)


def test_database_path_is_a_directory():
    d = tempfile.mkdtemp(prefix="pyexec-test-")
    try:
        for r in requests(d):
            assert_fail_closed(r)
    finally:
        shutil.rmtree(d)


def stored_version(db, new=None):
    """The database's schema version (SQLite's user_version, PostgreSQL's
    schema_version table), after setting it to new if given."""
    if is_pg(db):
        if new is not None:
            execute(db, "UPDATE schema_version SET version = ?", (new,))
        return query(db, "SELECT version FROM schema_version")[0]["version"]
    con = sqlite3.connect(db)
    try:
        if new is not None:
            con.execute("PRAGMA user_version = %d" % new)
        return con.execute("PRAGMA user_version").fetchone()[0]
    finally:
        con.close()


def test_statement_past_the_timeout_on_postgresql():
    """A statement that outlasts PYEXEC_DB_BUSY_MS (statement_timeout) with
    no lock in its way: a trigger that sleeps makes every insert into runs
    slow. PostgreSQL's alone: SQLite has no statement timeout (a statement
    there is bounded by the code that runs it, not by the server)."""
    db = fresh_db(backend="postgresql")
    execute(db, "CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE "
            "plpgsql AS $$ BEGIN PERFORM pg_sleep(30); RETURN NEW; END $$")
    execute(db, "CREATE TRIGGER slow_insert BEFORE INSERT ON runs "
            "FOR EACH ROW EXECUTE FUNCTION slow_insert()")
    t = time.monotonic()
    results = requests(db, env={"PYEXEC_DB_BUSY_MS": "300"})
    elapsed = time.monotonic() - t
    for r in results:
        assert_fail_closed(r)
        assert b"statement timeout" in r.stderr, r.stderr
    # 300 ms each, not the trigger's 30 s (cgi_raw's own bound is 120 s).
    assert elapsed < 30, elapsed
    assert query(db, "SELECT id FROM runs") == []
    execute(db, "DROP TRIGGER slow_insert ON runs")
    r = run_code(CODE, db=db, env={"PYEXEC_DB_BUSY_MS": "300"})
    assert r.status == 200 and r["output"] == MARKER + "\n", r


def test_database_newer_than_the_program(store):
    db = store()
    stored_version(db, 99)
    results = requests(db)
    for r in results:
        assert_fail_closed(r)
        assert b"newer than this program" in r.stderr, r.stderr
    p = subprocess.run([ADMIN_BIN, "--db", db, "init"], capture_output=True,
                       text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert p.returncode != 0 and "newer than this program" in p.stderr, p
    assert stored_version(db) == 99
    ids = [r["run_id"] for r in results]
    assert query(db, "SELECT id FROM runs WHERE id IN (?, ?)", ids) == []


def test_readmes_first_example_works_when_pasted():
    """The README's first commands, run as written in a directory holding
    the build's pyexec.cgi, answer 200 with the program's output."""
    readme = os.path.join(os.path.dirname(__file__), "..", "README.md")
    with open(readme) as f:
        block = f.read().split("```")[1]
    commands = [x[2:] for x in block.splitlines() if x.startswith("$ ")]
    assert any("./pyexec.cgi" in c for c in commands), block
    d = tempfile.mkdtemp(prefix="pyexec-readme-")
    try:
        for name in ("pyexec.cgi", "pyexec-sandbox"):
            shutil.copy2(os.path.join(os.path.dirname(CGI), name), d)
        p = subprocess.run(["/bin/bash", "-e", "-c", "\n".join(commands)],
                           cwd=d, capture_output=True, timeout=120,
                           env={"PATH": "/usr/bin:/bin"})
        assert p.returncode == 0, (p.stdout, p.stderr)
        assert p.stdout.startswith(b"Status: 200 OK\n"), (p.stdout, p.stderr)
        body = json.loads(p.stdout.partition(b"\n\n")[2])
        assert body["output"] == "Hello from Python!\n15\n"
        assert os.path.exists(os.path.join(d, "var", "pyexec.db"))
    finally:
        shutil.rmtree(d)
