#!/usr/bin/python3
"""The per-call cost of MCP next to the REST request's, in one run: the
same program through pyexec.cgi as a REST POST, as an MCP tools/call at
/mcp, and through pyexec-mcp over stdio (one pyexec.cgi per message).
Prints the median and p90 wall time per call and the ratios to REST.

    bench/mcp_cost.py [-n N]   (run from the repository, after make)
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CGI = os.path.join(REPO, "pyexec.cgi")
MCP = os.path.join(REPO, "pyexec-mcp")
CODE = 'print("Hello from Python!")\nprint(sum([1,2,3,4,5]))'


def cgi(db, body, path):
    env = {"PATH": "/usr/bin:/bin", "GATEWAY_INTERFACE": "CGI/1.1",
           "REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/json",
           "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1",
           "PATH_INFO": path, "PYEXEC_DB": db}
    p = subprocess.run([CGI], input=body, env=env, capture_output=True)
    assert b"Hello from Python!" in p.stdout, p.stdout[:300]


def timed(fn, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200)
    n = ap.parse_args().n
    d = tempfile.mkdtemp(prefix="pyexec-mcp-bench-")
    db = os.path.join(d, "pyexec.db")
    subprocess.run([os.path.join(REPO, "pyexec-admin"), "--db", db, "init"],
                   check=True, capture_output=True)
    subprocess.run([os.path.join(REPO, "pyexec-admin"), "--db", db, "config",
                    "set", "default_quota", "-1"], check=True, capture_output=True)
    rest = json.dumps({"code": CODE, "input_data": {}}).encode()
    call = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "execute-python-code",
                                  "arguments": {"code": CODE, "input_data": {}}}}).encode()
    mcp = subprocess.Popen([MCP], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           env={"PATH": "/usr/bin:/bin", "PYEXEC_DB": db})

    def stdio():
        mcp.stdin.write(call + b"\n")
        mcp.stdin.flush()
        assert b"Hello from Python!" in mcp.stdout.readline()

    res = {"rest": [], "mcp": [], "stdio": []}
    fns = {"rest": lambda: cgi(db, rest, "/"), "mcp": lambda: cgi(db, call, "/mcp"),
           "stdio": stdio}
    for f in fns.values():		# warm-up
        timed(f, 5)
    for _ in range(n // 10):		# interleaved: the same machine state for all
        for k, f in fns.items():
            res[k] += timed(f, 10)
    mcp.stdin.close()
    mcp.wait()
    shutil.rmtree(d, ignore_errors=True)
    base = statistics.median(res["rest"])
    print("%-28s %10s %10s %8s" % ("per call (%d each)" % len(res["rest"]),
                                  "median ms", "p90 ms", "ratio"))
    for k, label in (("rest", "REST POST /"), ("mcp", "MCP tools/call at /mcp"),
                     ("stdio", "MCP over stdio (pyexec-mcp)")):
        v = sorted(res[k])
        print("%-28s %10.2f %10.2f %8.2f" % (label, statistics.median(v),
                                             v[int(len(v) * 0.9)],
                                             statistics.median(v) / base))


if __name__ == "__main__":
    main()
