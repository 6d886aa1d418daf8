"""Module profiles, black box: the allowed_modules setting, the compute
profile and its sys stand-in, per-user grants, what the response and the
audit log record, and the routes each new module opens (each closed, or
stopped by the audit hook, with nothing happening on the host).

Also the benign programs of issue 13 item 9: the standard text codecs, and
__import__(name, None, None, []) that must not reach what the profile does
not name."""
import json
import os
import secrets
import subprocess
import textwrap

import pytest

from conftest import fresh_db, run_code
from test_admin import admin, bearer, fails, new_user, ok, sql

SEED = ["collections", "datetime", "functools", "itertools", "json", "math",
        "random", "re", "statistics", "string"]
SEED_LIST = ", ".join(SEED)
COMPUTE_EXTRA = ["typing", "heapq", "bisect", "copy", "operator", "array",
                 "cmath", "fractions", "decimal", "hashlib", "textwrap",
                 "unicodedata", "enum", "dataclasses", "numbers", "abc",
                 "base64", "difflib", "pprint", "calendar", "sys",
                 "__future__"]


@pytest.fixture(scope="module")
def seed_db():
    return fresh_db(quota=-1)


@pytest.fixture(scope="module")
def compute_db():
    db = fresh_db(quota=-1)
    ok("config", "set", "allowed_modules", "compute", db=db)
    return db


