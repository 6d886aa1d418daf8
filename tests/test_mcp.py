"""MCP at /mcp, black-box: pyexec.cgi driven as a web server drives it, with
JSON-RPC bodies. Every error of the front end, notifications, 405, Origin,
the version header, the quota over MCP, the token as argument vs header,
and one audit row per call (recording that it came over MCP)."""
import json
import os

import pytest

from conftest import add_user, cgi_raw, fresh_db, query

TOOL = "execute-python-code"
SEED_CODE = 'print("Hello from Python!")\nprint(sum([1,2,3,4,5]))'
MCP_ENV = {"PATH_INFO": "/mcp"}


def mcp(msg, db=None, env=None, raw=None, **kw):
    e = dict(MCP_ENV)
    e.update(env or {})
    body = raw if raw is not None else json.dumps(msg).encode()
    return cgi_raw(body, env=e, db=db, **kw)


def mcp_noparse(body, db=None, env=None, cgi=None, stderr=False):
    """For answers without a body (202): the raw bytes (and stderr, when
    asked, in place of the body)."""
    import subprocess
    from conftest import base_env, CGI
    e = base_env(db)
    e.update({"REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/json",
              "CONTENT_LENGTH": str(len(body))})
    e.update(MCP_ENV)
    e.update(env or {})
    p = subprocess.run([cgi or CGI], input=body, env=e, capture_output=True,
                       timeout=60)
    head, _, rest = p.stdout.partition(b"\n\n")
    headers = dict((l.split(":", 1)[0].strip().lower(), l.split(":", 1)[1].strip())
                   for l in head.decode().split("\n") if ":" in l)
    return int(headers["status"].split()[0]), headers, \
        (p.stderr if stderr else rest)


