"""Load test: pyexec.cgi under the shipped lighttpd configuration on a
loopback port, driven by a bounded pool of HTTP clients for a fixed time.

The mix, per client, in turn: hello world, a 200 ms computation, a run that
times out (a user with a 500 ms limit), a memory bomb (a user with 64 MiB)
and a rate-limited caller (a user with a quota of 3 runs an hour, so
nearly all its requests get 429). Over the host's sandbox cap
(max_concurrent, 2 x cores) requests wait up to concurrency_wait_ms, then
get 503: with 16 clients on 2 cores that is by design.

What it proves, after the run:
  - only the designed statuses: 200, 429, 503 (no 5xx but 503, no 4xx but
    429, no connection error);
  - every request left exactly one audit row (rows added == requests sent);
  - no pyexec process (broker or sandbox) is left, and no zombie under
    lighttpd;
  - lighttpd's open descriptors did not grow (a small slack);
  - the database passes PRAGMA integrity_check.

    make loadtest                      # 60 s at concurrency 16
    python3 tests/loadtest.py -d 8 -c 8

tests/test_load.py runs a short variant in `make test`.
"""
import argparse
import json
import os
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import add_user               # noqa: E402
from test_servers import (Lighttpd, LighttpdFcgi, descendants, post, pyexec_procs,  # noqa: E402
                          rows, wait_for)

HELLO = 'print("Hello from Python!")'
# About 200 ms of CPU, measured by the program itself.
COMPUTE = ("import datetime\n"
           "end = datetime.datetime.now() + datetime.timedelta(milliseconds=200)\n"
           "n = 0\n"
           "while datetime.datetime.now() < end:\n"
           "    n += 1\n"
           "print(n > 0)\n")
SPIN = "while True:\n    pass\n"
BOMB = "x = []\nwhile True:\n    x.append(bytearray(8 * 1024 * 1024))\n"

# (name, code, user, the statuses and outcomes it may end with)
KINDS = [
    ("hello", HELLO, "alice"),
    ("compute", COMPUTE, "alice"),
    ("timeout", SPIN, "slowpoke"),
    ("memory", BOMB, "bomber"),
    ("ratelimited", HELLO, "capped"),
]
DESIGNED = {200, 429, 503}
FD_SLACK = 4


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def zombies(roots):
    out = []
    for pid in descendants(roots):
        try:
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2:].split()[0] == "Z":
            out.append(pid)
    return out


