"""End to end through real web servers. Each configuration shipped in
cgi/conf/ runs with Debian's own server binaries on a free loopback port,
changed only in its EDIT lines (port, paths, database), so the files an
operator copies are the files tested; the tests start and stop the servers
themselves. Also here: `make serve`, `make install`, a Functions-style
wrapper, and what happens when a web server gives up on a run.

A missing server binary is a failure, not a skip: `make deps` installs them.
"""
import contextlib
import hashlib
import http.client
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import CGI, FCGI, add_user, base_env, cgi_raw, new_db, proc_table, run_dir

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CONF = os.path.join(REPO, "cgi", "conf")
SEED_CODE = 'print("Hello from Python!")\nprint(sum([1,2,3,4,5]))'
SEED_OUTPUT = "Hello from Python!\n15\n"
# The servers' databases keep the default settings (10 anonymous runs an
# hour) but for a short wall clock, so that a timeout costs two seconds.
RUN_TIMEOUT_MS = 2000
# pyexec's longest request with the default settings, in seconds:
# max_timeout_ms + body_timeout_ms + concurrency_wait_ms + the database's
# busy timeout. A server's CGI timeout must be longer (sql/settings.c).
LONGEST_REQUEST_S = (300000 + 10000 + 5000 + 5000) / 1000
BODY_BYTES = 1048576		# the default body_bytes
START_S = 20			# a server has this long to accept connections
# The shipped configurations run the CGI as www-data; so do the tests when
# they run as root (as in CI), with the database directory owned by it.
ROOT = os.geteuid() == 0


def www_user():
    """www-data's passwd entry when the tests run as root, else None. Looked
    up when a server starts, not at import: a host without the user fails
    those tests with the reason, not the whole module."""
    if not ROOT:
        return None
    try:
        return pwd.getpwnam("www-data")
    except KeyError:
        pytest.fail("no www-data user: the shipped configurations run the "
                    "CGI as www-data (Debian's base-passwd has it)")


def need(path):
    assert os.access(path, os.X_OK), "%s is not installed: run make deps" % path
    return path


def can_bind(addr):
    try:
        with socket.socket() as s:
            s.bind((addr, 0))
        return True
    except OSError:
        return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render(name, subs):
    """cgi/conf/NAME with its EDIT lines changed. subs maps a pattern that
    must match exactly one whole line to that line's replacement, so a test
    never runs a stale copy of the shipped file."""
    with open(os.path.join(CONF, name)) as f:
        text = f.read()
    for pattern, line in subs.items():
        rx = re.compile(r"^" + pattern + r"$", re.M)
        assert len(rx.findall(text)) == 1, "%s: no one line matches %r" % (name, pattern)
        text = rx.sub(lambda m: line, text)
    return text


def give_to_www(path):
    """The CGI's user owns the database's directory and what is in it."""
    www = www_user()
    if not www:
        return
    for p in [path] + [os.path.join(path, f) for f in os.listdir(path)]:
        os.chown(p, www.pw_uid, www.pw_gid)


def rows(db, sql, *args):
    # As root SQLite gives the files it creates (-wal, -shm) to the
    # database's owner, so reading here does not lock the CGI out.
    with sqlite3.connect(db, timeout=10) as c:
        return c.execute(sql, args).fetchall()


# --- processes ---------------------------------------------------------------

def descendants(roots):
    table = proc_table()
    kids = {}
    for pid, p in table.items():
        kids.setdefault(p.ppid, []).append(pid)
    out, todo = {}, list(roots)
    while todo:
        for k in kids.get(todo.pop(), []):
            if k not in out:
                out[k] = table[k]
                todo.append(k)
    return out


def pyexec_procs(roots):
    """The brokers and sandbox children under roots: {pid: (ppid, uid)}."""
    return {pid: (p.ppid, p.uid) for pid, p in descendants(roots).items()
            if p.comm in ("pyexec.cgi", "pyexec-sandbox")}


