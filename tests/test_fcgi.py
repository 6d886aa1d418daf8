"""pyexec-fcgi's own behaviour, beyond the request and response contract
the other suites check in both modes: the zygote's children never share a
random stream, the zygote is replaced (worn out, on SIGHUP, when killed)
without losing a row, a killed broker loses nothing committed, SIGTERM
drains, systemd's socket activation, the sandbox slots' fast 503, and
memory that does not grow with the number of requests."""
import json
import sqlite3
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

import conftest
from conftest import FCGI, IDLE, base_env, fresh_db, proc_table, query
from conftest import wait_for as _wait_for
from test_failclosed import stored_version


def wait_for(predicate, seconds):
    """predicate() true within seconds, or the test fails."""
    assert _wait_for(predicate, seconds), "still false after %s s" % seconds
from helpers import fcgi_client


class Fcgi:
    """A pyexec-fcgi of the test's own, with its own database, on a free
    loopback port."""

    def __init__(self, *args, settings=None, db=None, port=None, argv=None,
                 env=None):
        self.db = db or fresh_db(quota=-1, settings=settings)
        self.port = port or conftest.free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="pyexec-fcgi-",
                                               suffix=".log", delete=False)
        env = dict({"PATH": "/usr/bin:/bin", "PYEXEC_DB": self.db},
                   **(env or {}))
        env.update(conftest.FAST_LIMITS)
        self.proc = subprocess.Popen(
            (argv or [FCGI, "--listen", "127.0.0.1:%d" % self.port])
            + list(args), env=env, stdin=subprocess.DEVNULL,
            stdout=self.log, stderr=self.log, start_new_session=True)
        try:
            wait_for(self.up, 30)
        except BaseException:   # never leave it running
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise

    def up(self):
        assert self.proc.poll() is None, self.logs()
        try:
            socket.create_connection(("127.0.0.1", self.port), 1).close()
            return True
        except OSError:
            return False

    def logs(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def request(self, code, timeout=60, **env):
        body = json.dumps({"code": code}).encode()
        e = base_env(self.db)
        e.update({"REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/json",
                  "CONTENT_LENGTH": str(len(body))}, **env)
        out, err, _ = fcgi_client.request(("127.0.0.1", self.port), e, body,
                                          timeout=timeout)
        return conftest.Response(out, 0, err)

    def procs(self, comm):
        """The descendants of the supervisor named comm."""
        table = proc_table()
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            for k, p in table.items():
                if p.ppid == pid:
                    todo.append(k)
                    if p.comm == comm:
                        found.append(k)
        return sorted(found)

    def workers(self):
        return self.procs("pyexec-fcgi")

    def zygotes(self):
        """The zygotes, once every worker has one that named itself."""
        wait_for(lambda: len(self.procs("pyexec-zygote")) ==
                 len(self.workers()) > 0, 30)
        return self.procs("pyexec-zygote")

    def stop(self):
        if not os.path.exists(self.log.name):
            return      # stopped already
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            pytest.fail("pyexec-fcgi did not stop on SIGTERM")
        os.unlink(self.log.name)


@pytest.fixture
def server(request):
    marker = request.node.get_closest_marker("fcgi_args")
    s = Fcgi(*(marker.args if marker else ()),
             **(marker.kwargs if marker else {}))
    yield s
    s.stop()


def rows(db):
    """The audit rows, but the one of the CGI's request that made the
    database (fresh_db)."""
    return query(db, "SELECT id, outcome, mode, finished_ms FROM runs "
                 "WHERE NOT (mode = 'cgi' AND http_status = 405) "
                 "ORDER BY started_ms")


def ok(r):
    assert r.status == 200 and r["success"] is True, r
    return r["output"]


RANDOM = "import random\nprint(random.getrandbits(64), random.random())"


@pytest.mark.fcgi_args("--workers", "1")
def test_two_runs_never_share_a_random_stream(server):
    """Every child of one zygote draws its own random state: no two runs
    print the same numbers, however many come from the same zygote."""
    zygote = server.zygotes()
    outs = [ok(server.request(RANDOM)) for _ in range(12)]
    assert server.zygotes() == zygote, "the runs came from one zygote"
    assert len(set(outs)) == len(outs), outs
    firsts = [o.split()[0] for o in outs]
    assert len(set(firsts)) == len(firsts), firsts
    assert [r["mode"] for r in rows(server.db)] == ["fcgi"] * 12


@pytest.mark.fcgi_args("--workers", "1", "--zygote-runs", "3")
def test_zygote_replaced_after_its_runs(server):
    seen = set()
    for _ in range(7):
        ok(server.request("print(1)"))
        seen.update(server.zygotes())
    # runs 1-3, 4-6 and 7 each had a zygote of their own
    assert len(seen) == 3, seen
    assert [r["outcome"] for r in rows(server.db)] == ["ok"] * 7


@pytest.mark.fcgi_args("--workers", "2")
def test_sighup_replaces_every_zygote(server):
    """SIGHUP: every worker replaces its zygote and lets its database
    connection go (the next request connects afresh)."""
    ok(server.request("print(1)"))
    holder, = [w for w in server.workers() if server.db in open_paths(w)]
    before = set(server.zygotes())
    workers = server.workers()
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: not (set(server.procs("pyexec-zygote")) & before), 30)
    wait_for(lambda: server.db not in open_paths(holder), 30)
    assert server.workers() == workers, "the workers stay"
    assert ok(server.request("print(6 * 7)")) == "42\n"


