"""Shared helpers for the black-box tests: run pyexec.cgi exactly as a web
server does (CGI/1.1 environment, body on stdin, response on stdout)."""
import collections
import hashlib
import json
import os
import re
import secrets
import time
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile

import pytest

from helpers import fcgi_client

CGI = os.environ.get("PYEXEC_CGI", os.path.join(os.path.dirname(__file__), "..", "pyexec.cgi"))
# pyexec-fcgi, the FastCGI mode: the suites parametrised over both modes
# send it the same requests through a FastCGI connection (tests/helpers/
# fcgi_client.py), to one server started once per session.
FCGI = os.environ.get("PYEXEC_FCGI", os.path.join(os.path.dirname(CGI), "pyexec-fcgi"))
NOPY_CGI = os.environ.get("PYEXEC_NOPY_CGI", "")
TRY_SYSCALL = os.environ.get("PYEXEC_TRY_SYSCALL", "")

# Under CI a missing host feature is a failure with its reason, never a
# silent skip: CI runs as root on a machine the README supports.
ON_CI = os.environ.get("CI") == "true"
ROOT = os.geteuid() == 0
ADMIN_BIN = os.environ.get("PYEXEC_ADMIN", os.path.join(os.path.dirname(__file__), "..", "pyexec-admin"))
NEEDS_ROOT = "needs root: "


def require(ok, reason, root=False):
    """Go on if ok; otherwise skip with reason, or fail with it under
    CI=true (where every test must run). root: what is missing comes with
    root (CAP_SYS_ADMIN, CAP_SETUID...); not root, the test is skipped even
    under CI=true and listed at the end of the run (root_summary), since no
    unprivileged run can make that check; as root, a host that lacks it
    fails under CI=true like any other."""
    if ok:
        return
    if root and not ROOT:
        pytest.skip(NEEDS_ROOT + reason)
    if ON_CI:
        pytest.fail("cannot run on this host: %s" % reason)
    pytest.skip(reason)


def can_mount_tmpfs():
    """Whether a tmpfs can be mounted here (root with CAP_SYS_ADMIN in the
    initial mount namespace, or one of its own)."""
    if not ROOT:
        return False
    d = tempfile.mkdtemp(prefix="pyexec-probe-")
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m",
                             "tmpfs", d], capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", d], capture_output=True)
        return ok
    finally:
        os.rmdir(d)


def _landlock_abi():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    return libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))


def _unprivileged_userns():
    """Whether the sandbox's uid (65534 under root, else ours) may create
    a user and a network namespace, as the child does."""
    cmd = ["unshare", "--user", "--net", "true"]
    if ROOT:
        cmd = ["setpriv", "--reuid=65534", "--regid=65534",
               "--clear-groups"] + cmd
    try:
        return subprocess.run(cmd, capture_output=True,
                              timeout=30).returncode == 0
    except OSError:
        return False


_HOST_MISSING = None


def host_missing_layers():
    """The kernel layers this host cannot give the sandbox: uid_drop
    without root, userns/netns where unprivileged user namespaces are off,
    landlock on a kernel without it. The answers must then leave them out
    (and the red team still blocks everything)."""
    global _HOST_MISSING
    if _HOST_MISSING is None:
        missing = set()
        if not ROOT:
            missing.add("uid_drop")
        if not _unprivileged_userns():
            missing |= {"userns", "netns"}
        if _landlock_abi() < 1:
            missing.add("landlock")
        _HOST_MISSING = missing
    return set(_HOST_MISSING)


def proc_mem(pid):
    """/proc/<pid>/mem opened for reading, for a test that scans a process
    from the outside. That needs root (CAP_SYS_PTRACE, the processes being
    undumpable) and a Yama ptrace_scope below 3; a host that forbids it
    fails (CI) or skips the test with the reason."""
    try:
        return open("/proc/%d/mem" % pid, "rb", buffering=0)
    except PermissionError as e:
        try:
            with open("/proc/sys/kernel/yama/ptrace_scope") as f:
                scope = f.read().strip()
        except OSError:
            scope = "absent"
        require(False, "/proc/<pid>/mem: %s (uid %d, Yama ptrace_scope %s; "
                "the scan needs root and a scope below 3)"
                % (e.strerror, os.geteuid(), scope), root=True)


