"""Shared helpers for the black-box tests: run pyexec.cgi exactly as a web
server does (CGI/1.1 environment, body on stdin, response on stdout)."""
import json
import os
import subprocess

import pytest

CGI = os.environ.get("PYEXEC_CGI", os.path.join(os.path.dirname(__file__), "..", "pyexec.cgi"))
NOPY_CGI = os.environ.get("PYEXEC_NOPY_CGI", "")
TRY_SYSCALL = os.environ.get("PYEXEC_TRY_SYSCALL", "")

# Limits lowered so the suite runs in minutes; one test proves the defaults.
FAST_LIMITS = {
    "PYEXEC_TIMEOUT_MS": "3000",
    "PYEXEC_MEMORY_MB": "256",
}


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


def cgi_raw(body, env=None, cgi=None, timeout=120, method="POST",
            content_type="application/json", content_length=None):
    """Runs the CGI with body (bytes) and returns a Response.

    env adds to (or, with value None, removes from) the CGI environment."""
    e = {"PATH": "/usr/bin:/bin", "GATEWAY_INTERFACE": "CGI/1.1",
         "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1"}
    e.update(FAST_LIMITS)
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
    p = subprocess.run([cgi or CGI], input=body, env=e, capture_output=True,
                       timeout=timeout)
    return Response(p.stdout, p.returncode, p.stderr)


def run_code(code, input_data=None, env=None, cgi=None, **fields):
    """Sends {"code": code, "input_data": ...} and returns the Response."""
    req = {"code": code}
    if input_data is not None:
        req["input_data"] = input_data
    req.update(fields)
    return cgi_raw(json.dumps(req).encode(), env=env, cgi=cgi)


@pytest.fixture
def run():
    return run_code
