"""Identities: bearer tokens name users, no token means anonymous by client
address (when allowed), and a user's own limits apply, under the host's
ceilings.

Tokens are accepted as `Authorization: Bearer <token>` and as the body's
`token` field; the database keeps only their SHA-256. Every test runs on
SQLite and on PostgreSQL (the db fixtures and `store`).
"""
import hashlib
import json
import os
import subprocess

import pytest

from conftest import (add_user, execute, slots_file, cgi_raw, finish_cgi, fresh_db, query, row,
                      run_code, start_cgi)


def bearer(token):
    return {"HTTP_AUTHORIZATION": "Bearer " + token}


def assert_401(r):
    assert r.status == 401, r
    assert r["success"] is False
    assert r.headers["www-authenticate"].startswith("Bearer"), r.headers
    assert r["output"] == ""


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(request):
    """The tokens' and refusals' database, on each backend in turn."""
    return fresh_db(backend=request.param)


@pytest.fixture(scope="module")
def alice(db):
    return add_user(db, "alice")


# ---------------------------------------------------------------- tokens

def test_header_token_names_the_user(db, alice):
    r = run_code("print('as alice')", db=db, env=bearer(alice))
    assert r.status == 200 and r["output"] == "as alice\n", r
    rec = row(db, r["run_id"])
    assert rec["identity"] == "user:alice"
    assert rec["user_name"] == "alice"


def test_scheme_is_case_insensitive(db, alice):
    r = run_code("print(1)", db=db, env={"HTTP_AUTHORIZATION": "bearer " + alice})
    assert r.status == 200, r
    assert row(db, r["run_id"])["identity"] == "user:alice"


def test_body_token_names_the_user(db, alice):
    r = run_code("print('body')", db=db, token=alice)
    assert r.status == 200 and r["output"] == "body\n", r
    assert row(db, r["run_id"])["identity"] == "user:alice"


def test_same_token_in_header_and_body_is_accepted(db, alice):
    r = run_code("print(2)", db=db, env=bearer(alice), token=alice)
    assert r.status == 200, r
    assert row(db, r["run_id"])["identity"] == "user:alice"


def test_different_tokens_in_header_and_body_are_a_400(db, alice):
    bob = add_user(db, "bob")
    r = run_code("print('MARKER')", db=db, env=bearer(alice), token=bob)
    assert r.status == 400, r
    assert "MARKER" not in r.body.decode()
    rec = row(db, r["run_id"])
    assert rec["outcome"] == "rejected" and rec["http_status"] == 400
    # Neither user's quota was touched.
    assert rec["counted"] == 0


