#!/usr/bin/python3
"""pyexec's benchmark: pyexec against its baselines, in one run, on one
machine, written to bench/RESULTS.md.

Subjects, invoked directly (as a web server would: CGI environment, body on
stdin) and, for requests/s, through lighttpd started from the shipped
cgi/conf/lighttpd.conf exactly as tests/test_servers.py starts it:

  python -c   /usr/bin/python3 -I -S -c CODE: the interpreter floor
  floor       bench/floor.c, a C CGI printing a fixed answer: the process floor
  py-cgi      bench/py-cgi.sh: a python3 -I -S CGI running the code, no sandbox
  bwrap       bench/bwrap-cgi.sh: the same inside bubblewrap (no network,
              512 MB address space): the alternative an operator would pick
  pyexec      pyexec.cgi with its database (audit row, quota), as deployed

Per request: median and p99 wall time, CPU (user+system of the process and
its children, from wait4), peak memory of the broker (its own rusage,
reported by PYEXEC_TRACE_TIMING) and of the sandbox child (the response's
peak_memory_kb). Through lighttpd: requests/s at concurrency 1 and 8 (ab).
The database backends side by side: pyexec's hello on SQLite and on a
PostgreSQL server the bench starts (tests/pg.py), over its Unix socket and
over TCP loopback, directly and through lighttpd.
PYEXEC_TRACE_TIMING=1 gives the per-phase breakdown of a pyexec request.

  /usr/bin/python3 bench/bench.py            full run (make bench)
  /usr/bin/python3 bench/bench.py --quick    smoke run: proves the harness
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PY = "/usr/bin/python3"

WORKLOADS = {
    "hello": 'print("Hello from Python!")\nprint(sum([1,2,3,4,5]))',
    "imports": (
        "import json, statistics, datetime, re, collections, random\n"
        "random.seed(7)\n"
        "xs = [random.randint(1, 100) for _ in range(200)]\n"
        "c = collections.Counter(x % 10 for x in xs)\n"
        "d = datetime.date(2024, 1, 1) + datetime.timedelta(days=len(xs))\n"
        "words = re.findall(r'[a-z]+', 'the quick brown fox jumps over the lazy dog')\n"
        "print(json.dumps({'mean': statistics.mean(xs), 'median': statistics.median(xs),\n"
        "                  'top': c.most_common(2), 'date': d.isoformat(), 'words': len(words)}))\n"),
    # N is calibrated to 50 ms of CPU under python3 -I -S at start.
    "cpu50": "s = 0\nfor i in range(%d):\n    s += i * i\nprint(s)\n",
    "alloc100": "b = b'x' * (100 * 1024 * 1024)\nprint(len(b))\n",
    # The first line of most model-written code; pyexec runs it under
    # allowed_modules = compute (the seed's profile refuses typing).
    "typing": (
        "from typing import List\n"
        "def top(xs: List[int], k: int) -> List[int]:\n"
        "    return sorted(xs, reverse=True)[:k]\n"
        "print(top([5, 1, 9, 3], 2))\n"),
}
# Workloads pyexec runs under the compute profile (its own database).
COMPUTE_WORKLOADS = ("typing",)


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def med(xs):
    return statistics.median(xs) if xs else float("nan")


# --- direct invocation -------------------------------------------------------

class Direct:
    """Runs a command once per request, as a CGI: returns wall ms, CPU ms,
    maxrss KB (wait4: the process and its reaped children), stdout, stderr."""

    def __init__(self, tmp, launcher):
        self.tmp = tmp
        self.launcher = launcher

    def once(self, argv, body, env):
        fin = os.path.join(self.tmp, "body")
        with open(fin, "wb") as f:
            f.write(body)
        with open(fin, "rb") as i, tempfile.TemporaryFile(dir=self.tmp) as o, \
                tempfile.TemporaryFile(dir=self.tmp) as e:
            t0 = time.perf_counter()
            p = subprocess.Popen([self.launcher] + argv, stdin=i, stdout=o, stderr=e, env=env,
                                 close_fds=False)
            _, status, ru = os.wait4(p.pid, 0)
            wall = (time.perf_counter() - t0) * 1e3
            p.returncode = os.waitstatus_to_exitcode(status)
            o.seek(0)
            e.seek(0)
            out, err = o.read(), e.read()
        m = LAUNCH_RX.search(err.decode(errors="replace"))
        if not m:
            raise RuntimeError("%s: no report from the launcher: %r" % (argv[0], err[-300:]))
        return {"wall": int(m.group(1)) / 1e3, "cpu": int(m.group(2)) / 1e3,
                "maxrss": int(m.group(3)), "out": out, "err": err,
                "rc": p.returncode, "outer_wall": wall}


# The sandbox slots of the CGIs the bench runs directly (PYEXEC_RUN_DIR).
RUN_DIR = []


def cgi_env(db=None, length=0, extra=None):
    e = {"PATH": "/usr/bin:/bin", "GATEWAY_INTERFACE": "CGI/1.1",
         "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
         "REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/json",
         "CONTENT_LENGTH": str(length)}
    if db:
        e["PYEXEC_DB"] = db
        if RUN_DIR:
            e["PYEXEC_RUN_DIR"] = RUN_DIR[0]
    e.update(extra or {})
    return e


def parse_body(out):
    _, _, body = out.partition(b"\r\n\r\n") if b"\r\n\r\n" in out else out.partition(b"\n\n")
    return json.loads(body)


LAUNCH_RX = re.compile(r"launch: wall_us=(\d+) cpu_us=(\d+) maxrss_kb=(\d+)")
TRACE_RX = re.compile(r"pyexec-trace:(.*)")


def parse_trace(err):
    m = TRACE_RX.search(err.decode(errors="replace"))
    if not m:
        return None
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


# --- lighttpd ----------------------------------------------------------------

def load_servers(cgi):
    os.environ["PYEXEC_CGI"] = cgi
    sys.path.insert(0, os.path.join(REPO, "tests"))
    import test_servers  # noqa: E402  (the tests' own config generation)
    return test_servers


def start_lighttpd(ts, subject_file, extra_files=(), quota_unlimited=True,
                   db=None):
    """lighttpd from the shipped configuration (tests/test_servers.py's
    Lighttpd), serving subject_file in place of pyexec.cgi; db: another
    database (a PostgreSQL URI, its settings made already)."""
    srv = ts.Lighttpd("lighttpd")
    if db:
        srv.db = db
        quota_unlimited = False
        www = ts.www_user()
        if www:		# the CGI's user writes its slots there
            os.chown(ts.run_dir(db), www.pw_uid, www.pw_gid)
    if subject_file:
        for f in extra_files:
            shutil.copy2(f, srv.path(os.path.basename(f)))
            os.chmod(srv.path(os.path.basename(f)), 0o755)
        os.unlink(srv.cgi)
        shutil.copy2(subject_file, srv.cgi)
        os.chmod(srv.cgi, 0o755)
        # The scripts find cgi_runner.py beside themselves.
    if quota_unlimited:
        with sqlite3.connect(srv.db) as c:
            c.executemany("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) "
                          "DO UPDATE SET value = excluded.value",
                          [("default_quota", "-1"), ("timeout_ms", "30000")])
    srv.start()
    return srv


AB_RPS = re.compile(r"Requests per second:\s+([\d.]+)")
# ab counts an answer whose length differs from the first as failed
# ("Length"): pyexec's run_id and timings vary in length, so only these count.
AB_FAILED = re.compile(r"\(Connect: (\d+), Receive: (\d+), Length: \d+, Exceptions: (\d+)\)")
AB_NON2XX = re.compile(r"Non-2xx responses:\s+(\d+)")


def ab(port, body_file, n, c, csv=None):
    r = subprocess.run(["ab", "-q", "-n", str(n), "-c", str(c), "-p", body_file,
                        "-T", "application/json"] + (["-e", csv] if csv else []) +
                       ["http://127.0.0.1:%d/" % port],
                       capture_output=True, text=True, timeout=900)
    m = AB_RPS.search(r.stdout)
    if r.returncode != 0 or not m:
        raise RuntimeError("ab failed: %s %s" % (r.stdout[-500:], r.stderr[-500:]))
    f = AB_FAILED.search(r.stdout)
    failed = sum(int(x) for x in f.groups()) if f else 0
    non2xx = AB_NON2XX.search(r.stdout)
    out = {"rps": float(m.group(1)), "failed": failed + (int(non2xx.group(1)) if non2xx else 0)}
    if csv:     # "Percentage served,Time in ms": the median's line
        with open(csv) as f:
            for line in f:
                if line.startswith("50,"):
                    out["p50"] = float(line.split(",")[1])
    return out


# --- the FastCGI mode ----------------------------------------------------------

def fcgi_bench(ts, tmp, workloads, cgi, direct, db, quick, log):
    """pyexec-fcgi through lighttpd (cgi/conf/lighttpd-fcgi.conf) against
    pyexec.cgi and bwrap there (fcgi_rps), a static C FastCGI responder's
    p50 (floor-fcgi.c), and the pure-run time (execution_time_ms) of the
    imports and cpu50 workloads in both modes."""
    floor = build(tmp, "floor-fcgi", ["-lfcgi"])
    fcgi = os.path.join(os.path.dirname(cgi), "pyexec-fcgi")
    out = {"rps": {}, "p50": {}, "run": {}}
    bf = os.path.join(tmp, "ab-fcgi-hello.json")
    with open(bf, "w") as fh:
        json.dump({"code": workloads["hello"], "input_data": {}}, fh)
    n8, n1 = (8, 4) if quick else (600, 200)
    for name, binary in (("pyexec-fcgi", fcgi), (BARE, fcgi), ("floor-fcgi", floor)):
        ts.FCGI = binary
        srv = (bare_zygote(ts) if name == BARE else ts.LighttpdFcgi)("lighttpd-fcgi")
        with sqlite3.connect(srv.db) as c:
            c.executemany("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) "
                          "DO UPDATE SET value = excluded.value",
                          [("default_quota", "-1"), ("timeout_ms", "30000")])
        srv.start()
        try:
            ab(srv.port, bf, max(8, n8 // 10), 8)	# warm-up
            out["rps"][name] = ab(srv.port, bf, n8, 8)
            out["p50"][name] = ab(srv.port, bf, n1, 1, os.path.join(tmp, "ab.csv"))
            if name != "floor-fcgi":
                out["run"][name] = pure_runs(srv, workloads, cgi, direct, db,
                                             3 if quick else 20)
        finally:
            srv.stop()
        log("lighttpd %s done" % name)
    out["trace"] = fcgi_trace(tmp, fcgi, db, workloads["hello"], 5 if quick else 60)
    return out


# pyexec-fcgi with a zygote that imports nothing (--zygote-modules none).
BARE = "pyexec-fcgi, bare zygote"


def bare_zygote(ts):
    class Bare(ts.LighttpdFcgi):
        def edits(self):
            e = super().edits()
            e[r'    "bin-path" => .*'] = ('    "bin-path" => var.pyexec_fcgi + '
                                         '" --workers 8 --zygote-modules none",')
            return e
    return Bare


def fcgi_trace(tmp, fcgi, db, code, n):
    """Where a pyexec-fcgi request's time goes: n hellos to a pyexec-fcgi
    of its own (one worker, its stderr kept) with PYEXEC_TRACE_TIMING=1 as
    the requests' parameter; each phase's median (us), the first five
    requests left out."""
    sys.path.insert(0, os.path.join(REPO, "tests", "helpers"))
    import fcgi_client  # noqa: E402  (the tests' FastCGI client)
    sock, log = os.path.join(tmp, "trace-fcgi.sock"), os.path.join(tmp, "trace-fcgi.log")
    with open(log, "w") as lf:
        p = subprocess.Popen([fcgi, "--listen", sock, "--workers", "1"],
                             env={"PATH": "/usr/bin:/bin", "PYEXEC_DB": db,
                                  "PYEXEC_RUN_DIR": RUN_DIR[0]},
                             stdout=lf, stderr=lf)
    try:
        for _ in range(300):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        body = json.dumps({"code": code, "input_data": {}}).encode()
        env = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/json",
               "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1",
               "PYEXEC_TRACE_TIMING": "1"}
        for _ in range(n + 5):
            out, _, _ = fcgi_client.request(sock, env, body)
            if b'"success": true' not in out:
                raise RuntimeError("pyexec-fcgi trace run failed: %r" % out[-300:])
    finally:
        p.terminate()
        p.wait(60)
    with open(log, "rb") as f:
        lines = [x for x in f.read().split(b"\n") if b"pyexec-trace:" in x][5:]
    phases = {}
    for t in filter(None, (parse_trace(x) for x in lines)):
        for k, v in t.items():
            phases.setdefault(k, []).append(v)
    return {k: med(v) for k, v in phases.items()}


def pure_runs(srv, workloads, cgi, direct, db, n):
    """The programs' own time (the broker's measure, READY to exit) of the
    imports and cpu50 workloads: pyexec.cgi run directly, pyexec-fcgi
    through the server, alternately; and pyexec-fcgi's whole request as
    the client sees it (wall)."""
    import urllib.request
    runs = {}
    for wname in ("imports", "cpu50"):
        body = json.dumps({"code": workloads[wname], "input_data": {}}).encode()
        got = {"cgi": [], "fcgi": [], "wall": []}
        for _ in range(n):
            r = direct.once([cgi], body, cgi_env(db, len(body)))
            got["cgi"].append(parse_body(r["out"])["execution_time_ms"])
            req = urllib.request.Request("http://127.0.0.1:%d/" % srv.port, data=body,
                                         headers={"Content-Type": "application/json"})
            t0 = time.perf_counter()
            with urllib.request.urlopen(req, timeout=60) as f:
                got["fcgi"].append(json.loads(f.read())["execution_time_ms"])
            got["wall"].append((time.perf_counter() - t0) * 1e3)
        runs[wname] = {k: med(v) for k, v in got.items()}
    return runs


# --- the run -----------------------------------------------------------------

def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        with open("/etc/debian_version") as f:
            deb = f.read().strip()
    except OSError:
        deb = "?"
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "debian": deb, "python": platform.python_version()}


def calibrate_cpu50(direct):
    """The loop count that takes ~50 ms under python3 -I -S -c."""
    n = 200000
    for _ in range(4):
        code = WORKLOADS["cpu50"] % n
        base = min(direct.once([PY, "-I", "-S", "-c", "pass"], b"", {})["wall"] for _ in range(3))
        t = min(direct.once([PY, "-I", "-S", "-c", code], b"", {})["wall"] for _ in range(3))
        loop = max(t - base, 1.0)
        n = int(n * 50.0 / loop)
    return n


def build(tmp, name, libs=()):
    exe = os.path.join(tmp, name)
    subprocess.run(["cc", "-O2", "-o", exe, os.path.join(HERE, name + ".c")] + list(libs),
                   check=True)
    return exe


def new_db(direct, cgi, tmp, modules="seed"):
    d = tempfile.mkdtemp(prefix="db-", dir=tmp)
    db = os.path.join(d, "pyexec.db")
    r = direct.once([cgi], b"", dict(cgi_env(db), REQUEST_METHOD="GET"))
    assert b"405" in r["out"], r
    with sqlite3.connect(db) as c:
        c.executemany("INSERT INTO settings (key, value) VALUES (?, ?) "
                      "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                      [("default_quota", "-1"), ("allowed_modules", modules)])
    return db


def metrics_db(direct, cgi, tmp, nrows):
    """A database with nrows audit rows shaped like a service's (mostly ok
    runs with their code, some errors, refusals and rows still running) and
    an admin; returns (path, token)."""
    import hashlib
    import random
    db = new_db(direct, cgi, tmp)
    token = "pyx_" + os.urandom(32).hex()
    shapes = [("ok", 200)] * 80 + [("error", 200)] * 10 + [("rejected", 429)] * 5 + \
             [("rejected", 400)] * 2 + [("timeout", 200)] * 2 + [("running", None)]
    rnd = random.Random(7)
    now = int(time.time() * 1000)

    def rows():
        for i in range(nrows):
            o, h = rnd.choice(shapes)
            done = o not in ("rejected", "running")
            yield ("b%031x" % i, now - nrows + i, "anon:10.0.%d.%d" % (i % 200, i % 250),
                   WORKLOADS["hello"] if o != "rejected" else None, o, h,
                   rnd.random() * 300 if done else None,
                   rnd.randint(1, 300) if done else None,
                   now - nrows + i + 10000 if o == "running" else None)
    with sqlite3.connect(db) as c:
        c.executemany("INSERT INTO runs (id, started_ms, identity, code, outcome, "
                      "http_status, exec_ms, cpu_ms, deadline_ms) VALUES "
                      "(?, ?, ?, ?, ?, ?, ?, ?, ?)", rows())
        c.execute("INSERT INTO users (name, token_hash, is_admin, created_ms) "
                  "VALUES ('ops', ?, 1, ?)", (hashlib.sha256(token.encode()).hexdigest(), now))
    # Rows written by hand are outside /metrics' running totals until
    # vacuum rebuilds them from the log, as README says.
    subprocess.run([os.path.join(os.path.dirname(cgi), "pyexec-admin"), "--db", db,
                    "vacuum"], check=True, capture_output=True, timeout=3600)
    return db, token


def metrics_bench(direct, cgi, tmp, nrows, n, log):
    """GET /metrics over nrows audit rows: wall per scrape, as a scraper
    sees it (the whole CGI, the database's pages in the page cache)."""
    db, token = metrics_db(direct, cgi, tmp, nrows)
    env = dict(cgi_env(db), REQUEST_METHOD="GET", REQUEST_URI="/metrics",
               HTTP_AUTHORIZATION="Bearer " + token)
    out = []
    for i in range(n + 1):
        r = direct.once([cgi], b"", env)
        if b"pyexec_requests_total" not in r["out"]:
            raise RuntimeError("/metrics failed: %r" % r["out"][:300])
        if i:		# the first one warms the page cache
            out.append(r)
    total = sum(float(l.rsplit(b" ", 1)[1]) for l in r["out"].splitlines()
                if l.startswith(b"pyexec_requests_total{"))
    if total != nrows + 1:	# new_db's own request
        raise RuntimeError("/metrics counted %d requests of %d" % (total, nrows + 1))
    log("/metrics over %d rows done" % nrows)
    return out


# --- PostgreSQL --------------------------------------------------------------

def pg_stores(tmp):
    """A PostgreSQL server (tests/pg.py: its own initdb, a Unix socket and
    127.0.0.1), and the same database by both ways, as pyexec-admin init
    and config set make it: (server, unix URI, tcp URI)."""
    sys.path.insert(0, os.path.join(REPO, "tests"))
    import pg  # noqa: E402
    server = pg.Server()
    server.start()
    run = os.path.join(tmp, "pg-run")
    os.mkdir(run)
    unix = pg.new_store(server, quota=-1, settings={"timeout_ms": "30000"},
                        run=run)
    name = unix.split("?")[0].rsplit("/", 1)[1]
    tcp = server.uri(name, tcp=True)
    pg.conftest.PG_RUN_DIRS[tcp] = pg.conftest.PG_RUN_DIRS[unix]
    return server, unix, tcp


def direct_bench(direct, subjects, workloads, n, log):
    """Interleaved: each round runs every subject once, so that drift in the
    machine's state hits every subject alike; the order rotates by one each
    round, so that each subject follows every other one alike (what a
    subject leaves behind, such as the kernel tearing down its namespaces,
    costs whoever comes next)."""
    res = {}
    for wname, code in workloads.items():
        body = json.dumps({"code": code, "input_data": {}}).encode()
        for s in subjects:
            res[(wname, s["name"])] = []
        for i in range(n + 2):
            k = i % len(subjects)
            for s in subjects[k:] + subjects[:k]:
                argv, b, env = s["cmd"](code, body)
                r = direct.once(argv, b, env)
                if r["rc"] != 0:
                    raise RuntimeError("%s %s: exit %s: %r" % (s["name"], wname, r["rc"], r["err"][-300:]))
                if s.get("check"):
                    s["check"](r, wname)
                if i >= 2:	# two warm-up rounds
                    res[(wname, s["name"])].append(r)
        log("direct %-8s done" % wname)
    return res


def fmt(x, nd=1):
    return "-" if x is None or x != x else ("%.*f" % (nd, x))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: a few requests of each")
    ap.add_argument("--cgi", default=os.path.join(REPO, "pyexec.cgi"))
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--json", help="also write the raw figures here")
    ap.add_argument("-n", type=int, help="requests per subject and workload (direct)")
    ap.add_argument("--no-lighttpd", action="store_true")
    args = ap.parse_args()
    cgi = os.path.abspath(args.cgi)
    quick = args.quick
    n_fast = args.n or (3 if quick else 60)
    n_slow = args.n or (2 if quick else 20)

    def log(msg):
        print("bench: %s" % msg, file=sys.stderr, flush=True)

    tmp = tempfile.mkdtemp(prefix="pyexec-bench-")
    os.chmod(tmp, 0o755)
    try:
        RUN_DIR.append(os.path.join(tmp, "run"))
        direct = Direct(tmp, build(tmp, "launch"))
        floor = build(tmp, "floor")
        for f in ("cgi_runner.py", "py-cgi.sh", "bwrap-cgi.sh"):
            shutil.copy2(os.path.join(HERE, f), os.path.join(tmp, f))
        db = new_db(direct, cgi, tmp)
        compute_db = new_db(direct, cgi, tmp, "compute")
        cpu_n = 20000 if quick else calibrate_cpu50(direct)
        workloads = dict(WORKLOADS)
        workloads["cpu50"] = WORKLOADS["cpu50"] % cpu_n
        log("cpu50 loop: %d iterations" % cpu_n)

        expected = {}

        def check_pyexec(r, wname):
            j = parse_body(r["out"])
            if not j.get("success"):
                raise RuntimeError("pyexec %s failed: %r" % (wname, j))
            expected.setdefault(wname, j["output"])

        def check_cgi(r, wname):
            j = parse_body(r["out"])
            if not j.get("success"):
                raise RuntimeError("%s failed: %r" % (wname, j))

        def body_cmd(argv, envx=None, with_db=False, the_db=None):
            def cmd(code, body):
                return argv, body, cgi_env((the_db or db) if with_db else None,
                                           len(body), envx)
            return cmd

        subjects = [
            {"name": "python -c", "cmd": lambda code, body: ([PY, "-I", "-S", "-c", code], b"", {})},
            {"name": "floor", "cmd": body_cmd([floor])},
            {"name": "py-cgi", "cmd": body_cmd([os.path.join(tmp, "py-cgi.sh")]), "check": check_cgi},
            {"name": "bwrap", "cmd": body_cmd([os.path.join(tmp, "bwrap-cgi.sh")]), "check": check_cgi},
            {"name": "pyexec", "cmd": body_cmd([cgi], {"PYEXEC_TRACE_TIMING": "1"}, True),
             "check": check_pyexec},
        ]
        fast = {k: workloads[k] for k in ("hello", "imports")}
        slow = {k: workloads[k] for k in ("cpu50", "alloc100")}
        res = direct_bench(direct, subjects, fast, n_fast, log)
        res.update(direct_bench(direct, subjects, slow, n_slow, log))
        compute = [s for s in subjects if s["name"] != "pyexec"] + [
            {"name": "pyexec", "cmd": body_cmd([cgi], {"PYEXEC_TRACE_TIMING": "1"},
                                               True, compute_db),
             "check": check_pyexec}]
        res.update(direct_bench(direct, compute,
                                {k: workloads[k] for k in COMPUTE_WORKLOADS},
                                n_fast, log))
        # The trace itself costs: one more pass of pyexec without it.
        notrace = [{"name": "pyexec", "cmd": body_cmd([cgi], None, True), "check": check_pyexec}]
        nt = direct_bench(direct, notrace, {"hello": workloads["hello"]}, n_fast, log)

        # The backends side by side: hello, interleaved, in this run.
        pg_server, pg_unix, pg_tcp = pg_stores(tmp)
        backends = [
            {"name": "SQLite", "cmd": body_cmd([cgi], None, True), "check": check_pyexec},
            {"name": "PostgreSQL unix", "cmd": body_cmd([cgi], None, True, pg_unix),
             "check": check_pyexec},
            {"name": "PostgreSQL tcp", "cmd": body_cmd([cgi], None, True, pg_tcp),
             "check": check_pyexec},
        ]
        by_backend = direct_bench(direct, backends, {"hello": workloads["hello"]},
                                  n_fast, log)

        metrics_rows = 10000 if quick else 1000000
        scrapes = metrics_bench(direct, cgi, tmp, metrics_rows, 3 if quick else 20, log)

        # Through lighttpd.
        rps = {}
        if not args.no_lighttpd:
            ts = load_servers(cgi)
            servers = [("pyexec", None, ()),
                       ("py-cgi", os.path.join(tmp, "py-cgi.sh"), [os.path.join(tmp, "cgi_runner.py")]),
                       ("bwrap", os.path.join(tmp, "bwrap-cgi.sh"), [os.path.join(tmp, "cgi_runner.py")]),
                       ("floor", floor, ())]
            for sname, f, extra in servers:
                srv = start_lighttpd(ts, f, extra)
                try:
                    for wname, code in workloads.items():
                        if (sname == "floor" and wname != "hello") or \
                                wname in COMPUTE_WORKLOADS:
                            continue
                        bf = os.path.join(tmp, "ab-%s.json" % wname)
                        with open(bf, "w") as fh:
                            json.dump({"code": code, "input_data": {}}, fh)
                        heavy = wname in slow
                        for c in (1, 8):
                            n = (8 if quick else (40 if heavy else 300)) if c == 8 else \
                                (4 if quick else (20 if heavy else 100))
                            ab(srv.port, bf, max(c, n // 10), c)	# warm-up
                            rps[(wname, sname, c)] = ab(srv.port, bf, n, c)
                    log("lighttpd %s done" % sname)
                finally:
                    srv.stop()
            bf = os.path.join(tmp, "ab-hello.json")
            for bname, bdb in (("SQLite", None), ("PostgreSQL unix", pg_unix),
                               ("PostgreSQL tcp", pg_tcp)):
                srv = start_lighttpd(ts, None, db=bdb)
                try:
                    for c in (1, 8):
                        n = (8 if quick else 300) if c == 8 else (4 if quick else 100)
                        ab(srv.port, bf, max(c, n // 10), c)	# warm-up
                        rps[("hello", bname, c)] = ab(srv.port, bf, n, c)
                    log("lighttpd %s done" % bname)
                finally:
                    srv.stop()
        pg_server.close()

        fcgi = None
        if not args.no_lighttpd:
            fcgi = fcgi_bench(ts, tmp, workloads, cgi, direct, db, quick, log)

        report = write_report(args, machine(), workloads, cpu_n, res, nt, rps, quick,
                              (metrics_rows, scrapes), by_backend)
        if fcgi:
            report += fcgi_report(fcgi, rps)
        with open(args.out, "w") as f:
            f.write(report)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"direct": {"%s|%s" % k: [{x: r[x] for x in ("wall", "cpu", "maxrss")}
                                                     for r in v] for k, v in res.items()},
                           "rps": {"%s|%s|%d" % k: v for k, v in rps.items()}}, f)
        log("wrote %s" % args.out)
        print(report)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fcgi_report(f, rps):
    """The FastCGI mode's section and its targets (issue: pyexec-fcgi)."""
    L = ["\n## The FastCGI mode (pyexec-fcgi, through lighttpd)\n",
         "pyexec-fcgi as shipped (its zygote imports the seed profile's modules) "
         "and with `--zygote-modules none` (a bare zygote).\n"]
    cg = rps.get(("hello", "pyexec", 8), {}).get("rps")
    bw = rps.get(("hello", "bwrap", 8), {}).get("rps")
    fl = f["p50"]["floor-fcgi"].get("p50")
    L.append("| hello | requests/s, c=8 | failed | p50 ms, c=1 (ab) |")
    L.append("|---|---|---|---|")
    for name in ("pyexec-fcgi", BARE, "floor-fcgi"):
        L.append("| %s | %s | %d | %s |" % (name, fmt(f["rps"][name]["rps"]),
                                            f["rps"][name]["failed"], fmt(f["p50"][name].get("p50"))))
    L.append("| pyexec.cgi | %s | | |" % fmt(cg))
    L.append("| bwrap CGI | %s | | |\n" % fmt(bw))
    L.append("| workload | program's time, pyexec.cgi (ms, median) | pyexec-fcgi | ratio "
             "| bare zygote | ratio | whole request, pyexec-fcgi | bare zygote |")
    L.append("|---|---|---|---|---|---|---|---|")
    run, bare = f["run"]["pyexec-fcgi"], f["run"][BARE]
    for w, v in run.items():
        b = bare[w]
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            w, fmt(v["cgi"], 2), fmt(v["fcgi"], 2), ratio_txt(v["fcgi"], v["cgi"]),
            fmt(b["fcgi"], 2), ratio_txt(b["fcgi"], b["cgi"]), fmt(v["wall"], 1), fmt(b["wall"], 1)))
    L.append("\nWhere a hello's time goes in pyexec-fcgi (`PYEXEC_TRACE_TIMING=1`, one "
             "worker, medians in us; the child's phases, `c_*`, run alongside the "
             "worker's from `fork` on):\n")
    L.append("| phase | us |")
    L.append("|---|---|")
    for k, v in f["trace"].items():
        L.append("| %s | %s |" % (k, fmt(v, 0)))
    L.append("\n| target | measured | met |")
    L.append("|---|---|---|")

    def target(what, value, ok):
        L.append("| %s | %s | %s |" % (what, value, "yes" if ok else "**no**"))
    for name in ("pyexec-fcgi", BARE):
        fr = f["rps"][name]["rps"]
        if cg:
            target("%s hello c=8: >= 5x pyexec.cgi" % name, "%.2fx" % (fr / cg), fr / cg >= 5)
        if bw:
            target("%s hello c=8: >= 10x bwrap" % name, "%.2fx" % (fr / bw), fr / bw >= 10)
        p50 = f["p50"][name].get("p50")
        if p50 and fl:
            target("%s hello p50: <= 1.5x floor-fcgi" % name, "%.2fx" % (p50 / fl),
                   p50 / fl <= 1.5)
        for w, v in f["run"][name].items():
            if v["cgi"]:
                target("%s %s program time: <= 1.1x the CGI's" % (name, w),
                       "%.2fx" % (v["fcgi"] / v["cgi"]), v["fcgi"] / v["cgi"] <= 1.1)
    return "\n".join(L) + "\n"


def ratio_txt(a, b):
    return fmt(a / b, 2) if a and b else "-"


# Trace phases (sandbox/trace.h): the broker's chain, then the child's
# (names starting c_), which runs alongside the broker's database work
# until c_job_wait. c_scheduled (the fork until the child first runs) is
# the parent's fork plus a wait for a CPU: the work is counted in fork.
# c_exec loads pyexec-sandbox, the interpreter's program: the load that
# python3 -I -S -c does at its own start, so it counts with the
# interpreter, not the sandbox.
SANDBOX_PHASES = ["pipes", "fork", "handoff", "c_fds", "c_namespaces_uid",
                  "c_rlimits", "c_audit_hook", "c_landlock", "c_seccomp_load",
                  "c_ready_record"]
SANDBOX_EARLY = ["c_fds", "c_namespaces_uid"]
DB_PHASES = ["db_open", "identify", "admit_txn", "slot", "db_complete"]


def phase_part(k):
    if k in SANDBOX_PHASES:
        return "sandbox"
    if k in DB_PHASES:
        return "database"
    if k == "c_exec":
        return "interpreter (its program's load)"
    if k.startswith(("c_py_", "c_preload", "c_globals", "c_compile", "c_run")):
        return "interpreter"
    if k in ("c_scheduled", "c_job_wait", "wait_child"):
        return "waiting"
    return "other"


def backend_report(L, by_backend, rps):
    """The database backends side by side (README "Several hosts")."""
    L.append("## The database: SQLite and PostgreSQL\n")
    L.append("pyexec on hello with each backend, interleaved in this run: SQLite "
             "(the file), PostgreSQL 15 on this machine over its Unix socket and "
             "over TCP loopback (tests/pg.py's server: trust authentication, "
             "fsync off, so these are the protocol's and pyexec's costs, not a "
             "disk's). Direct: wall ms per request; through lighttpd: requests/s "
             "(ab). Ratio: over SQLite.\n")
    L.append("| backend | direct median ms | p99 ms | CPU ms | x SQLite | lighttpd c=1 rps | c=8 rps | c=8 x SQLite |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    base = med([r["wall"] for r in by_backend[("hello", "SQLite")]])
    base8 = rps.get(("hello", "SQLite", 8), {}).get("rps")
    for name in ("SQLite", "PostgreSQL unix", "PostgreSQL tcp"):
        walls = [r["wall"] for r in by_backend[("hello", name)]]
        c1 = rps.get(("hello", name, 1), {}).get("rps")
        c8 = rps.get(("hello", name, 8), {}).get("rps")
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            name, fmt(med(walls), 2), fmt(pct(walls, 99), 2),
            fmt(med([r["cpu"] for r in by_backend[("hello", name)]])),
            fmt(med(walls) / base, 2), fmt(c1), fmt(c8),
            fmt(c8 / base8 if c8 and base8 else None, 2)))
    L.append("")