def call(args, id=1, db=None, env=None, **kw):
    return mcp({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": TOOL, "arguments": args}}, db=db, env=env,
               **kw)


def rows(db):
    """The rows after the one fresh_db's creating request left."""
    return query(db, "SELECT * FROM runs_view ORDER BY rowid")[1:]


@pytest.fixture
def db():
    return fresh_db(quota=-1)


def test_initialize_negotiates_the_version(db):
    for asked, got in [("2025-11-25", "2025-11-25"), ("2025-06-18", "2025-06-18"),
                       ("2025-03-26", "2025-03-26"), ("2024-11-05", "2024-11-05"),
                       ("2023-01-01", "2025-11-25"), ("x", "2025-11-25")]:
        r = mcp({"jsonrpc": "2.0", "id": 7, "method": "initialize",
                 "params": {"protocolVersion": asked, "capabilities": {},
                            "clientInfo": {"name": "t", "version": "1"}}}, db=db)
        assert r.status == 200 and r["id"] == 7, r
        res = r["result"]
        assert res["protocolVersion"] == got
        assert res["serverInfo"]["name"] == "pyexec" and res["serverInfo"]["version"]
        assert "tools" in res["capabilities"]
        assert "statistics" in res["instructions"] and "3000 ms" in res["instructions"]
        assert "mcp-session-id" not in r.headers
    assert rows(db) == []	# nothing ran, nothing to audit


def test_notifications_and_responses_get_202_and_no_body(db):
    for msg in [{"jsonrpc": "2.0", "method": "notifications/initialized"},
                {"jsonrpc": "2.0", "method": "notifications/cancelled",
                 "params": {"requestId": 1}},
                {"jsonrpc": "2.0", "id": 5, "result": {}},
                {"jsonrpc": "2.0", "id": 5, "error": {"code": 1, "message": "x"}}]:
        status, headers, body = mcp_noparse(json.dumps(msg).encode(), db=db)
        assert status == 202 and body == b"" and headers["content-length"] == "0"
    assert rows(db) == []


def test_ping(db):
    r = mcp({"jsonrpc": "2.0", "id": "p", "method": "ping"}, db=db)
    assert r.status == 200 and r.json == {"jsonrpc": "2.0", "id": "p", "result": {}}


def test_tools_list(db):
    r = mcp({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, db=db)
    tools = r["result"]["tools"]
    assert [t["name"] for t in tools] == [TOOL]
    t = tools[0]
    assert t["title"]
    for word in ("collections", "datetime", "json", "statistics", "3000 ms",
                 "256 MB", "input_data"):
        assert word in t["description"], word
    s = t["inputSchema"]
    assert s["type"] == "object" and s["required"] == ["code"]
    assert s["properties"]["code"]["type"] == "string"
    assert s["properties"]["token"]["type"] == "string"
    assert "type" not in s["properties"]["input_data"]	# any JSON value
    out = t["outputSchema"]["properties"]
    assert {"success", "output", "error", "execution_time_ms"} <= set(out)
    # every member of a REST answer is in the schema
    r = call({"code": "print(1)"}, db=db)
    assert set(r["result"]["structuredContent"]) <= set(out)
    a = t["annotations"]
    assert a["readOnlyHint"] is True and a["openWorldHint"] is False


def test_description_follows_the_settings():
    db = fresh_db(settings={"timeout_ms": "4321", "memory_mb": "77"})
    r = mcp({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, db=db,
            env={"PYEXEC_TIMEOUT_MS": None, "PYEXEC_MEMORY_MB": None})
    d = r["result"]["tools"][0]["description"]
    assert "4321 ms" in d and "77 MB" in d, d


def test_call_runs_the_seed_and_leaves_one_row(db):
    r = call({"code": SEED_CODE, "input_data": {}}, id=41, db=db)
    assert r.status == 200 and r["id"] == 41, r
    res = r["result"]
    assert res["isError"] is False
    sc = res["structuredContent"]
    assert sc["success"] is True and sc["output"] == "Hello from Python!\n15\n"
    assert res["content"] == [{"type": "text", "text": "Hello from Python!\n15\n"}]
    assert sc["run_id"] == r.headers["x-request-id"]
    got = rows(db)
    assert len(got) == 1
    assert got[0]["id"] == sc["run_id"] and got[0]["via"] == "mcp"
    assert got[0]["status"] == "ok" and got[0]["counted"] == 1
    assert got[0]["code"] == SEED_CODE


def test_input_data_is_bound_exactly(db):
    big = 12345678901234567890123
    r = call({"code": "print(input_data['n'] + 1, input_data['s'])",
              "input_data": {"n": big, "s": "é"}}, db=db)
    assert r["result"]["structuredContent"]["output"] == "%d é\n" % (big + 1)


def test_failed_code_is_a_tool_result_not_an_error(db):
    r = call({"code": "print('before')\n1/0"}, db=db)
    assert r.status == 200 and "error" not in r.json
    res = r["result"]
    assert res["isError"] is True
    assert res["structuredContent"]["error_type"] == "ZeroDivisionError"
    text = res["content"][0]["text"]
    assert text.startswith("before\n") and "ZeroDivisionError" in text
    r = call({"code": "while True: pass"}, db=db)
    assert r["result"]["isError"] is True
    assert r["result"]["structuredContent"]["error_type"] == "TimeoutError"
    r = call({"code": "import os"}, db=db)
    assert r["result"]["isError"] is True
    assert "os" in r["result"]["content"][0]["text"]
    assert [x["status"] for x in rows(db)][:2] == ["error", "timeout"]
    assert len(rows(db)) == 3


def test_ids_are_echoed_exactly(db):
    for raw_id in [b'"abc"', b'0', b'-3', b'12345678901234567890123', b'1.5e3',
                   b'"\\u00e9"']:
        body = b'{"jsonrpc": "2.0", "id": ' + raw_id + b', "method": "ping"}'
        r = mcp(None, raw=body, db=db)
        assert r.body.startswith(b'{"jsonrpc": "2.0", "id": ' + raw_id + b','), r.body
        body = b'{"jsonrpc": "2.0", "id": ' + raw_id + b', "method": "nope"}'
        r = mcp(None, raw=body, db=db)
        assert r["error"]["code"] == -32601
        assert r.body.startswith(b'{"jsonrpc": "2.0", "id": ' + raw_id + b','), r.body


@pytest.mark.parametrize("body,code,status", [
    (b'{"jsonrpc": "2.0", "id": 1, "method": "ping"', -32700, 400),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "ping"} x', -32700, 400),
    (b'\xff\xfe', -32700, 400),
    (b'[' * 200 + b']' * 200, -32700, 400),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "p\\u0000"}', -32700, 400),
    (b'"ping"', -32600, 400),
    (b'{"jsonrpc": "1.0", "id": 1, "method": "ping"}', -32600, 400),
    (b'{"id": 1, "method": "ping"}', -32600, 400),
    (b'{"jsonrpc": "2.0", "id": null, "method": "ping"}', -32600, 400),
    (b'{"jsonrpc": "2.0", "id": {}, "method": "ping"}', -32600, 400),
    (b'{"jsonrpc": "2.0", "id": 1, "method": 3}', -32600, 400),
    (b'[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]', -32600, 400),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "resources/list"}', -32601, 200),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": []}', -32602, 200),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call"}', -32602, 200),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": '
     b'{"name": "other", "arguments": {"code": "print(1)"}}}', -32602, 200),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": '
     b'{"name": "execute-python-code", "arguments": {}}}', -32602, 200),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": '
     b'{"name": "execute-python-code", "arguments": {"code": 3}}}', -32602, 200),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": '
     b'{"name": "execute-python-code", "arguments": {"code": "1", "x": 1}}}', -32602, 200),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}', -32602, 200),
])
def test_jsonrpc_errors(db, body, code, status):
    r = mcp(None, raw=body, db=db)
    assert r.status == status, r
    assert r["jsonrpc"] == "2.0" and r["error"]["code"] == code, r
    assert r["error"]["message"] and r["error"]["data"]["run_id"]
    got = rows(db)
    assert len(got) == 1 and got[0]["outcome"] == "rejected"	# audited, nothing ran
    assert got[0]["via"] == "mcp" and got[0]["http_status"] == status
    assert got[0]["counted"] == 0