def python3(code):
    """What Debian's python3 prints for code: the reference."""
    p = subprocess.run(["/usr/bin/python3", "-I", "-S", "-c", code],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def last_row(db):
    rows = sql(db, "SELECT id, profile, outcome FROM runs ORDER BY rowid "
               "DESC LIMIT 1")
    return rows[0]


# --- the setting --------------------------------------------------------------

def test_config_set_compute_and_back():
    db = fresh_db(quota=-1)
    assert ok("config", "get", "allowed_modules", db=db).strip() == "seed"
    out = ok("config", "set", "allowed_modules", "compute", db=db)
    assert out.strip() == "allowed_modules = compute"
    assert ok("config", "get", "allowed_modules", db=db).strip() == "compute"
    listed = [json.loads(l) for l in
              ok("config", "list", "--json", db=db).splitlines()]
    mine = [l for l in listed if l["key"] == "allowed_modules"]
    assert mine == [{"key": "allowed_modules", "value": "compute",
                     "source": "set", "default": "seed"}]
    assert "allowed_modules" in ok("config", "list", db=db)
    r = run_code("import heapq\nprint(heapq.nlargest(1, [3, 9, 4]))", db=db)
    assert r["success"] is True and r["output"] == "[9]\n", r
    ok("config", "unset", "allowed_modules", db=db)
    r = run_code("import heapq", db=db)
    assert r["success"] is False and r["error_type"] == "ImportError", r


@pytest.mark.parametrize("value, module, why", [
    ("os", "os", "files and processes"),
    ("socket", "socket", "network"),
    ("math,subprocess", "subprocess", "processes"),
    ("typing, ctypes", "ctypes", "native code"),
    ("types", "types", "code and function constructors"),
    ("importlib", "importlib", "loaders"),
    ("nosuchmodule", "nosuchmodule", "not vetted"),
])
def test_config_set_refuses_unvetted_modules(value, module, why):
    db = fresh_db(quota=-1)
    ok("config", "set", "allowed_modules", "heapq,math", db=db)
    err = fails(1, "config", "set", "allowed_modules", value, db=db)
    assert "module '%s' refused" % module in err and why in err, err
    assert ok("config", "get", "allowed_modules", db=db).strip() == "heapq,math"
    assert sql(db, "SELECT value FROM settings WHERE key = "
               "'allowed_modules'") == [("heapq,math",)]


@pytest.mark.parametrize("value", ["", ",", "math,,re", "seed,compute",
                                   "Math", "x" * 500])
def test_config_set_refuses_malformed_lists(value):
    db = fresh_db(quota=-1)
    fails(1, "config", "set", "allowed_modules", value, db=db)
    assert ok("config", "get", "allowed_modules", db=db).strip() == "seed"


def test_doctor_reports_the_profile():
    db = fresh_db(quota=-1)
    ok("config", "set", "allowed_modules", "compute", db=db)
    p = admin("doctor", db=db)
    lines = [l for l in p.stdout.splitlines() if "sandbox.modules" in l]
    assert len(lines) == 1 and "allowed_modules compute" in lines[0], p.stdout


def test_a_list_profile_allows_only_its_modules():
    db = fresh_db(quota=-1)
    ok("config", "set", "allowed_modules", "heapq, math", db=db)
    r = run_code("import heapq, math\nprint(heapq.nsmallest(1, [2, 1]), "
                 "math.pi > 3)", db=db)
    assert r["success"] is True and r["output"] == "[1] True\n", r
    assert r["modules"] == "heapq,math", r
    r = run_code("import json", db=db)
    assert r["error_type"] == "ImportError", r
    assert "(allowed modules: heapq, math)" in r["error"], r


# --- the compute profile: programs print what python3 prints ----------------

DONE_WHEN = {
    "typing": """
        from typing import List, Dict, Optional, Tuple
        def total(xs: List[int], extra: Optional[Dict[str, int]] = None) -> Tuple[int, int]:
            return sum(xs), len(extra or {})
        class Node:
            def __init__(self, nxt: Optional["Node"] = None) -> None:
                self.nxt = nxt
        print(total([1, 2, 3]), Node(Node()).nxt.nxt)
        """,
    "heapq": """
        import heapq as hq
        h = [5, 1, 4]
        hq.heapify(h)
        hq.heappush(h, 0)
        print([hq.heappop(h) for _ in range(4)], hq.nlargest(2, [3, 9, 4]))
        """,
    "bisect": """
        import bisect
        a = [1, 3, 5]
        bisect.insort(a, 4)
        print(a, bisect.bisect_left(a, 4), bisect.bisect_right(a, 9))
        """,
    "copy": """
        import copy
        a = [[1, 2], {"k": (3, [4])}]
        b = copy.deepcopy(a)
        b[1]["k"][1].append(5)
        print(a, b, copy.copy(a) == a)
        """,
    "operator": """
        import operator
        pairs = [(1, "b"), (0, "a"), (2, "c")]
        print(sorted(pairs, key=operator.itemgetter(1)),
              operator.attrgetter("real")(3 + 4j), operator.mul(6, 7))
        """,
    "cmath": """
        import cmath
        z = complex(1, 1)
        print(round(cmath.phase(z), 12), cmath.sqrt(-4), abs(cmath.exp(1j * cmath.pi) + 1) < 1e-12)
        """,
    "array": """
        import array
        a = array.array("i", [1, 2, 3])
        a.append(4)
        print(a, a.tolist(), a.itemsize)
        """,
    "hashlib": """
        import hashlib
        print(hashlib.md5("hello".encode()).hexdigest(),
              hashlib.sha256(b"x").hexdigest()[:16],
              hashlib.new("sha1", b"x").hexdigest()[:8])
        """,
    "sys": """
        import sys
        from sys import maxsize
        t = (1, 2, 3)
        print(maxsize, sys.getsizeof(t), sys.getsizeof(t, 0), sys.byteorder,
              sys.float_info.max, sys.int_info.bits_per_digit,
              tuple(sys.version_info[:2]), sys.getrecursionlimit())
        sys.stdout.write("written\\n")
        print("through print", file=sys.stdout)
        sys.stdout.flush()
        """,
    "future": """
        from __future__ import annotations
        from typing import List
        def f(xs: List[Node]) -> int:
            return len(xs)
        class Node: pass
        print(f([Node()]), f.__annotations__)
        """,
    "more": """
        import fractions, decimal, textwrap, unicodedata, enum, numbers, abc
        import string, base64, difflib, pprint, calendar
        from dataclasses import dataclass, field
        @dataclass(order=True)
        class P:
            x: int
            tags: list = field(default_factory=list)
        class Color(enum.Enum):
            RED = 1
        class Shape(abc.ABC):
            @abc.abstractmethod
            def area(self): ...
        decimal.getcontext().prec = 30
        print(fractions.Fraction(1, 3) + 1, decimal.Decimal(1) / decimal.Decimal(7))
        print(textwrap.fill("a b c d", 3), unicodedata.name("\\u00e9"))
        print(P(1), P.__doc__, sorted([P(2), P(1)]), Color.RED, list(Color))
        print(isinstance(1, numbers.Integral), string.ascii_lowercase[:3])
        print(base64.b64encode(b"pyexec"), list(difflib.ndiff(["a"], ["b"])))
        pprint.pprint({"k": list(range(3))})
        print(calendar.isleap(2024), calendar.monthrange(2024, 2))
        try:
            Shape()
        except TypeError as e:
            print("abstract:", "area" in str(e))
        """,
}


@pytest.mark.parametrize("name", sorted(DONE_WHEN))
def test_compute_runs_what_python3_runs(compute_db, name):
    code = textwrap.dedent(DONE_WHEN[name])
    want = python3(code)
    if name == "sys":   # the stand-in caps the limit; python3 keeps its own
        assert want.startswith("9223372036854775807 ")
    r = run_code(code, db=compute_db)
    assert r["success"] is True, r
    assert r["output"] == want, (r["output"], want)
    assert r["modules"] == "compute", r


@pytest.mark.parametrize("module", SEED + COMPUTE_EXTRA)
def test_every_compute_module_imports(compute_db, module):
    r = run_code("import %s\nprint(%s.__name__)" % (module, module),
                 db=compute_db)
    assert r["success"] is True and r["output"] == module + "\n", r


@pytest.mark.parametrize("name", sorted(DONE_WHEN))
def test_seed_still_refuses_them(seed_db, name):
    code = textwrap.dedent(DONE_WHEN[name])
    r = run_code(code, db=seed_db)
    assert r["success"] is False and r["error_type"] == "ImportError", r
    assert r["error"].rstrip().endswith("is not allowed (allowed modules: "
                                        + SEED_LIST + ")"), r
    assert r["modules"] == "seed", r


def test_seed_answers_byte_for_byte_as_before(seed_db):
    r = run_code("import os", db=seed_db)
    assert r["error"] == (
        "Traceback (most recent call last):\n"
        '  File "<code>", line 1, in <module>\n'
        "    import os\n"
        "ImportError: import of 'os' is not allowed (allowed modules: "
        + SEED_LIST + ")"), r
    r = run_code("import sys", db=seed_db)
    assert "import of 'sys' is not allowed" in r["error"], r


# --- the sys stand-in --------------------------------------------------------

def test_sys_standin_is_not_the_real_sys(compute_db):
    code = textwrap.dedent("""
        import sys
        names = sorted(n for n in dir(sys) if not n.startswith("__"))
        print(names)
        print(sys.getsizeof.__self__, sys.stdout.write.__self__,
              sys.setrecursionlimit.__self__)
        for name in ("modules", "_getframe", "settrace", "path", "meta_path",
                     "stdin", "exit", "addaudithook", "__stdout__"):
            print(name, hasattr(sys, name))
        print("to stderr", file=sys.stderr)
        sys.setrecursionlimit(10 ** 9)
        print(sys.getrecursionlimit())
        """)
    r = run_code(code, db=compute_db)
    assert r["success"] is True, r
    lines = r["output"].splitlines()
    assert lines[0] == str(sorted([
        "byteorder", "float_info", "getrecursionlimit", "getsizeof",
        "hash_info", "int_info", "maxsize", "maxunicode",
        "setrecursionlimit", "stderr", "stdout", "version",
        "version_info"])), r
    assert lines[1] == "None None None", r
    assert all(l.endswith(" False") for l in lines[2:-2]), r
    assert len(lines) == 2 + 9 + 2 and lines[-2] == "to stderr", r
    assert lines[-1] == "10000", r


@pytest.mark.parametrize("code, error", [
    ("from sys import modules", "ImportError"),
    ("from sys import _getframe", "ImportError"),
    ("import sys.monitoring", "ImportError"),
    ("import sys\nsys.modules['os']", "AttributeError"),
    ("__import__('types')", "ImportError"),
    ("__import__('contextlib')", "ImportError"),
    ("__import__('weakref', None, None, ['ref'])", "ImportError"),
])
def test_what_compute_pulls_in_is_not_importable(compute_db, code, error):
    """typing loads types, contextlib, ...: loaded, never importable."""
    r = run_code(code, db=compute_db)
    assert r["success"] is False and r["error_type"] == error, r


# --- per-user grants -------------------------------------------------------

def test_user_grant_and_the_audit_log():
    db = fresh_db(quota=-1)
    alice = new_user(db, "alice")
    bob = new_user(db, "bob")
    assert ok("user", "set", "alice", "--modules", "compute",
              db=db).splitlines()[-1] == "user 'alice': modules compute"
    code = "from typing import List\nprint(List[int])"
    r = run_code(code, db=db, env=bearer(alice))
    assert r["success"] is True and r["output"] == "typing.List[int]\n", r
    assert r["modules"] == "compute", r
    alice_run = r["run_id"]
    r = run_code(code, db=db, env=bearer(bob))
    assert r["error_type"] == "ImportError" and r["modules"] == "seed", r
    bob_run = r["run_id"]
    r = run_code(code, db=db, env={"REMOTE_ADDR": "127.0.0.1"})
    assert r["error_type"] == "ImportError" and r["modules"] == "seed", r
    anon_run = r["run_id"]
    got = {row["id"]: row["profile"] for row in
           map(json.loads, ok("logs", "--json", db=db).splitlines())}
    assert got[alice_run] == "compute"
    assert got[bob_run] == "seed" and got[anon_run] == "seed"
    assert "modules:    compute" in ok("user", "show", "alice", db=db)
    shown = json.loads(ok("user", "show", "bob", "--json", db=db))
    assert shown["modules"] is None
    # Back to the default.
    ok("user", "set", "alice", "--modules", "default", db=db)
    r = run_code(code, db=db, env=bearer(alice))
    assert r["error_type"] == "ImportError" and r["modules"] == "seed", r


def test_user_grant_refuses_unvetted_modules_and_unknown_users():
    db = fresh_db(quota=-1)
    new_user(db, "carol")
    err = fails(1, "user", "set", "carol", "--modules", "math,os", db=db)
    assert "module 'os' refused: files and processes" in err, err
    assert sql(db, "SELECT modules FROM users WHERE name = 'carol'") == [(None,)]
    fails(1, "user", "set", "nobody", "--modules", "compute", db=db)
    fails(2, "user", "set", "carol", db=db)
    fails(2, "user", "set", "carol", "--modules", db=db)


def test_refused_requests_record_no_profile():
    db = fresh_db(quota=-1, settings={"anonymous": "deny"})
    r = run_code("print(1)", db=db)
    assert r.status == 401, r
    assert last_row(db)[1] is None


# --- the routes the new modules open -----------------------------------------

MARKER_DIR = "/tmp"


@pytest.fixture
def marker():
    path = os.path.join(MARKER_DIR, "pyexec-profile-" + secrets.token_hex(8))
    yield path
    assert not os.path.exists(path), "the attack touched the host: " + path


def refused(r, event):
    assert r.status == 200, r
    assert r["success"] is False, r
    assert r["error_type"] == "SecurityViolation", r
    assert r["error"].startswith("audit event '%s' refused" % event), r


ROUTES = {
    # operator reaches what getattr reaches, under the same hook.
    "attrgetter_code": ("""
        import operator
        def f(): pass
        c = operator.attrgetter("__code__")(f)
        """, "object.__getattr__"),
    "methodcaller_getattribute": ("""
        import operator
        def f(): pass
        operator.methodcaller("__getattribute__", "__code__")(f)
        """, "object.__getattr__"),
    "attrgetter_tb_frame": ("""
        import operator
        try:
            1 / 0
        except ZeroDivisionError as e:
            operator.attrgetter("__traceback__.tb_frame.f_back")(e)
        """, "object.__getattr__"),
    "methodcaller_code_swap": ("""
        import operator, dataclasses
        def f(): pass
        def g(): print("swapped")
        code = dict(dataclasses.inspect.getmembers(g))["__code__"]
        operator.methodcaller("__setattr__", "__code__", code)(f)
        """, "object.__setattr__"),
    # copy calls what __reduce_ex__ names: crafting code meets the hook.
    "copy_reduce_codetype": ("""
        import copy, typing
        CodeType = typing.types.CodeType
        class R:
            def __reduce_ex__(self, proto):
                return (CodeType, (0, 0, 0, 0, 0, 0, b"", (), (), (), "", "",
                                   "", 0, b"", b""))
        copy.copy(R())
        """, "code.__new__"),
    "copy_reduce_system": ("""
        import copy, random
        class R:
            def __reduce_ex__(self, proto):
                return (random._os.system, ("touch " + $MARKER,))
        copy.deepcopy(R())
        """, "os.system"),
    "copyreg_reconstructor": ("""
        import copy, typing
        copyreg = typing.sys.modules["copyreg"]
        class R:
            def __reduce_ex__(self, proto):
                return (copyreg.__newobj__, (
                    typing.types.CodeType, 0, 0, 0, 0, 0, 0, b"", (), (), (),
                    "", "", "", 0, b"", b""))
        copy.copy(R())
        """, "code.__new__"),
    # typing evaluates string annotations with eval: refused.
    "get_type_hints_eval": ("""
        import typing
        class A:
            x: "__import__('os').system('touch ' + " + repr($MARKER) + ")"
        typing.get_type_hints(A)
        """, "exec"),
    "forwardref_evaluate": ("""
        import typing
        ref = typing.ForwardRef("open(" + repr($MARKER) + ", 'w')")
        ref._evaluate({}, {}, frozenset())
        """, "exec"),
    # types through typing: its constructors are the hook's.
    # A code object read by the stdlib for the program (inspect, reached
    # through dataclasses) is inert: no function, no replace, no exec.
    "typing_types_function": ("""
        import typing, dataclasses
        def f(): pass
        code = dict(dataclasses.inspect.getmembers(f))["__code__"]
        typing.types.FunctionType(code, {})
        """, "function.__new__"),
    "stdlib_read_code_replace": ("""
        import dataclasses
        def f(): pass
        code = dict(dataclasses.inspect.getmembers(f))["__code__"]
        code.replace(co_consts=())
        """, "code.__new__"),
    "stdlib_read_code_exec": ("""
        import dataclasses
        def f(): pass
        code = dict(dataclasses.inspect.getmembers(f))["__code__"]
        dataclasses.sys.modules["builtins"].exec(code)
        """, "exec"),
    "stdlib_read_frame": ("""
        import dataclasses
        try:
            1 / 0
        except ZeroDivisionError as e:
            tb = e.__traceback__
        print(dict(dataclasses.inspect.getmembers(tb)).get("tb_frame"))
        """, None),
    "typing_real_sys_modules": ("""
        import typing
        typing.sys.modules["os"].system("touch " + $MARKER)
        """, "os.system"),
    "typing_sys_settrace": ("""
        import typing
        typing.sys.settrace(lambda *a: None)
        """, "sys.settrace"),
    # dataclasses builds functions with exec of its own text; a program's
    # text through its helper runs as ordinary code, under the same hook.
    "dataclasses_create_fn": ("""
        import dataclasses
        cmd = "touch " + $MARKER
        body = "return __import__('os').system(%r)" % cmd
        f = dataclasses._create_fn("f", [], [body])
        f()
        """, "os.system"),
    "dataclasses_create_fn_open": ("""
        import dataclasses
        body = "return open(%r, 'w')" % $MARKER
        dataclasses._create_fn("f", [], [body])()
        """, "open"),
    "dataclasses_exec_in_exec": ("""
        import dataclasses
        f = dataclasses._create_fn("f", [], ["exec('1')"])
        f()
        """, "compile"),
    # enum and abc create classes, never code the program wrote.
    "enum_then_exec": ("""
        import enum, abc, typing
        E = enum.Enum("E", "A B")
        class C(abc.ABC): pass
        print(E.A, C)
        typing = __import__("typing")
        typing.sys.modules["builtins"].exec("1")
        """, "compile"),
    # hashlib: OpenSSL was loaded before lockdown; files stay out.
    "hashlib_file_digest": ("""
        import hashlib
        import typing
        io = typing.sys.modules["io"]
        hashlib.file_digest(io.open($MARKER, "wb"), "sha256")
        """, "open"),
}


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_route_is_closed(compute_db, marker, route):
    code, event = ROUTES[route]
    code = textwrap.dedent(code).replace("$MARKER", repr(marker))
    r = run_code(code, db=compute_db)
    if event is None:   # a restricted read by the stdlib fails quietly
        assert r["error_type"] == "TypeError", r
        assert "attribute not readable in the sandbox" in r["error"], r
        return
    refused(r, event)


SINGLEDISPATCH = textwrap.dedent("""
    import functools
    @functools.singledispatch
    def f(x):
        return "any"
    @f.register
    def _(x: "int"):
        return "int"
    print(f(1), f("a"))
    """)


def test_seed_keeps_string_annotations_of_singledispatch(seed_db):
    """The seed's behaviour is unchanged: typing (loaded there only for
    singledispatch) still evaluates a string annotation."""
    r = run_code(SINGLEDISPATCH, db=seed_db)
    assert r["success"] is True and r["output"] == "int any\n", r


def test_compute_refuses_typing_eval_even_for_singledispatch(compute_db):
    """Under compute, typing's eval of the program's text is refused
    wherever it comes from (documented)."""
    refused(run_code(SINGLEDISPATCH, db=compute_db), "exec")


def test_dataclasses_field_name_injection(compute_db, marker):
    """A field name that is code: dataclasses' generated text does not
    compile, or what it runs meets the hook; nothing happens outside."""
    code = textwrap.dedent("""
        import dataclasses
        name = "x=__import__('os').system('touch %s')#" % $MARKER
        X = type("X", (), {"__annotations__": {name: int}})
        dataclasses.dataclass(X)
        """).replace("$MARKER", repr(marker))
    r = run_code(code, db=compute_db)
    assert r["success"] is False, r
    assert r["error_type"] in ("SyntaxError", "SecurityViolation"), r


def test_decimal_contexts_are_bounded_by_the_limits(compute_db):
    code = textwrap.dedent("""
        import decimal
        ctx = decimal.getcontext()
        ctx.prec = decimal.MAX_PREC
        ctx.Emax = decimal.MAX_EMAX
        print(decimal.Decimal(1) / decimal.Decimal(3))
        """)
    r = run_code(code, db=compute_db)
    assert r["success"] is False, r
    assert r["error_type"] in ("MemoryError", "TimeoutError"), r
    # The next run is unaffected: contexts do not outlive a run.
    r = run_code("import decimal\nprint(decimal.getcontext().prec)",
                 db=compute_db)
    assert r["output"] == "28\n", r


def test_hashlib_algorithms_work_after_lockdown(compute_db):
    code = textwrap.dedent("""
        import hashlib
        names = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512",
                 "sha3_256", "blake2b", "blake2s", "shake_128"]
        for n in names:
            h = hashlib.new(n, b"pyexec")
            print(n, h.hexdigest(16) if n.startswith("shake") else h.hexdigest())
        print(hashlib.pbkdf2_hmac("sha256", b"p", b"s", 2).hex())
        """)
    r = run_code(code, db=compute_db)
    assert r["success"] is True, r
    assert r["output"] == python3(code), r


# --- issue 13 item 9: codecs and __import__'s fromlist -------------------------

CODECS = """
s = "h\\u00e9llo \\u20ac"
for enc in ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le",
            "utf-32-be", "utf-8-sig", "utf-7", "latin-1", "iso-8859-15",
            "cp1252", "cp1250", "cp1251", "cp437", "cp850", "koi8-r",
            "mac-roman", "ascii"]:
    try:
        b = s.encode(enc)
        print(enc, b.hex(), b.decode(enc) == s)
    except UnicodeEncodeError as e:
        print(enc, "cannot encode", e.start)
print("b\\u00fccher.example".encode("idna"), "b\\u00fccher".encode("punycode"))
print(b"xn--bcher-kva".decode("idna"), bytes("\\u00e9", "utf-16-le"))
print(str(b"\\xe9\\x00", "utf_16_le"), "\\u00e9".encode("raw_unicode_escape"))
"""


@pytest.mark.parametrize("profile", ["seed", "compute"])
def test_standard_text_codecs(seed_db, compute_db, profile):
    db = seed_db if profile == "seed" else compute_db
    r = run_code(CODECS, db=db)
    assert r["success"] is True, r
    assert r["output"] == python3(CODECS), r


def test_utf16_alone(seed_db):
    r = run_code('print("\\u00e9".encode("utf-16-le"))', db=seed_db)
    assert r["success"] is True and r["output"] == "b'\\xe9\\x00'\n", r


def test_unknown_codec_is_a_lookup_error(seed_db):
    r = run_code('b"x".decode("no-such-codec")', db=seed_db)
    assert r["error_type"] == "LookupError", r
    assert "unknown encoding: no-such-codec" in r["error"], r
    # A real codec that the source does not name is unknown too, never a
    # refused import.
    r = run_code('e = "".join(["sh", "ift_jis"])\nb"x".decode(e)', db=seed_db)
    assert r["error_type"] == "LookupError", r


# Modules loaded for the profile's own (datetime -> time, statistics ->
# decimal, functools -> types, weakref, ...) but not named by it.
NOT_NAMED = [("seed", n) for n in ["time", "decimal", "types", "weakref",
                                   "copyreg", "_strptime", "warnings",
                                   "heapq", "fractions", "typing"]] + \
            [("compute", n) for n in ["time", "types", "weakref", "copyreg",
                                      "_strptime", "warnings", "contextlib"]]


@pytest.mark.parametrize("profile, name", NOT_NAMED)
def test_import_with_an_empty_fromlist_reaches_nothing(seed_db, compute_db,
                                                       profile, name):
    """C code's PyImport_Import passes an empty list and reads sys.modules
    itself: the program that does the same gets None, or an ImportError."""
    db = seed_db if profile == "seed" else compute_db
    code = textwrap.dedent("""
        import datetime, statistics, functools, json, re, collections
        datetime.datetime(2024, 1, 2).strftime("%d")
        datetime.datetime.strptime("2024", "%Y")
        statistics.mean([1, 2])
        functools.singledispatch(print)
        try:
            m = __import__(NAME, None, None, [])
        except ImportError as e:
            m = "refused"
        print(m if m in (None, "refused") else "LEAKED " + repr(m))
        """).replace("NAME", repr(name))
    r = run_code(code, db=db)
    assert r["success"] is True, r
    assert r["output"] in ("None\n", "refused\n"), r


def test_lazy_modules_still_serve_c_code(seed_db):
    """The modules C code imports at call time still reach it."""
    code = textwrap.dedent("""
        import datetime, statistics, collections
        print(datetime.datetime(2024, 3, 1).strftime("%A"))
        print(datetime.datetime.strptime("2024-03-01", "%Y-%m-%d").year)
        print(statistics.mode([1, 1, 2]), statistics.median([3, 1, 2]))
        print(collections.Counter("aab").most_common(1))
        """)
    r = run_code(code, db=seed_db)
    assert r["success"] is True, r
    assert r["output"] == python3(code), r
