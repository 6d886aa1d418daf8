"""MCP with a real client: the official TypeScript SDK
(@modelcontextprotocol/sdk, pinned by tests/mcp/package-lock.json) over
Streamable HTTP at /mcp through every shipped server configuration, and
over stdio through pyexec-mcp; curl through each server; pyexec-mcp's own
behaviour (stdout, tokens, a killed run)."""
import json
import os
import pwd
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import add_user, fresh_db, query
from test_servers import REPO, SEED_CODE, SEED_OUTPUT, server  # noqa: F401

MCP_BIN = os.environ.get("PYEXEC_MCP", os.path.join(REPO, "pyexec-mcp"))
CLIENT_DIR = os.path.join(REPO, "tests", "mcp")
NODE = "/usr/bin/node"
CALLS = [{"code": SEED_CODE, "input_data": {}},
         {"code": "print(input_data['a'] * 2)", "input_data": {"a": 21}},
         {"code": "1/0"}]


def need_client():
    assert os.path.exists(NODE), "Node.js missing: make deps installs it"
    assert os.path.isdir(os.path.join(CLIENT_DIR, "node_modules", "@modelcontextprotocol",
                                      "sdk")), "the MCP SDK is missing: make deps (npm ci)"


def sdk(mode, target, env=None, calls=CALLS):
    need_client()
    e = {"PATH": "/usr/bin:/bin", "PYEXEC_MCP_CALLS": json.dumps(calls)}
    e.update(env or {})
    p = subprocess.run([NODE, os.path.join(CLIENT_DIR, "client.mjs"), mode, target],
                       env=e, capture_output=True, timeout=180, cwd=CLIENT_DIR)
    assert p.returncode == 0, p.stderr.decode()[-3000:]
    return json.loads(p.stdout)


def check_session(out):
    assert out["server"]["name"] == "pyexec"
    assert [t["name"] for t in out["tools"]] == ["execute-python-code"]
    assert "statistics" in out["tools"][0]["description"]
    seed, bound, zero = out["results"]
    assert seed["isError"] is False
    assert seed["structuredContent"]["output"] == SEED_OUTPUT
    assert seed["content"][0]["text"] == SEED_OUTPUT
    assert bound["structuredContent"]["output"] == "42\n"
    assert zero["isError"] is True
    assert "ZeroDivisionError" in zero["content"][0]["text"]
    assert zero["structuredContent"]["error_type"] == "ZeroDivisionError"
    return [r["structuredContent"]["run_id"] for r in out["results"]]


def runs_of(db, ids):
    got = []
    for i in ids:
        r = query(db, "SELECT * FROM runs_view WHERE id = ?", (i,))
        assert len(r) == 1, i
        got.append(r[0])
    return got


def test_sdk_over_http(server):  # noqa: F811
    url = "http://127.0.0.1:%d/mcp" % server.port
    out = sdk("http", url, {"PYEXEC_MCP_BEARER": server.token})
    ids = check_session(out)
    got = runs_of(server.db, ids)
    assert [r["via"] for r in got] == ["mcp"] * 3
    assert [r["identity"] for r in got] == ["user:alice"] * 3
    assert [r["status"] for r in got] == ["ok", "ok", "error"]
    # nothing else was audited for the session (initialize, list, the
    # client's GET for a stream: 405, audited as a refusal)
    mcp_rows = query(server.db, "SELECT status, http_status FROM runs_view "
                     "WHERE via = 'mcp' AND outcome <> 'rejected'")
    assert len(mcp_rows) >= 3