def run_load(duration_s, concurrency, out=sys.stdout, fcgi=False):
    """Runs the load and checks it; returns the figures (a dict). Raises
    AssertionError on any broken promise. fcgi: through pyexec-fcgi
    (cgi/conf/lighttpd-fcgi.conf) instead of pyexec.cgi."""
    server = LighttpdFcgi("lighttpd-fcgi") if fcgi else Lighttpd("lighttpd")
    try:
        server.start()
        tokens = {"alice": server.token,
                  "slowpoke": add_user(server.db, "slowpoke", quota=-1, timeout_ms=500),
                  "bomber": add_user(server.db, "bomber", quota=-1, memory_mb=64),
                  "capped": add_user(server.db, "capped", quota=3)}
        light = server.procs[0].pid
        # Warm up (lighttpd opens its log and CGI machinery lazily).
        for _ in range(3):
            r = post(server.port, HELLO, bearer=tokens["alice"])
            assert r.status == 200, r
        fds_before = fd_count(light)
        rows_before = rows(server.db, "SELECT count(*) FROM runs")[0][0]

        lock = threading.Lock()
        results = []            # (kind, status, seconds, outcome)
        errors = []
        deadline = time.monotonic() + duration_s

        def client(i):
            n = i
            while time.monotonic() < deadline:
                kind, code, user = KINDS[n % len(KINDS)]
                n += 1
                t0 = time.monotonic()
                try:
                    r = post(server.port, code, bearer=tokens[user])
                except Exception as e:      # a connection error is a failure
                    with lock:
                        errors.append((kind, repr(e)))
                    continue
                dt = time.monotonic() - t0
                with lock:
                    results.append((kind, r.status, dt,
                                    (r.json or {}).get("error_type")))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
        t_start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(duration_s + 120)
        elapsed = time.monotonic() - t_start
        assert not any(t.is_alive() for t in threads), "a client never finished"

        # Every run has ended: no broker or sandbox left, no zombie.
        wait_for("every run to end", lambda: not pyexec_procs(server.roots()), 15)
        left_zombies = zombies(server.roots())
        time.sleep(0.5)     # lighttpd closes a finished CGI's pipes lazily
        fds_after = fd_count(light)
        rows_after = rows(server.db, "SELECT count(*) FROM runs")[0][0]
        running = rows(server.db, "SELECT count(*) FROM runs WHERE outcome = 'running'")[0][0]
        integrity = rows(server.db, "PRAGMA integrity_check")

        statuses = {}
        by_kind = {}
        for kind, status, dt, etype in results:
            statuses[status] = statuses.get(status, 0) + 1
            k = by_kind.setdefault(kind, {"n": 0, "statuses": {}, "error_types": {}})
            k["n"] += 1
            k["statuses"][status] = k["statuses"].get(status, 0) + 1
            k["error_types"][etype] = k["error_types"].get(etype, 0) + 1
        lat = sorted(dt for _, _, dt, _ in results)
        ok_lat = sorted(dt for kind, status, dt, _ in results
                        if kind == "hello" and status == 200)
        figures = {
            "duration_s": round(elapsed, 1), "concurrency": concurrency,
            "requests": len(results) + len(errors),
            "req_per_s": round(len(results) / elapsed, 1),
            "p50_ms": round(percentile(lat, 50) * 1000, 1),
            "p99_ms": round(percentile(lat, 99) * 1000, 1),
            "hello_p50_ms": round(percentile(ok_lat, 50) * 1000, 1),
            "hello_p99_ms": round(percentile(ok_lat, 99) * 1000, 1),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "by_kind": {k: {"n": v["n"],
                            "statuses": {str(s): c for s, c in sorted(v["statuses"].items())},
                            "error_types": {str(e): c for e, c in v["error_types"].items()}}
                        for k, v in sorted(by_kind.items())},
            "connection_errors": len(errors),
            "audit_rows_added": rows_after - rows_before,
            "rows_left_running": running,
            "lighttpd_fds": [fds_before, fds_after],
            "zombies": len(left_zombies),
            "integrity_check": integrity[0][0] if integrity else None,
        }
        print(json.dumps(figures, indent=2), file=out)
        print("%d requests in %.1f s at concurrency %d: %.1f req/s, p50 %.0f ms, "
              "p99 %.0f ms; statuses %s; audit rows %d; lighttpd fds %d -> %d; "
              "integrity_check %s"
              % (figures["requests"], elapsed, concurrency, figures["req_per_s"],
                 figures["p50_ms"], figures["p99_ms"], figures["statuses"],
                 figures["audit_rows_added"], fds_before, fds_after,
                 figures["integrity_check"]), file=out)

        unexpected = {s: c for s, c in statuses.items() if s not in DESIGNED}
        assert not errors, "connection errors: %r" % errors[:5]
        assert not unexpected, "unexpected statuses: %r" % unexpected
        assert results, "no request completed"
        assert rows_after - rows_before == len(results), \
            "audit rows %d != requests %d" % (rows_after - rows_before, len(results))
        assert running == 0, "rows left 'running': %d" % running
        assert not left_zombies, "zombies under lighttpd: %r" % left_zombies
        assert fds_after <= fds_before + FD_SLACK, \
            "lighttpd's descriptors grew: %d -> %d" % (fds_before, fds_after)
        assert integrity == [("ok",)], integrity
        # The mix really was exercised.
        kinds = figures["by_kind"]
        assert kinds["hello"]["statuses"].get("200"), kinds
        assert kinds["ratelimited"]["statuses"].get("429"), kinds
        return figures
    except BaseException:
        print(server.logs()[-4000:], file=sys.stderr)
        raise
    finally:
        server.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-d", "--duration", type=float, default=60.0)
    ap.add_argument("-c", "--concurrency", type=int, default=16)
    ap.add_argument("--fcgi", action="store_true",
                    help="through pyexec-fcgi (lighttpd-fcgi.conf)")
    a = ap.parse_args()
    run_load(a.duration, a.concurrency, fcgi=a.fcgi)
    print("load test passed")


if __name__ == "__main__":
    main()