def test_token_is_stored_only_as_its_sha256(db):
    token = add_user(db, "carol")
    assert len(token) == 68 and token.startswith("pyx_")
    # used both ways, refused once (so every code path that sees it ran)
    assert run_code("print(3)", db=db, env=bearer(token)).status == 200
    assert run_code("print(4)", db=db, token=token).status == 200
    assert run_code("print(5)", db=db, env=bearer(token),
                    token=token + "x").status == 400
    wrong = token[:-1] + ("1" if token.endswith("0") else "0")
    assert run_code("print(6)", db=db, token=wrong).status == 401
    stored = query(db, "SELECT token_hash FROM users WHERE name = 'carol'")
    assert stored[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    secret = token.encode()
    hex_part = token[4:].encode()
    for path in [db + s for s in ("", "-wal", "-shm")] + [slots_file(db)]:
        if os.path.exists(path):
            with open(path, "rb") as f:
                data = f.read()
            assert secret not in data, path
            assert hex_part not in data, path
    audit = json.dumps(query(db, "SELECT * FROM runs"))
    assert token[4:] not in audit


# ---------------------------------------------------------------- refusals

@pytest.mark.parametrize("header", [
    "Basic YWxpY2U6c2VjcmV0",
    "Token pyx_" + "0" * 64,
    "Bearer",
    "Bearer ",
    "pyx_" + "0" * 64,
], ids=["basic", "other-scheme", "bearer-alone", "bearer-empty", "bare-token"])
def test_malformed_authorization_is_a_401(db, header):
    r = run_code("print('MARKER')", db=db, env={"HTTP_AUTHORIZATION": header})
    assert_401(r)
    rec = row(db, r["run_id"])
    assert rec["http_status"] == 401 and rec["outcome"] == "rejected"


@pytest.mark.parametrize("where", ["header", "body"])
@pytest.mark.parametrize("token", ["pyx_" + "a" * 64, "pyx_short", "x" * 68],
                         ids=["unknown", "short", "not-a-token"])
def test_unknown_token_is_a_401_and_audited(db, where, token):
    kw = {"env": bearer(token)} if where == "header" else {"token": token}
    r = run_code("print('MARKER')", db=db, **kw)
    assert_401(r)
    assert "MARKER" not in r.body.decode()
    rec = row(db, r["run_id"])
    assert rec["outcome"] == "rejected" and rec["http_status"] == 401
    assert rec["error"] == r["error"]
    assert token not in json.dumps(rec)


def test_disabled_user_is_a_401_and_audited(db):
    token = add_user(db, "dora", disabled=True)
    for kw in ({"env": bearer(token)}, {"token": token}):
        r = run_code("print('MARKER')", db=db, **kw)
        assert_401(r)
        rec = row(db, r["run_id"])
        assert rec["http_status"] == 401 and rec["outcome"] == "rejected"
    # enabling the user lets the same token in
    execute(db, "UPDATE users SET disabled = 0 WHERE name = 'dora'")
    r = run_code("print('MARKER')", db=db, env=bearer(token))
    assert r.status == 200 and r["output"] == "MARKER\n", r


# ---------------------------------------------------------------- anonymous

def test_anonymous_by_client_address_by_default(db):
    r = run_code("print(7)", db=db, env={"REMOTE_ADDR": "203.0.113.5"})
    assert r.status == 200, r
    rec = row(db, r["run_id"])
    assert rec["identity"] == "anon:203.0.113.5"
    assert rec["user_id"] is None


def test_anonymous_deny_requires_a_token(store):
    db = store(settings={"anonymous": "deny"})
    r = run_code("print('MARKER')", db=db)
    assert_401(r)
    assert "MARKER" not in r.body.decode()
    rec = row(db, r["run_id"])
    assert rec["http_status"] == 401 and rec["outcome"] == "rejected"
    token = add_user(db, "erin")
    r = run_code("print('MARKER')", db=db, env=bearer(token))
    assert r.status == 200 and r["output"] == "MARKER\n", r
    r = run_code("print('MARKER')", db=db, token=token)
    assert r.status == 200 and r["output"] == "MARKER\n", r


def test_anonymous_allow_explicit(store):
    db = store(settings={"anonymous": "allow"})
    r = run_code("print(8)", db=db)
    assert r.status == 200, r
    assert row(db, r["run_id"])["identity"] == "anon:127.0.0.1"


# ---------------------------------------------------------------- per-user limits

# A program busy for 1.5 s of CPU, then done.
BUSY_1500 = ("import datetime\nnow = datetime.datetime.now\nt = now()\n"
             "while (now() - t).total_seconds() < 1.5:\n    pass\n"
             "print('done')\n")
NO_ENV_TIMEOUT = {"PYEXEC_TIMEOUT_MS": None}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def limits_db(request):
    # Global timeout 1000 ms, ceiling 2000 ms; memory 256 MB, ceiling 160 MB
    # for users' own limits.
    return fresh_db(settings={"timeout_ms": "1000", "max_timeout_ms": "2000",
                              "max_memory_mb": "160"}, backend=request.param)


def test_global_timeout_from_settings_applies_to_anonymous(limits_db):
    r = run_code(BUSY_1500, db=limits_db, env=NO_ENV_TIMEOUT)
    assert r.status == 200 and r["error_type"] == "TimeoutError", r
    # The limit that stopped it, by the broker's word (how long the run
    # took around it is the machine's speed): the wall clock's or the CPU's.
    assert ("time limit of 1000 ms" in r["error"] or
            "CPU time limit of 1 s" in r["error"]), r["error"]


def test_user_gets_a_longer_timeout_of_their_own(limits_db):
    token = add_user(limits_db, "patient", timeout_ms=1900)
    r = run_code(BUSY_1500, db=limits_db, env=dict(NO_ENV_TIMEOUT, **bearer(token)))
    assert r.status == 200 and r["success"] is True, r
    assert r["output"] == "done\n"
    rec = row(limits_db, r["run_id"])
    assert rec["deadline_ms"] - rec["started_ms"] == 1900 + 10000 + 5000 + 30000


def test_user_gets_a_shorter_timeout_of_their_own(limits_db):
    token = add_user(limits_db, "hasty", timeout_ms=400)
    r = run_code(BUSY_1500, db=limits_db, env=dict(NO_ENV_TIMEOUT, **bearer(token)))
    assert r.status == 200 and r["error_type"] == "TimeoutError", r
    assert "time limit of 400 ms" in r["error"], r["error"]


def test_user_timeout_is_capped_by_max_timeout_ms(limits_db):
    token = add_user(limits_db, "greedy", timeout_ms=60000)
    code = "while True:\n    pass\n"
    r = run_code(code, db=limits_db, env=dict(NO_ENV_TIMEOUT, **bearer(token)))
    assert r.status == 200 and r["error_type"] == "TimeoutError", r
    assert ("time limit of 2000 ms" in r["error"] or
            "CPU time limit of 2 s" in r["error"]), r["error"]
    rec = row(limits_db, r["run_id"])
    assert rec["deadline_ms"] - rec["started_ms"] == 2000 + 10000 + 5000 + 30000


ALLOC_200MB = "x = bytearray(200 * 2**20)\nprint('allocated')\n"


def test_user_gets_a_smaller_memory_limit_of_their_own(limits_db):
    # The suite's 256 MB (PYEXEC_MEMORY_MB) lets 200 MB through ...
    r = run_code(ALLOC_200MB, db=limits_db)
    assert r.status == 200 and r["output"] == "allocated\n", r
    # ... a user limited to 128 MB cannot.
    token = add_user(limits_db, "small", memory_mb=128)
    r = run_code(ALLOC_200MB, db=limits_db, env=bearer(token))
    assert r.status == 200 and r["error_type"] == "MemoryError", r
    assert r["peak_memory_kb"] <= 128 * 1024 + 4096


def test_user_memory_is_capped_by_max_memory_mb(limits_db):
    token = add_user(limits_db, "hungry", memory_mb=4096)
    r = run_code(ALLOC_200MB, db=limits_db, env=bearer(token))
    assert r.status == 200 and r["error_type"] == "MemoryError", r
    assert r["peak_memory_kb"] <= 160 * 1024 + 4096
    r = run_code("x = bytearray(100 * 2**20)\nprint('ok')\n", db=limits_db,
                 env=bearer(token))
    assert r.status == 200 and r["output"] == "ok\n", r


def test_user_gets_more_memory_of_their_own(store):
    db = store(settings={"max_memory_mb": "512"})
    token = add_user(db, "big", memory_mb=400)
    code = "x = bytearray(300 * 2**20)\nprint('allocated')\n"
    r = run_code(code, db=db)       # 256 MB for everyone else
    assert r.status == 200 and r["error_type"] == "MemoryError", r
    r = run_code(code, db=db, env=bearer(token))
    assert r.status == 200 and r["output"] == "allocated\n", r


# ------------------------------------------- attribution of refused requests
#
# The Authorization header is identified before the body is read: whatever
# happens to the request afterwards, its row names the user the header's
# token belongs to, and the refusal costs that user nothing.

ADMIN = os.environ.get("PYEXEC_ADMIN", os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pyexec-admin"))


def admin_logs_user(db, name):
    p = subprocess.run([ADMIN, "--db", db, "logs", "--user", name, "--json",
                        "--limit", "1000"], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return {json.loads(line)["id"] for line in p.stdout.decode().splitlines()}


def assert_named(db, r, name, status):
    assert r.status == status, r
    rec = row(db, r["run_id"])
    assert rec["identity"] == "user:" + name, rec
    assert rec["user_name"] == name and rec["user_id"] is not None, rec
    assert rec["outcome"] == "rejected" and rec["http_status"] == status
    assert rec["counted"] == 0
    return rec


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def attr_db(request):
    return fresh_db(quota=1, backend=request.param)


@pytest.mark.parametrize("fate", ["415", "413", "400-json", "400-short",
                                  "400-token-differs", "405"])
def test_refused_request_with_a_header_token_names_the_user(attr_db, fate):
    token = add_user(attr_db, "refused" + fate.replace("-", ""))
    env = bearer(token)
    body = json.dumps({"code": "print(1)"}).encode()
    kw = {}
    if fate == "415":
        kw["content_type"] = "text/plain"
    elif fate == "413":
        kw["content_length"] = str(50 * 2**20)
    elif fate == "400-json":
        body = b'{"code": "print(1)", '
    elif fate == "400-short":
        kw["content_length"] = str(len(body) + 10)
    elif fate == "400-token-differs":
        body = json.dumps({"code": "print(1)", "token": add_user(
            attr_db, "other" + fate.replace("-", ""))}).encode()
    elif fate == "405":
        kw["method"] = "GET"
    r = cgi_raw(body, env=env, db=attr_db, **kw)
    name = "refused" + fate.replace("-", "")
    assert_named(attr_db, r, name, int(fate[:3]))
    assert r.json and r["run_id"] in admin_logs_user(attr_db, name)
    # The refusal cost nothing: the user's one run is still there.
    ok = run_code("print('after')", db=attr_db, env=env)
    assert ok.status == 200 and ok["output"] == "after\n", ok


def test_stalled_body_with_a_header_token_names_the_user(attr_db):
    token = add_user(attr_db, "staller")
    body = json.dumps({"code": "print(1)"}).encode()
    p = start_cgi(body, attr_db, env=dict(bearer(token),
                                          PYEXEC_BODY_TIMEOUT_MS="300"),
                  send=False)
    p.stdin.write(body[:5])
    p.stdin.flush()
    try:
        r = finish_cgi(p)
    finally:
        p.stdin.close()
    assert_named(attr_db, r, "staller", 408)
    assert r["run_id"] in admin_logs_user(attr_db, "staller")


def test_over_quota_with_a_header_token_names_the_user(attr_db):
    token = add_user(attr_db, "quota0", quota=0)
    r = run_code("print(1)", db=attr_db, env=bearer(token))
    assert_named(attr_db, r, "quota0", 429)


def test_disabled_users_401_names_the_user(attr_db):
    token = add_user(attr_db, "gone", disabled=True)
    r = run_code("print('MARKER')", db=attr_db, env=bearer(token))
    assert_401(r)
    rec = assert_named(attr_db, r, "gone", 401)
    assert "disabled" in rec["error"], rec
    assert r["run_id"] in admin_logs_user(attr_db, "gone")
    # the same through the body's token
    r = run_code("print('MARKER')", db=attr_db, token=token)
    assert_401(r)
    assert_named(attr_db, r, "gone", 401)


def test_disabled_users_refusal_before_the_body_names_the_user(attr_db):
    token = add_user(attr_db, "gone2", disabled=True)
    r = cgi_raw(b"x", env=bearer(token), db=attr_db, content_type="text/plain")
    assert_401(r)
    assert_named(attr_db, r, "gone2", 401)


def test_token_only_in_an_unparsable_body_stays_anonymous(attr_db):
    token = add_user(attr_db, "hidden")
    body = ('{"token": "%s", "code": ' % token).encode()
    r = cgi_raw(body, db=attr_db)
    assert r.status == 400, r
    rec = row(attr_db, r["run_id"])
    assert rec["identity"] == "anon:127.0.0.1" and rec["user_name"] is None
    assert r["run_id"] not in admin_logs_user(attr_db, "hidden")


# ------------------------------------------ anonymous clients on real networks

def anon(db, addr, **headers):
    env = {"REMOTE_ADDR": addr}
    env.update(headers)
    r = run_code("print(1)", db=db, env=env)
    assert r.json is not None, r
    return r, row(db, r["run_id"])


def test_ipv6_clients_are_grouped_by_their_64(store):
    db = store(quota=1)
    r, rec = anon(db, "2001:db8:1:2::1")
    assert r.status == 200, r
    assert rec["identity"] == "anon:2001:db8:1:2::/64", rec
    assert rec["client_addr"] == "2001:db8:1:2::1"
    # Another address of the same /64 is the same client: over quota.
    r, rec = anon(db, "2001:DB8:1:2:ffff:ffff:ffff:fffe")
    assert r.status == 429, r
    assert rec["identity"] == "anon:2001:db8:1:2::/64"
    # The next /64 is another client.
    r, rec = anon(db, "2001:db8:1:3::1")
    assert r.status == 200, r
    assert rec["identity"] == "anon:2001:db8:1:3::/64"


def test_ipv6_prefix_is_a_setting(store):
    db = store(quota=1, settings={"anon_ipv6_prefix": "48"})
    assert anon(db, "2001:db8:1:2::1")[0].status == 200
    r, rec = anon(db, "2001:db8:1:7::1")
    assert r.status == 429 and rec["identity"] == "anon:2001:db8:1::/48", rec
    db = store(quota=1, settings={"anon_ipv6_prefix": "128"})
    assert anon(db, "2001:db8:1:2::1")[0].status == 200
    r, rec = anon(db, "2001:db8:1:2::2")
    assert r.status == 200 and rec["identity"] == "anon:2001:db8:1:2::2", rec


def test_ipv4_mapped_ipv6_is_the_ipv4_address(store):
    db = store(quota=1)
    r, rec = anon(db, "::ffff:198.51.100.4")
    assert r.status == 200 and rec["identity"] == "anon:198.51.100.4", rec
    r, rec = anon(db, "198.51.100.4")
    assert r.status == 429 and rec["identity"] == "anon:198.51.100.4", rec


def test_forwarding_headers_are_ignored_without_trusted_proxies(store):
    db = store()
    r, rec = anon(db, "127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7",
                  HTTP_FORWARDED="for=198.51.100.8")
    assert r.status == 200 and rec["identity"] == "anon:127.0.0.1", rec
    assert rec["client_addr"] == "127.0.0.1"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def proxy_db(request):
    return fresh_db(settings={"trusted_proxies": "127.0.0.1, ::1, 10.0.0.0/8"},
                    backend=request.param)


def test_trusted_proxy_names_the_client(proxy_db):
    r, rec = anon(proxy_db, "127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert r.status == 200 and rec["identity"] == "anon:198.51.100.7", rec
    assert rec["client_addr"] == "198.51.100.7"
    # The right-most hop that is not a trusted proxy: what the client
    # wrote itself, left of it, is not believed.
    r, rec = anon(proxy_db, "::1",
                  HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.7, 10.2.3.4")
    assert rec["identity"] == "anon:198.51.100.7", rec
    # Forwarded (RFC 7239) comes first.
    r, rec = anon(proxy_db, "127.0.0.1", HTTP_X_FORWARDED_FOR="1.1.1.1",
                  HTTP_FORWARDED='for=1.1.1.2, for="[2001:db8:5:6::7]:443"')
    assert rec["identity"] == "anon:2001:db8:5:6::/64", rec
    assert rec["client_addr"] == "2001:db8:5:6::7"


def test_untrusted_peer_cannot_forward(proxy_db):
    r, rec = anon(proxy_db, "127.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert r.status == 200 and rec["identity"] == "anon:127.0.0.2", rec


def test_forged_hop_leaves_the_proxy_as_the_client(proxy_db):
    r, rec = anon(proxy_db, "127.0.0.1",
                  HTTP_X_FORWARDED_FOR="198.51.100.7, not-an-address")
    assert rec["identity"] == "anon:127.0.0.1", rec


def test_trusted_proxies_setting_is_validated(store):
    db = store()

    def config_set(value):
        return subprocess.run([ADMIN, "--db", db, "config", "set",
                               "trusted_proxies", value], capture_output=True,
                              timeout=60)
    p = config_set("10.0.0.0/8, ::1")
    assert p.returncode == 0, p.stderr
    for bad in ("10.0.0.0/33", "localhost", "10.0.0.1,", "1.2.3.4 5.6.7.8"):
        p = config_set(bad)
        assert p.returncode != 0, bad
        assert b"trusted_proxies" in p.stderr, p.stderr
    assert query(db, "SELECT value FROM settings WHERE key = "
                 "'trusted_proxies'") == [{"value": "10.0.0.0/8, ::1"}]