def curl(*args):
    p = subprocess.run(["curl", "-sS", "-i", *args], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    head, _, body = p.stdout.replace(b"\r\n", b"\n").partition(b"\n\n")
    while head.startswith(b"HTTP/1.1 100"):
        head, _, body = body.partition(b"\n\n")
    status = int(head.split(b" ")[1])
    headers = {l.split(b":")[0].lower().decode(): l.split(b":", 1)[1].strip().decode()
               for l in head.split(b"\n")[1:] if b":" in l}
    return status, headers, body


def test_curl_through_server(server):  # noqa: F811
    url = "http://127.0.0.1:%d/mcp" % server.port
    hdr = ["-H", "Content-Type: application/json",
           "-H", "Accept: application/json, text/event-stream"]
    st, h, body = curl(url, *hdr, "-d", '{"jsonrpc":"2.0","id":1,"method":"initialize",'
                       '"params":{"protocolVersion":"2025-06-18","capabilities":{},'
                       '"clientInfo":{"name":"curl","version":"1"}}}')
    assert st == 200 and json.loads(body)["result"]["protocolVersion"] == "2025-06-18"
    st, h, body = curl(url, *hdr, "-d", '{"jsonrpc":"2.0","method":"notifications/initialized"}')
    assert st == 202 and body == b""
    st, h, body = curl(url, *hdr, "-H", "Authorization: Bearer " + server.token, "-d",
                       json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                   "params": {"name": "execute-python-code",
                                              "arguments": {"code": SEED_CODE}}}))
    r = json.loads(body)
    assert st == 200 and r["result"]["structuredContent"]["output"] == SEED_OUTPUT
    assert runs_of(server.db, [h["x-request-id"]])[0]["via"] == "mcp"
    for method in ("GET", "DELETE"):
        st, h, body = curl("-X", method, url)
        assert st == 405 and h["allow"] == "POST"
    st, h, body = curl(url, *hdr, "-H", "Origin: http://evil.example", "-d",
                       '{"jsonrpc":"2.0","id":3,"method":"ping"}')
    assert st == 403 and json.loads(body)["error"]["code"] == -32003
    st, h, body = curl(url, *hdr, "-H", "MCP-Protocol-Version: 1999-01-01", "-d",
                       '{"jsonrpc":"2.0","id":3,"method":"ping"}')
    assert st == 400
    st, h, body = curl(url, *hdr, "-d",
                       json.dumps({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                                   "params": {"name": "execute-python-code",
                                              "arguments": {"code": "print(1)",
                                                            "token": "pyx_bad"}}}))
    assert st == 401 and h["www-authenticate"].startswith("Bearer")
    assert json.loads(body)["error"]["code"] == -32001
    # the REST path is untouched next to it
    st, h, body = curl("http://127.0.0.1:%d/" % server.port, "-H",
                       "Content-Type: application/json", "-d",
                       json.dumps({"code": SEED_CODE}))
    assert st == 200 and json.loads(body)["output"] == SEED_OUTPUT


# --- stdio ------------------------------------------------------------------------

def local_name():
    return pwd.getpwuid(os.geteuid()).pw_name


def test_sdk_over_stdio():
    db = fresh_db(quota=-1)
    out = sdk("stdio", MCP_BIN, {"PYEXEC_DB": db, "PYEXEC_TIMEOUT_MS": "3000"})
    ids = check_session(out)
    got = runs_of(db, ids)
    assert [r["via"] for r in got] == ["stdio"] * 3
    assert [r["identity"] for r in got] == ["local:" + local_name()] * 3
    assert all(r["client_addr"] is None for r in got)


def stdio(lines, env=None, args=(), timeout=120):
    e = {"PATH": "/usr/bin:/bin", "PYEXEC_TIMEOUT_MS": "2000"}
    e.update(env or {})
    p = subprocess.run([MCP_BIN, *args], input=b"".join(l + b"\n" for l in lines),
                       env=e, capture_output=True, timeout=timeout)
    return p, [json.loads(l) for l in p.stdout.split(b"\n") if l]


def call_line(id, args):
    return json.dumps({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                       "params": {"name": "execute-python-code",
                                  "arguments": args}}).encode()


def test_stdio_answers_in_order_and_only_mcp_on_stdout():
    db = fresh_db(quota=-1)
    p, out = stdio([b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
                    b'{"jsonrpc":"2.0","method":"notifications/initialized"}',
                    b'not json',
                    b'',
                    call_line("c", {"code": "print('x' * 3)"}),
                    b'{"jsonrpc":"2.0","id":2,"method":"nope"}'],
                   env={"PYEXEC_DB": db})
    assert p.returncode == 0, p.stderr
    assert [m.get("id") for m in out] == [1, None, "c", 2]
    assert out[0]["result"] == {}
    assert out[1]["error"]["code"] == -32700
    assert out[2]["result"]["structuredContent"]["output"] == "xxx\n"
    assert out[3]["error"]["code"] == -32601
    assert all(m["jsonrpc"] == "2.0" for m in out)
    got = query(db, "SELECT identity, via, status FROM runs_view WHERE via = 'stdio'")
    assert [(r["identity"], r["status"]) for r in got] == [
        ("local:" + local_name(), "rejected"), ("local:" + local_name(), "ok"),
        ("local:" + local_name(), "rejected")]