# Limits lowered so the suite runs in minutes; one test proves the defaults.
FAST_LIMITS = {
    "PYEXEC_TIMEOUT_MS": "3000",
    "PYEXEC_MEMORY_MB": "256",
}


# The session's database: a real SQLite file, created by pyexec.cgi itself
# on first use, with the quota lifted so that the suites are not rate
# limited (the rate-limit tests make databases of their own).
SESSION_DB = None


def new_db(quota=None, settings=None, backend="sqlite", mode=None):
    """Creates a database the way production does (the first request
    migrates it: pyexec.cgi's, or pyexec-fcgi's when the test runs in that
    mode or mode says so; on PostgreSQL, pyexec-admin init) and applies
    settings; returns its path or URI."""
    if backend == "postgresql":
        import pg
        return pg.new_store(pg_cluster(), quota=quota, settings=settings)
    d = tempfile.mkdtemp(prefix="pyexec-test-")
    os.chmod(d, 0o755)
    path = os.path.join(d, "pyexec.db")
    r = cgi_raw(b"", method="GET", db=path, mode=mode)
    assert r.status == 405, r
    conf = dict(settings or {})
    if quota is not None:
        conf["default_quota"] = str(quota)
    if conf:
        with sqlite3.connect(path) as c:
            c.executemany("INSERT INTO settings (key, value) VALUES (?, ?) "
                          "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                          conf.items())
    return path


def add_user(db, name, admin=False, quota=None, timeout_ms=None,
             memory_mb=None, disabled=False):
    """Creates a user as the data layer does (a 256-bit token stored as its
    SHA-256) and returns the token."""
    token = "pyx_" + secrets.token_hex(32)
    digest = hashlib.sha256(token.encode()).hexdigest()
    if is_pg(db):
        pg_sql(db, "INSERT INTO users (name, token_hash, is_admin, disabled, "
               "quota, timeout_ms, memory_mb, created_ms) VALUES "
               "(?, ?, ?, ?, ?, ?, ?, ?)",
               (name, digest, int(admin), int(disabled), quota, timeout_ms,
                memory_mb, int(time.time() * 1000)))
        return token
    with sqlite3.connect(db) as c:
        c.execute("INSERT INTO users (name, token_hash, is_admin, disabled, "
                  "quota, timeout_ms, memory_mb, created_ms) VALUES "
                  "(?, ?, ?, ?, ?, ?, ?, ?)",
                  (name, digest, int(admin), int(disabled), quota, timeout_ms,
                   memory_mb, int(time.time() * 1000)))
    return token


@pytest.fixture(scope="session", autouse=True)
def session_db():
    global SESSION_DB
    SESSION_DB = new_db(quota=-1)
    yield SESSION_DB
    shutil.rmtree(os.path.dirname(SESSION_DB), ignore_errors=True)


class Response:
    def __init__(self, raw, returncode, stderr):
        self.raw = raw
        self.returncode = returncode
        self.stderr = stderr
        head, sep, body = raw.partition(b"\n\n")
        assert sep, "no blank line after the CGI headers: %r" % raw[:200]
        self.headers = {}
        for line in head.decode().split("\n"):
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.status = int(self.headers["status"].split()[0])
        self.body = body
        self.json = json.loads(body)

    def __getitem__(self, key):
        return self.json[key]

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.json)


def run_dir(db):
    """The host-local directory (PYEXEC_RUN_DIR: the sandbox slots) of a
    test database: the SQLite file's own directory, or for a PostgreSQL
    URI the one its fixture made (tests/pg.py)."""
    if db.startswith("postgres"):
        if db not in PG_RUN_DIRS:
            PG_RUN_DIRS[db] = tempfile.mkdtemp(prefix="pyexec-run-")
            _made_dbs.append(PG_RUN_DIRS[db])
        return PG_RUN_DIRS[db]
    return os.path.dirname(db) or "."


def slots_file(db):
    return os.path.join(run_dir(db), "slots")


# Host-local directories of PostgreSQL databases, by URI (tests/pg.py).
PG_RUN_DIRS = {}