def write_report(args, mach, workloads, cpu_n, res, nt, rps, quick, metrics,
                 by_backend=None):
    L = []
    cmd = "/usr/bin/python3 bench/bench.py" + (" --quick" if quick else "")
    L.append("# pyexec benchmark results\n")
    if quick:
        L.append("**Smoke run (`--quick`): a handful of requests, the figures mean nothing.**\n")
    L.append("- date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    L.append("- command: `%s` (`make bench%s`)" % (cmd, " BENCH_QUICK=1" if quick else ""))
    L.append("- machine: %d cores, %s; kernel %s; Debian %s; Python %s" % (
        mach["nproc"], mach["cpu"], mach["kernel"], mach["debian"], mach["python"]))
    L.append("- cpu50 loop: %d iterations (calibrated to ~50 ms under `python3 -I -S -c`)\n" % cpu_n)

    L.append("## Invoked directly (one request at a time)\n")
    L.append("Wall and CPU per request in ms, measured by bench/launch.c around fork "
             "and wait4 (CPU: user+system of the process and the children it reaped; "
             "bwrap's sandboxed process is reaped inside its PID namespace and does "
             "not show). Peak memory in KB: `rss` is wait4's maxrss (the largest "
             "process of the tree), for pyexec `broker` is the broker's own "
             "(PYEXEC_TRACE_TIMING) and `child` the sandbox's (the response's "
             "peak_memory_kb). Ratio: median wall over `python -c` on the same code.\n")
    L.append("| workload | subject | median ms | p99 ms | CPU ms | rss KB | broker KB | child KB | x python -c |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    traces = {}
    for (wname, sname), runs in res.items():
        walls = [r["wall"] for r in runs]
        base = med([r["wall"] for r in res[(wname, "python -c")]])
        broker = child = None
        if sname == "pyexec":
            tr = [parse_trace(r["err"]) for r in runs]
            tr = [t for t in tr if t]
            traces[wname] = tr
            broker = med([t["broker_maxrss_kb"] for t in tr]) if tr else None
            child = med([parse_body(r["out"]).get("peak_memory_kb", 0) for r in runs])
        L.append("| %s | %s | %s | %s | %s | %d | %s | %s | %s |" % (
            wname, sname, fmt(med(walls), 2), fmt(pct(walls, 99), 2),
            fmt(med([r["cpu"] for r in runs])), med([r["maxrss"] for r in runs]),
            fmt(broker, 0), fmt(child, 0), fmt(med(walls) / base, 2)))
    ntw = [r["wall"] for r in nt[("hello", "pyexec")]]
    L.append("\npyexec hello without PYEXEC_TRACE_TIMING: median %s ms, p99 %s ms "
             "(the figures above are with it on).\n" % (fmt(med(ntw), 2), fmt(pct(ntw, 99), 2)))

    # Breakdown.
    tr = traces.get("hello") or []
    if tr:
        keys = [k for k in tr[0] if k not in ("broker_maxrss_kb", "total")]
        L.append("## Where a pyexec request goes (hello, PYEXEC_TRACE_TIMING=1, median µs)\n")
        L.append("Two chains that overlap: the broker's, then the child's (`c_`), forked "
                 "before the database is opened; each phase is the time since the previous "
                 "one in its chain. The child confines itself while the broker does its "
                 "database work, then waits for its job (`c_job_wait`).\n")
        L.append("| phase | µs | part of |")
        L.append("|---|---:|---|")
        for k in keys:
            L.append("| %s | %s | %s |" % (k, fmt(med([t.get(k, 0) for t in tr]), 0), phase_part(k)))
        L.append("| total (broker start to answer) | %s | |" % fmt(med([t.get("total", 0) for t in tr]), 0))
        sb = med([sum(t.get(k, 0) for k in SANDBOX_PHASES) for t in tr])
        early = med([sum(t.get(k, 0) for k in SANDBOX_EARLY) for t in tr])
        dbt = med([sum(t.get(k, 0) for k in DB_PHASES) for t in tr])
        L.append("\nWhat the sandbox adds (%s): **%s µs** of work per request, of which "
                 "%s µs (%s) happen in the child before it needs its job, alongside the "
                 "broker's database work when the child gets a CPU at once (c_scheduled). "
                 "Not in it: c_exec, %s µs, the load of pyexec-sandbox, which is the "
                 "interpreter's program (static libpython), the same load `python3 -I -S -c` "
                 "does at its start; pyexec.cgi itself loads no Python. "
                 "Database work (%s): **%s µs**.\n" % (
                     ", ".join(SANDBOX_PHASES), fmt(sb, 0), fmt(early, 0),
                     ", ".join(SANDBOX_EARLY),
                     fmt(med([t.get("c_exec", 0) for t in tr]), 0),
                     ", ".join(DB_PHASES), fmt(dbt, 0)))
        hello_pyexec = med([r["wall"] for r in res[("hello", "pyexec")]])
    else:
        sb = dbt = hello_pyexec = None

    if rps:
        L.append("## Through lighttpd (requests/s, ab)\n")
        L.append("| workload | concurrency | pyexec | py-cgi | bwrap | floor | pyexec / py-cgi | pyexec / bwrap |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for wname in workloads:
            for c in (1, 8):
                g = lambda s: rps.get((wname, s, c), {}).get("rps")
                p, q, b = g("pyexec"), g("py-cgi"), g("bwrap")
                L.append("| %s | %d | %s | %s | %s | %s | %s | %s |" % (
                    wname, c, fmt(p), fmt(q), fmt(b), fmt(g("floor")),
                    fmt(p / q if p and q else None, 2), fmt(p / b if p and b else None, 2)))
        bad = {"%s/%s/c%d" % k: v["failed"] for k, v in rps.items() if v["failed"]}
        if bad:
            L.append("\nFailed or non-2xx responses: %s\n" % bad)
        L.append("")

    if by_backend:
        backend_report(L, by_backend, rps)

    mrows, scrapes = metrics
    mwall = [r["wall"] for r in scrapes]
    L.append("## GET /metrics\n")
    L.append("A scrape with an admin's token of a database holding %d audit rows "
             "(mostly ok runs with their code): the whole CGI, wall ms over %d scrapes "
             "after a first that warms the page cache. The figures come from the "
             "running totals the writers keep, and the rows still running.\n" % (mrows, len(scrapes)))
    L.append("| rows | median ms | p99 ms | CPU ms |")
    L.append("|---:|---:|---:|---:|")
    L.append("| %d | %s | %s | %s |\n" % (mrows, fmt(med(mwall), 1), fmt(pct(mwall, 99), 1),
                                        fmt(med([r["cpu"] for r in scrapes]), 1)))

    # Targets.
    def ratio(w, s, base):
        return med([r["wall"] for r in res[(w, s)]]) / med([r["wall"] for r in res[(w, base)]])
    L.append("## Targets\n")
    L.append("| target | figure | met |")
    L.append("|---|---:|---|")
    r1 = ratio("hello", "pyexec", "python -c")
    L.append("| hello direct, database included: <= 1.5x `python3 -I -S -c` | %.2fx | %s |" % (r1, "yes" if r1 <= 1.5 else "**no**"))
    r2 = ratio("imports", "pyexec", "python -c")
    L.append("| imports direct: <= 1.2x `python3 -I -S -c` | %.2fx | %s |" % (r2, "yes" if r2 <= 1.2 else "**no**"))
    if sb is not None:
        L.append("| what the sandbox adds: < 1 ms | %.2f ms | %s |" % (sb / 1e3, "yes" if sb < 1000 else "**no**"))
    if rps:
        for w in ("hello", "imports"):
            p = rps.get((w, "pyexec", 8), {}).get("rps")
            q = rps.get((w, "py-cgi", 8), {}).get("rps")
            b = rps.get((w, "bwrap", 8), {}).get("rps")
            if p and q:
                L.append("| lighttpd c=8 %s: >= 80%% of py-cgi | %.0f%% | %s |" % (w, 100 * p / q, "yes" if p / q >= 0.8 else "**no**"))
            if p and b:
                L.append("| lighttpd c=8 %s: >= 2x bwrap | %.2fx | %s |" % (w, p / b, "yes" if p / b >= 2 else "**no**"))
    mm = med(mwall)
    L.append("| /metrics over %d rows: < 100 ms | %.1f ms | %s |" % (
        mrows, mm, "yes" if mm < 100 else "**no**"))
    L.append("")
    return "\n".join(L)


if __name__ == "__main__":
    main()
