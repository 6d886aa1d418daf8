"""The load test's short variant (tests/loadtest.py; `make loadtest` runs
the full one: 60 s at concurrency 16): 8 s at concurrency 8 through the
shipped lighttpd configuration, with the same mix and the same proofs (only
200/429/503, one audit row per request, no process or zombie left, no
descriptor growth in lighttpd, integrity_check ok)."""
import loadtest


def test_short_load_through_lighttpd(capsys):
    with capsys.disabled():
        print()
        figures = loadtest.run_load(8, 8)
    assert figures["audit_rows_added"] == figures["requests"]


def test_short_load_through_pyexec_fcgi(capsys):
    """The same through lighttpd-fcgi.conf: pyexec-fcgi, its workers and
    their zygotes under the same mix and proofs."""
    with capsys.disabled():
        print()
        figures = loadtest.run_load(8, 8, fcgi=True)
    assert figures["audit_rows_added"] == figures["requests"]
