"""The benchmark's harness works: a smoke run of bench/bench.py --quick
drives every subject (directly and through lighttpd) and writes its report.
Timings are not checked: CI does not fail on them."""
import os
import subprocess
import sys

from conftest import CGI

BENCH = os.path.join(os.path.dirname(__file__), "..", "bench", "bench.py")


def test_bench_quick_writes_results(tmp_path):
    out = tmp_path / "RESULTS.md"
    p = subprocess.run(["/usr/bin/python3", BENCH, "--quick", "--cgi", CGI,
                        "--out", str(out)], capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    text = out.read_text()
    for section in ("## Invoked directly", "## Where a pyexec request goes",
                    "## Through lighttpd", "## GET /metrics", "## Targets",
                    "## The database: SQLite and PostgreSQL",
                    "## The FastCGI mode"):
        assert section in text, text
    for subject in ("python -c", "floor", "py-cgi", "bwrap", "pyexec",
                    "SQLite", "PostgreSQL unix", "PostgreSQL tcp"):
        assert "| %s |" % subject in text
    assert "Failed or non-2xx" not in text, text
    assert "nproc" in text or "cores" in text
    assert "| typing | pyexec |" in text, text   # under compute
    for subject in ("pyexec-fcgi", "pyexec-fcgi, bare zygote", "floor-fcgi"):
        assert "| %s |" % subject in text, text
    # the trace of a pyexec-fcgi hello: the worker's and the child's phases
    for phase in ("fork", "admit_txn", "c_namespaces_uid", "c_run"):
        assert "\n| %s | " % phase in text, text
