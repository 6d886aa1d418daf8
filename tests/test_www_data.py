# SPDX-License-Identifier: MIT
"""test_www_data.py: the configuration cgi/conf/ ships, the CGI started as
the web server's user (www-data). Without CAP_SETUID the sandbox child
cannot drop to uid 65534: it keeps www-data's uid, the owner of the
database. What keeps it out of the database is then the kernel alone:

  - seccomp allows no call that takes a path (no open, openat, openat2,
    creat, stat, rename, unlink...), so no file can be named;
  - Landlock grants no filesystem right, should a call get past seccomp;
  - the child is forked before the broker opens the database and keeps
    only descriptors 0-3 (close_range), so none reaches the database.

Each attempt below, in both builds (the shipped one and the kernel-only
one, where open() reaches the kernel), tries to read or write the
database as its owner; the test asserts the attempt failed, the answer
says which layer stopped it, the database holds nothing the program
wrote, and the audit log holds exactly the rows of the requests made."""
import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile

import pytest

from conftest import (CGI, NOPY_CGI, ROOT, Response, base_env, slots_file,
                      host_missing_layers, note_layer, require)
from test_escapes import WALK

# The program writes this value, computed at run time so that the audit
# log's copy of the code does not hold it: 0x7077772d6461 is "pwwd-a".
MARK_EXPR = "format(0x7077772d6461 * 3, 'x')"
MARK = format(0x7077772d6461 * 3, "x").encode()

ATTEMPTS = {
    "read": "print(open(DB, 'rb').read(16))",
    "append": "open(DB, 'ab').write(MARK.encode())",
    "wal": "open(DB + '-wal', 'ab').write(MARK.encode())",
    "slots": "open(DB.rsplit('/', 1)[0] + '/slots', 'r+b').write(MARK.encode())",
    "proc_fd": "open('/proc/self/fd/3', 'ab').write(MARK.encode())",
    "proc_root": "print(open('/proc/1/root' + DB, 'rb').read(16))",
    "listdir": "print(posix.listdir(DB.rsplit('/', 1)[0]))",
    "rename": "posix.rename(DB, DB + '.gone')",
}


@pytest.fixture(scope="module")
def www():
    require(ROOT, "starting the CGI as www-data needs root")
    try:
        return pwd.getpwnam("www-data")
    except KeyError:
        pytest.fail("no www-data user: cgi/conf/ runs the CGI as www-data")


@pytest.fixture
def dbdir(www):
    d = tempfile.mkdtemp(prefix="pyexec-www-")
    os.chown(d, www.pw_uid, www.pw_gid)
    os.chmod(d, 0o700)
    yield d
    shutil.rmtree(d)


def run_as(www, cgi, code, db):
    body = json.dumps({"code": code}).encode()
    env = base_env(db)
    env.update({"REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/json",
                "CONTENT_LENGTH": str(len(body))})

    def drop():
        os.setgroups([])
        os.setgid(www.pw_gid)
        os.setuid(www.pw_uid)
    p = subprocess.run([cgi], input=body, env=env, capture_output=True,
                       timeout=120, preexec_fn=drop, cwd=os.path.dirname(db))
    return Response(p.stdout, p.returncode, p.stderr)


def database_bytes(db):
    out = b""
    for path in [db + s for s in ("", "-wal", "-shm")] + [slots_file(db)]:
        if os.path.exists(path):
            with open(path, "rb") as f:
                out += f.read()
    return out


# The builds as the red team's tally names them (conftest).
FULL_WWW, KERNEL_WWW = "full, CGI as www-data", "kernel-only, CGI as www-data"


# The kernel-only builds with one optional layer compiled out (make's
# LAYER_VARIANTS): the database must stay out of reach without it too.
VARIANTS = {
    "kernel-only, no user namespace, CGI as www-data": ("no-userns", {"userns"}),
    "kernel-only, no Landlock, CGI as www-data": ("no-landlock", {"landlock"}),
}


def build_cgi(build):
    if build == FULL_WWW:
        return CGI, set()
    if build == KERNEL_WWW:
        return NOPY_CGI, set()
    d = os.environ.get("PYEXEC_VARIANT_DIR", "")
    assert d, ("PYEXEC_VARIANT_DIR is unset: make build/tests/no-userns/pyexec.cgi "
               "build/tests/no-landlock/pyexec.cgi, PYEXEC_VARIANT_DIR=$PWD/build/tests")
    return os.path.join(d, VARIANTS[build][0], "pyexec.cgi"), VARIANTS[build][1]


@pytest.mark.parametrize("build", [FULL_WWW, KERNEL_WWW] + list(VARIANTS))
@pytest.mark.parametrize("attempt", list(ATTEMPTS))
def test_database_out_of_reach_without_uid_drop(www, dbdir, build, attempt):
    cgi, missing = build_cgi(build)
    missing |= host_missing_layers() - {"uid_drop"}
    assert cgi and os.access(cgi, os.X_OK), "%s build missing: %r" % (build, cgi)
    db = os.path.join(dbdir, "pyexec.db")
    first = run_as(www, cgi, "print('ready')", db)
    assert first.status == 200 and first["output"] == "ready\n", first
    assert os.stat(db).st_uid == www.pw_uid
    # open() and posix from the built-in modules, as the red team reaches
    # them past the shipped build's restricted builtins and allowlist.
    code = WALK + ("open = BuiltinImporter.load_module('_io').open\n"
                   "posix = BuiltinImporter.load_module('posix')\n"
                   "DB = %r\nMARK = %s\n%s\n"
                   % (db, MARK_EXPR, ATTEMPTS[attempt]))
    r = run_as(www, cgi, code, db)
    assert r.returncode == 0 and r.status == 200, r
    layers = r["sandbox"].split(",")
    # The child kept www-data's uid: the answer says so, and the kernel
    # layers that keep it out are on.
    assert "uid_drop" not in layers, r
    assert {"seccomp", "no_new_privs", "landlock", "userns"} - missing <= set(layers), r
    assert not (missing & set(layers)), r
    assert r["success"] is False, r
    assert r["error_type"] == "SecurityViolation", r
    if build != FULL_WWW:
        assert "refused by seccomp" in r["error"], r
    note_layer("seccomp" if "refused by seccomp" in r["error"] else
               "audit hook" if "audit event" in r["error"] else "other")
    assert r["output"] == "", r
    # Nothing reached the database: the mark is nowhere in its files, and
    # the log holds the two requests' rows and no other.
    assert os.path.exists(db) and not os.path.exists(db + ".gone")
    assert MARK not in database_bytes(db)
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        ids = [x[0] for x in con.execute("SELECT id FROM runs ORDER BY id")]
    finally:
        con.close()
    assert sorted(ids) == sorted([first["run_id"], r["run_id"]])