def base_env(db=None):
    """The CGI/1.1 environment a web server gives pyexec.cgi, with the
    suite's lowered limits and database."""
    e = {"PATH": "/usr/bin:/bin", "GATEWAY_INTERFACE": "CGI/1.1",
         "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
         "PYEXEC_DB": db or SESSION_DB or ""}
    e["PYEXEC_RUN_DIR"] = run_dir(e["PYEXEC_DB"])
    e.update(FAST_LIMITS)
    return e


def cgi_raw(body, env=None, cgi=None, timeout=120, method="POST",
            content_type="application/json", content_length=None, db=None,
            mode=None):
    """Runs the CGI with body (bytes) and returns a Response.

    env adds to (or, with value None, removes from) the CGI environment;
    db is the database (default: the session's). mode "fcgi" (default:
    the mode the test runs in, MODE) sends the same request to the
    session's pyexec-fcgi instead, the environment as its parameters."""
    e = base_env(db)
    if method is not None:
        e["REQUEST_METHOD"] = method
    if content_type is not None:
        e["CONTENT_TYPE"] = content_type
    if content_length is None:
        content_length = str(len(body))
    if content_length is not False:
        e["CONTENT_LENGTH"] = content_length
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    if (mode or MODE) == "fcgi" and (cgi is None or os.path.abspath(cgi) ==
                                     os.path.abspath(CGI)):
        out, err, status = fcgi_client.request(fcgi_address(), e, body,
                                               timeout=timeout)
        return Response(out, status, err)
    p = subprocess.run([cgi or CGI], input=body, env=e, capture_output=True,
                       timeout=timeout)
    return Response(p.stdout, p.returncode, p.stderr)


def run_code(code, input_data=None, env=None, cgi=None, db=None, mode=None,
             **fields):
    """Sends {"code": code, "input_data": ...} and returns the Response."""
    req = {"code": code}
    if input_data is not None:
        req["input_data"] = input_data
    req.update(fields)
    return cgi_raw(json.dumps(req).encode(), env=env, cgi=cgi, db=db,
                   mode=mode)


# ---------------------------------------------------------------------------
# The FastCGI mode: one pyexec-fcgi for the session, started on first use.

MODE = "cgi"
_FCGI = {}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fcgi_address():
    """The session's pyexec-fcgi, listening on a free loopback port."""
    if "addr" in _FCGI:
        return _FCGI["addr"]
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="pyexec-fcgi-", suffix=".log",
                                      delete=False)
    p = subprocess.Popen([FCGI, "--listen", "127.0.0.1:%d" % port,
                          "--workers", "4"], env={"PATH": "/usr/bin:/bin"},
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         start_new_session=True)
    addr = ("127.0.0.1", port)
    for _ in range(500):
        try:
            socket.create_connection(addr, timeout=1).close()
            break
        except OSError:
            assert p.poll() is None, "pyexec-fcgi exited: %s" % \
                open(log.name, errors="replace").read()
            time.sleep(0.02)
    _FCGI.update(addr=addr, proc=p, log=log.name)
    return addr


@pytest.fixture(scope="session", autouse=True)
def _stop_fcgi():
    yield
    p = _FCGI.get("proc")
    if p:
        p.terminate()
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        os.unlink(_FCGI["log"])


def pytest_configure(config):
    config.addinivalue_line("markers", "fcgi_args(*args, settings=None): "
                            "test_fcgi.py's server options")


@pytest.fixture(params=["cgi", "fcgi"])
def both_modes(request):
    """Runs the test once per mode: its requests go to pyexec.cgi, then to
    pyexec-fcgi (cgi_raw's default mode)."""
    global MODE
    MODE = request.param
    yield request.param
    MODE = "cgi"


@pytest.fixture
def run():
    return run_code


# ---------------------------------------------------------------------------
# Helpers the black-box suites share: databases made per module, rows of the
# audit log, the sandbox's processes, and a CGI started in the background.

# The sandbox's uid: 65534 when the CGI runs as root; else the child keeps
# the CGI's uid (ours), as under a web server (no uid_drop).
SANDBOX_UID = 65534 if ROOT else os.geteuid()

# Blocks in the kernel (a futex) without using CPU: a program that waits.
IDLE = """\
import random
lock = random._os.sys.modules["_thread"].allocate_lock()
lock.acquire()
print("waiting")
lock.acquire()
print("never")
"""

_made_dbs = []