@pytest.mark.fcgi_args("--workers", "1")
def test_killed_zygote_is_replaced_without_losing_a_row(server):
    ok(server.request("print(1)"))
    zygote, = server.zygotes()
    os.kill(zygote, signal.SIGKILL)
    wait_for(lambda: zygote not in server.procs("pyexec-zygote") or
             proc_table()[zygote].state == "Z", 10)
    assert ok(server.request("print(2)")) == "2\n"
    assert server.zygotes() != [zygote]
    assert [r["outcome"] for r in rows(server.db)] == ["ok", "ok"]
    assert all(r["finished_ms"] for r in rows(server.db))


@pytest.mark.fcgi_args("--workers", "1")
def test_killed_broker_loses_nothing_committed(server):
    """A worker killed mid-run: its sandbox child dies with it, the rows
    committed before stay, the in-flight one stays 'running' (the audit
    log calls it abandoned past its deadline), and another worker serves."""
    ok(server.request("print(1)"))
    worker, = server.workers()
    result = {}
    t = threading.Thread(target=lambda: result.update(
        r=_try(server.request, IDLE, timeout=30)))
    t.start()
    wait_for(lambda: len(server.procs("pyexec-sandbox")) == 1, 30)
    child, = server.procs("pyexec-sandbox")
    os.kill(worker, signal.SIGKILL)
    t.join(60)
    assert isinstance(result["r"], Exception), result    # no answer came
    wait_for(lambda: not os.path.exists("/proc/%d" % child) or
             proc_table().get(child) is None, 10)
    wait_for(lambda: len(server.workers()) == 1 and
             server.workers() != [worker], 30)
    assert ok(server.request("print(3)")) == "3\n"
    got = [(r["outcome"], bool(r["finished_ms"])) for r in rows(server.db)]
    assert got == [("ok", True), ("running", False), ("ok", True)], got


def _try(fn, *a, **kw):
    try:
        return fn(*a, **kw)
    except Exception as e:   # the connection the killed worker dropped
        return e


BUSY_1S = """\
import datetime
end = datetime.datetime.now() + datetime.timedelta(seconds=1)
while datetime.datetime.now() < end:
    pass
print("drained")
"""


@pytest.mark.fcgi_args("--workers", "1")
def test_sigterm_drains_the_run_in_hand(server):
    result = {}
    t = threading.Thread(target=lambda: result.update(
        r=server.request(BUSY_1S)))
    t.start()
    wait_for(lambda: len(server.procs("pyexec-sandbox")) == 1, 30)
    server.proc.send_signal(signal.SIGTERM)
    t.join(60)
    assert ok(result["r"]) == "drained\n"
    assert server.proc.wait(30) == 0
    assert [r["outcome"] for r in rows(server.db)] == ["ok"]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), 1)


