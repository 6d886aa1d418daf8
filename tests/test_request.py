"""The request path: every way a request can be refused before any code runs.

Each refusal must name the problem (status, error_type, a specific message),
carry the four fields every response has, say Cache-Control: no-store, and
show that nothing ran: no "sandbox" key (only a run reports its layers),
execution_time_ms 0, output "", and the marker that the valid program would
print is nowhere in the response.
"""
import json
import os
import random
import select
import subprocess
import time

import pytest

import conftest
from conftest import CGI, FAST_LIMITS, base_env, cgi_raw

# The program prints MARKER, but the string MARKER never appears in the
# request itself: finding it in a response proves that the program ran.
MARKER = "RAN-" + "MARKER-7f3a"
CODE = "print('RAN-' + 'MARKER-7f3a')"
VALID = json.dumps({"code": CODE}).encode()

ALWAYS = ("success", "output", "error", "execution_time_ms")


def assert_common(r):
    assert r.returncode == 0, r.stderr
    for field in ALWAYS:
        assert field in r.json, (field, r.json)
    assert r.headers.get("content-type") == "application/json"
    assert r.headers.get("cache-control") == "no-store"
    assert isinstance(r["execution_time_ms"], (int, float))
    assert not isinstance(r["execution_time_ms"], bool)


def assert_refused(r, status, error_type, fragment):
    """A refusal: right status and type, a message naming the problem, and
    no trace of a run."""
    assert_common(r)
    assert r.status == status, r
    assert r.headers["status"].startswith("%d " % status)
    assert r["success"] is False
    assert r["error_type"] == error_type, r
    assert isinstance(r["error"], str)
    assert fragment in r["error"], (fragment, r["error"])
    assert r["output"] == ""
    assert r["execution_time_ms"] == 0
    assert "sandbox" not in r.json, r
    assert MARKER.encode() not in r.raw


def assert_ran(r):
    assert_common(r)
    assert r.status == 200, r
    assert r["success"] is True, r
    assert r["error"] is None
    assert r["output"] == MARKER + "\n"
    assert "sandbox" in r.json


def body_with_code(code, **extra):
    req = {"code": code}
    req.update(extra)
    return json.dumps(req).encode()


# ---------------------------------------------------------------- method

@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_non_post_method_is_405_with_allow_post(method):
    r = cgi_raw(VALID, method=method)
    assert_refused(r, 405, "MethodNotAllowed", "method %s not allowed" % method)
    assert r.headers.get("allow") == "POST"


def test_head_without_body_is_405_with_allow_post():
    r = cgi_raw(b"", method="HEAD")
    assert_refused(r, 405, "MethodNotAllowed", "method HEAD not allowed")
    assert r.headers.get("allow") == "POST"


def test_missing_request_method_is_405_with_allow_post():
    r = cgi_raw(VALID, method=None)
    assert_refused(r, 405, "MethodNotAllowed", "use POST")
    assert r.headers.get("allow") == "POST"


def test_lowercase_post_is_not_post():
    r = cgi_raw(VALID, method="post")
    assert_refused(r, 405, "MethodNotAllowed", "use POST")
    assert r.headers.get("allow") == "POST"


def test_refusals_other_than_405_have_no_allow_header():
    r = cgi_raw(VALID, content_type="text/plain")
    assert r.status == 415
    assert "allow" not in r.headers


# ---------------------------------------------------------------- media type

@pytest.mark.parametrize("content_type", [
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/jsonx",
    "application/json; charset=latin-1",
    "application/json; charset=utf-16",
    "application/json; boundary=x",
    "",
], ids=["text-plain", "form", "jsonx", "latin-1", "utf-16", "other-param", "empty"])
def test_wrong_content_type_is_415(content_type):
    r = cgi_raw(VALID, content_type=content_type)
    assert_refused(r, 415, "UnsupportedMediaType", "application/json")


def test_missing_content_type_is_415():
    r = cgi_raw(VALID, content_type=None)
    assert_refused(r, 415, "UnsupportedMediaType", "Content-Type must be application/json")


@pytest.mark.parametrize("content_type", [
    "application/json",
    "application/json; charset=utf-8",
    "application/json;charset=UTF-8",
    'application/json; charset="utf-8"',
    "APPLICATION/JSON",
    "Application/Json; Charset=Utf-8",
])
def test_json_content_type_variants_are_accepted(content_type):
    assert_ran(cgi_raw(VALID, content_type=content_type))