def fresh_db(quota=None, settings=None, backend="sqlite", mode=None):
    """A new database (see new_db), removed at the end of the session."""
    db = new_db(quota=quota, settings=settings, backend=backend, mode=mode)
    _made_dbs.append(run_dir(db))
    return db


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request):
    """Makes fresh databases on each backend in turn: store(quota=...,
    settings=...) -> a path (SQLite) or a URI (PostgreSQL)."""
    def make(quota=None, settings=None):
        return fresh_db(quota=quota, settings=settings, backend=request.param)
    make.backend = request.param
    return make


@pytest.fixture(scope="session", autouse=True)
def _remove_fresh_dbs():
    yield
    for d in _made_dbs:
        shutil.rmtree(d, ignore_errors=True)


def now_ms():
    return int(time.time() * 1000)


def is_pg(db):
    return db.startswith(("postgres://", "postgresql://"))


# The suite's PostgreSQL server (tests/pg.py), started when a test first
# asks for a PostgreSQL database, stopped at the end of the session.
_PG = []


def pg_cluster():
    if not _PG:
        import pg
        server = pg.Server()
        _PG.append(server)
        server.start()
    return _PG[0]


@pytest.fixture(scope="session", autouse=True)
def _stop_pg():
    yield
    for server in _PG:
        server.close()


def pg_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def pg_sql(db, sql, args=()):
    """Runs sql (SQLite's ? placeholders, filled in as literals) on the
    PostgreSQL database db, as the cluster's superuser; returns the rows as
    dicts with JSON's types."""
    parts = sql.split("?")
    assert len(parts) == len(args) + 1, sql
    text = parts[0] + "".join(pg_literal(a) + p for a, p in zip(args, parts[1:]))
    dbname = db.split("?")[0].rsplit("/", 1)[1]
    if text.lstrip().upper().startswith(("SELECT", "WITH")):
        out = pg_cluster().psql(dbname, "SELECT coalesce(json_agg(q_), '[]') "
                                "FROM (%s) AS q_" % text).stdout
        return json.loads(out)
    pg_cluster().psql(dbname, text)
    return []


def execute(db, sql, args=()):
    """A write (SQLite's ? placeholders) on either backend, committed."""
    if is_pg(db):
        pg_sql(db, sql, args)
        return
    con = sqlite3.connect(db)
    try:
        with con:
            con.execute(sql, args)
    finally:
        con.close()


def query(db, sql, args=()):
    if is_pg(db):
        return pg_sql(db, sql, args)
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, args)]
    finally:
        con.close()


def row(db, run_id):
    """The request's row in runs_view (its status included)."""
    found = query(db, "SELECT * FROM runs_view WHERE id = ?", (run_id,))
    assert len(found) == 1, "no audit row %r (found %d)" % (run_id, len(found))
    return found[0]


Proc = collections.namedtuple("Proc", "ppid comm uid state session")


def proc_table():
    """{pid: Proc} of every process (real uid; those that exit while the
    table is read are left out)."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
            with open("/proc/%s/status" % name) as f:
                uid = re.search(r"^Uid:\s+(\d+)", f.read(), re.M)
        except OSError:
            continue
        if not uid:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(name)] = Proc(int(fields[1]),
                                stat[stat.index("(") + 1:stat.rindex(")")],
                                int(uid.group(1)), fields[0], int(fields[3]))
    return table


def sandbox_process_info(session):
    """Processes of the sandbox uid in the given session: (pid, state, name).

    Scoped to the session of a CGI started as a session leader, so that runs
    elsewhere on the machine cannot interfere (the sandbox cannot setsid).
    The leader, the broker, is left out: not root, it has the sandbox's uid."""
    return [(pid, p.state, p.comm) for pid, p in proc_table().items()
            if p.uid == SANDBOX_UID and p.session == session and pid != session]


def sandbox_processes(session):
    """pids of the sandbox uid's processes in the given session."""
    return [pid for pid, _, _ in sandbox_process_info(session)]


def running_sandboxes(session):
    """The sandbox processes of the session that have their job: the child
    is forked before the request is admitted and waits for its job with the
    job's pipe on fd 4, which it closes once the job is read (so past
    admission and the sandbox slot)."""
    return [pid for pid in sandbox_processes(session)
            if not os.path.lexists("/proc/%d/fd/4" % pid)]