@pytest.mark.fcgi_args("--workers", "3", settings={
    "max_concurrent": "1", "concurrency_wait_ms": "0"})
def test_busy_slots_refuse_at_once(server):
    """One sandbox slot, taken: the next request is a 503 from another
    worker, not a wait, and is audited as refused."""
    # A zygote is named pyexec-sandbox until it has started: wait for all
    # of them first, so that the one pyexec-sandbox is the run's child.
    server.zygotes()
    result = {}
    t = threading.Thread(target=lambda: result.update(
        r=server.request(IDLE)))
    t.start()
    wait_for(lambda: len(server.procs("pyexec-sandbox")) == 1, 30)
    r = server.request("print(1)")
    t.join(60)
    assert r.status == 503 and r["error_type"] == "ServiceUnavailable", r
    assert "retry-after" in r.headers
    assert result["r"]["error_type"] == "TimeoutError", result
    outcomes = sorted(x["outcome"] for x in rows(server.db))
    assert outcomes == ["rejected", "timeout"], outcomes


def test_systemd_socket_activation():
    """Started as pyexec-fcgi.socket starts it: the socket on fd 3,
    LISTEN_FDS=1 (systemd-socket-activate does what systemd does)."""
    activate = "/usr/bin/systemd-socket-activate"
    conftest.require(os.access(activate, os.X_OK),
                     "systemd-socket-activate is missing (package systemd)")
    port = conftest.free_port()
    s = Fcgi(port=port, argv=[activate, "-l", "127.0.0.1:%d" % port, FCGI])
    try:
        assert ok(s.request("print('activated')")) == "activated\n"
        assert [r["mode"] for r in rows(s.db)] == ["fcgi"]
    finally:
        s.stop()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


# Under the sanitizer build, ASan's quarantine keeps freed memory for a
# while on purpose: without it, what is measured is the program's own.
@pytest.mark.fcgi_args("--workers", "1", "--zygote-runs", "100000",
                       env={"ASAN_OPTIONS": "quarantine_size_mb=0"})
def test_memory_does_not_grow_with_requests(server):
    """The broker's and the zygote's resident memory after 1100 requests is
    within 1 MiB of what it was after the first 100."""
    for _ in range(100):
        ok(server.request("print(1)"))
    worker, = server.workers()
    zygote, = server.zygotes()
    first = rss_kb(worker), rss_kb(zygote)
    for _ in range(1000):
        ok(server.request("print(1)"))
    assert server.workers() == [worker] and server.zygotes() == [zygote]
    after = rss_kb(worker), rss_kb(zygote)
    assert after[0] - first[0] <= 1024, (first, after)
    assert after[1] - first[1] <= 1024, (first, after)