def test_get_and_delete_get_405_with_allow_post(db):
    for method in ("GET", "DELETE"):
        r = mcp(None, raw=b"", db=db, method=method)
        assert r.status == 405 and r.headers["allow"] == "POST", r
        assert r["error"]["code"] == -32005
    assert [x["http_status"] for x in rows(db)] == [405, 405]


def test_accept(db):
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    for accept in ("application/json, text/event-stream", "*/*",
                   "text/event-stream, application/json;q=0.9"):
        r = mcp(ping, db=db, env={"HTTP_ACCEPT": accept})
        assert r.status == 200 and r.headers["content-type"] == "application/json"
    r = mcp(ping, db=db, env={"HTTP_ACCEPT": "text/html"})
    assert r.status == 406 and r["error"]["code"] == -32006


def test_protocol_version_header(db):
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    for v in ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"):
        assert mcp(ping, db=db, env={"HTTP_MCP_PROTOCOL_VERSION": v}).status == 200
    r = mcp(ping, db=db, env={"HTTP_MCP_PROTOCOL_VERSION": "2099-01-01"})
    assert r.status == 400 and "MCP-Protocol-Version" in r["error"]["message"]


def test_origin_refused_unless_allowed():
    db = fresh_db(quota=-1)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    r = mcp(ping, db=db, env={"HTTP_ORIGIN": "http://evil.example"})
    assert r.status == 403 and r["error"]["code"] == -32003
    # nor does a call run
    r = call({"code": "print(1)"}, db=db, env={"HTTP_ORIGIN": "http://localhost"})
    assert r.status == 403
    assert all(x["status"] == "rejected" for x in rows(db))
    db = fresh_db(quota=-1, settings={
        "mcp_allowed_origins": "http://localhost:3000 https://app.example"})
    assert mcp(ping, db=db, env={"HTTP_ORIGIN": "https://app.example"}).status == 200
    assert mcp(ping, db=db, env={"HTTP_ORIGIN": "https://app.example.evil"}).status == 403
    assert mcp(ping, db=db, env={"HTTP_ORIGIN": "http://localhost"}).status == 403