def wait_for(predicate, seconds, step=0.02):
    """predicate()'s first true value within seconds, else its last value."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def start_cgi(body, db, env=None, send=True):
    """Starts the CGI as the leader of a new session; sends body (bytes)
    unless send is false."""
    e = base_env(db)
    e.update({"REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/json",
              "CONTENT_LENGTH": str(len(body))})
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    p = subprocess.Popen([CGI], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=e, start_new_session=True)
    if send:
        p.stdin.write(body)
        p.stdin.close()
    return p


def finish_cgi(p, timeout=30):
    """Waits for a CGI started with start_cgi (killing it past timeout) and
    returns its Response."""
    try:
        p.wait(timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    out, err = p.stdout.read(), p.stderr.read()
    p.stdout.close()
    p.stderr.close()
    if p.stdin and not p.stdin.closed:
        p.stdin.close()
    return Response(out, p.returncode, err)


# --------------------------------------------------------------------------
# The red team's tally (tests/test_escapes.py): every attack runs once per
# build; a passing attack test is an attempt that was blocked, a failing one
# an escape (or a barrier other than the one named). The layer that stopped
# it is what the test recorded with note_layer().

ESCAPE_LAYERS = {}


def note_layer(layer):
    """Records the layer that stopped the current attack test."""
    current = os.environ.get("PYTEST_CURRENT_TEST", "")
    ESCAPE_LAYERS[current.rpartition(" ")[0] or current] = layer


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    callspec = getattr(item, "callspec", None)
    build = callspec.params.get("build") if callspec else None
    if build is None or not ("test_escapes.py" in item.nodeid or
                             "test_www_data.py" in item.nodeid):
        return
    report.user_properties.append(("escape_build", build))
    report.user_properties.append(("escape_layer", ESCAPE_LAYERS.get(item.nodeid, "")))


def root_summary(terminalreporter):
    """The tests not run for want of root (require(..., root=True)), by
    reason: reported, not silently skipped."""
    missed = {}
    for rep in terminalreporter.stats.get("skipped", []):
        if isinstance(rep.longrepr, tuple) and NEEDS_ROOT in rep.longrepr[2]:
            reason = rep.longrepr[2].partition(NEEDS_ROOT)[2]
            missed.setdefault(reason, []).append(rep.nodeid.partition("[")[0])
    if not missed:
        return
    terminalreporter.section("not run: needs root (uid %d)" % os.geteuid())
    for reason, ids in sorted(missed.items()):
        names = sorted(set(ids))
        terminalreporter.write_line("%d x %s: %s" % (len(ids), reason,
                                                     ", ".join(names)))


def pytest_terminal_summary(terminalreporter):
    root_summary(terminalreporter)
    tally = {}
    for key in ("passed", "failed", "error"):
        for rep in terminalreporter.stats.get(key, []):
            props = dict(getattr(rep, "user_properties", ()))
            build = props.get("escape_build")
            if build is None:
                continue
            t = tally.setdefault(build, {"ok": set(), "bad": set(),
                                         "not_run": set(), "layers": {}})
            if rep.when == "call" and rep.passed:
                t["ok"].add(rep.nodeid)
                layer = props.get("escape_layer") or "other"
                t["layers"][layer] = t["layers"].get(layer, 0) + 1
            elif rep.when == "call" and rep.failed:
                t["bad"].add(rep.nodeid)
            elif rep.failed:		# the harness failed, not the sandbox
                t["not_run"].add(rep.nodeid)
    if not tally:
        return
    terminalreporter.section("red team: escape attempts")
    for build in sorted(tally, key=lambda b: (b != "full", b)):
        t = tally[build]
        blocked = len(t["ok"] - t["bad"])
        layers = ", ".join("%s %d" % kv for kv in
                           sorted(t["layers"].items(), key=lambda kv: -kv[1]))
        terminalreporter.write_line("%s: %d blocked, %d escaped  (stopped by: %s)"
                                    % (build, blocked, len(t["bad"]), layers))
        if t["not_run"]:
            terminalreporter.write_line("%s: %d attempts not run (setup errors)"
                                        % (build, len(t["not_run"] - t["ok"])))