def test_systemd_units_are_valid():
    """pyexec-fcgi.socket and .service as shipped (the binary's path set to
    the one under test) pass systemd-analyze verify, and the service keeps
    the namespaces the sandbox children need."""
    analyze = "/usr/bin/systemd-analyze"
    conftest.require(os.access(analyze, os.X_OK),
                     "systemd-analyze is missing (package systemd)")
    conf = os.path.join(os.path.dirname(__file__), "..", "cgi", "conf")
    d = tempfile.mkdtemp(prefix="pyexec-units-")
    try:
        units = []
        for name in ("pyexec-fcgi.socket", "pyexec-fcgi.service"):
            with open(os.path.join(conf, name)) as f:
                text = f.read().replace("/usr/local/lib/pyexec/pyexec-fcgi",
                                        os.path.abspath(FCGI))
            units.append(os.path.join(d, name))
            with open(units[-1], "w") as f:
                f.write(text)
        p = subprocess.run([analyze, "verify"] + units, capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "RestrictNamespaces=user net ipc uts" in text
        assert "ListenStream=/run/pyexec/fcgi.socket" in \
            open(units[0]).read()
    finally:
        import shutil
        shutil.rmtree(d)


def doctor_fcgi(db, addr):
    admin = os.environ.get("PYEXEC_ADMIN", os.path.join(
        os.path.dirname(conftest.CGI), "pyexec-admin"))
    p = subprocess.run([admin, "--db", db, "doctor", "--json", "--fcgi", addr],
                       capture_output=True, text=True, timeout=300)
    checks = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    return [c for c in checks if c["check"] == "fcgi"]


@pytest.mark.fcgi_args("--workers", "1")
def test_doctor_checks_a_running_pyexec_fcgi(server):
    """pyexec-admin doctor --fcgi: OK for a pyexec-fcgi that answers and
    reads its database, with no row written; FAIL where none listens."""
    before = rows(server.db)
    [c] = doctor_fcgi(server.db, "127.0.0.1:%d" % server.port)
    assert c["status"] == "OK", c
    assert rows(server.db) == before
    server.stop()
    [c] = doctor_fcgi(server.db, "127.0.0.1:%d" % server.port)
    assert c["status"] == "FAIL" and "cannot connect" in c["detail"], c


# ------------------------------------------------ the database kept open
#
# A worker keeps its connection from one request to the next (the CGI
# opens the database per request); before each request it checks that
# the connection still leads where PYEXEC_DB does, with this build's
# schema, and opens afresh when not (sql/backend.c, store_keep_open).

MARKER = "KEPT_DB_MARKER_51c2"


def open_paths(pid):
    out = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out.add(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass    # closed meanwhile
    return out


def refused_unaudited(server, r, before):
    """503 with Retry-After, the program never ran, no row was added."""
    assert r.status == 503 and r.headers.get("retry-after"), r
    assert r["success"] is False and MARKER not in r.raw.decode(), r
    assert rows(server.db) == before


@pytest.mark.fcgi_args("--workers", "1")
def test_the_worker_keeps_its_database_between_requests(server):
    """After its request is answered the worker still holds the file (one
    connection for all its requests); its zygote never had it."""
    ok(server.request("print(1)"))
    worker, = server.workers()
    zygote, = server.zygotes()
    assert server.db in open_paths(worker)
    ok(server.request("print(2)"))
    assert server.db in open_paths(worker)
    assert not [p for p in open_paths(zygote) if p.startswith(server.db)]
    assert [r["outcome"] for r in rows(server.db)] == ["ok", "ok"]


@pytest.mark.fcgi_args("--workers", "1")
def test_a_removed_database_is_made_again_not_written_unseen(server):
    """The database removed under a running pyexec-fcgi (the operator's rm):
    the next row goes to a new file at PYEXEC_DB's path, as a CGI's would,
    never to the unlinked file the worker had open."""
    ok(server.request("print(1)"))
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(server.db + suffix):
            os.unlink(server.db + suffix)
    r = server.request("print('%s')" % MARKER)
    assert ok(r) == MARKER + "\n"
    assert query(server.db, "SELECT id, outcome FROM runs") == \
        [{"id": r["run_id"], "outcome": "ok"}]


@pytest.mark.fcgi_args("--workers", "1")
def test_a_newer_schema_under_the_kept_connection_fails_closed(server):
    """pyexec-admin of a newer release migrated the database while the
    worker held it: 503, nothing runs, no row; back to this build's
    version, the service resumes by itself."""
    ok(server.request("print(1)"))
    before = rows(server.db)
    ours = stored_version(server.db)
    stored_version(server.db, ours + 1)
    refused_unaudited(server, server.request("print('%s')" % MARKER), before)
    assert "newer than this program" in server.logs()
    # its messages name it, not the CGI whose request flow it shares
    assert "pyexec-fcgi: request " in server.logs()
    assert "pyexec.cgi:" not in server.logs()
    stored_version(server.db, ours)
    assert ok(server.request("print(2)")) == "2\n"


@pytest.mark.fcgi_args("--workers", "1")
def test_a_writer_lock_under_the_kept_connection_fails_closed(server):
    """Another program holds the write lock past the busy timeout the
    request's parameters set (the kept connection takes it per request):
    503, nothing runs, no row; the lock gone, the service resumes."""
    ok(server.request("print(1)"))
    before = rows(server.db)
    con = sqlite3.connect(server.db, isolation_level=None,
                          check_same_thread=False)
    try:
        con.execute("BEGIN IMMEDIATE")
        refused_unaudited(server, server.request(
            "print('%s')" % MARKER, PYEXEC_DB_BUSY_MS="200"), before)
    finally:
        con.execute("ROLLBACK")
        con.close()
    assert ok(server.request("print(2)", PYEXEC_DB_BUSY_MS="200")) == "2\n"


@pytest.mark.fcgi_args("--workers", "1")
def test_an_exclusive_locker_is_refused_while_the_worker_holds_the_file(server):
    """With the database open in a worker, a program that asks SQLite for
    locking_mode=EXCLUSIVE cannot have it (the WAL index is shared): it is
    the one refused, and runs go on being audited. (A lock taken before
    any worker opened the file: test_failclosed's locked-database test.)"""
    ok(server.request("print(1)"))
    con = sqlite3.connect(server.db, isolation_level=None, timeout=0.2)
    try:
        con.execute("PRAGMA locking_mode = EXCLUSIVE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            con.execute("BEGIN EXCLUSIVE")
    finally:
        con.close()
    r = server.request("print('%s')" % MARKER)
    assert ok(r) == MARKER + "\n"
    assert rows(server.db)[-1]["id"] == r["run_id"]


def test_a_postgresql_restart_costs_the_kept_connection_no_request():
    """The server restarted between two requests: the connection the
    worker kept is found dropped before the next request, which connects
    again and runs; while the server is down, 503 and nothing runs."""
    db = fresh_db(quota=-1, backend="postgresql")
    server = Fcgi("--workers", "1", db=db)
    pg = conftest.pg_cluster()
    try:
        ok(server.request("print(1)"))
        pg.stop()
        pg.start()
        r = server.request("print('%s')" % MARKER)
        assert ok(r) == MARKER + "\n"
        before = query(db, "SELECT id FROM runs ORDER BY seq")
        assert before[-1]["id"] == r["run_id"]
        pg.stop()
        try:
            down = server.request("print('%s')" % MARKER)
            assert down.status == 503 and down.headers.get("retry-after")
            assert MARKER not in down.raw.decode()
        finally:
            pg.start()
        assert query(db, "SELECT id FROM runs ORDER BY seq") == before
        assert ok(server.request("print(2)")) == "2\n"
    finally:
        server.stop()


# ------------------------------------------------ the zygote's modules

def mapped(pid):
    with open("/proc/%d/maps" % pid) as f:
        return f.read()


IMPORTS = ("import json, statistics, re\n"
           "print(json.dumps(statistics.median([3, 1, 2])),"
           " re.sub('a', 'b', 'aa'))")


@pytest.mark.fcgi_args("--workers", "1")
def test_the_zygote_imports_the_seed_modules_by_default(server):
    """The zygote holds the seed profile's modules (their C extensions are
    mapped before any run), and a program that imports them runs."""
    zygote, = server.zygotes()
    wait_for(lambda: "_decimal" in mapped(zygote) and
             "_json" in mapped(zygote), 30)
    assert ok(server.request(IMPORTS)) == "2 bb\n"


@pytest.mark.fcgi_args("--workers", "1", "--zygote-modules", "none")
def test_a_zygote_without_modules_imports_none(server):
    """--zygote-modules none: the zygote holds the interpreter alone; each
    child imports what its program names, as an executed sandbox does."""
    ok(server.request("print(1)"))
    zygote, = server.zygotes()
    assert "_json" not in mapped(zygote) and "_decimal" not in mapped(zygote)
    assert ok(server.request(IMPORTS)) == "2 bb\n"


@pytest.mark.fcgi_args("--workers", "1", settings={"allowed_modules": "math"})
def test_a_module_the_zygote_holds_is_still_the_profiles_to_give(server):
    """json is in the zygote's memory, but a profile without it refuses
    it all the same: the import guard asks the profile, not sys.modules."""
    r = server.request("import json\nprint(json.dumps(1))")
    assert r.status == 200 and r["success"] is False, r
    assert r["error_type"] == "ImportError" and "json" in r["error"], r
    assert r["output"] == ""
    assert ok(server.request("import math\nprint(math.isqrt(17))")) == "4\n"


def test_zygote_modules_takes_seed_or_none():
    p = subprocess.run([FCGI, "--zygote-modules", "all", "--listen",
                        "127.0.0.1:1"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 2 and "--zygote-modules seed|none" in p.stderr, p