def test_quota_over_mcp_keeps_429_and_its_headers():
    db = fresh_db(quota=2)
    for i in range(2):
        r = call({"code": "print(%d)" % i}, db=db)
        assert r.status == 200 and r.headers["ratelimit-remaining"] == str(1 - i)
    r = call({"code": "print(3)"}, id="third", db=db)
    assert r.status == 429 and r["id"] == "third"
    assert r["error"]["code"] == -32029 and "rate limit" in r["error"]["message"]
    assert int(r.headers["retry-after"]) > 0 and r.headers["ratelimit-remaining"] == "0"
    # REST and MCP share the identity's quota
    r = cgi_raw(json.dumps({"code": "print(4)"}).encode(), db=db)
    assert r.status == 429
    assert [(x["via"], x["http_status"]) for x in rows(db)] == [
        ("mcp", 200), ("mcp", 200), ("mcp", 429), ("rest", 429)]


def test_token_as_argument_or_header():
    db = fresh_db(quota=0, settings={"anonymous": "deny"})
    tok = add_user(db, "bob", quota=5)
    r = call({"code": "print(1)"}, db=db)
    assert r.status == 401 and r["error"]["code"] == -32001
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = call({"code": "print(1)", "token": tok}, db=db)
    assert r.status == 200 and r["result"]["isError"] is False
    r = call({"code": "print(2)"}, db=db, env={"HTTP_AUTHORIZATION": "Bearer " + tok})
    assert r.status == 200 and r["result"]["isError"] is False
    r = call({"code": "print(3)", "token": "pyx_" + "0" * 64}, db=db)
    assert r.status == 401
    # The header's token is identified before the body is read: an unknown
    # one is a 401 whatever the argument says; a known one that differs
    # from the argument's is a bad call.
    other = add_user(db, "eve", quota=5)
    r = call({"code": "print(3)", "token": tok}, db=db,
             env={"HTTP_AUTHORIZATION": "Bearer " + other})
    assert r["error"]["code"] == -32602	# the two differ
    got = rows(db)
    assert [x["identity"] for x in got[1:3]] == ["user:bob", "user:bob"]
    assert len(got) == 5 and all(x["via"] == "mcp" for x in got)


def test_body_too_large_keeps_413():
    db = fresh_db(quota=-1, settings={"body_bytes": "1000"})
    r = call({"code": "x = '%s'" % ("a" * 2000)}, db=db)
    assert r.status == 413 and r["error"]["code"] == -32013


def test_database_unavailable_is_503():
    d = fresh_db()
    os.chmod(os.path.dirname(d), 0o755)
    bad = "/nonexistent/dir/pyexec.db"
    r = call({"code": "print(1)"}, db=bad)
    assert r.status == 503 and r["error"]["code"] == -32000
    # the same status and headers as the REST answer to the same request
    rest = cgi_raw(json.dumps({"code": "print(1)"}).encode(), db=bad)
    assert rest.status == 503
    assert r.headers.get("retry-after") == rest.headers.get("retry-after")
    assert r["error"]["message"] == rest["error"]


def test_rest_paths_are_not_mcp(db):
    for path in ("/", "/execute", "/mcpx", "/x-mcp"):
        r = cgi_raw(json.dumps({"code": "print(1)"}).encode(), db=db,
                    env={"PATH_INFO": path})
        assert r.status == 200 and r["success"] is True and "jsonrpc" not in r.json
    # a rewriting server keeps the path in REQUEST_URI only
    r = cgi_raw(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode(),
                db=db, env={"REQUEST_URI": "/mcp?x=1", "PATH_INFO": None})
    assert r.json == {"jsonrpc": "2.0", "id": 1, "result": {}}
    assert [x["via"] for x in rows(db)] == ["rest"] * 4


def test_the_local_transport_is_out_of_a_web_clients_reach(db):
    # A web server sets GATEWAY_INTERFACE; with it, PYEXEC_MCP_STDIO (which
    # no HTTP client can set anyway) does not make the request local.
    r = call({"code": "print(1)"}, db=db, env={"PYEXEC_MCP_STDIO": "1",
                                               "HTTP_PYEXEC_MCP_STDIO": "1"})
    assert r.status == 200
    got = rows(db)
    assert got[0]["identity"] == "anon:127.0.0.1" and got[0]["via"] == "mcp"


