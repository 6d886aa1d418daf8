"""A real PostgreSQL server for the tests, started by the suite itself.

initdb into a temporary directory and postgres in the foreground, as an
unprivileged user (this user, or when the suite runs as root a system user
of its own, never the sandbox's uid); it listens on a Unix socket in a
temporary directory and on 127.0.0.1 at a free port; no system service is
involved. fsync is off (a test server); synchronous_commit stays on, so
what was committed survives a crash of the server.
"""
import csv
import io
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import conftest

PG_USER = "pyexec-pgtest"
ADMIN = os.environ.get("PYEXEC_ADMIN", os.path.join(
    os.path.dirname(__file__), "..", "pyexec-admin"))


def pg_bindir():
    base = "/usr/lib/postgresql"
    versions = sorted((d for d in os.listdir(base) if d.isdigit()), key=int) \
        if os.path.isdir(base) else []
    assert versions, "PostgreSQL is not installed (make deps: postgresql)"
    return os.path.join(base, versions[-1], "bin")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _account():
    """(uid, gid, name) the server runs as."""
    if os.geteuid() != 0:
        p = pwd.getpwuid(os.geteuid())
        return p.pw_uid, p.pw_gid, p.pw_name
    try:
        p = pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home",
                        "--home-dir", "/nonexistent", "--shell",
                        "/usr/sbin/nologin", PG_USER], check=True)
        p = pwd.getpwnam(PG_USER)
    return p.pw_uid, p.pw_gid, p.pw_name


class Server:
    """One PostgreSQL cluster; start(), stop(), kill(), databases."""

    def __init__(self):
        self.uid, self.gid, self.user = _account()
        self.bindir = pg_bindir()
        self.top = tempfile.mkdtemp(prefix="pyexec-pg-")
        os.chmod(self.top, 0o755)
        self.data = os.path.join(self.top, "data")
        self.sock = os.path.join(self.top, "s")
        for d, mode in ((self.data, 0o700), (self.sock, 0o755)):
            os.mkdir(d)
            os.chown(d, self.uid, self.gid)
            os.chmod(d, mode)
        self.port = free_port()
        self.proc = None
        self.n = 0
        self._as_user([os.path.join(self.bindir, "initdb"), "-D", self.data,
                       "-U", "postgres", "--auth=trust", "-E", "UTF8",
                       "--locale=C"], check=True)

    def _as_user(self, argv, **kw):
        if os.geteuid() == 0:
            argv = ["setpriv", "--reuid=%d" % self.uid, "--regid=%d" % self.gid,
                    "--clear-groups", "--"] + argv
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        return subprocess.run(argv, cwd=self.top, **kw)

    def start(self):
        argv = [os.path.join(self.bindir, "postgres"), "-D", self.data,
                "-k", self.sock, "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                "-c", "full_page_writes=off", "-c", "max_connections=120",
                "-c", "shared_buffers=16MB", "-c", "log_min_messages=fatal"]
        if os.geteuid() == 0:
            argv = ["setpriv", "--reuid=%d" % self.uid, "--regid=%d" % self.gid,
                    "--clear-groups", "--"] + argv
        self.proc = subprocess.Popen(argv, cwd=self.top,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        for _ in range(300):
            if self.psql("postgres", "SELECT 1", check=False).returncode == 0:
                return
            assert self.proc.poll() is None, "postgres exited"
            time.sleep(0.05)
        raise AssertionError("postgres did not start")

    def stop(self):
        """A fast shutdown: committed work is on disk."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=60)
        self.proc = None

    def kill(self):
        """SIGKILL to the postmaster and every backend (a crash)."""
        pid = self.proc.pid if self.proc else 0
        if self.proc and self.proc.poll() is None:
            os.killpg(pid, signal.SIGKILL)
            self.proc.wait(timeout=60)
        self.proc = None
        # The backends (same process group) die with it, a moment later;
        # their socket and lock files stay, which the next start clears.
        for _ in range(200 if pid else 0):
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)

    def psql(self, db, sql, user="postgres", check=True):
        return subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.sock,
             "-p", str(self.port), "-U", user, "-d", db, "-At", "-c", sql],
            capture_output=True, text=True, check=check, timeout=60)

    def rows(self, db, sql):
        """The rows of a query, as dicts (text values, None for NULL)."""
        out = self.psql(db, "COPY (%s) TO STDOUT WITH (FORMAT csv, HEADER, "
                            "FORCE_QUOTE *)" % sql).stdout
        rd = csv.reader(io.StringIO(out))
        head = next(rd, [])
        # FORCE_QUOTE quotes every value; NULL stays unquoted (empty).
        return [dict(zip(head, r)) for r in rd]

    def new_database(self, owner="postgres"):
        self.n += 1
        name = "t%d" % self.n
        self.psql("postgres", 'CREATE DATABASE %s OWNER "%s"' % (name, owner))
        return name

    def uri(self, db, user="postgres", tcp=False):
        if tcp:
            return "postgresql://%s@127.0.0.1:%d/%s" % (user, self.port, db)
        return "postgresql://%s@/%s?host=%s&port=%d" % (user, db, self.sock,
                                                       self.port)

    def close(self):
        self.stop()
        shutil.rmtree(self.top, ignore_errors=True)


def new_store(server, quota=None, settings=None, admin=None, run=None):
    """A fresh database on server made the way production does: pyexec-admin
    init migrates it, settings through pyexec-admin; returns its URI, with a
    run directory of its own for the CGI's slots (run, or a new one)."""
    uri = server.uri(server.new_database())
    run = run or tempfile.mkdtemp(prefix="pyexec-run-")
    conftest.PG_RUN_DIRS[uri] = run
    env = dict(os.environ, PYEXEC_DB=uri)
    subprocess.run([admin or ADMIN, "init"], env=env, check=True,
                   capture_output=True, timeout=60)
    conf = dict(settings or {})
    if quota is not None:
        conf["default_quota"] = str(quota)
    for k, v in conf.items():
        subprocess.run([admin or ADMIN, "config", "set", k, v],
                       env=env, check=True, capture_output=True, timeout=60)
    return uri