def wait_for(what, cond, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    pytest.fail("timed out after %s s waiting for %s" % (timeout, what))


# --- HTTP ----------------------------------------------------------------------

class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body
        try:
            self.json = json.loads(body)
        except ValueError:
            self.json = None

    def __repr__(self):
        return "<Reply %d %r>" % (self.status, self.body[:300])


def request(port, body=b"", path="/", headers=None, method="POST",
            source="127.0.0.1", timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                   source_address=(source, 0))
    try:
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return Reply(r.status, r.getheaders(), r.read())
    finally:
        c.close()


def post(port, code, bearer=None, path="/", source="127.0.0.1", **fields):
    """POSTs {"code": code, **fields}, with "Authorization: Bearer" when
    bearer is given."""
    fields["code"] = code
    h = {"Authorization": "Bearer " + bearer} if bearer else {}
    return request(port, json.dumps(fields).encode(), path, h, source=source)


def raw_request(port, head):
    """Sends raw bytes and returns the connected socket."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(head)
    return s


# --- the servers -----------------------------------------------------------------

class Server:
    """A web server on a free loopback port, from a shipped configuration,
    with its own database (default settings but RUN_TIMEOUT_MS) and a user
    'alice' with an unlimited quota."""
    # Whether the server tells pyexec when a client goes away mid-run.
    cancels_on_disconnect = False

    def __init__(self, kind):
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix="pyexec-%s-" % kind)
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        # Installed as `make install` does, where any user can run it.
        self.cgi = os.path.join(self.dir, "pyexec.cgi")
        shutil.copy2(CGI, self.cgi)
        os.chmod(self.cgi, 0o755)
        sandbox = os.path.join(self.dir, "pyexec-sandbox")
        shutil.copy2(os.path.join(os.path.dirname(CGI), "pyexec-sandbox"),
                     sandbox)
        os.chmod(sandbox, 0o755)
        self.db = new_db(settings={"timeout_ms": str(RUN_TIMEOUT_MS)})
        self.token = add_user(self.db, "alice", quota=-1)
        give_to_www(os.path.dirname(self.db))
        self.procs = []

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def own_dir(self, name):
        d = self.path(name)
        os.makedirs(d, exist_ok=True)
        give_to_www(d)
        return d

    def write(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)
        return self.path(name)

    def spawn(self, argv, as_www=False, env=None):
        www = www_user() if as_www else None

        def drop():
            if www:
                os.setgroups([])
                os.setgid(www.pw_gid)
                os.setuid(www.pw_uid)
        log = open(self.path("%s.out" % os.path.basename(argv[0])), "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT, cwd=self.dir,
                             env=dict({"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                                      **(env or {})),
                             start_new_session=True, preexec_fn=drop)
        log.close()
        self.procs.append(p)
        return p

    def logs(self):
        out = []
        for d, _, files in os.walk(self.dir):
            for f in sorted(files):
                if f.endswith((".log", ".out")):
                    with open(os.path.join(d, f), errors="replace") as fh:
                        out.append("--- %s\n%s" % (f, fh.read()[-3000:]))
        return "\n".join(out)

    def ready(self):
        for p in self.procs:
            if p.poll() is not None:
                pytest.fail("%s exited with %s:\n%s" % (p.args[0], p.returncode, self.logs()))
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def start(self):
        self.launch()
        wait_for("%s on port %d" % (self.kind, self.port), self.ready, START_S)

    def roots(self):
        return [p.pid for p in self.procs]

    def stop(self):
        # Every run is over: no broker or sandbox is left behind.
        try:
            wait_for("the runs under %s to end" % self.kind,
                     lambda: not pyexec_procs(self.roots()), 10)
        finally:
            for p in self.procs:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            for p in self.procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(10)
            shutil.rmtree(self.dir, ignore_errors=True)
            shutil.rmtree(os.path.dirname(self.db), ignore_errors=True)


class Lighttpd(Server):
    cancels_on_disconnect = True	# stream-request-body + tcp-fin-propagate

    def edits(self):
        """The shipped file's EDIT lines, as pattern -> replacement."""
        return {
            r"server\.port = .*": "server.port = %d" % self.port,
            r"var\.pyexec_cgi = .*": 'var.pyexec_cgi = "%s"' % self.cgi,
            r"var\.pyexec_db = .*": 'var.pyexec_db = "%s"' % self.db,
            r"var\.pyexec_run_dir = .*": 'var.pyexec_run_dir = "%s"' % run_dir(self.db),
            r"var\.state_dir = .*": 'var.state_dir = "%s"' % self.own_dir("state"),
            r"server\.pid-file = .*": 'server.pid-file = "%s"' % self.path("lighttpd.pid"),
            # lighttpd opens its log as www-data (Debian's /var/log/lighttpd).
            r"server\.errorlog = .*": 'server.errorlog = "%s/error.log"' % self.own_dir("log"),
        }

    def launch(self):
        conf = render("lighttpd.conf", self.edits())
        self.spawn([need("/usr/sbin/lighttpd"), "-D", "-f", self.write("lighttpd.conf", conf)])


class Apache(Server):
    """The shipped site inside the main configuration that Debian's
    apache2.conf, envvars and mods-enabled/ would otherwise provide."""
    MODS = "/usr/lib/apache2/modules/"

    def __init__(self, kind, mpm, cgi_module):
        super().__init__(kind)
        self.mpm, self.cgi_module = mpm, cgi_module

    def launch(self):
        site = render("apache2.conf", {
            r"Define PYEXEC_CGI .*": "Define PYEXEC_CGI %s" % self.cgi,
            r"Define PYEXEC_DB .*": "Define PYEXEC_DB %s" % self.db,
            r"Define PYEXEC_RUN_DIR .*": "Define PYEXEC_RUN_DIR %s" % run_dir(self.db),
            r"<VirtualHost \*:80>": "<VirtualHost *:%d>" % self.port,
        })
        # Debian's defaults (reqtimeout among them), and headers, which
        # the shipped site's comment enables.
        mods = ["mpm_%s" % self.mpm, "authz_core", "alias", "env",
                "reqtimeout", "headers", self.cgi_module]
        main = "\n".join(
            ["ServerRoot %s" % self.dir, "DefaultRuntimeDir %s" % self.dir,
             "PidFile %s" % self.path("httpd.pid"),
             "ErrorLog %s" % self.path("error.log"), "LogLevel warn",
             "ServerName localhost", "User www-data", "Group www-data"]
            + ["LoadModule %s_module %smod_%s.so" % (m, self.MODS, m) for m in mods]
            + ["ScriptSock %s" % self.path("cgid.sock")] * (self.cgi_module == "cgid")
            + ["Listen 127.0.0.1:%d" % self.port,
               "Include %s" % self.write("pyexec.conf", site), ""])
        self.spawn([need("/usr/sbin/apache2"), "-f", self.write("httpd.conf", main),
                    "-DFOREGROUND"])


class Nginx(Server):
    """The shipped site inside the main configuration Debian's nginx.conf
    would provide, and fcgiwrap as Debian's fcgiwrap.socket runs it, with
    as many processes as pyexec runs sandboxes (2 x cores)."""

    def launch(self):
        run = self.own_dir("run")
        sock = os.path.join(run, "fcgiwrap.socket")
        site = render("nginx.conf", {
            r"\s*listen .*;": "    listen 127.0.0.1:%d;" % self.port,
            r"\s*fastcgi_param SCRIPT_FILENAME .*;":
                "        fastcgi_param SCRIPT_FILENAME %s;" % self.cgi,
            r"\s*fastcgi_param PYEXEC_DB .*;":
                "        fastcgi_param PYEXEC_DB %s;" % self.db,
            r"\s*fastcgi_param PYEXEC_RUN_DIR .*;":
                "        fastcgi_param PYEXEC_RUN_DIR %s;" % run_dir(self.db),
            r"\s*fastcgi_pass .*;": "        fastcgi_pass unix:%s;" % sock,
        })
        shutil.copy(os.path.join("/etc/nginx/fastcgi_params"), self.path("fastcgi_params"))
        tmp = self.own_dir("tmp")
        main = "\n".join([
            "user www-data;", "worker_processes 2;", "daemon off;",
            "pid %s;" % self.path("nginx.pid"),
            "error_log %s warn;" % self.path("error.log"),
            "events { worker_connections 1024; }",
            "http {", "    access_log off;",
            "    client_body_temp_path %s/body;" % tmp,
            "    fastcgi_temp_path %s/fastcgi;" % tmp,
            "    proxy_temp_path %s/proxy;" % tmp,
            "    uwsgi_temp_path %s/uwsgi;" % tmp,
            "    scgi_temp_path %s/scgi;" % tmp,
            "    include %s;" % self.write("pyexec.conf", site), "}", ""])
        self.spawn([need("/usr/sbin/fcgiwrap"), "-f", "-c", str(2 * os.cpu_count()),
                    "-s", "unix:" + sock], as_www=True)
        wait_for("fcgiwrap's socket", lambda: os.path.exists(sock), START_S)
        self.spawn([need("/usr/sbin/nginx"), "-p", self.dir, "-e", self.path("error.log"),
                    "-c", self.write("nginx.conf", main)])


# --- the FastCGI mode: pyexec-fcgi behind each server ---------------------------

def install_fcgi(server):
    """pyexec-fcgi beside the installed pyexec-sandbox, as make install
    puts it."""
    path = server.path("pyexec-fcgi")
    shutil.copy2(FCGI, path)
    os.chmod(path, 0o755)
    return path


class LighttpdFcgi(Lighttpd):
    """lighttpd-fcgi.conf: lighttpd starts pyexec-fcgi itself (bin-path)."""
    cancels_on_disconnect = False

    def edits(self):
        e = super().edits()
        del e[r"var\.pyexec_cgi = .*"]
        e[r"var\.pyexec_fcgi = .*"] = 'var.pyexec_fcgi = "%s"' % install_fcgi(self)
        return e

    def launch(self):
        conf = render("lighttpd-fcgi.conf", self.edits())
        self.spawn([need("/usr/sbin/lighttpd"), "-D", "-f",
                    self.write("lighttpd.conf", conf)])


def spawn_fcgi(server, sock):
    """pyexec-fcgi on its own, as www-data, as its systemd unit runs it."""
    server.spawn([install_fcgi(server), "--listen", sock, "--workers", "4"],
                 as_www=True, env={"PYEXEC_DB": server.db,
                                   "PYEXEC_RUN_DIR": run_dir(server.db)})
    wait_for("pyexec-fcgi's socket", lambda: os.path.exists(sock), START_S)


class NginxFcgi(Nginx):
    """nginx-fcgi.conf: fastcgi_pass to a pyexec-fcgi of its own."""

    def launch(self):
        sock = os.path.join(self.own_dir("run"), "fcgi.socket")
        spawn_fcgi(self, sock)
        site = render("nginx-fcgi.conf", {
            r"\s*listen .*;": "    listen 127.0.0.1:%d;" % self.port,
            r"\s*fastcgi_pass .*;": "        fastcgi_pass unix:%s;" % sock,
        })
        shutil.copy(os.path.join("/etc/nginx/fastcgi_params"), self.path("fastcgi_params"))
        tmp = self.own_dir("tmp")
        main = "\n".join([
            "user www-data;", "worker_processes 2;", "daemon off;",
            "pid %s;" % self.path("nginx.pid"),
            "error_log %s warn;" % self.path("error.log"),
            "events { worker_connections 1024; }",
            "http {", "    access_log off;",
            "    client_body_temp_path %s/body;" % tmp,
            "    fastcgi_temp_path %s/fastcgi;" % tmp,
            "    proxy_temp_path %s/proxy;" % tmp,
            "    uwsgi_temp_path %s/uwsgi;" % tmp,
            "    scgi_temp_path %s/scgi;" % tmp,
            "    include %s;" % self.write("pyexec.conf", site), "}", ""])
        self.spawn([need("/usr/sbin/nginx"), "-p", self.dir, "-e", self.path("error.log"),
                    "-c", self.write("nginx.conf", main)])


class ApacheFcgi(Apache):
    """apache2-fcgi.conf: mod_proxy_fcgi to a pyexec-fcgi of its own."""

    def launch(self):
        sock = os.path.join(self.own_dir("run"), "fcgi.socket")
        spawn_fcgi(self, sock)
        site = render("apache2-fcgi.conf", {
            r"Define PYEXEC_FCGI_SOCKET .*": "Define PYEXEC_FCGI_SOCKET %s" % sock,
            r"<VirtualHost \*:80>": "<VirtualHost *:%d>" % self.port,
        })
        mods = ["mpm_event", "authz_core", "reqtimeout", "proxy", "proxy_fcgi"]
        main = "\n".join(
            ["ServerRoot %s" % self.dir, "DefaultRuntimeDir %s" % self.dir,
             "PidFile %s" % self.path("httpd.pid"),
             "ErrorLog %s" % self.path("error.log"), "LogLevel warn",
             "ServerName localhost", "User www-data", "Group www-data"]
            + ["LoadModule %s_module %smod_%s.so" % (m, self.MODS, m) for m in mods]
            + ["Listen 127.0.0.1:%d" % self.port,
               "Include %s" % self.write("pyexec.conf", site), ""])
        self.spawn([need("/usr/sbin/apache2"), "-f", self.write("httpd.conf", main),
                    "-DFOREGROUND"])


SERVERS = {
    "lighttpd": lambda: Lighttpd("lighttpd"),
    "lighttpd-fcgi": lambda: LighttpdFcgi("lighttpd-fcgi"),
    "nginx-fcgi": lambda: NginxFcgi("nginx-fcgi"),
    "apache-fcgi": lambda: ApacheFcgi("apache-fcgi", "event", None),
    "apache-cgid": lambda: Apache("apache-cgid", "event", "cgid"),
    "apache-cgi": lambda: Apache("apache-cgi", "prefork", "cgi"),
    "nginx-fcgiwrap": lambda: Nginx("nginx-fcgiwrap"),
}


# The servers that run pyexec.cgi. pyexec-fcgi takes the body the server
# has buffered whole, and is not told when a client goes away (FastCGI has
# no such signal that these servers send): the tests of a stalled body and
# of a client leaving mid-run are the CGI's.
CGI_SERVERS = [k for k in SERVERS if not k.endswith("-fcgi")]


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request):
    s = SERVERS[request.param]()
    try:
        s.start()
    except BaseException:
        s.stop()
        raise
    yield s
    s.stop()


