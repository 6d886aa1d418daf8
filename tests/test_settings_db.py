"""Settings from the database, and the schema.

Limits come from the settings table, read at every request; a value that
does not validate keeps the compiled default; PYEXEC_* environment
overrides still win. The schema is sql/schema.sql, versioned by PRAGMA
user_version and applied once even when many processes start at once on a
missing database.
"""
import os
import shutil
import sqlite3
import tempfile
import threading

import pytest

from conftest import (cgi_raw, fresh_db, query, run_code)


FLOOD = "while True:\n    print('x' * 49)\n"
NO_ENV_TIMEOUT = {"PYEXEC_TIMEOUT_MS": None}


def set_setting(db, key, value):
    con = sqlite3.connect(db)
    try:
        with con:
            con.execute("INSERT INTO settings (key, value) VALUES (?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (key, value))
    finally:
        con.close()


# ---------------------------------------------------------------- limits

def test_output_bytes_from_the_database():
    db = fresh_db(settings={"output_bytes": "100"})
    r = run_code(FLOOD, db=db)
    assert r.status == 200 and r["error_type"] == "OutputLimitExceeded", r
    assert r["output"] == ("x" * 49 + "\n") * 2
    assert len(r["output"]) == 100 and r["truncated"] is True
    assert "100 bytes" in r["error"]


def test_settings_are_read_at_every_request():
    db = fresh_db(settings={"output_bytes": "100"})
    assert len(run_code(FLOOD, db=db)["output"]) == 100
    set_setting(db, "output_bytes", "250")
    r = run_code(FLOOD, db=db)
    assert len(r["output"]) == 250 and r["truncated"] is True, r
    con = sqlite3.connect(db)
    with con:
        con.execute("DELETE FROM settings WHERE key = 'output_bytes'")
    con.close()
    r = run_code("print('y' * 5000)", db=db)
    assert r["success"] is True and len(r["output"]) == 5001, r


def test_environment_override_wins_over_the_database():
    db = fresh_db(settings={"output_bytes": "100", "timeout_ms": "300"})
    r = run_code(FLOOD, db=db, env={"PYEXEC_OUTPUT_BYTES": "1000"})
    assert len(r["output"]) == 1000 and r["truncated"] is True, r
    # the suite's PYEXEC_TIMEOUT_MS=3000 beats the table's 300
    busy = ("import datetime\nnow = datetime.datetime.now\nt = now()\n"
            "while (now() - t).total_seconds() < 0.8:\n    pass\nprint('done')\n")
    r = run_code(busy, db=db)
    assert r["success"] is True and r["output"] == "done\n", r
    r = run_code(busy, db=db, env=NO_ENV_TIMEOUT)
    assert r["error_type"] == "TimeoutError", r
    assert "time limit of 300 ms" in r["error"], r["error"]     # the table's


def test_code_bytes_from_the_database():
    db = fresh_db(settings={"code_bytes": "50"})
    code = "print('%s')" % ("a" * 41)           # 50 bytes
    assert len(code) == 50
    r = run_code(code, db=db)
    assert r.status == 200 and r["output"] == "a" * 41 + "\n", r
    r = run_code(code + " ", db=db)
    assert r.status == 400, r
    assert "50" in r["error"]
    rec = query(db, "SELECT * FROM runs WHERE id = ?", (r["run_id"],))
    assert rec and rec[0]["http_status"] == 400 and rec[0]["outcome"] == "rejected"


def test_body_and_input_bytes_from_the_database():
    db = fresh_db(settings={"body_bytes": "200", "input_bytes": "20"})
    # input_data's bytes as sent: "[1, 1, 1, 1, 1, 1]" is 18 bytes.
    r = run_code("print(input_data)", db=db, input_data=[1] * 6)
    assert r.status == 200 and r["output"] == str([1] * 6) + "\n", r
    r = run_code("print(input_data)", db=db, input_data=[1] * 7)   # 21 bytes
    assert r.status == 400 and "input_data" in r["error"], r
    r = run_code("print(%r)" % ("z" * 300), db=db)
    assert r.status == 413, r


def test_timeout_from_the_database_without_the_env_override():
    db = fresh_db(settings={"timeout_ms": "600"})
    r = run_code("while True:\n    pass\n", db=db, env=NO_ENV_TIMEOUT)
    assert r.status == 200 and r["error_type"] == "TimeoutError", r
    assert 420 <= r["execution_time_ms"] < 1100, r["execution_time_ms"]
    rec = query(db, "SELECT * FROM runs WHERE id = ?", (r["run_id"],))[0]
    assert rec["deadline_ms"] - rec["started_ms"] == 600 + 10000 + 5000 + 30000


def test_memory_from_the_database_without_the_env_override():
    db = fresh_db(settings={"memory_mb": "128"})
    code = "x = bytearray(200 * 2**20)\nprint('allocated')\n"
    r = run_code(code, db=db, env={"PYEXEC_MEMORY_MB": None})
    assert r.status == 200 and r["error_type"] == "MemoryError", r
    r = run_code(code, db=db)           # the suite's 256 MB wins
    assert r.status == 200 and r["output"] == "allocated\n", r


# ---------------------------------------------------------------- bad values

@pytest.mark.parametrize("value", ["abc", "0", "-5", "", " 100", "100 ",
                                   "1e3", "99999999999999999999", "0x64"])
def test_invalid_output_bytes_keeps_the_default(value):
    db = fresh_db(settings={"output_bytes": value})
    r = run_code("print('y' * 5000)", db=db)
    assert r.status == 200 and r["success"] is True, r
    assert len(r["output"]) == 5001 and r["truncated"] is False


def test_invalid_values_keep_defaults_and_valid_ones_apply():
    db = fresh_db(settings={
        "output_bytes": "120",              # valid: applies
        "code_bytes": "lots",               # invalid: 65536
        "timeout_ms": "50",                 # below the minimum of 100
        "anonymous": "maybe",               # not a choice: allow
        "audit_code": "everything",         # not a choice: full
        "max_concurrent": "-1",             # invalid: twice the cores
        "default_quota": "ten",             # invalid: 10
        "quota_window_s": "0",              # invalid: 3600
        "no_such_setting": "1",             # unknown: ignored
    })
    busy = ("import datetime\nnow = datetime.datetime.now\nt = now()\n"
            "while (now() - t).total_seconds() < 0.3:\n    pass\n")
    code = busy + "print('w' * 500)\n#" + "c" * 2000 + "\n"
    r = run_code(code, db=db, env=NO_ENV_TIMEOUT)
    assert r.status == 200, r
    assert r["error_type"] == "OutputLimitExceeded", r    # not TimeoutError
    assert len(r["output"]) == 120
    rec = query(db, "SELECT * FROM runs WHERE id = ?", (r["run_id"],))[0]
    assert rec["code"] == code
    assert rec["identity"] == "anon:127.0.0.1"
    assert r.headers["ratelimit-limit"] == "10"
    assert 3590 <= int(r.headers["ratelimit-reset"]) <= 3600


def test_invalid_value_written_later_keeps_the_default():
    db = fresh_db(settings={"output_bytes": "100"})
    assert len(run_code(FLOOD, db=db)["output"]) == 100
    set_setting(db, "output_bytes", "a lot")
    r = run_code("print('y' * 5000)", db=db)
    assert r.status == 200 and len(r["output"]) == 5001, r


# ---------------------------------------------------------------- schema

TABLES = {"users", "settings", "runs", "run_totals"}
# The schema's last migration (sql/schema.sql's "-- migrate N" sections).
LATEST = 6


def test_version_1_database_gains_the_profile_columns():
    """Migration 2 (module profiles) on a database of version 1: the rows
    are kept, users.modules and runs.profile appear, NULL for old rows."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "sql", "schema.sql")) as f:
        text = f.read()
    v1 = text[:text.index("-- migrate 2")]
    d = tempfile.mkdtemp(prefix="pyexec-test-")
    try:
        db = os.path.join(d, "pyexec.db")
        with sqlite3.connect(db) as c:
            c.executescript(v1)
            c.execute("PRAGMA user_version = 1")
            c.execute("INSERT INTO users (name, token_hash, created_ms) "
                      "VALUES ('old', ?, 1)", ("0" * 64,))
        r = run_code("print('hi')", db=db)
        assert r.status == 200 and r["modules"] == "seed", r
        assert query(db, "PRAGMA user_version")[0]["user_version"] == LATEST
        assert query(db, "SELECT name, modules FROM users") == \
            [{"name": "old", "modules": None}]
        assert query(db, "SELECT profile FROM runs WHERE id = ?",
                     (r["run_id"],)) == [{"profile": "seed"}]
    finally:
        shutil.rmtree(d)


def test_concurrent_first_requests_migrate_once():
    for trial in range(3):
        d = tempfile.mkdtemp(prefix="pyexec-test-")
        try:
            db = os.path.join(d, "pyexec.db")
            n = 20
            results = [None] * n
            barrier = threading.Barrier(n)

            def one(i):
                barrier.wait()
                if i % 2:
                    results[i] = run_code("print(%d)" % i, db=db)
                else:
                    results[i] = cgi_raw(b"", method="GET", db=db)

            threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert all(r is not None for r in results)
            for i, r in enumerate(results):
                assert r.status == (200 if i % 2 else 405), (i, r, r.stderr)
                if i % 2:
                    assert r["output"] == "%d\n" % i
            assert query(db, "PRAGMA user_version")[0]["user_version"] == LATEST
            assert query(db, "PRAGMA journal_mode")[0]["journal_mode"] == "wal"
            names = {x["name"] for x in query(db, "SELECT name FROM sqlite_master "
                                              "WHERE type = 'table'")}
            assert TABLES <= names
            assert query(db, "SELECT name FROM sqlite_master WHERE "
                         "type = 'view'") == [{"name": "runs_view"}]
            ids = sorted(x["id"] for x in query(db, "SELECT id FROM runs"))
            assert ids == sorted(r["run_id"] for r in results)
        finally:
            shutil.rmtree(d)


def test_empty_file_is_migrated():
    d = tempfile.mkdtemp(prefix="pyexec-test-")
    try:
        db = os.path.join(d, "pyexec.db")
        open(db, "wb").close()
        r = run_code("print('hi')", db=db)
        assert r.status == 200 and r["output"] == "hi\n", r
        assert query(db, "PRAGMA user_version")[0]["user_version"] == LATEST
        assert query(db, "PRAGMA journal_mode")[0]["journal_mode"] == "wal"
    finally:
        shutil.rmtree(d)


def test_schema_matches_schema_sql():
    db = fresh_db()
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "sql", "schema.sql")) as f:
        text = f.read()
    assert "-- migrate 1" in text
    assert "-- migrate %d" % (LATEST + 1) not in text   # the suite knows them all
    ref = sqlite3.connect(":memory:")
    ref.executescript(text)
    want = sorted(ref.execute("SELECT type, name, sql FROM sqlite_master"))
    ref.close()
    got = sorted(tuple(x.values()) for x in
                 query(db, "SELECT type, name, sql FROM sqlite_master"))
    assert got == want