def test_a_version_1_database_gains_via_with_rest_rows():
    import sqlite3
    from test_settings_db import LATEST
    import tempfile
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "sql", "schema.sql")) as f:
        v1 = f.read().split("-- migrate 2")[0]
    d = tempfile.mkdtemp(prefix="pyexec-test-")
    db = os.path.join(d, "pyexec.db")
    c = sqlite3.connect(db)
    c.executescript(v1)
    c.execute("INSERT INTO runs (id, started_ms, identity, outcome) "
              "VALUES ('old', 1, 'anon:x', 'ok')")
    c.execute("PRAGMA user_version = 1")
    c.commit()
    c.close()
    r = call({"code": "print(1)"}, db=db)
    assert r.status == 200, r
    got = query(db, "SELECT id, via FROM runs ORDER BY rowid")
    assert got[0] == {"id": "old", "via": "rest"} and got[1]["via"] == "mcp"
    assert query(db, "PRAGMA user_version")[0]["user_version"] == LATEST


# ------------------------------------- messages that run nothing fork nothing

@pytest.fixture
def noting_cgi(tmp_path):
    """pyexec.cgi beside a pyexec-sandbox that only notes that it was
    started (one line per start) and exits: what a message costs in
    sandbox children, counted where the broker starts them."""
    import shutil
    from conftest import CGI
    cgi = tmp_path / "pyexec.cgi"
    shutil.copy2(CGI, cgi)
    fake = tmp_path / "pyexec-sandbox"
    fake.write_text('#!/bin/sh\necho started >> "$0.log"\n')
    fake.chmod(0o755)
    log = tmp_path / "pyexec-sandbox.log"

    def starts():
        return len(log.read_text().splitlines()) if log.exists() else 0
    return str(cgi), starts


NOTHING_TO_RUN = [
    ({"jsonrpc": "2.0", "id": 1, "method": "initialize",
      "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                 "clientInfo": {"name": "t", "version": "1"}}}, 200, False),
    ({"jsonrpc": "2.0", "id": 2, "method": "ping"}, 200, False),
    ({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}, 200, False),
    ({"jsonrpc": "2.0", "method": "notifications/initialized"}, 202, False),
    ({"jsonrpc": "2.0", "id": 4, "result": {}}, 202, False),
    ({"jsonrpc": "2.0", "id": 5, "method": "resources/list"}, 200, True),
    ({"jsonrpc": "2.0", "id": 6, "method": "tools/call",
      "params": {"name": "other", "arguments": {"code": "1"}}}, 200, True),
    (b'{"jsonrpc": "2.0", "id": 7, "method": "ping"', 400, True),
]


def test_messages_that_run_nothing_start_no_sandbox(db, noting_cgi):
    """initialize, ping, tools/list, notifications, responses and refused
    messages are answered without a sandbox child (and without a slot: they
    never reach one); the refused ones still leave their 'rejected' row, the
    others none, as before. A tools/call starts one, as a REST request
    does."""
    cgi, starts = noting_cgi
    trace = {"PYEXEC_TRACE_TIMING": "1"}    # the broker's phases, on stderr
    for msg, status, audited in NOTHING_TO_RUN:
        body = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
        before = len(rows(db))
        if status == 202:
            got, _, stderr = mcp_noparse(body, db=db, cgi=cgi, env=trace,
                                         stderr=True)
        else:
            r = mcp(None, raw=body, db=db, cgi=cgi, env=trace)
            got, stderr = r.status, r.stderr
            assert ("error" in r.json) == audited, r
        assert got == status, (msg, got)
        assert b"pyexec-trace:" in stderr and b" fork=" not in stderr, \
            (msg, stderr)
        assert starts() == 0, msg
        assert len(rows(db)) == before + audited, msg
    got = rows(db)
    assert all(g["outcome"] == "rejected" and g["counted"] == 0 for g in got)

    # A tools/call starts its child (this one a fake that reports nothing:
    # the run is the sandbox's failure, audited as such).
    r = call({"code": "print(1)"}, db=db, cgi=cgi, env=trace)
    assert starts() == 1 and b" fork=" in r.stderr, r
    assert r.status == 500 and r["error"]["code"] == -32603, r
    assert rows(db)[-1]["outcome"] == "internal"
    # REST is unchanged: its child is forked first, even for a refusal
    # (and killed at once: whether it got as far as noting its start is a
    # race, so the broker's trace is what is checked).
    r = cgi_raw(b'{"code": 3}', db=db, cgi=cgi, env=trace)
    assert r.status == 400 and b" fork=" in r.stderr, r