def test_stdio_a_killed_run_does_not_end_the_server():
    db = fresh_db(quota=-1)
    p, out = stdio([call_line(1, {"code": "while True: pass"}),
                    call_line(2, {"code": "x = ' ' * (10**10)"}),
                    call_line(3, {"code": "print('still here')"})],
                   env={"PYEXEC_DB": db})
    assert p.returncode == 0
    assert out[0]["result"]["isError"] and out[0]["result"]["structuredContent"]["error_type"] == "TimeoutError"
    assert out[1]["result"]["isError"]
    assert out[2]["result"]["structuredContent"]["output"] == "still here\n"
    got = runs_of(db, [m["result"]["structuredContent"]["run_id"] for m in out])
    assert [r["status"] for r in got] == ["timeout", "memory", "ok"]


def test_stdio_token_from_env_or_file_never_argv():
    db = fresh_db(quota=0, settings={"anonymous": "deny"})
    tok = add_user(db, "carol", quota=-1)
    p, out = stdio([call_line(1, {"code": "print(1)"})], env={"PYEXEC_DB": db,
                                                              "PYEXEC_TOKEN": tok})
    assert out[0]["result"]["isError"] is False
    with tempfile.NamedTemporaryFile("w", delete=False) as f:
        f.write(tok + "\n")
    try:
        p, out2 = stdio([call_line(2, {"code": "print(2)"})], env={"PYEXEC_DB": db},
                        args=["--token-file", f.name])
        assert out2[0]["result"]["isError"] is False
    finally:
        os.unlink(f.name)
    p, _ = stdio([], env={"PYEXEC_DB": db}, args=["--token", tok])
    assert p.returncode == 2 and p.stdout == b""
    # a bad token is refused as over HTTP: 401's code
    p, out3 = stdio([call_line(3, {"code": "print(3)"})],
                    env={"PYEXEC_DB": db, "PYEXEC_TOKEN": "pyx_" + "0" * 64})
    assert out3[0]["error"]["code"] == -32001
    got = runs_of(db, [m["result"]["structuredContent"]["run_id"] for m in out + out2])
    assert [(r["identity"], r["via"]) for r in got] == [("user:carol", "stdio")] * 2


def test_stdio_local_identity_has_the_default_quota():
    db = fresh_db(quota=1, settings={"anonymous": "deny"})
    p, out = stdio([call_line(1, {"code": "print(1)"}), call_line(2, {"code": "print(2)"})],
                   env={"PYEXEC_DB": db})
    assert out[0]["result"]["isError"] is False
    assert out[1]["error"]["code"] == -32029
    rows = query(db, "SELECT identity, via, http_status FROM runs_view WHERE via = 'stdio'")
    assert rows == [{"identity": "local:" + local_name(), "via": "stdio", "http_status": 200},
                    {"identity": "local:" + local_name(), "via": "stdio", "http_status": 429}]


def test_stdio_sigterm_cancels_the_run_and_exits():
    db = fresh_db(quota=-1)
    p = subprocess.Popen([MCP_BIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE,
                         env={"PATH": "/usr/bin:/bin", "PYEXEC_DB": db,
                              "PYEXEC_TIMEOUT_MS": "20000"})
    p.stdin.write(call_line(1, {"code": "while True: pass"}) + b"\n")
    p.stdin.flush()
    deadline = time.time() + 30
    while time.time() < deadline and not query(db, "SELECT id FROM runs WHERE via = 'stdio' "
                                                   "AND outcome = 'running'"):
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    p.wait(30)
    rows = query(db, "SELECT status, error FROM runs_view WHERE via = 'stdio'")
    assert len(rows) == 1 and rows[0]["status"] != "running", rows
    assert "SIGTERM" in (rows[0]["error"] or ""), rows


def test_sdk_over_make_serve():
    """The SDK at /mcp of `make serve`, as the README tells a client."""
    from test_servers import make_serve
    with make_serve() as (port, var, printed):
        res = sdk("http", "http://localhost:%d/mcp" % port, calls=CALLS[:1])
        assert res["results"][0]["structuredContent"]["output"] == SEED_OUTPUT
        db = os.path.join(var, "pyexec.db")
        assert [r["via"] for r in query(db, "SELECT via FROM runs WHERE outcome = 'ok'")] == ["mcp"]
        assert "/mcp" in printed()