# ---------------------------------------------------------------- length

@pytest.mark.parametrize("length", [False, ""], ids=["unset", "empty"])
def test_missing_content_length_is_411(length):
    r = cgi_raw(VALID, content_length=length)
    assert_refused(r, 411, "LengthRequired", "Content-Length is required")


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "+27", " 27", "27 ",
                                    "0x1b", "27abc"])
def test_malformed_content_length_is_400(length):
    r = cgi_raw(VALID, content_length=length)
    assert_refused(r, 400, "BadRequest", "Content-Length is not a number")


def test_content_length_over_the_limit_is_413_before_reading():
    # 1 GB announced, 30 bytes sent: had the CGI tried to read the body it
    # would have met EOF (a 400) or waited (a 408). A 413 names the size.
    r = cgi_raw(VALID, content_length=str(10**9),
                env={"PYEXEC_BODY_BYTES": "1000"})
    assert_refused(r, 413, "PayloadTooLarge", "over the limit of 1000 bytes")
    assert str(10**9) in r["error"]


def test_content_length_over_the_default_limit_is_413():
    r = cgi_raw(VALID, content_length=str(1024 * 1024 + 1))
    assert_refused(r, 413, "PayloadTooLarge", "over the limit of 1048576 bytes")


def test_body_one_byte_over_the_limit_is_413():
    body = body_with_code(CODE + " #" + "x" * 2000)[:1001]
    r = cgi_raw(body, env={"PYEXEC_BODY_BYTES": "1000"})
    assert len(body) == 1001
    assert_refused(r, 413, "PayloadTooLarge", "1001 bytes")


def test_body_exactly_at_the_limit_is_accepted():
    base = body_with_code(CODE + " #")
    body = body_with_code(CODE + " #" + "x" * (1000 - len(base)))
    assert len(body) == 1000
    assert_ran(cgi_raw(body, env={"PYEXEC_BODY_BYTES": "1000"}))


def test_body_shorter_than_content_length_is_400():
    r = cgi_raw(VALID, content_length=str(len(VALID) + 10))
    assert_refused(r, 400, "BadRequest", "shorter than Content-Length")
    assert "(%d of %d bytes)" % (len(VALID), len(VALID) + 10) in r["error"]


def test_only_content_length_bytes_are_read():
    # Extra bytes after the announced length are not part of the request.
    r = cgi_raw(VALID + b"garbage}}}", content_length=str(len(VALID)))
    assert_ran(r)


def test_empty_body_is_400():
    r = cgi_raw(b"")
    assert_refused(r, 400, "BadRequest", "request body is empty")


def _cgi_env(**extra):
    e = base_env()
    e.update({"REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/json"})
    e.update(extra)
    return e