def row(server, run_id):
    r = rows(server.db, "SELECT identity, outcome, status, error_type, "
             "http_status FROM runs_view WHERE id = ?", run_id)
    assert len(r) == 1, "no audit row for %s" % run_id
    return r[0]


def readme_curl():
    """The seed's test request as the README gives it."""
    with open(os.path.join(REPO, "README.md")) as f:
        lines = [l.strip() for l in f if l.startswith("curl -X POST http://localhost:8080 ")
                 and "Hello from Python!" in l]
    assert lines, "README.md has no seed curl line"
    return lines[0]


def run_readme_curl(port):
    argv = shlex.split(readme_curl().replace("localhost:8080", "localhost:%d" % port))
    p = subprocess.run(argv, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


# --- through each server -----------------------------------------------------

def test_seed_request(server):
    r = run_readme_curl(server.port)
    assert r["success"] is True and r["output"] == SEED_OUTPUT, r
    assert r["error"] is None and r["execution_time_ms"] >= 0
    assert row(server, r["run_id"])[:2] == ("anon:127.0.0.1", "ok")


def test_any_path_reaches_the_cgi(server):
    for path in ("/execute", "/v1/run?x=1"):
        r = post(server.port, SEED_CODE, path=path)
        assert r.status == 200 and r.json["output"] == SEED_OUTPUT, (path, r)
    r = request(server.port, method="GET", path="/execute")
    assert r.status == 405 and r.headers["allow"] == "POST", r
    assert r.json["error_type"] == "MethodNotAllowed"


def test_bearer_token(server):
    r = post(server.port, "print(6 * 7)", bearer=server.token)
    assert r.status == 200 and r.json["output"] == "42\n", r
    assert "ratelimit-limit" not in r.headers	# alice is unlimited
    assert row(server, r.json["run_id"])[:2] == ("user:alice", "ok")


def test_metrics(server):
    """GET /metrics reaches pyexec's endpoint through the server, as the
    shipped configuration passes the path; an admin's token is needed."""
    admin = add_user(server.db, "ops-" + secrets_hex(), admin=True)
    before = rows(server.db, "SELECT count(*) FROM runs")[0][0]
    for path in ("/metrics", "/pyexec/metrics?x=1"):
        r = request(server.port, method="GET", path=path,
                    headers={"Authorization": "Bearer " + admin})
        assert r.status == 200, r
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        total = sum(float(l.rsplit(" ", 1)[1]) for l in r.body.decode().splitlines()
                    if l.startswith("pyexec_requests_total{"))
        assert total == before
    r = request(server.port, method="GET", path="/metrics")
    assert r.status == 401 and r.json["success"] is False, r
    assert rows(server.db, "SELECT count(*) FROM runs")[0][0] == before


def test_body_token(server):
    r = post(server.port, "print(6 * 7)", token=server.token)
    assert r.status == 200 and r.json["output"] == "42\n", r
    assert row(server, r.json["run_id"])[:2] == ("user:alice", "ok")


def test_unknown_token(server):
    r = post(server.port, "print(1)", bearer="pyx_" + "0" * 64)
    assert r.status == 401, r
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json["error_type"] == "Unauthorized"
    assert row(server, r.json["run_id"])[1:] == ("rejected", "rejected", "Unauthorized", 401)


def test_eleventh_anonymous_run_in_an_hour(server):
    # A client address of its own, so that the other tests' runs do not count.
    src = "127.0.0.2"
    assert can_bind(src), ("%s cannot be bound: Linux routes 127.0.0.0/8 to lo, "
                           "this host only 127.0.0.1 (ip addr add "
                           "127.0.0.2/8 dev lo)" % src)
    for i in range(10):
        r = post(server.port, "print(%d)" % i, source=src)
        assert r.status == 200, r
        assert r.headers["ratelimit-remaining"] == str(9 - i)
    r = post(server.port, "print(10)", source=src)
    assert r.status == 429, r
    assert int(r.headers["retry-after"]) > 0
    assert r.json["error_type"] == "RateLimited"
    assert row(server, r.json["run_id"])[:2] == ("anon:" + src, "rejected")


def test_sandbox_timeout_fires_before_the_servers(server):
    t0 = time.monotonic()
    r = post(server.port, "while True: pass", bearer=server.token)
    took = time.monotonic() - t0
    assert r.status == 200, r
    assert r.json["error_type"] == "TimeoutError", r
    # The wall clock or the CPU limit (the same 2 s by default), whichever
    # the busy loop meets first.
    assert re.search(r"time limit of (%d ms|%d s)" % (RUN_TIMEOUT_MS, RUN_TIMEOUT_MS // 1000),
                     r.json["error"]), r
    # A 200 with the sandbox's TimeoutError is the sandbox's answer: had the
    # server's own timeout fired first, it would have answered 5xx itself.
    # How long after the limit is the machine's speed (not asserted).
    assert took >= RUN_TIMEOUT_MS / 1000, took
    assert row(server, r.json["run_id"])[1] == "timeout"


def post_chunked(port, chunks, content_type):
    """POSTs chunks with Transfer-Encoding: chunked; the status and the
    whole reply (http.client raises IncompleteRead on a cut-off one)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        c.request("POST", "/", body=iter(chunks),
                  headers={"Content-Type": content_type,
                           "Transfer-Encoding": "chunked"},
                  encode_chunked=True)
        r = c.getresponse()
        return r, r.read()
    finally:
        c.close()


def test_chunked_upload_runs(server):
    """A chunked upload (no Content-Length) runs, and its answer arrives
    whole (http.client raises IncompleteRead on a cut-off reply)."""
    body = json.dumps({"code": "print(6 * 7)"}).encode()
    r, data = post_chunked(server.port, [body[:5], body[5:]],
                           "application/json")
    assert r.status == 200, (r.status, data)
    assert r.getheader("Content-Type") == "application/json"
    reply = json.loads(data)
    assert reply["output"] == "42\n", reply
    assert row(server, reply["run_id"])[1:] == ("ok", "ok", None, 200)


def test_chunked_upload_refused_whole(server):
    """Refused from its headers (415), a chunked upload still gets the
    complete JSON answer: the CGI drains the body it did not read."""
    body = json.dumps({"code": "print(1)" + " " * 200000}).encode()
    r, data = post_chunked(server.port, [body[i:i + 4096] for i in
                                         range(0, len(body), 4096)],
                           "text/plain")
    assert r.status == 415, (r.status, data)
    reply = json.loads(data)
    assert reply["error_type"] == "UnsupportedMediaType"
    assert row(server, reply["run_id"])[4] == 415


@pytest.mark.parametrize("server", CGI_SERVERS, indirect=True)
def test_stalled_body(server):
    """A client that announces a body and stops sending it: the answer,
    when the server gives one, is a 408 in pyexec's JSON (never a server's
    HTML page), pyexec audits a 408 whenever it saw the request, and no
    code ran."""
    before = rows(server.db, "SELECT count(*) FROM runs WHERE "
                  "outcome <> 'rejected'")[0][0]
    s = raw_request(server.port, b"POST / HTTP/1.1\r\nHost: localhost\r\n"
                    b"Content-Type: application/json\r\n"
                    b"Content-Length: 100\r\n\r\n{\"code\": \"pri")
    with s:
        s.settimeout(120)
        r = http.client.HTTPResponse(s)
        try:
            r.begin()
            data = r.read()
        except http.client.RemoteDisconnected:
            r = None
    if server.kind == "nginx-fcgiwrap":
        # nginx reads the body before starting the CGI and answers no 408
        # (README): the connection closes, unanswered, and pyexec never
        # saw the request.
        assert r is None, (r.status, data)
    else:
        assert r is not None, "no answer"
        assert r.status == 408, (r.status, data)
        assert r.getheader("Content-Type").startswith("application/json")
        reply = json.loads(data)
        assert reply["success"] is False and reply["output"] == ""
        assert reply["error_type"] == "RequestTimeout", reply
        if "run_id" in reply:
            assert row(server, reply["run_id"])[4] == 408
        # Apache answers itself (it passes on nothing of the CGI's before
        # it has the whole body); pyexec gave up first and audited it.
        refused = rows(server.db, "SELECT error_type, http_status FROM runs "
                       "ORDER BY rowid DESC LIMIT 1")
        assert refused == [("RequestTimeout", 408)], refused
    assert rows(server.db, "SELECT count(*) FROM runs WHERE "
                "outcome <> 'rejected'")[0][0] == before


# The CGI alone, as Apache hands it a chunked upload: no CONTENT_LENGTH,
# the decoded body, then end of file.
CHUNKED_ENV = {"HTTP_TRANSFER_ENCODING": "chunked"}


def test_cgi_reads_a_chunked_body_to_its_end():
    db = new_db(quota=-1)
    body = json.dumps({"code": "print(len('x' * 3))"}).encode()
    r = cgi_raw(body, env=CHUNKED_ENV, content_length=False, db=db)
    assert r.status == 200 and r["output"] == "3\n", r
    # Over body_bytes: 413, counted as it arrives, never buffered whole.
    big = b'{"code": "' + b"#" * (2 * 1024 * 1024) + b'"}'
    r = cgi_raw(big, env=CHUNKED_ENV, content_length=False, db=db)
    assert r.status == 413 and r["error_type"] == "PayloadTooLarge", r
    r = cgi_raw(b"", env=CHUNKED_ENV, content_length=False, db=db)
    assert r.status == 400, r
    # Without Content-Length and not chunked: still 411.
    r = cgi_raw(body, content_length=False, db=db)
    assert r.status == 411 and r["error_type"] == "LengthRequired", r
    got = [x[0] for x in rows(db, "SELECT http_status FROM runs "
                              "ORDER BY rowid")][-4:]
    assert got == [200, 413, 400, 411]


def test_cgi_gives_a_stalled_chunked_body_a_408():
    db = new_db(quota=-1)
    env = dict(base_env(db), REQUEST_METHOD="POST",
               CONTENT_TYPE="application/json", PYEXEC_BODY_TIMEOUT_MS="500",
               **CHUNKED_ENV)
    p = subprocess.Popen([CGI], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    try:
        p.stdin.write(b'{"code": "pri')
        p.stdin.flush()
        # stdin stays open (stalled) while the answer is read; a CGI that
        # never answers is killed, and the test fails on its empty answer.
        watchdog = threading.Timer(60, p.kill)
        watchdog.start()
        try:
            out = p.stdout.read()
        finally:
            watchdog.cancel()
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdin.close()
    assert out.startswith(b"Status: 408"), out
    assert b'"RequestTimeout"' in out
    assert rows(db, "SELECT http_status FROM runs ORDER BY rowid DESC "
                "LIMIT 1") == [(408,)]


def test_refused_before_the_body_is_read(server):
    # pyexec answers from the headers alone; the server still relays it.
    body = json.dumps({"code": "print(1)"}).encode()
    r = request(server.port, body, headers={"Content-Type": "text/plain"})
    assert r.status == 415 and r.json["error_type"] == "UnsupportedMediaType", r
    r = request(server.port, body, method="PUT")
    assert r.status == 405 and r.headers["allow"] == "POST", r


def test_body_over_pyexecs_limit(server):
    # The server passes it on, and pyexec refuses it in JSON, audited.
    body = json.dumps({"code": "#" * BODY_BYTES}).encode()
    r = request(server.port, body)
    assert r.status == 413, r
    assert r.json["error_type"] == "PayloadTooLarge"
    assert row(server, r.json["run_id"])[1:] == ("rejected", "rejected", "PayloadTooLarge", 413)


# Apache's mod_proxy_fcgi checks LimitRequestBody as the body arrives, not
# from Content-Length: a body announced and never sent meets reqtimeout's
# 408 instead, 20 s later. The test is the other servers'.
@pytest.mark.parametrize("server", [k for k in SERVERS if k != "apache-fcgi"],
                         indirect=True)
def test_body_over_the_servers_limit(server):
    # Announced, not sent: the server refuses it from the headers.
    s = raw_request(server.port, b"POST / HTTP/1.1\r\nHost: localhost\r\n"
                    b"Content-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n" % (8 * BODY_BYTES))
    with s:
        status = s.recv(4096).split(b"\r\n", 1)[0]
    assert status.split()[1] == b"413", status


@pytest.mark.parametrize("server", CGI_SERVERS, indirect=True)
def test_client_disconnects_mid_run(server):
    marker = "# disconnect %s" % os.urandom(8).hex()
    body = json.dumps({"code": "while True: pass\n" + marker}).encode()
    s = raw_request(server.port, b"POST /execute HTTP/1.1\r\nHost: localhost\r\n"
                    b"Content-Type: application/json\r\n"
                    b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
                    % (server.token.encode(), len(body)))
    # The body a moment later, as from a client across a network: lighttpd
    # watches a connection only once it has had to wait on it (a request
    # read whole at its first read runs on to its end, as under the others).
    time.sleep(0.2)
    s.sendall(body)
    def sandbox_children():
        procs = pyexec_procs(server.roots())
        # running: past admission, its job read and the job's pipe (fd 4)
        # closed
        return {p: v for p, v in procs.items() if v[0] in procs and
                not os.path.lexists("/proc/%d/fd/4" % p)}
    # The broker and its sandbox child, running.
    child, (broker, uid) = next(iter(wait_for("the sandbox child", sandbox_children, 10).items()))
    assert uid != 0, "the program runs as root"
    if ROOT:
        assert uid == www_user().pw_uid
    time.sleep(0.3)
    s.close()
    # Bounded by the run's own limit at worst (a server that never tells
    # pyexec); the generous factor only tells "never" from "late".
    wait_for("no process left behind", lambda: not pyexec_procs(server.roots()),
             RUN_TIMEOUT_MS / 1000 * 10)
    assert not os.path.exists("/proc/%d" % child)
    digest = hashlib.sha256(json.loads(body)["code"].encode()).hexdigest()
    found = rows(server.db, "SELECT outcome, status, error_type, error, http_status, "
                 "broker_pid, wall_ms FROM runs_view WHERE code_sha256 = ?", digest)
    assert len(found) == 1, found
    outcome, status, error_type, error, http_status, broker_pid, wall_ms = found[0]
    assert broker_pid == broker
    if server.cancels_on_disconnect:
        # The server sends SIGTERM: the run stops then, before its limit,
        # and the row says so.
        assert (outcome, error_type, http_status) == ("internal", "Cancelled", 499), found
        assert "SIGTERM" in error, error
        # Cancelled, not timed out: the SIGTERM came before the limit, which
        # is what the outcome says (the broker's deadline would have made
        # it a TimeoutError).
    else:
        # Nothing tells pyexec: the run ends at its own limit.
        assert (outcome, error_type) == ("timeout", "TimeoutError"), found
    assert status == outcome		# completed, not 'running' or 'abandoned'


def test_50_concurrent_requests(server, capsys):
    n, marker = 50, "# concurrent %s" % os.urandom(8).hex()
    code = 'print(input_data["n"] * 2)\n' + marker
    replies = [None] * n
    go = threading.Barrier(n)
    # What is tested is that all fifty are served and logged, not how fast:
    # the servers' 2 s run limit can pass before a program starts when
    # fifty start at once on a loaded 2-core machine (seen: a TimeoutError
    # with no layer reported), so their user has a limit of a minute.
    token = add_user(server.db, "fifty_" + os.urandom(4).hex(), quota=-1,
                     timeout_ms=60000)

    def one(i):
        go.wait()
        replies[i] = post(server.port, code, bearer=token, input_data={"n": i})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    for t in threads:
        t.join(120)
    took = time.monotonic() - t0
    for i, r in enumerate(replies):
        assert r is not None and r.status == 200, (i, r)
        assert r.json["output"] == "%d\n" % (2 * i), (i, r)
    ids = {r.json["run_id"] for r in replies}
    assert len(ids) == n
    digest = hashlib.sha256(code.encode()).hexdigest()
    logged = rows(server.db, "SELECT id, outcome, http_status FROM runs "
                  "WHERE code_sha256 = ?", digest)
    assert sorted(logged) == sorted((i, "ok", 200) for i in ids)
    with capsys.disabled():
        print("\n%s: %d concurrent requests in %.2f s (%.1f req/s)"
              % (server.kind, n, took, n / took))


# --- the shipped files ------------------------------------------------------------

def conf_text(name):
    with open(os.path.join(CONF, name)) as f:
        return f.read()


def test_shipped_servers_wait_longer_than_pyexec():
    light, apache, nginx = (conf_text(n) for n in ("lighttpd.conf", "apache2.conf", "nginx.conf"))
    for t in re.findall(r'"(?:read|write)-timeout" => (\d+)', light):
        assert int(t) > LONGEST_REQUEST_S
    assert int(re.search(r"^server\.max-request-size = (\d+)", light, re.M).group(1)) * 1024 > BODY_BYTES
    for d in ("CGIDScriptTimeout", "CGIScriptTimeout"):
        assert int(re.search(r"^\s*%s (\d+)" % d, apache, re.M).group(1)) > LONGEST_REQUEST_S
    assert int(re.search(r"^\s*LimitRequestBody (\d+)", apache, re.M).group(1)) > BODY_BYTES
    assert re.search(r"^\s*CGIPassAuth On", apache, re.M)
    assert int(re.search(r"^\s*fastcgi_read_timeout (\d+)s;", nginx, re.M).group(1)) > LONGEST_REQUEST_S
    assert int(re.search(r"^\s*client_max_body_size (\d+)m;", nginx, re.M).group(1)) * 1048576 > BODY_BYTES
    for text in (light, apache, nginx):
        assert "# EDIT:" in text


# --- cancellation, and a Functions-style wrapper ------------------------------------

def functions_call(event, db, deadline_s=60, ignore_sigchld=False):
    """What a Functions-style wrapper does with one HTTP request (an event
    with method, path, headers, body and the client's address): run
    pyexec.cgi once with the CGI/1.1 environment and the body on stdin, and
    turn the CGI response on stdout into an HTTP one. At its own deadline
    it sends SIGTERM (pyexec stops the run and records it), then SIGKILL."""
    body = event.get("body", "").encode()
    env = {"PATH": "/usr/bin:/bin", "GATEWAY_INTERFACE": "CGI/1.1",
           "SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_METHOD": event["method"],
           "SCRIPT_NAME": "", "PATH_INFO": event["path"],
           "REMOTE_ADDR": event["source_ip"], "CONTENT_LENGTH": str(len(body)),
           "PYEXEC_DB": db}
    for name, value in event["headers"].items():
        key = name.upper().replace("-", "_")
        env[key if key in ("CONTENT_TYPE",) else "HTTP_" + key] = value
    # Some wrappers ignore SIGCHLD for their own children, and exec keeps it.
    ign = (lambda: signal.signal(signal.SIGCHLD, signal.SIG_IGN)) if ignore_sigchld else None
    p = subprocess.Popen([CGI], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, preexec_fn=ign)
    try:
        out, err = p.communicate(body, timeout=deadline_s)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
        try:
            out, err = p.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
    if not out:
        return {"statusCode": 504, "headers": {}, "body": "", "log": err.decode()}
    head, _, payload = out.partition(b"\n\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\n"))
    status = int(headers.pop("Status").split()[0])
    return {"statusCode": status, "headers": headers, "body": payload.decode(),
            "log": err.decode()}


@pytest.fixture(scope="module")
def wrapper_db():
    db = new_db()
    yield db, add_user(db, "bob", quota=-1)
    shutil.rmtree(os.path.dirname(db), ignore_errors=True)


def test_functions_style_wrapper(wrapper_db):
    db, token = wrapper_db
    seed = {"method": "POST", "path": "/", "source_ip": "192.0.2.7",
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"code": SEED_CODE, "input_data": {}})}
    r = functions_call(seed, db)
    assert r["statusCode"] == 200 and r["headers"]["Content-Type"] == "application/json"
    out = json.loads(r["body"])
    assert out["success"] is True and out["output"] == SEED_OUTPUT
    assert int(r["headers"]["Content-Length"]) == len(r["body"].encode())
    assert rows(db, "SELECT identity FROM runs WHERE id = ?", out["run_id"]) == [("anon:192.0.2.7",)]
    auth = dict(seed, headers={"Content-Type": "application/json",
                               "Authorization": "Bearer " + token})
    out = json.loads(functions_call(auth, db)["body"])
    assert rows(db, "SELECT identity FROM runs WHERE id = ?", out["run_id"]) == [("user:bob",)]
    r = functions_call(dict(seed, method="GET", body=""), db)
    assert r["statusCode"] == 405 and r["headers"]["Allow"] == "POST"
    r = functions_call(seed, db, ignore_sigchld=True)
    out = json.loads(r["body"])
    # With SIGCHLD ignored the kernel would reap the child itself: every run
    # a timeout, no usage. A success with its CPU time shows the broker
    # restored it.
    assert out["success"] is True and out["output"] == SEED_OUTPUT, out
    assert out["cpu_time_ms"] > 0, out


def test_wrapper_deadline_cancels_the_run(wrapper_db):
    db, token = wrapper_db
    marker = "# cancelled %s" % os.urandom(8).hex()
    event = {"method": "POST", "path": "/", "source_ip": "192.0.2.8",
             "headers": {"Content-Type": "application/json", "Authorization": "Bearer " + token},
             "body": json.dumps({"code": "while True: pass\n" + marker})}
    # The run would last its whole time limit; the wrapper's 1 s deadline
    # stops it: a 504 and a row 'Cancelled' (not 'timeout') say so.
    r = functions_call(event, db, deadline_s=1)
    assert r["statusCode"] == 504 and "SIGTERM" in r["log"]
    digest = hashlib.sha256(json.loads(event["body"])["code"].encode()).hexdigest()
    found = rows(db, "SELECT outcome, status, error_type, http_status, error FROM runs_view "
                 "WHERE code_sha256 = ?", digest)
    assert len(found) == 1
    assert found[0][:4] == ("internal", "internal", "Cancelled", 499), found
    assert "SIGTERM" in found[0][4]


# --- make serve, make install ------------------------------------------------------

def make_env():
    """A make of our own, not a sub-make of the one running the tests (no
    jobserver), but with its variables (SANITIZE=1 builds the same CGI)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    flags = os.environ.get("MAKEFLAGS", "")
    if " -- " in " " + flags:
        env["MAKEFLAGS"] = "-- " + (" " + flags).split(" -- ", 1)[1]
    return env


def banner_admin_line(banner):
    lines = [l.strip() for l in banner.splitlines() if "user add alice" in l]
    assert len(lines) == 1, banner
    return lines[0]


def readme_admin_line():
    with open(os.path.join(REPO, "README.md")) as f:
        lines = [l.split("#")[0].strip() for l in f
                 if l.startswith("./pyexec-admin --db var/pyexec.db user add alice")]
    assert len(lines) == 1, "README.md lacks the admin line"
    return lines[0]


def run_admin_line(line):
    """A printed command, pasted into a shell in the checkout (a clean PATH:
    pyexec-admin is found where the line says, not installed)."""
    p = subprocess.run(["/bin/sh", "-c", line], cwd=REPO, capture_output=True,
                       text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    tokens = re.findall(r"pyx_[A-Za-z0-9_-]+", p.stdout)
    assert len(tokens) == 1, p.stdout
    return tokens[0]


def run_readme_token_curl(port, token):
    with open(os.path.join(REPO, "README.md")) as f:
        lines = [l.strip() for l in f if l.startswith("curl -X POST http://localhost:8080 ")
                 and "Bearer pyx_..." in l]
    assert len(lines) == 1, "README.md lacks the token curl line"
    line = lines[0].replace("localhost:8080", "localhost:%d" % port).replace("pyx_...", token)
    p = subprocess.run(shlex.split(line), capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def secrets_hex():
    return hashlib.sha256(os.urandom(16)).hexdigest()[:12]


@contextlib.contextmanager
def make_serve(*args):
    """`make serve` (with args) on a free port with its own VARDIR, up and
    answering; yields (port, VARDIR, a function that reads what it
    printed). Ctrl-C stops it afterwards, and it must stop."""
    need("/usr/sbin/lighttpd")
    port, var = free_port(), tempfile.mkdtemp(prefix="pyexec-serve-")
    out = open(os.path.join(var, "out"), "w+b")
    p = subprocess.Popen(["make", "--no-print-directory", "-C", REPO, "serve",
                          "PORT=%d" % port, "VARDIR=" + var] + list(args),
                         stdout=out, stderr=subprocess.STDOUT, env=make_env(),
                         start_new_session=True)
    printed = lambda: open(out.name).read()
    try:
        def up():
            assert p.poll() is None, printed()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_for("make serve", up, 120)
        yield port, var, printed
    finally:
        os.killpg(p.pid, signal.SIGINT)		# Ctrl-C
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)
            pytest.fail("make serve did not stop on Ctrl-C")
        out.close()
        shutil.rmtree(var, ignore_errors=True)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)


def _exe(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return ""


def test_make_serve_fastcgi():
    """make serve MODE=fastcgi: lighttpd starts pyexec-fcgi, the runs are
    audited as the FastCGI mode's, and Ctrl-C leaves no pyexec-fcgi."""
    def ours():
        return {pid for pid, p in proc_table().items() if p.comm == "pyexec-fcgi"
                and _exe(pid).startswith(REPO + "/")}
    before = ours()   # the suite's own pyexec-fcgi (conftest) is not make serve's
    with make_serve("MODE=fastcgi") as (port, var, printed):
        r = run_readme_curl(port)
        assert r["success"] is True and r["output"] == SEED_OUTPUT, r
        assert "pyexec-fcgi under lighttpd" in printed()
        db = os.path.join(var, "pyexec.db")
        assert rows(db, "SELECT mode FROM runs WHERE id = ?",
                    r["run_id"]) == [("fcgi",)]
        fcgi = ours() - before
        assert fcgi, "no pyexec-fcgi under make serve"
    wait_for("pyexec-fcgi to stop with lighttpd",
             lambda: not any(os.path.exists("/proc/%d" % pid) for pid in fcgi), 30)


def test_make_serve():
    with make_serve() as (port, var, printed):
        r = run_readme_curl(port)
        assert r["success"] is True and r["output"] == SEED_OUTPUT, r
        r = post(port, SEED_CODE, path="/execute")
        assert r.status == 200 and r.json["output"] == SEED_OUTPUT, r
        banner = printed()
        assert "http://127.0.0.1:%d/" % port in banner
        assert readme_curl().replace("8080", str(port)) in banner
        # A build says one short line per file; never a compiler's command.
        assert not [l for l in banner.splitlines() if "-Wall" in l or " -o " in l], banner
        assert len(rows(os.path.join(var, "pyexec.db"), "SELECT id FROM runs")) == 2
        # The banner's admin line, pasted verbatim in the checkout, makes a
        # token; the README's is the same line for the default VARDIR.
        # (Under `make test SANITIZE=1` make serve serves that build, and
        # names its pyexec-admin, build-san/bin/.)
        admin_line = banner_admin_line(banner)
        prog, args = admin_line.split(" ", 1)
        assert prog in ("./pyexec-admin", "./build-san/bin/pyexec-admin"), prog
        assert "./pyexec-admin " + args == readme_admin_line().replace(
            "var/pyexec.db", var + "/pyexec.db")
        token = run_admin_line(admin_line)
        r = run_readme_token_curl(port, token)
        assert r["success"] is True and r["output"] == "42\n", r
        assert rows(os.path.join(var, "pyexec.db"),
                    "SELECT identity FROM runs WHERE id = ?", r["run_id"]) == [("user:alice",)]


def test_make_install():
    dest = tempfile.mkdtemp(prefix="pyexec-install-")
    try:
        p = subprocess.run(["make", "--no-print-directory", "-C", REPO, "install",
                            "DESTDIR=" + dest, "PREFIX=/usr"],
                           capture_output=True, env=make_env(), timeout=600)
        assert p.returncode == 0, p.stdout + p.stderr
        got = {os.path.relpath(os.path.join(d, f), dest)
               for d, _, files in os.walk(dest) for f in files}
        want = {"usr/lib/pyexec/pyexec.cgi", "usr/lib/pyexec/pyexec-sandbox",
                "usr/lib/pyexec/pyexec-fcgi",
                "usr/share/doc/pyexec/README.md",
                "usr/share/doc/pyexec/LICENSE"}
        want |= {"usr/share/doc/pyexec/examples/" + f for f in os.listdir(CONF)}
        want |= {"usr/bin/pyexec-admin", "usr/share/man/man1/pyexec-admin.1",
                 "usr/share/man/man8/pyexec.cgi.8", "usr/bin/pyexec-mcp",
                 "usr/share/man/man8/pyexec-fcgi.8",
                 "usr/share/man/man1/pyexec-mcp.1"}
        assert got == want
        cgi = os.path.join(dest, "usr/lib/pyexec/pyexec.cgi")
        assert os.stat(cgi).st_mode & 0o777 == 0o755
        # pyexec-mcp finds the pyexec.cgi installed with it
        db = new_db()
        p = subprocess.run([os.path.join(dest, "usr/bin/pyexec-mcp")],
                           input=b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n',
                           env={"PYEXEC_DB": db}, capture_output=True, timeout=60)
        assert json.loads(p.stdout) == {"jsonrpc": "2.0", "id": 1, "result": {}}, p
        shutil.rmtree(os.path.dirname(db), ignore_errors=True)
        # the binaries under test (SANITIZE=1 installs build-san/bin's)
        for name in ("pyexec.cgi", "pyexec-sandbox", "pyexec-fcgi"):
            got_bin = os.path.join(dest, "usr/lib/pyexec", name)
            assert os.stat(got_bin).st_mode & 0o777 == 0o755
            with open(got_bin, "rb") as a, \
                    open(os.path.join(os.path.dirname(CGI), name), "rb") as b:
                assert hashlib.sha256(a.read()).digest() == \
                    hashlib.sha256(b.read()).digest(), name
        for f in os.listdir(CONF):
            with open(os.path.join(dest, "usr/share/doc/pyexec/examples", f)) as fh:
                text = fh.read()
            assert "/usr/local/" not in text, f
            if "fcgi" in f and not f.endswith(".socket"):
                assert "/usr/lib/pyexec/pyexec-fcgi" in text, f
            elif f.endswith(".conf"):
                assert "/usr/lib/pyexec/pyexec.cgi" in text, f
            elif not f.endswith((".timer", ".socket")):
                assert "/usr/bin/pyexec-admin prune" in text, f
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def check_retention_examples(prefix):
    """The installed systemd pair is valid (systemd-analyze verify, which
    also checks that ExecStart exists), and both its command and the cron
    line's prune a real database: rows past 90 days go, the others stay."""
    examples = os.path.join(prefix, "share", "doc", "pyexec", "examples")
    units = [os.path.join(examples, "pyexec-prune." + x)
             for x in ("service", "timer")]
    need("/usr/bin/systemd-analyze")
    p = subprocess.run(["/usr/bin/systemd-analyze", "verify"] + units,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    with open(units[0]) as f:
        unit = f.read()
    with open(os.path.join(examples, "pyexec-prune.cron")) as f:
        cron = [x for x in f.read().splitlines() if x and x[0] != "#"]
    assert "OnCalendar=daily" in open(units[1]).read()
    assert "User=www-data" in unit
    [start] = re.findall(r"^ExecStart=(.*)$", unit, re.M)
    [env] = re.findall(r"^Environment=PYEXEC_DB=(.*)$", unit, re.M)
    assert cron[0] == "PYEXEC_DB=" + env == "PYEXEC_DB=/var/lib/pyexec/pyexec.db"
    fields = cron[1].split()
    assert fields[5] == "www-data"
    for command in (start, " ".join(fields[6:])):
        assert command.startswith(os.path.join(prefix, "bin", "pyexec-admin"))
        db = new_db(quota=-1)
        day = 86400 * 1000
        now = int(time.time() * 1000)
        with sqlite3.connect(db) as c:
            for i, age in enumerate((100 * day, 91 * day, 89 * day, 0)):
                c.execute("INSERT INTO runs (id, started_ms, finished_ms, "
                          "identity, outcome) VALUES (?, ?, ?, 'anon:x', "
                          "'ok')", ("%032x" % (i + 1), now - age,
                                    now - age + 1))
        p = subprocess.run(["/bin/sh", "-c", command], capture_output=True,
                           text=True, timeout=120,
                           env={"PATH": "/usr/bin:/bin", "PYEXEC_DB": db})
        assert p.returncode == 0, (command, p.stdout, p.stderr)
        left = {r[0] for r in rows(db, "SELECT id FROM runs")}
        assert "%032x" % 1 not in left and "%032x" % 2 not in left
        assert {"%032x" % 3, "%032x" % 4} <= left


def test_make_install_anywhere_then_uninstall():
    """Installed under any PREFIX, pyexec-admin doctor finds the CGI
    installed with it; make uninstall takes back every file."""
    prefix = tempfile.mkdtemp(prefix="pyexec-prefix-")
    os.chmod(prefix, 0o755)
    make = ["make", "--no-print-directory", "-C", REPO, "PREFIX=" + prefix]
    try:
        p = subprocess.run(make + ["install"], capture_output=True,
                           env=make_env(), timeout=600)
        assert p.returncode == 0, p.stdout + p.stderr
        installed = {os.path.join(d, f) for d, _, files in os.walk(prefix)
                     for f in files}
        assert os.path.join(prefix, "bin", "pyexec-admin") in installed
        db = new_db()
        # Not run from the build tree: nothing there to find by accident.
        p = subprocess.run([os.path.join(prefix, "bin", "pyexec-admin"),
                            "--db", db, "doctor"], capture_output=True,
                           text=True, timeout=300, cwd="/")
        checks = {m.group(2): (m.group(1), m.group(3)) for m in
                  (re.match(r"^(OK|WARN|FAIL)\s+(\S+)\s+(.*)$", x)
                   for x in p.stdout.splitlines()) if m}
        cgi = os.path.join(os.path.realpath(prefix), "lib", "pyexec",
                           "pyexec.cgi")
        assert checks["cgi"] == ("OK", cgi), p.stdout
        assert checks["selftest.hello"][0] == "OK", p.stdout
        check_retention_examples(prefix)
        p = subprocess.run(make + ["uninstall"], capture_output=True,
                           env=make_env(), timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        left = [os.path.join(d, f) for d, _, files in os.walk(prefix)
                for f in files]
        assert left == []
        dirs = [d for d, _, _ in os.walk(prefix)]
        assert not any("pyexec" in os.path.relpath(d, prefix) for d in dirs), \
            dirs
        # Run twice, it is still quiet and successful.
        p = subprocess.run(make + ["uninstall"], capture_output=True,
                           env=make_env(), timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


# --- pyexec-sandbox, installed beside pyexec.cgi ------------------------------------

SANDBOX_EXE = os.path.join(os.path.dirname(CGI), "pyexec-sandbox")


def run_sandbox_exe(args, pipes=True, close_job=True):
    """Runs pyexec-sandbox as something other than the broker would: args
    on its command line, and, with pipes, a result pipe on fd 3 and a job
    pipe on fd 4 (closed at once by this side when close_job). Returns
    (exit status, stderr, what arrived on the result pipe)."""
    res_r, res_w = os.pipe()
    job_r, job_w = os.pipe()

    def fds():
        # os.pipe()'s descriptors close on exec; dup2's copies do not.
        if pipes:
            os.dup2(res_w, 3)
            os.dup2(job_r, 4)
        else:
            for fd in (3, 4):
                try:
                    os.close(fd)
                except OSError:
                    pass
    p = subprocess.Popen([SANDBOX_EXE] + args, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         preexec_fn=fds, close_fds=False)
    os.close(res_w)
    os.close(job_r)
    if close_job:
        os.close(job_w)
    try:
        err = p.communicate(timeout=20)[1]
        with os.fdopen(res_r, "rb") as f:
            record = f.read()
    finally:
        if not close_job:
            os.close(job_w)
    return p.returncode, err, record


@pytest.mark.parametrize("args,pipes", [
    ([], True),
    (["--child-of", str(os.getpid())], False),      # no pipes on fds 3 and 4
    (["--child-of", "1"], True),                     # 1 is not its parent
    (["--child-of", "x"], True),
    (["--child-of", str(os.getpid()), "more"], True),
], ids=["no-arguments", "no-pipes", "not-the-parent", "not-a-pid", "extra"])
def test_pyexec_sandbox_runs_only_for_the_broker(args, pipes):
    """A web server pointed at pyexec.cgi's directory could run
    pyexec-sandbox: it stops before doing anything unless its parent named
    itself on the command line and left it its pipes."""
    status, err, record = run_sandbox_exe(args, pipes)
    assert status == 2, (status, err)
    assert err == b"pyexec-sandbox: run by pyexec.cgi only\n"
    assert record == b""


def test_pyexec_sandbox_without_a_job_exits_quietly():
    """Started as the broker starts it, then refused (the job pipe closes
    without a job): it exits without a record and without running code."""
    status, err, record = run_sandbox_exe(["--child-of", str(os.getpid())])
    assert status == 2 and err == b"" and record == b"", (status, err, record)