def _stalled_client(prefix, announced, limit_s=30.0):
    """Runs the CGI with stdin held open after writing prefix; returns
    (raw stdout, returncode, seconds until the answer). limit_s (100 times
    the 300 ms body timeout) only tells a wait that never ends from one
    that does: the 408 that names the timeout is the assertion."""
    env = _cgi_env(CONTENT_LENGTH=str(announced), PYEXEC_BODY_TIMEOUT_MS="300")
    t0 = time.monotonic()
    p = subprocess.Popen([CGI], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    try:
        if prefix:
            p.stdin.write(prefix)
            p.stdin.flush()
        out = b""
        while True:
            left = limit_s - (time.monotonic() - t0)
            assert left > 0, "no answer within %.1f s: the body wait is unbounded" % limit_s
            ready, _, _ = select.select([p.stdout], [], [], left)
            if not ready:
                continue
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
        elapsed = time.monotonic() - t0
        rc = p.wait(timeout=limit_s)
        return out, rc, elapsed
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdin.close()
        p.stdout.close()
        p.stderr.close()


def _parse(raw, rc):
    from conftest import Response
    return Response(raw, rc, b"")


def test_body_never_sent_is_408_within_the_body_timeout():
    raw, rc, elapsed = _stalled_client(b"", len(VALID))
    r = _parse(raw, rc)
    assert_refused(r, 408, "RequestTimeout", "not received within 300 ms")
    assert elapsed >= 0.25, elapsed     # never before the timeout


def test_body_stalling_halfway_is_408():
    raw, rc, elapsed = _stalled_client(VALID[:10], len(VALID))
    r = _parse(raw, rc)
    assert_refused(r, 408, "RequestTimeout", "not received within 300 ms")
    assert elapsed >= 0.25, elapsed


# ---------------------------------------------------------------- encoding

@pytest.mark.parametrize("bad", [
    b"\xff",                # never valid
    b"\xc0\xaf",            # overlong '/'
    b"\xed\xa0\x80",        # UTF-16 surrogate encoded as UTF-8
    b"\xf4\x90\x80\x80",    # beyond U+10FFFF
    b"\xe2\x82",            # truncated sequence
    b"\x80",                # lone continuation byte
], ids=["ff", "overlong", "surrogate", "too-high", "truncated", "continuation"])
def test_invalid_utf8_body_is_400(bad):
    body = b'{"code": "print(1) # ' + bad + b'"}'
    r = cgi_raw(body)
    assert_refused(r, 400, "BadRequest", "not valid UTF-8")


def test_invalid_utf8_outside_strings_is_400():
    r = cgi_raw(b'{"code": "print(1)"}\xff')
    assert_refused(r, 400, "BadRequest", "not valid UTF-8")


@pytest.mark.parametrize("body", [
    b'{"code": ',
    b"{'code': 'print(1)'}",
    b'{"code": "print(1)",}',
    b'{"code": "print(1)" "x": 1}',
    b'{code: "print(1)"}',
    b'{"code": "a\\qb"}',
    b'{"code": "unterminated}',
    b'{"code": "tab\there"}',
    b"   ",
    # Invalid per RFC 8259 although a lenient parser may take them.
    b'{"code": "print(1)", "input_data": 01}',
    b'{"code": "print(1)", "input_data": -01}',
    b'{"code": "print(1)", "input_data": 1.}',
    b'{"code": "print(1)", "input_data": 1.e5}',
    b'{"code": "print(1)", "input_data": "a\tb"}',
    b'{"code": "print(1)\x01", "input_data": [1]}',
    b'{"code": "print(1)", "input_data": NaN}',
], ids=["truncated", "single-quotes", "trailing-comma", "missing-comma",
        "bare-key", "bad-escape", "unterminated-string", "raw-control-char",
        "whitespace-only", "leading-zero", "negative-leading-zero",
        "bare-decimal-point", "decimal-point-before-exponent",
        "raw-tab-in-input", "raw-control-in-code-with-input", "nan"])
def test_invalid_json_is_400(body):
    r = cgi_raw(body)
    assert_refused(r, 400, "BadRequest", "not valid JSON")


@pytest.mark.parametrize("tail,fragment", [
    (b" xyz", "trailing"), (b"{}", "trailing"),
    (b'{"code": "print(2)"}', "trailing"), (b"]", "trailing"),
    (b"\x01", "a byte outside strings that JSON does not allow"),
], ids=["word", "second-object", "second-request", "bracket", "control"])
def test_trailing_garbage_after_the_object_is_400(tail, fragment):
    r = cgi_raw(VALID + tail)
    assert_refused(r, 400, "BadRequest", fragment)


# What the broker's cJSON would skip as whitespace but Python's json (which
# decodes input_data in the child) refuses: the broker refuses it first, so
# it never becomes a 500 after admission.
@pytest.mark.parametrize("body", [
    b'{"code": "print(1)",\x01"input_data": [1]}',
    b'{"code": "print(1)", "input_data":\x0b[1]}',
    b'{"code": "print(1)", "input_data": [1,\x0c2]}',
    b'{"code": "print(1)", "input_data": {"a"\x1f: 1}}',
    b'{"code": "print(1)", "input_data": [1\x7f]}',
    b'\x00{"code": "print(1)", "input_data": [1]}',
], ids=["between-members", "before-value", "form-feed-in-array",
        "before-colon", "del", "nul-before-object"])
def test_control_bytes_between_tokens_are_400(body):
    r = cgi_raw(body)
    assert_refused(r, 400, "BadRequest",
                   "a byte outside strings that JSON does not allow")


@pytest.mark.parametrize("body", [
    b'\xef\xbb\xbf{"code": "print(1)", "input_data": [1]}',
    b'\xef\xbb\xbf' + VALID,
], ids=["with-input", "without-input"])
def test_byte_order_mark_is_400(body):
    r = cgi_raw(body)
    assert_refused(r, 400, "BadRequest", "byte order mark")


def test_control_bytes_inside_strings_escaped_reach_the_program():
    r = cgi_raw(b'{"code": "print(repr(input_data))", '
                b'"input_data": {"\\u0001k": "\\u007f\\t"}}')
    assert r.status == 200 and r["success"] is True, r
    assert r["output"] == "{'\\x01k': '\\x7f\\t'}\n"


def test_trailing_whitespace_after_the_object_is_accepted():
    assert_ran(cgi_raw(b"\r\n " + VALID + b" \n\t\r\n"))


# ---------------------------------------------------------------- depth

def _nested(levels):
    return b"[" * levels + b"]" * levels


DEPTH_PROBE = ("d = 0\nx = input_data\nwhile isinstance(x, list) and x:\n"
               "    d += 1\n    x = x[0]\nprint(d + (1 if x == [] else 0))")


def test_request_nested_65_deep_is_400():
    # The request object is level 1; input_data adds 64 more.
    body = b'{"code": "print(1)", "input_data": ' + _nested(64) + b"}"
    r = cgi_raw(body)
    assert_refused(r, 400, "BadRequest", "nested deeper than 64 levels")


def test_very_deep_nesting_is_400_not_a_crash():
    body = b'{"code": "print(1)", "input_data": ' + _nested(100000) + b"}"
    r = cgi_raw(body)
    assert_refused(r, 400, "BadRequest", "nested deeper than 64 levels")


def test_deep_objects_count_like_arrays():
    inner = b'{"a": ' * 64 + b"1" + b"}" * 64
    r = cgi_raw(b'{"code": "print(1)", "input_data": ' + inner + b"}")
    assert_refused(r, 400, "BadRequest", "nested deeper than 64 levels")


def test_request_nested_64_deep_is_accepted_and_delivered():
    body = (b'{"code": ' + json.dumps(DEPTH_PROBE).encode() +
            b', "input_data": ' + _nested(63) + b"}")
    r = cgi_raw(body)
    assert r.status == 200, r
    assert r["success"] is True, r
    assert r["output"] == "63\n"


def test_brackets_inside_strings_do_not_count_as_nesting():
    code = "s = '\\\"\\\\' + '" + "[" * 100 + "{" * 100 + "'\nprint(len(s))"
    r = cgi_raw(body_with_code(code, input_data={"k": "]" * 50 + "[" * 80}))
    assert r.status == 200, r
    assert r["success"] is True, r
    assert r["output"] == "202\n"


# ---------------------------------------------------------------- shape

def test_nul_escape_in_code_is_400():
    r = cgi_raw(b'{"code": "print(\'RAN-\' + \'MARKER-7f3a\')\\u0000"}')
    assert_refused(r, 400, "BadRequest", "\\u0000")


@pytest.mark.parametrize("body", [b"[1, 2]", b'[{"code": "print(1)"}]', b'"print(1)"',
                                  b"42", b"-1.5", b"null", b"true"],
                         ids=["array", "array-of-request", "string", "int", "float",
                              "null", "true"])
def test_root_that_is_not_an_object_is_400(body):
    r = cgi_raw(body)
    assert_refused(r, 400, "BadRequest", "must be a JSON object")


@pytest.mark.parametrize("field", ["x", "Code", "inputData", "timeout"])
def test_unknown_field_is_400(field):
    r = cgi_raw(body_with_code(CODE, **{field: 1}))
    assert_refused(r, 400, "BadRequest", "unknown field '%s'" % field)


def test_duplicate_code_is_400():
    r = cgi_raw(b'{"code": "print(1)", "code": ' + json.dumps(CODE).encode() + b"}")
    assert_refused(r, 400, "BadRequest", "duplicate field 'code'")


def test_duplicate_input_data_is_400():
    r = cgi_raw(b'{"code": ' + json.dumps(CODE).encode() +
                b', "input_data": 1, "input_data": 2}')
    assert_refused(r, 400, "BadRequest", "duplicate field 'input_data'")


@pytest.mark.parametrize("body", [b"{}", b'{"input_data": {}}', b'{"token": "t"}'],
                         ids=["empty-object", "input-only", "token-only"])
def test_missing_code_is_400(body):
    r = cgi_raw(body)
    assert_refused(r, 400, "BadRequest", "field 'code' is required")


@pytest.mark.parametrize("value", [1, 1.5, None, {}, {"code": CODE}, [CODE], True],
                         ids=["int", "float", "null", "object", "nested-object",
                              "array", "bool"])
def test_code_that_is_not_a_string_is_400(value):
    r = cgi_raw(json.dumps({"code": value}).encode())
    assert_refused(r, 400, "BadRequest", "field 'code' must be a string")


def _code_of_bytes(n, pad="x"):
    code = CODE + " #"
    while len((code + pad).encode()) <= n:
        code += pad
    while len(code.encode()) < n:
        code += "x"
    assert len(code.encode()) == n
    return code


def test_code_over_the_code_limit_is_400():
    r = cgi_raw(body_with_code(_code_of_bytes(101)),
                env={"PYEXEC_CODE_BYTES": "100"})
    assert_refused(r, 400, "BadRequest", "field 'code' is 101 bytes")
    assert "limit of 100" in r["error"]


def test_code_exactly_at_the_code_limit_is_accepted():
    assert_ran(cgi_raw(body_with_code(_code_of_bytes(100)),
                       env={"PYEXEC_CODE_BYTES": "100"}))


def test_code_limit_counts_utf8_bytes_not_characters():
    code = _code_of_bytes(120, pad="\u00e9")     # 'é' is two bytes
    assert len(code) <= 100 < len(code.encode())
    r = cgi_raw(body_with_code(code), env={"PYEXEC_CODE_BYTES": "100"})
    assert_refused(r, 400, "BadRequest", "field 'code' is 120 bytes")


def test_code_over_the_default_64k_limit_is_400():
    r = cgi_raw(body_with_code(_code_of_bytes(64 * 1024 + 1)),
                env={"PYEXEC_CODE_BYTES": None})
    assert_refused(r, 400, "BadRequest", "limit of 65536")


def test_code_at_the_default_64k_limit_is_accepted():
    assert_ran(cgi_raw(body_with_code(_code_of_bytes(64 * 1024)),
                       env={"PYEXEC_CODE_BYTES": None}))


def test_input_data_over_the_input_limit_is_400():
    r = cgi_raw(body_with_code(CODE, input_data={"k": "v" * 200}),
                env={"PYEXEC_INPUT_BYTES": "100"})
    assert_refused(r, 400, "BadRequest", "field 'input_data' is")
    assert "over the limit of 100" in r["error"]


def test_input_data_under_the_input_limit_is_accepted():
    r = cgi_raw(body_with_code(CODE + "; print(len(input_data['k']))",
                               input_data={"k": "v" * 50}),
                env={"PYEXEC_INPUT_BYTES": "100"})
    assert r.status == 200 and r["success"] is True, r
    assert r["output"] == MARKER + "\n50\n"


def test_input_data_limit_counts_the_bytes_received():
    """A 200,001-digit integer is 200,001 bytes, whatever it re-prints as."""
    body = b'{"code": "print(1)", "input_data": ' + b"7" * 200001 + b"}"
    r = cgi_raw(body, env={"PYEXEC_INPUT_BYTES": "1000"})
    assert_refused(r, 400, "BadRequest",
                   "field 'input_data' is 200001 bytes, over the limit of 1000")


def test_input_data_limit_counts_whitespace_as_sent():
    body = b'{"code": "print(1)", "input_data": [1,' + b" " * 1000 + b"2]}"
    r = cgi_raw(body, env={"PYEXEC_INPUT_BYTES": "1000"})
    assert_refused(r, 400, "BadRequest",
                   "field 'input_data' is 1005 bytes, over the limit of 1000")


def test_input_data_exactly_at_the_limit_as_sent_is_accepted():
    body = (b'{"code": "' + CODE.encode() + b'; print(input_data)", '
            b'"input_data": [1,' + b" " * 995 + b"2]}")
    r = cgi_raw(body, env={"PYEXEC_INPUT_BYTES": "1000"})
    assert r.status == 200 and r["success"] is True, r
    assert r["output"] == MARKER + "\n[1, 2]\n"


def test_input_data_over_the_default_limit_is_400():
    r = cgi_raw(body_with_code(CODE, input_data=["x" * 1000] * 300),
                env={"PYEXEC_INPUT_BYTES": None})
    assert_refused(r, 400, "BadRequest", "over the limit of 262144")


@pytest.mark.parametrize("value", [1, None, {}, ["t"], False],
                         ids=["int", "null", "object", "array", "bool"])
def test_token_that_is_not_a_string_is_400(value):
    r = cgi_raw(body_with_code(CODE, token=value))
    assert_refused(r, 400, "BadRequest", "field 'token' must be a string")


def test_body_token_of_a_user_runs_and_is_not_echoed():
    secret = conftest.add_user(conftest.SESSION_DB, "body-token-user")
    code = ("print(sorted(k for k in globals() if not k.startswith('__')))\n"
            "print(input_data)")
    r = cgi_raw(body_with_code(code, token=secret))
    assert r.status == 200 and r["success"] is True, r
    assert r["output"] == "['input_data']\n{}\n"
    assert secret.encode() not in r.raw


def test_unknown_body_token_is_401_and_nothing_runs():
    r = cgi_raw(body_with_code("print('RAN')", token="tok-" + "5e" * 10))
    assert_refused(r, 401, "Unauthorized", "unknown token")
    assert r.headers["www-authenticate"].startswith("Bearer")


# ---------------------------------------------------------------- config

@pytest.mark.parametrize("name,value", [
    ("PYEXEC_TIMEOUT_MS", "abc"),
    ("PYEXEC_TIMEOUT_MS", "0"),
    ("PYEXEC_MEMORY_MB", "-5"),
    ("PYEXEC_OUTPUT_BYTES", ""),
    ("PYEXEC_CODE_BYTES", "10k"),
    ("PYEXEC_CPU_MS", "1.5"),
    ("PYEXEC_BODY_BYTES", "99999999999999999999"),
])
def test_misconfigured_limit_is_500_with_a_json_body(name, value):
    r = cgi_raw(VALID, env={name: value})
    assert_refused(r, 500, "InternalError", name)


# ---------------------------------------------------------------- fuzz

STATUSES = {200, 400, 401, 408, 411, 413, 415, 500}


def _check_fuzz(body, **kw):
    try:
        r = cgi_raw(body, timeout=60, **kw)
    except Exception as e:  # unparseable or missing answer
        raise AssertionError("body %r: %r" % (body[:200], e))
    assert r.raw, body
    assert r.returncode == 0, (body, r.returncode, r.stderr)
    assert r.status in STATUSES, (body, r)
    for field in ALWAYS:
        assert field in r.json, (body, r.json)
    if r.status != 200:
        assert r["success"] is False and r["error_type"], (body, r.json)
    return r


def test_fuzz_random_bodies_always_get_a_json_answer():
    rng = random.Random(1234)
    statuses = set()
    for _ in range(300):
        n = rng.choice([0, 1, 2, 5, 20, 100, 1000])
        kind = rng.random()
        if kind < 0.5:
            body = bytes(rng.randrange(256) for _ in range(n))
        else:   # bytes that look more like JSON
            body = bytes(rng.choice(b'{}[]",:0123456789.eE+-tfnul \\"codeinput_data\xc3\xa9\xff')
                         for _ in range(n))
        statuses.add(_check_fuzz(body).status)
    assert 400 in statuses


def _mutate(rng, body):
    b = bytearray(body)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:                       # flip a byte
            b[min(pos, len(b) - 1)] = rng.randrange(256)
        elif op == 1:                           # insert a byte
            b[pos:pos] = bytes([rng.choice(b'{}[]",:\\\x00\xff\xc3 ')])
        elif op == 2 and b:                     # delete a run
            del b[pos:pos + rng.randint(1, 5)]
        elif op == 3:                           # truncate
            del b[pos:]
        else:                                   # duplicate a slice
            b[pos:pos] = b[rng.randrange(len(b) + 1):][:rng.randint(1, 10)]
    return bytes(b)


def test_fuzz_mutated_requests_always_get_a_json_answer():
    rng = random.Random(1234)
    token = conftest.add_user(conftest.SESSION_DB, "fuzz-user")
    seed = json.dumps({"code": "x = input_data['a'][1] * 2\nprint(x, 'ok\\u00e9')",
                       "input_data": {"a": [1, 2.5, "s", None, True]},
                       "token": token}).encode()
    statuses = set()
    for i in range(300):
        body = _mutate(rng, seed)
        kw = {}
        if i % 10 == 9:     # now and then a lying Content-Length
            kw["content_length"] = str(max(0, len(body) + rng.randint(-5, 5)))
        statuses.add(_check_fuzz(body, **kw).status)
    assert 400 in statuses and 200 in statuses, statuses
