"""Escape attempts against pyexec.cgi by an attacker who knows CPython internals.

Every attack runs against two builds, each under the two module profiles
(the ``build`` fixture: full, full/compute, kernel-only, kernel-only/compute):

  full         the shipped pyexec.cgi: import allowlist, restricted builtins
               and the PEP 578 audit hook, then the kernel layers;
  kernel-only  the test-only build named by PYEXEC_NOPY_CGI, in which the
               Python-level layer is compiled out: the program may import os,
               open files, craft code objects... and only the kernel layers
               stand (seccomp, Landlock, the namespaces, the uid drop, the
               rlimits, no_new_privs).

  seed         allowed_modules at its default, the reference service's ten;
  compute      allowed_modules = compute: typing, copy, operator, dataclasses,
               the sys stand-in... loaded before lockdown, for every attack
               that names them, and what they pull in loaded with them.

Each test checks two things:

 1. how the run failed: success is false and the error names the barrier
    that stopped it: an audit event ("audit event 'X' refused"), a system
    call ("system call 'X' refused by seccomp"), or, for the Python layer, a
    specific NameError / ImportError / AttributeError / KeyError whose layer
    the test's docstring names;
 2. that nothing happened on the host: the secret's content is in neither
    the output nor the error, the file that would be written and the marker a
    spawned process would create do not exist, no other file with the test's
    token appeared in /tmp, the loopback listeners saw nothing, and neither
    the test process, the CGI, nor a bystander process running as the
    sandbox's own uid was signalled.

Where the attack is stopped by a layer other than the one it targets, or
where a test can only show that a barrier fired, the docstring says so.

The attacks are grouped by the attacker's goal: read a secret and write a
file (every route to open(), os-like modules, filesystem calls), reach the
network, spawn a process, signal another process, trace or read another
process (ptrace, process_vm_readv, /proc/<pid>/mem, pidfds), native code
(ctypes), crafted code objects, resource limits, the web server's
environment, exhaust the host (fork and thread bombs, disk, descriptors,
output, CPU, memory), and break the broker or the audit log (the result
pipe, closed pipes, giant or looping errors, invalid output, odd exit codes,
the database itself). Each test records the layer that stopped it
(conftest.note_layer), and the session ends with the tally per build:
"full: N blocked, N escaped" and "kernel-only: N blocked, N escaped".
"""
import glob
import marshal
import os
import re
import secrets
import select
import signal
import socket
import sqlite3
import stat
import string
import subprocess
import textwrap
import threading
import time

import pytest

import conftest
from conftest import (CGI, NOPY_CGI, ROOT, SANDBOX_UID, host_missing_layers,
                      note_layer, proc_mem, proc_table,
                      run_code)

FULL = "full"
KERNEL = "kernel-only"

# Layers every run must report, whatever the build: the kernel boundary.
KERNEL_LAYERS = {"seccomp", "no_new_privs", "rlimits", "uid_drop", "userns",
                 "netns", "landlock"}
PYTHON_LAYERS = {"python", "audit_hook"}

# Process creation: glibc's system() and posix_spawn() use clone3 (falling
# back to clone), _posixsubprocess uses vfork or clone, os.fork clone.
SPAWN_CALLS = ("clone3", "clone", "vfork", "fork")


# --------------------------------------------------------------------------
# The two builds


# Kernel-only builds with one optional kernel layer compiled out (make's
# LAYER_VARIANTS, in PYEXEC_VARIANT_DIR): as on a kernel without it. They
# meet the kernel-only build's expectations with that layer missing.
VARIANT_DIR = os.environ.get("PYEXEC_VARIANT_DIR", "")
VARIANTS = {
    "kernel-only, no user namespace": ("no-userns", {"userns", "netns"}),
    "kernel-only, no Landlock": ("no-landlock", {"landlock"}),
}


# The database whose allowed_modules is compute, made on first use.
_compute_db = []


def compute_db():
    if not _compute_db:
        _compute_db.append(conftest.fresh_db(
            quota=-1, settings={"allowed_modules": "compute"}))
    return _compute_db[0]


class Build:
    def __init__(self, name, cgi, profile="seed", missing=frozenset(),
                 mode="cgi"):
        self.name = name
        self.cgi = cgi
        self.profile = profile
        self.missing = set(missing)
        self.mode = mode	# "fcgi": through pyexec-fcgi's zygote

    @property
    def db(self):
        """The database of the build's profile (the audit rows' home)."""
        return conftest.SESSION_DB if self.profile == "seed" else compute_db()

    def run(self, code, **kw):
        kw.setdefault("db", self.db)
        r = run_code(code, cgi=self.cgi, mode=self.mode, **kw)
        assert r.returncode == 0, "the CGI itself failed: %r" % (r,)
        assert isinstance(r.json, dict) and "success" in r.json, r
        assert r.json.get("modules") == self.profile, r
        layers = set((r.json.get("sandbox") or "").split(","))
        absent = self.missing | host_missing_layers()
        missing = (KERNEL_LAYERS - absent) - layers
        assert not missing, "kernel layers not active: %s (%r)" % (missing, r)
        assert not (absent & layers), \
            "%s build on this host has %s: %r" % (self.name, absent & layers, r)
        if self.name == FULL:
            assert PYTHON_LAYERS <= layers, r
        else:
            assert not (PYTHON_LAYERS & layers), \
                "PYEXEC_NOPY_CGI is not the kernel-only build: %r" % (r,)
        return r

    def __repr__(self):
        return "<Build %s/%s %s %s>" % (self.name, self.profile, self.mode,
                                        self.cgi)


# The full build in the FastCGI mode: the same attacks, through
# pyexec-fcgi, whose sandbox children fork from its zygote.
FCGI_BUILD = FULL + ", fcgi"


@pytest.fixture(params=[FULL, FULL + "/compute", FCGI_BUILD, KERNEL,
                        KERNEL + "/compute"] + list(VARIANTS))
def build(request):
    if request.param == FCGI_BUILD:
        conftest.fcgi_address()     # started before the test looks around
        return Build(FULL, os.path.abspath(CGI), mode="fcgi")
    if request.param in VARIANTS:
        sub, missing = VARIANTS[request.param]
        if not VARIANT_DIR:
            pytest.fail("PYEXEC_VARIANT_DIR is unset: build them with `make "
                        "build/tests/no-userns/pyexec.cgi build/tests/no-landlock/"
                        "pyexec.cgi` and run with PYEXEC_VARIANT_DIR=$PWD/build/tests",
                        pytrace=False)
        path = os.path.join(VARIANT_DIR, sub, "pyexec.cgi")
        if not os.access(path, os.X_OK):
            pytest.fail("%s: %s is not an executable (run make)"
                        % (request.param, path), pytrace=False)
        return Build(request.param, path, missing=missing)
    name, _, profile = request.param.partition("/")
    if name == KERNEL:
        if not NOPY_CGI:
            pytest.fail("PYEXEC_NOPY_CGI is unset: build the kernel-only CGI "
                        "with `make build/tests/pyexec-nopy.cgi` and run with "
                        "PYEXEC_NOPY_CGI=$PWD/build/tests/pyexec-nopy.cgi",
                        pytrace=False)
        path = NOPY_CGI
    else:
        path = CGI
    if not os.access(path, os.X_OK):
        pytest.fail("%s build: %s is not an executable (run make)"
                    % (request.param, path), pytrace=False)
    return Build(name, os.path.abspath(path), profile or "seed")


# --------------------------------------------------------------------------
# The host: what an escape would touch, and the check that it did not


class Host:
    """Things on the host an escape would read, write, reach or signal.

    Everything lives directly under /tmp (mode 1777), not under pytest's
    0700 tmp_path, so that uid 65534 could reach it if the sandbox failed."""

    SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)

    def __init__(self):
        self.token = secrets.token_hex(8)
        self.secret_text = "TOPSECRET-" + secrets.token_hex(24)
        self.secret = "/tmp/pyexec-secret-%s" % self.token
        self.target = "/tmp/pyexec-escape-%s" % self.token
        self.marker = "/tmp/pyexec-escape-marker-%s" % self.token
        with open(self.secret, "w") as f:
            f.write(self.secret_text)
        os.chmod(self.secret, 0o644)
        self.secret_mode = os.stat(self.secret).st_mode
        self.listeners = []
        self.victim = None
        self.received = []
        self.old_handlers = {s: signal.signal(s, self._note) for s in self.SIGNALS}

    def _note(self, sig, frame):
        self.received.append(sig)

    # listeners the program might reach -------------------------------------
    def tcp_port(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        s.setblocking(False)
        self.listeners.append(s)
        return s.getsockname()[1]

    def udp_port(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        self.listeners.append(s)
        return s.getsockname()[1]

    def abstract_name(self):
        name = "\0pyexec-escape-%s" % self.token
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(name)
        s.listen(8)
        s.setblocking(False)
        self.listeners.append(s)
        return name.encode()

    # a bystander running as the sandbox's own uid --------------------------
    def start_victim(self):
        # Not root, the sandbox keeps our uid: the bystander is ours as is
        # (and setgroups would need CAP_SETGID).
        ids = dict(user=SANDBOX_UID, group=SANDBOX_UID,
                   extra_groups=[]) if ROOT else {}
        self.victim = subprocess.Popen(["/bin/sleep", "60"],
                                       start_new_session=True, **ids)
        return self.victim.pid

    # the check --------------------------------------------------------------
    def assert_untouched(self, r):
        text = r.raw.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
        assert self.secret_text not in text, "the secret leaked: %r" % (r,)
        assert not os.path.lexists(self.target), "the sandbox wrote %s" % self.target
        assert not os.path.lexists(self.marker), \
            "a spawned process created %s" % self.marker
        left = sorted(glob.glob("/tmp/*%s*" % self.token))
        assert left == [self.secret], "files appeared on the host: %s" % left
        st = os.lstat(self.secret)
        assert st.st_mode == self.secret_mode and stat.S_ISREG(st.st_mode), \
            "the secret's mode changed: %o" % st.st_mode
        with open(self.secret) as f:
            assert f.read() == self.secret_text, "the secret was modified"
        if self.listeners:
            ready, _, _ = select.select(self.listeners, [], [], 0.5)
            assert not ready, "a loopback listener was reached: %r" % ready
        if self.victim is not None:
            assert self.victim.poll() is None, \
                "the uid %d bystander was killed (%r)" % (SANDBOX_UID,
                                                          self.victim.returncode)
        assert not self.received, "the test process was signalled: %r" % self.received

    def close(self):
        for s, h in self.old_handlers.items():
            signal.signal(s, h)
        for s in self.listeners:
            s.close()
        if self.victim is not None:
            self.victim.kill()
            self.victim.wait()
        for p in glob.glob("/tmp/*%s*" % self.token):
            if os.path.isdir(p) and not os.path.islink(p):
                os.rmdir(p)
            else:
                os.unlink(p)


@pytest.fixture
def host():
    h = Host()
    yield h
    h.close()


# --------------------------------------------------------------------------
# Expected refusals


def audit(event):
    """Stopped by the PEP 578 hook: "audit event 'event' refused"."""
    return ("audit", event)


def seccomp(*calls):
    """Stopped by the seccomp trap: "system call 'X' refused by seccomp"."""
    return ("seccomp", calls)


def pyerr(etype, text, layer=None):
    """Stopped by a Python-level barrier raising etype with text; layer
    names the barrier when the exception type alone does not."""
    return ("python", etype, text, layer)


def python_layer(spec):
    """The barrier a pyerr() names, for the red team's tally."""
    etype, text, layer = spec[1:]
    if layer:
        return layer
    if etype == "ImportError" and "is not allowed" in text:
        return "import allowlist"
    if etype == "ImportError":
        return "built-in module table"
    if etype in ("NameError", "KeyError", "AttributeError"):
        return "restricted builtins"
    return "python"


def crash():
    """A crafted code object crashed the interpreter (or was refused)."""
    return ("crash",)


def spawn_refused():
    """Process creation refused by seccomp. glibc's system() and posix_spawn()
    and _posixsubprocess's vfork path block every signal around the call, so
    the kernel cannot run the trap's SIGSYS handler and kills the child with
    SIGSYS instead: the broker cannot know the exact call, but the answer
    must still say that seccomp refused a process-creation call, and must not
    blame something else."""
    return ("spawn",)


SECCOMP_MSG = re.compile(r"system call '([^']+)' refused by seccomp")


LAYER_OF = {"audit": "audit hook", "seccomp": "seccomp", "spawn": "seccomp",
            "crash": "broker (crash contained)"}


def assert_refused(r, spec):
    note_layer(python_layer(spec) if spec[0] == "python" else LAYER_OF[spec[0]])
    assert r.status == 200, r
    assert r["success"] is False, "the attack ran to the end: %r" % (r,)
    kind = spec[0]
    if kind == "audit":
        assert r["error_type"] == "SecurityViolation", r
        assert r["error"].startswith("audit event '%s' refused" % spec[1]), r
    elif kind == "seccomp":
        assert r["error_type"] == "SecurityViolation", r
        m = SECCOMP_MSG.fullmatch(r["error"])
        assert m, "expected a seccomp refusal naming one of %s, got %r" % (
            spec[1], r["error"])
        assert m.group(1) in spec[1], r
    elif kind == "python":
        assert r["error_type"] == spec[1], r
        assert spec[2] in r["error"], r
    elif kind == "crash":
        assert r["error_type"] in ("Crash", "SecurityViolation"), r
    elif kind == "spawn":
        assert r["error_type"] == "SecurityViolation", r
        assert "seccomp" in r["error"], r
        assert "foreign architecture" not in r["error"], \
            "a native process-creation call is reported as foreign: %r" % (r,)
        assert re.search(r"\b(%s)\b" % "|".join(SPAWN_CALLS), r["error"]), \
            "the refused process-creation call is not named: %r" % (r,)
    else:
        raise AssertionError(spec)


def attack(build, host, code, full, kernel, **subs):
    """Runs code (after $NAME substitution) and checks both halves: the host
    first (the part that matters), then the barrier that was named."""
    values = {"SECRET": repr(host.secret), "TARGET": repr(host.target),
              "MARKER": repr(host.marker), "TOKEN": repr(host.token)}
    values.update({k: repr(v) for k, v in subs.items()})
    if code.startswith(WALK):   # WALK + an indented block
        code = WALK + textwrap.dedent(code[len(WALK):])
    src = string.Template(textwrap.dedent(code)).substitute(values)
    r = build.run(src)
    host.assert_untouched(r)
    assert_refused(r, full if build.name == FULL else kernel)
    return r


# Walks the class graph from object, as reached from a tuple.
WALK = """
def _walk(c, seen):
    for s in type.__subclasses__(c):
        if s not in seen:
            seen.add(s)
            _walk(s, seen)
    return seen
def find_class(name, root=().__class__.__base__):
    return [c for c in _walk(root, set()) if c.__name__ == name][0]
BuiltinImporter = find_class("BuiltinImporter")
"""


# ==========================================================================
# Read a secret / write a file, through every route to open()

# Each route defines OPEN, something called like builtins.open, and the way
# the full build stops it. The kernel-only build is stopped at openat.
OPEN_ROUTES = {
    "builtin_open": (
        "OPEN = open",
        pyerr("NameError", "name 'open' is not defined")),
    "subclasses_fileio": (
        WALK + "OPEN = find_class('FileIO')",
        audit("open")),
    "iobase_subclasses": (
        # _io._IOBase's subclasses, stacked the way io.open stacks them.
        WALK + "_IOBase = find_class('_IOBase')\n"
        "_FileIO = find_class('FileIO', _IOBase)\n"
        "_Reader = find_class('BufferedReader', _IOBase)\n"
        "_Writer = find_class('BufferedWriter', _IOBase)\n"
        "def OPEN(path, mode):\n"
        "    raw = _FileIO(path, mode.replace('b', ''))\n"
        "    return (_Reader if 'r' in mode else _Writer)(raw)\n",
        audit("open")),
    "io_open_via_loader_globals": (
        WALK + "OPEN = find_class('FileLoader').__init__.__globals__['_io'].open",
        audit("open")),
    "stdlib_function_globals": (
        "import json\n"
        "b = json.dumps.__globals__['__builtins__']\n"
        "OPEN = (b if isinstance(b, dict) else b.__dict__)['open']",
        audit("open")),
    "traceback_frame": (
        # The caller's frame of a callback is json.encoder's, whose
        # __builtins__ are the real ones.
        "import json\n"
        "_found = []\n"
        "def _default(o):\n"
        "    try:\n"
        "        1 / 0\n"
        "    except ZeroDivisionError as e:\n"
        "        caller = e.__traceback__.tb_frame.f_back\n"
        "        b = caller.f_globals['__builtins__']\n"
        "        _found.append(b if isinstance(b, dict) else b.__dict__)\n"
        "    return None\n"
        "json.dumps(object(), indent=1, default=_default)\n"
        "OPEN = _found[0]['open']",
        audit("object.__getattr__")),
    "generator_frame": (
        "def _gen():\n"
        "    yield 1\n"
        "OPEN = _gen().gi_frame.f_builtins['open']",
        audit("object.__getattr__")),
    "sys_getframe_via_random_os": (
        "import random\n"
        "OPEN = random._os.sys._getframe(0).f_builtins['open']",
        audit("sys._getframe")),
    "codecs_open_via_sys_modules": (
        "import random\n"
        "OPEN = random._os.sys.modules['codecs'].open",
        audit("open")),
    "builtins_module_via_sys_modules": (
        "import random\n"
        "OPEN = random._os.sys.modules['builtins'].open",
        audit("open")),
    "stdout_fileio_reinit": (
        "import random\n"
        "def OPEN(path, mode):\n"
        "    raw = random._os.sys.stdout.buffer.raw\n"
        "    raw.__init__(path, mode.replace('b', ''))\n"
        "    return raw",
        audit("open")),
    "gc_get_objects": (
        WALK + "gc = BuiltinImporter.load_module('gc')\n"
        "OPEN = [d for d in gc.get_objects()\n"
        "        if type(d) is dict and 'open' in d and 'exec' in d][0]['open']",
        audit("gc.get_objects")),
}

# Routes to an os-like module: OS.open / OS.read / OS.write.
OS_ROUTES = {
    "random_os": (
        "import random\nOS = random._os",
        audit("open")),
    "posix_via_sys_modules": (
        "import random\nOS = random._os.sys.modules['posix']",
        audit("open")),
    "os_wrap_close_globals": (
        "import random\n" + WALK +
        "class _NS:\n    pass\n"
        "OS = _NS()\n"
        "OS.__dict__.update(find_class('_wrap_close').__init__.__globals__)",
        audit("open")),
    "real_import_via_function_globals": (
        "import json\n"
        "b = json.dumps.__globals__['__builtins__']\n"
        "OS = (b if isinstance(b, dict) else b.__dict__)['__import__']('os')",
        audit("import")),
    "direct_import_os": (
        "import os\nOS = os",
        pyerr("ImportError", "import of 'os' is not allowed")),
}

READ_OPEN = "\nf = OPEN($SECRET, 'rb')\nprint(f.read())\n"
WRITE_OPEN = "\nf = OPEN($TARGET, 'wb')\nf.write(b'pwned')\nf.close()\n"
READ_OS = "\nfd = OS.open($SECRET, OS.O_RDONLY)\nprint(OS.read(fd, 4096))\n"
WRITE_OS = ("\nfd = OS.open($TARGET, OS.O_WRONLY | OS.O_CREAT, 0o644)\n"
            "OS.write(fd, b'pwned')\n")


@pytest.mark.parametrize("route", sorted(OPEN_ROUTES))
@pytest.mark.parametrize("op", ["read", "write"])
def test_open_route(build, host, route, op):
    """Reaches open() (or FileIO) through the object graph and reads the
    secret or creates the target file. The full build stops each route at the
    step named in OPEN_ROUTES (audit hook or restricted builtins); in the
    kernel-only build every route reaches open() and seccomp refuses openat
    (Landlock, which would answer EACCES, is never consulted)."""
    prologue, full = OPEN_ROUTES[route]
    code = prologue + (READ_OPEN if op == "read" else WRITE_OPEN)
    attack(build, host, code, full=full, kernel=seccomp("openat"))


@pytest.mark.parametrize("route", sorted(OS_ROUTES))
@pytest.mark.parametrize("op", ["read", "write"])
def test_os_route(build, host, route, op):
    """Reaches os.open through random._os, sys.modules, os._wrap_close's
    globals, the unrestricted __import__ of a stdlib function's builtins, or a
    plain import. Full build: the audit hook ('open' or 'import') or the
    import allowlist; kernel-only: seccomp refuses openat."""
    prologue, full = OS_ROUTES[route]
    if build.mode == "fcgi" and full == audit("import"):
        # The zygote imported random, and os with it: importing a loaded
        # module raises no 'import' event, so the hook refuses the next
        # step, the file's 'open' (as in the CGI for a program that
        # imports random first).
        full = audit("open")
    code = prologue + (READ_OS if op == "read" else WRITE_OS)
    attack(build, host, code, full=full, kernel=seccomp("openat"))


def test_linecache_via_module_globals(build, host):
    """linecache reached through random's module globals. It would read any
    file (it stats the path first, and os.stat raises no audit event), so it
    is not loaded before lockdown, not even for re (a warning's display
    does without it: audit.c), and cannot be loaded after."""
    code = """
        import re, random
        sys = random.__dict__['_os'].__dict__['sys']
        print(sys.modules['linecache'].getlines($SECRET))
    """
    attack(build, host, code, full=pyerr("KeyError", "linecache"),
           kernel=pyerr("KeyError", "linecache"))


def test_stat_probe(build, host):
    """Probes the secret's existence and size with os.stat, which has no
    audit event: seccomp (newfstatat) is the only barrier in both builds."""
    code = """
        import random
        print(random._os.stat($SECRET).st_size)
    """
    r = attack(build, host, code, full=seccomp("newfstatat"),
               kernel=seccomp("newfstatat"))
    assert r["output"] == ""


def test_fileloader_get_data(build, host):
    """importlib's FileLoader.get_data (found in the class graph) reads any
    path with io.open_code: audit 'open' / seccomp openat."""
    code = WALK + """
        L = find_class('FileLoader')
        print(L('x', $SECRET).get_data($SECRET))
    """
    attack(build, host, code, full=audit("open"), kernel=seccomp("openat"))


def test_proc_1_cmdline(build, host):
    """Reads init's command line: audit 'open' / seccomp openat."""
    with open("/proc/1/cmdline", "rb") as f:
        cmdline = f.read().replace(b"\0", b" ").strip()
    code = """
        import random
        fd = random._os.open('/proc/1/cmdline', random._os.O_RDONLY)
        print(random._os.read(fd, 4096))
    """
    r = attack(build, host, code, full=audit("open"), kernel=seccomp("openat"))
    assert r["output"] == ""
    if len(cmdline) > 8:
        assert cmdline.decode("utf-8", "replace") not in r["output"]


def test_source_loader_set_data(build, host):
    """SourceFileLoader.set_data (the bytecode cache writer) creates the
    target. It checks the parent directory with stat first, which no audit
    event covers: seccomp (newfstatat) stops it in both builds."""
    code = WALK + """
        L = find_class('SourceFileLoader')
        L('x', '/tmp/x.py').set_data($TARGET, b'pwned')
    """
    attack(build, host, code, full=seccomp("newfstatat"),
           kernel=seccomp("newfstatat"))


FS_CALLS = {
    "mkdir": ("OS.mkdir($TARGET)", audit("os.mkdir"), seccomp("mkdir", "mkdirat")),
    "symlink": ("OS.symlink($SECRET, $TARGET)", audit("os.symlink"),
                seccomp("symlink", "symlinkat")),
    "link": ("OS.link($SECRET, $TARGET)", audit("os.link"), seccomp("link", "linkat")),
    "rename": ("OS.rename($SECRET, $TARGET)", audit("os.rename"),
               seccomp("rename", "renameat", "renameat2")),
    "truncate": ("OS.truncate($SECRET, 0)", audit("os.truncate"), seccomp("truncate")),
    "chmod": ("OS.chmod($SECRET, 0o777)", audit("os.chmod"), seccomp("chmod", "fchmodat")),
    "remove": ("OS.remove($SECRET)", audit("os.remove"), seccomp("unlink", "unlinkat")),
}


@pytest.mark.parametrize("call", sorted(FS_CALLS))
def test_filesystem_change_via_random_os(build, host, call):
    """Changes the host's filesystem with random._os.<call>: the audit hook
    refuses os.<call> in the full build, seccomp the system call in the
    kernel-only build; the secret is unchanged and no file appeared."""
    stmt, full, kernel = FS_CALLS[call]
    attack(build, host, "import random\nOS = random._os\n" + stmt,
           full=full, kernel=kernel)


# ==========================================================================
# Network: connect to the test's own loopback listeners


def test_tcp_via_builtin_importer_socket(build, host):
    """_socket loaded with BuiltinImporter.load_module (found in
    object.__subclasses__(), no 'import' event) connects to the test's TCP
    listener: the full build has dropped _socket from its table of built-in
    modules (ImportError) / seccomp socket (and the sandbox's network
    namespace has its own, down, loopback)."""
    code = WALK + """
        s = BuiltinImporter.load_module('_socket')
        c = s.socket(s.AF_INET, s.SOCK_STREAM)
        c.connect(('127.0.0.1', $PORT))
        c.send(b'escaped')
    """
    attack(build, host, code, full=pyerr("ImportError", "'_socket' is not a built-in module"),
           kernel=seccomp("socket"), PORT=host.tcp_port())


def test_udp_via_builtin_importer_socket(build, host):
    """A UDP datagram to the test's listener: _socket is not a built-in
    module of the full build (ImportError) / seccomp socket."""
    code = WALK + """
        s = BuiltinImporter.load_module('_socket')
        c = s.socket(s.AF_INET, s.SOCK_DGRAM)
        c.sendto(b'escaped', ('127.0.0.1', $PORT))
    """
    attack(build, host, code, full=pyerr("ImportError", "'_socket' is not a built-in module"),
           kernel=seccomp("socket"), PORT=host.udp_port())


def test_abstract_unix_socket(build, host):
    """Connects to the test's abstract UNIX socket (what Landlock's scoping
    and the network namespace also deny): _socket is not a built-in module
    of the full build (ImportError) / seccomp socket."""
    code = WALK + """
        s = BuiltinImporter.load_module('_socket')
        c = s.socket(s.AF_UNIX, s.SOCK_STREAM)
        c.connect($NAME)
        c.send(b'escaped')
    """
    attack(build, host, code, full=pyerr("ImportError", "'_socket' is not a built-in module"),
           kernel=seccomp("socket"), NAME=host.abstract_name())


def test_socket_via_real_import(build, host):
    """The unrestricted __import__ from a stdlib function's builtins imports
    socket: audit 'import' in the full build; in the kernel-only build the
    module cannot even be loaded (the filesystem is gone: seccomp refuses
    newfstatat), so socket() is never reached."""
    code = """
        import json
        b = json.dumps.__globals__['__builtins__']
        socket = (b if isinstance(b, dict) else b.__dict__)['__import__']('socket')
        socket.create_connection(('127.0.0.1', $PORT)).send(b'escaped')
    """
    attack(build, host, code, full=audit("import"),
           kernel=seccomp("newfstatat"), PORT=host.tcp_port())


def test_import_socket_directly(build, host):
    """import socket: the import allowlist (ImportError) in the full build;
    in the kernel-only build loading socket.py needs the filesystem (seccomp
    refuses newfstatat)."""
    code = """
        import socket
        socket.create_connection(('127.0.0.1', $PORT)).send(b'escaped')
    """
    attack(build, host, code,
           full=pyerr("ImportError", "import of 'socket' is not allowed"),
           kernel=seccomp("newfstatat"), PORT=host.tcp_port())


def test_import_builtin_socket_module_directly(build, host):
    """import _socket (compiled in, so it loads without files): the import
    allowlist in the full build; seccomp refuses socket() in the kernel-only
    build."""
    code = """
        import _socket
        c = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        c.connect(('127.0.0.1', $PORT))
    """
    attack(build, host, code,
           full=pyerr("ImportError", "import of '_socket' is not allowed"),
           kernel=seccomp("socket"), PORT=host.tcp_port())


# ==========================================================================
# Spawn a process: the marker file must not appear


def test_os_system(build, host):
    """random._os.system('touch MARKER'): audit 'os.system' / seccomp must
    refuse the process creation (glibc's system() uses clone3)."""
    code = "import random\nrandom._os.system('touch ' + $MARKER)"
    attack(build, host, code, full=audit("os.system"), kernel=spawn_refused())


def test_os_posix_spawn(build, host):
    """random._os.posix_spawn of touch: audit 'os.posix_spawn' / seccomp
    must refuse clone3."""
    code = ("import random\n"
            "random._os.posix_spawn('/usr/bin/touch', ['touch', $MARKER], {})")
    attack(build, host, code, full=audit("os.posix_spawn"), kernel=spawn_refused())


def test_os_fork(build, host):
    """random._os.fork(), the child touching the marker: audit 'os.fork' /
    seccomp clone."""
    code = """
        import random
        os = random._os
        if os.fork() == 0:
            os.close(os.open($MARKER, os.O_WRONLY | os.O_CREAT, 0o644))
            os._exit(0)
    """
    attack(build, host, code, full=audit("os.fork"), kernel=seccomp(*SPAWN_CALLS))


def test_os_execv(build, host):
    """Replaces the sandbox with touch: audit 'os.exec' / seccomp execve."""
    code = "import random\nrandom._os.execv('/usr/bin/touch', ['touch', $MARKER])"
    attack(build, host, code, full=audit("os.exec"), kernel=seccomp("execve"))


def test_subprocess_via_real_import(build, host):
    """subprocess through the unrestricted __import__ of json's builtins:
    audit 'import' / in the kernel-only build subprocess.py cannot be loaded
    (seccomp newfstatat), so no process creation is even attempted."""
    code = """
        import json
        b = json.dumps.__globals__['__builtins__']
        sp = (b if isinstance(b, dict) else b.__dict__)['__import__']('subprocess')
        sp.run(['touch', $MARKER])
    """
    attack(build, host, code, full=audit("import"), kernel=seccomp("newfstatat"))


@pytest.mark.parametrize("allow_vfork", [False, True])
def test_posixsubprocess_fork_exec(build, host, allow_vfork):
    """_posixsubprocess.fork_exec, loaded with BuiltinImporter (no 'import'
    event) and raising no audit event itself: the full build has dropped
    _posixsubprocess from its built-in modules (ImportError); in the
    kernel-only build seccomp stands between it and a new process (clone,
    or vfork/clone3 when allow_vfork)."""
    code = WALK + """
        ps = BuiltinImporter.load_module('_posixsubprocess')
        ps.fork_exec([b'/usr/bin/touch', $MARKER.encode()], [b'/usr/bin/touch'],
                     True, (), None, None, -1, -1, -1, -1, -1, -1, 0, 3,
                     False, False, -1, None, None, None, -1, None, $VFORK)
    """
    attack(build, host, code, full=pyerr("ImportError", "'_posixsubprocess' is not a built-in module"),
           kernel=spawn_refused(), VFORK=allow_vfork)


def test_import_subprocess_directly(build, host):
    """import subprocess: the allowlist / seccomp newfstatat (not loadable)."""
    code = "import subprocess\nsubprocess.run(['touch', $MARKER])"
    attack(build, host, code,
           full=pyerr("ImportError", "import of 'subprocess' is not allowed"),
           kernel=seccomp("newfstatat"))


# ==========================================================================
# Signal the parent and other processes


def test_kill_parent(build, host):
    """random._os.kill(random._os.getppid(), 9): getppid raises no audit
    event and is not on the seccomp allowlist, so in BOTH builds seccomp
    stops the attack one step early; the CGI answers with a normal JSON
    body, which shows it was not killed."""
    host.start_victim()
    code = "import random\nrandom._os.kill(random._os.getppid(), 9)"
    attack(build, host, code, full=seccomp("getppid"), kernel=seccomp("getppid"))


def test_kill_bystander_with_same_uid(build, host):
    """SIGKILL to a process running as uid 65534 like the sandbox (another
    run, say): audit 'os.kill' / seccomp kill. The bystander survives."""
    pid = host.start_victim()
    code = "import random\nrandom._os.kill($PID, 9)"
    attack(build, host, code, full=audit("os.kill"), kernel=seccomp("kill"), PID=pid)


def test_killpg_bystander(build, host):
    """killpg on the bystander's process group: audit 'os.killpg' /
    seccomp kill."""
    pid = host.start_victim()
    code = "import random\nrandom._os.killpg($PGID, 9)"
    attack(build, host, code, full=audit("os.killpg"), kernel=seccomp("kill"),
           PGID=os.getpgid(pid))


def test_signal_test_process(build, host):
    """SIGTERM to the test process itself, whose handler records any signal:
    audit 'os.kill' / seccomp kill."""
    code = "import random\nrandom._os.kill($PID, 15)"
    attack(build, host, code, full=audit("os.kill"), kernel=seccomp("kill"),
           PID=os.getpid())


def test_kill_init_probe(build, host):
    """kill(1, 0), probing for init: audit 'os.kill' / seccomp kill."""
    code = "import random\nprint(random._os.kill(1, 0))"
    r = attack(build, host, code, full=audit("os.kill"), kernel=seccomp("kill"))
    assert r["output"] == ""


def test_kill_everything(build, host):
    """kill(-1, 9), every process the uid may signal (the bystander among
    them): audit 'os.kill' / seccomp kill."""
    host.start_victim()
    code = "import random\nrandom._os.kill(-1, 9)"
    attack(build, host, code, full=audit("os.kill"), kernel=seccomp("kill"))


def test_sigsys_handler_cannot_silence_seccomp(build, host):
    """Replaces the SIGSYS handler (the seccomp trap's reporter) with a
    Python one through _signal (BuiltinImporter: no audit event, and
    signal.signal raises none), then makes refused calls: getppid (no audit
    event) and kill of the bystander. The refused calls never execute (the
    bystander lives), but the run must still end at the first refusal and
    name it (the handler's replacement, rt_sigaction, or getppid), not carry
    on and report success. The full build has no _signal module at all
    (ImportError)."""
    pid = host.start_victim()
    code = WALK + """
        import random
        sig = BuiltinImporter.load_module('_signal')
        sig.signal(sig.SIGSYS, lambda *a: None)
        print('getppid returned', random._os.getppid())
        random._os.kill($PID, 9)
        print('kill returned')
    """
    attack(build, host, code, full=pyerr("ImportError", "'_signal' is not a built-in module"),
           kernel=seccomp("rt_sigaction", "getppid"), PID=pid)


# ==========================================================================
# ctypes and native code

CTYPES_SO = "/usr/lib/python3.11/lib-dynload/_ctypes.cpython-311-x86_64-linux-gnu.so"


def test_import_ctypes(build, host):
    """import ctypes: the allowlist (ImportError) / ctypes is not loadable
    once the filesystem is gone (seccomp newfstatat)."""
    attack(build, host, "import ctypes\nctypes.CDLL(None).system(b'touch ' + $MARKER.encode())",
           full=pyerr("ImportError", "import of 'ctypes' is not allowed"),
           kernel=seccomp("newfstatat"))


def test_ctypes_via_builtin_importer(build, host):
    """BuiltinImporter.load_module('_ctypes'): _ctypes is a lib-dynload
    extension, not compiled in, so CPython itself answers ImportError in
    both builds (no sandbox layer is involved: the route simply does not
    exist; the extension-loader routes below are the real attempt)."""
    code = WALK + "BuiltinImporter.load_module('_ctypes')"
    attack(build, host, code,
           full=pyerr("ImportError", "'_ctypes' is not a built-in module", "CPython (no such route)"),
           kernel=pyerr("ImportError", "'_ctypes' is not a built-in module", "CPython (no such route)"))


def test_ctypes_via_extension_file_loader(build, host):
    """ExtensionFileLoader (found in the class graph) loads _ctypes' .so:
    audit 'import' / seccomp openat (dlopen needs the file)."""
    code = WALK + """
        import random
        EFL = find_class('ExtensionFileLoader')
        loader = EFL('_ctypes', $SO)
        spec = random._os.sys.modules['_frozen_importlib'].spec_from_loader('_ctypes', loader)
        m = loader.create_module(spec)
        print(m)
    """
    attack(build, host, code, full=audit("import"), kernel=seccomp("openat"),
           SO=CTYPES_SO)


def test_ctypes_via_imp_create_dynamic(build, host):
    """_imp.create_dynamic, the primitive under every extension loader,
    reached through random._os.sys.modules: audit 'import' / seccomp
    openat."""
    code = """
        import random
        imp = random._os.sys.modules['_imp']
        class Spec:
            name = '_ctypes'
            origin = $SO
        print(imp.create_dynamic(Spec()))
    """
    attack(build, host, code, full=audit("import"), kernel=seccomp("openat"),
           SO=CTYPES_SO)


def test_ctypes_via_real_import(build, host):
    """import ctypes through the unrestricted __import__ of json's builtins:
    audit 'import' / seccomp newfstatat."""
    code = """
        import json
        b = json.dumps.__globals__['__builtins__']
        (b if isinstance(b, dict) else b.__dict__)['__import__']('ctypes')
    """
    attack(build, host, code, full=audit("import"), kernel=seccomp("newfstatat"))


# ==========================================================================
# Crafted code objects

# Python 3.11 bytecode: RESUME 0; EXTENDED_ARG x3; LOAD_CONST 0x7fffff00 (far
# past the end of an empty co_consts); RETURN_VALUE.
OOB_CONST = "bytes([151, 0, 144, 0x7f, 144, 0xff, 144, 0xff, 100, 0x00, 83, 0])"
# RESUME 0; EXTENDED_ARG; LOAD_FAST 0xfff0 (no such local); RETURN_VALUE.
OOB_FAST = "bytes([151, 0, 144, 0xff, 124, 0xf0, 83, 0])"


def test_code_replace_oob_load_const(build, host):
    """(lambda: 0).__code__.replace(co_code=...) with LOAD_CONST far out of
    range. Full: reading __code__ is refused (audit object.__getattr__);
    kernel-only: the interpreter reads wild memory and dies (Crash), and
    nothing on the host is touched."""
    code = """
        f = lambda: 0
        c = f.__code__.replace(co_code=%s, co_consts=(), co_stacksize=4,
                               co_linetable=b'', co_exceptiontable=b'')
        print(type(f)(c, {})())
    """ % OOB_CONST
    attack(build, host, code, full=audit("object.__getattr__"), kernel=crash())


def test_code_type_constructor_oob_load_fast(build, host):
    """type((lambda: 0).__code__)(...) building LOAD_FAST of a huge index:
    audit object.__getattr__ (__code__) / Crash."""
    code = """
        f = lambda: 0
        C = type(f.__code__)
        c = C(0, 0, 0, 0, 4, 0, %s, (), (), (), '<x>', 'x', 'x', 1, b'', b'')
        print(type(f)(c, {})())
    """ % OOB_FAST
    attack(build, host, code, full=audit("object.__getattr__"), kernel=crash())


def test_code_class_from_subclasses(build, host):
    """The code class found in object.__subclasses__() (no __code__ read),
    called to build the out-of-range LOAD_CONST: audit 'code.__new__' /
    Crash."""
    code = WALK + """
        C = find_class('code')
        c = C(0, 0, 0, 0, 4, 0, %s, (), (), (), '<x>', 'x', 'x', 1, b'', b'')
        print(type(lambda: 0)(c, {})())
    """ % OOB_CONST
    attack(build, host, code, full=audit("code.__new__"), kernel=crash())


def test_frozen_code_replace(build, host):
    """A code object from _imp.get_frozen_object (no audit event), then
    .replace() with crafted bytecode: audit 'code.__new__' / Crash."""
    code = """
        import random
        imp = random._os.sys.modules['_imp']
        c = imp.get_frozen_object('__hello__')
        c = c.replace(co_code=%s, co_consts=(), co_stacksize=4, co_nlocals=0,
                      co_varnames=(), co_names=(), co_linetable=b'',
                      co_exceptiontable=b'')
        print(type(lambda: 0)(c, {})())
    """ % OOB_CONST
    attack(build, host, code, full=audit("code.__new__"), kernel=crash())


def test_function_code_swap(build, host):
    """f.__code__ = <frozen code object> (obtained without reading any
    __code__): audit 'object.__setattr__' (the code-swap rule) / in the
    kernel-only build the swapped-in crafted code crashes the interpreter."""
    code = """
        import random
        imp = random._os.sys.modules['_imp']
        c = imp.get_frozen_object('__hello__')
        def f():
            pass
        f.__code__ = c
        f.__code__ = c.replace(co_code=%s, co_consts=(), co_stacksize=4,
                               co_nlocals=0, co_varnames=(), co_names=(),
                               co_linetable=b'', co_exceptiontable=b'')
        f()
    """ % OOB_CONST
    attack(build, host, code, full=audit("object.__setattr__"), kernel=crash())


def test_function_constructor(build, host):
    """type(lambda: 0)(code, globals) with the real builtins, running frozen
    code that then opens the secret: audit 'function.__new__' / in the
    kernel-only build the function runs and seccomp refuses openat."""
    code = """
        import random, json
        imp = random._os.sys.modules['_imp']
        c = imp.get_frozen_object('__hello__')
        b = json.dumps.__globals__['__builtins__']
        b = b if isinstance(b, dict) else b.__dict__
        F = type(lambda: 0)
        F(c, {'__builtins__': b, '__name__': 'x'})
        b['open']($SECRET).read()
    """
    attack(build, host, code, full=audit("function.__new__"),
           kernel=seccomp("openat"))


def test_marshal_loads_via_builtin_importer(build, host):
    """marshal (BuiltinImporter) loads a code object prepared by the test
    (an os.open of the secret) and runs it with the real builtins: audit
    'marshal.loads' / seccomp openat when the loaded code runs."""
    payload = marshal.dumps(compile(
        "import os\nprint(os.read(os.open(%r, os.O_RDONLY), 4096))" % host.secret,
        "<payload>", "exec")).hex()
    code = WALK + """
        import json
        m = BuiltinImporter.load_module('marshal')
        c = m.loads(bytes.fromhex($PAYLOAD))
        b = json.dumps.__globals__['__builtins__']
        b = b if isinstance(b, dict) else b.__dict__
        type(lambda: 0)(c, {'__builtins__': b, '__name__': 'x'})()
    """
    attack(build, host, code, full=audit("marshal.loads"), kernel=seccomp("openat"),
           PAYLOAD=payload)


def test_exec_via_function_globals(build, host):
    """exec() taken from a stdlib function's real builtins, on a string that
    reads the secret: audit 'compile' (a program call, not a stdlib one) /
    seccomp openat."""
    code = """
        import json
        b = json.dumps.__globals__['__builtins__']
        b = b if isinstance(b, dict) else b.__dict__
        b['exec']("import os\\nprint(os.read(os.open(%r, 0), 4096))" % $SECRET)
    """
    attack(build, host, code, full=audit("compile"), kernel=seccomp("openat"))


# ==========================================================================
# Resource limits


def test_resource_via_imp_create_dynamic(build, host):
    """Loads the resource extension with _imp.create_dynamic to lift
    RLIMIT_AS: audit 'import' / seccomp openat; setrlimit is never reached
    (seccomp would refuse a prlimit64 write in any case)."""
    code = """
        import random
        imp = random._os.sys.modules['_imp']
        class Spec:
            name = 'resource'
            origin = '/usr/lib/python3.11/lib-dynload/resource.cpython-311-x86_64-linux-gnu.so'
        r = imp.create_dynamic(Spec())
        r.setrlimit(r.RLIMIT_AS, (-1, -1))
    """
    attack(build, host, code, full=audit("import"), kernel=seccomp("openat"))


def test_resource_via_builtin_importer(build, host):
    """BuiltinImporter.load_module('resource'): resource is a lib-dynload
    extension, so CPython answers ImportError in both builds (the route does
    not exist; shows only that no built-in path to setrlimit is there)."""
    code = WALK + """
        r = BuiltinImporter.load_module('resource')
        r.setrlimit(r.RLIMIT_AS, (-1, -1))
    """
    attack(build, host, code,
           full=pyerr("ImportError", "'resource' is not a built-in module", "CPython (no such route)"),
           kernel=pyerr("ImportError", "'resource' is not a built-in module", "CPython (no such route)"))


def test_setrlimit_then_memory_bomb(build, host):
    """import resource; setrlimit(RLIMIT_AS, unlimited): the allowlist /
    seccomp newfstatat (resource cannot be loaded, so the prlimit64 write is
    never attempted). A memory bomb in a second run still meets RLIMIT_AS
    (MemoryError) at the configured limit (256 MiB in the tests)."""
    code = """
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (-1, -1))
    """
    attack(build, host, code,
           full=pyerr("ImportError", "import of 'resource' is not allowed"),
           kernel=seccomp("newfstatat"))
    # Time enough that only the memory limit can end it, however slow
    # zero-filling 256 MiB is on a busy machine.
    r = build.run("x = []\nwhile True:\n    x.append(bytearray(32 * 1024 * 1024))\n",
                  env={"PYEXEC_TIMEOUT_MS": "30000"})
    host.assert_untouched(r)
    assert r["success"] is False and r["error_type"] == "MemoryError", r


# ==========================================================================
# The web server's environment


def secret_env(build):
    """A secret variable of the web server's, and a real user's bearer
    token (valid, so that the code runs)."""
    token = conftest.add_user(build.db, "env-" + secrets.token_hex(6))
    return {"PYEXEC_TEST_SECRET": "envsecret-" + secrets.token_hex(16),
            "HTTP_AUTHORIZATION": "Bearer " + token}


def assert_env_absent(r, env):
    text = r.raw.decode("utf-8", "replace")
    for v in env.values():
        assert v not in text and v.split()[-1] not in text, \
            "the web server's environment leaked: %r" % (r,)


def test_environ_is_empty(build, host):
    """os.environ, posix.environ and getenv through random._os: the child
    executes pyexec-sandbox with TZ alone in its environment, so the run
    succeeds and shows only TZ (no refusal is expected: this test shows the
    barrier by its absence of content)."""
    env = secret_env(build)
    code = """
        import random
        os = random._os
        print(sorted(os.environ), sorted(os.sys.modules['posix'].environ))
        print(os.getenv('PYEXEC_TEST_SECRET'), os.getenv('HTTP_AUTHORIZATION'))
    """
    note_layer("exec with TZ alone")
    r = build.run(textwrap.dedent(code), env=env)
    host.assert_untouched(r)
    assert_env_absent(r, env)
    assert r["success"] is True, r
    assert r["output"] == "['TZ'] [b'TZ']\nNone None\n", r


def test_proc_self_environ(build, host):
    """/proc/self/environ (the kernel's copy of the initial environment):
    audit 'open' / seccomp openat."""
    env = secret_env(build)
    code = """
        import random
        os = random._os
        print(os.read(os.open('/proc/self/environ', os.O_RDONLY), 65536))
    """
    r = build.run(textwrap.dedent(code), env=env)
    host.assert_untouched(r)
    assert_env_absent(r, env)
    assert_refused(r, audit("open") if build.name == FULL else seccomp("openat"))


def test_direct_os_environ(build, host):
    """import os; os.environ: the allowlist (ImportError) / in the
    kernel-only build the import works and the environment is empty."""
    env = secret_env(build)
    note_layer("exec with TZ alone")
    r = build.run("import os\nprint(dict(os.environ))", env=env)
    host.assert_untouched(r)
    assert_env_absent(r, env)
    if build.name == FULL:
        assert_refused(r, pyerr("ImportError", "import of 'os' is not allowed"))
    else:
        assert r["success"] is True and r["output"] == "{'TZ': 'UTC0'}\n", r


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def _sandbox_child(root):
    """A sandbox child among root's descendants: the CGI's child, or one
    forked from pyexec-fcgi's zygote (named pyexec-zygote itself)."""
    table = proc_table()
    todo = [root]
    while todo:
        pid = todo.pop()
        kids = [p for p, proc in table.items() if proc.ppid == pid]
        for k in kids:
            if _comm(k) == "pyexec-sandbox":
                return k
        todo.extend(kids)
    return None


def test_sandbox_memory_holds_no_environment(build, host):
    """An attacker with an arbitrary-read primitive (the kernel-only build
    has one: crafted bytecode) could scan the process's own memory for the
    web server's environment without any file. The test does that scan from
    the outside, as root through /proc/<pid>/mem, while the program runs: the
    secret values are nowhere in the sandbox's address space (the child wipes
    the environment strings), and neither is the token sent in the body
    next to input_data (the child gets input_data's bytes, not the body),
    while a canary from the program's own source and one from input_data
    are found, which proves the scan works. It also checks, from the host,
    that the child runs as uid 65534 in its own user and network
    namespaces."""
    env = secret_env(build)
    token = env["HTTP_AUTHORIZATION"].split()[-1]
    note_layer("exec with TZ alone")
    canary = "canary-" + secrets.token_hex(12)
    in_canary = "incanary-" + secrets.token_hex(12)
    code = textwrap.dedent("""
        c = %r
        assert input_data['k'].startswith('incanary-')
        import datetime
        end = datetime.datetime.now() + datetime.timedelta(seconds=1.5)
        while datetime.datetime.now() < end:
            pass
        print('done')
    """ % canary)
    result = {}
    def run():
        try:
            result["r"] = build.run(code, env=env, token=token,
                                    input_data={"k": in_canary})
        except BaseException as e:   # re-raised below, in the test's thread
            result["e"] = e
    t = threading.Thread(target=run)
    t.start()
    try:
        child = None
        deadline = time.monotonic() + 1.5
        while child is None and time.monotonic() < deadline:
            child = _sandbox_child(os.getpid())
            time.sleep(0.02)
        assert child is not None, "no sandbox child found"
        time.sleep(0.3)   # let it reach the program
        # A zygote found as it started, before it named itself: look again.
        if _comm(child) != "pyexec-sandbox":
            child = _sandbox_child(os.getpid())
        with open("/proc/%d/status" % child) as f:
            status = f.read()
        assert re.search(r"^Uid:\s+%d\s+%d\s+%d\s+%d$" % ((SANDBOX_UID,) * 4),
                         status, re.M), status
        for ns in ("net", "user"):
            # without user namespaces (build or host) it shares the host's
            own = ns + "ns" not in (build.missing | host_missing_layers())
            assert (os.readlink("/proc/%d/ns/%s" % (child, ns)) !=
                    os.readlink("/proc/self/ns/%s" % ns)) == own, ns
        found = {v: [] for v in list(env.values()) + [canary, in_canary]}
        for v in env.values():
            found.setdefault(v.split()[-1], [])
        with open("/proc/%d/maps" % child) as f:
            maps = f.read().splitlines()
        scanned = 0
        with proc_mem(child) as mem:
            for line in maps:
                fields = line.split()
                if "r" not in fields[1]:
                    continue
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                try:
                    mem.seek(lo)
                    data = mem.read(hi - lo)
                except OSError:
                    continue   # [vvar] and the like
                scanned += len(data)
                for k in found:
                    if k.encode() in data:
                        found[k].append(line)
    finally:
        t.join()
    if "e" in result:
        raise result["e"]
    r = result["r"]
    host.assert_untouched(r)
    assert_env_absent(r, env)
    assert r["success"] is True and r["output"] == "done\n", r
    assert scanned > 1 << 20, scanned
    assert found.pop(canary), "the scan did not even find the canary"
    assert found.pop(in_canary), "the scan did not find input_data's canary"
    leaked = {k: v for k, v in found.items() if v}
    assert not leaked, "secrets in the sandbox's memory: %r" % leaked


# ==========================================================================
# Misc: debugger, help, input, exit, builtins, gc, sys.modules, hooks


def test_breakpoint(build, host):
    """breakpoint(): removed from the builtins (NameError) / in the
    kernel-only build it imports pdb, which needs the filesystem (seccomp
    newfstatat)."""
    attack(build, host, "breakpoint()",
           full=pyerr("NameError", "name 'breakpoint' is not defined"),
           kernel=seccomp("newfstatat"))


def test_breakpoint_via_real_builtins(build, host):
    """breakpoint from json's unrestricted builtins: audit
    'builtins.breakpoint' / seccomp newfstatat (pdb cannot load)."""
    code = """
        import json
        b = json.dumps.__globals__['__builtins__']
        (b if isinstance(b, dict) else b.__dict__)['breakpoint']()
    """
    attack(build, host, code, full=audit("builtins.breakpoint"),
           kernel=seccomp("newfstatat"))


def test_help(build, host):
    """help(): removed from the builtins in the full build; in the
    kernel-only build it was never there (site is not imported): NameError
    in both; the next test tries pydoc itself."""
    attack(build, host, "help()",
           full=pyerr("NameError", "name 'help' is not defined"),
           kernel=pyerr("NameError", "name 'help' is not defined", "CPython (no site module)"))


def test_pydoc(build, host):
    """import pydoc (what help() would run, and which pages files and runs
    a pager): the allowlist / seccomp newfstatat."""
    attack(build, host, "import pydoc\npydoc.pager('x')",
           full=pyerr("ImportError", "import of 'pydoc' is not allowed"),
           kernel=seccomp("newfstatat"))


def test_input(build, host):
    """input(): removed (NameError) / in the kernel-only build it reads the
    child's stdin, which is /dev/null, never the request or the web server's
    socket: EOFError."""
    attack(build, host, "print(input())",
           full=pyerr("NameError", "name 'input' is not defined"),
           kernel=pyerr("EOFError", "EOF when reading a line", "fds (stdin is /dev/null)"))


def test_input_via_real_builtins(build, host):
    """input from json's unrestricted builtins: audit 'builtins.input' /
    EOFError (stdin is /dev/null)."""
    code = """
        import json
        b = json.dumps.__globals__['__builtins__']
        print((b if isinstance(b, dict) else b.__dict__)['input']())
    """
    attack(build, host, code, full=audit("builtins.input"),
           kernel=pyerr("EOFError", "EOF when reading a line", "fds (stdin is /dev/null)"))


def test_exit(build, host):
    """exit(): removed in the full build, never defined without site in the
    kernel-only one: NameError in both (exit is not a way out anyway)."""
    attack(build, host, "exit(0)",
           full=pyerr("NameError", "name 'exit' is not defined"),
           kernel=pyerr("NameError", "name 'exit' is not defined", "CPython (no site module)"))


def test_os_exit_is_not_an_internal_error(build, host):
    """random._os._exit(0) (no audit event) ends the child before it can
    write its result. Nothing escapes, but the program alone must not be
    able to make the service answer 500 InternalError ("the sandbox itself
    failed"): the answer must be a 200 that puts it on the program."""
    note_layer("broker")
    r = build.run("import random\nrandom._os._exit(0)")
    host.assert_untouched(r)
    assert r.status == 200, r
    assert r["error_type"] != "InternalError", r


def test_builtins_dict_tricks(build, host):
    """__builtins__.__dict__ / __builtins__['open']: the program's
    __builtins__ is a plain dict without open in the full build (KeyError:
    the restricted builtins); in the kernel-only build open is there and
    seccomp refuses openat."""
    code = """
        b = __builtins__ if isinstance(__builtins__, dict) else __builtins__.__dict__
        print(b['open']($SECRET).read())
    """
    attack(build, host, code, full=pyerr("KeyError", "'open'"),
           kernel=seccomp("openat"))


def test_builtins_attribute_dict(build, host):
    """__builtins__.__dict__['open']: AttributeError in both builds (the
    program's __builtins__ is a dict, not the builtins module)."""
    attack(build, host, "print(__builtins__.__dict__['open']($SECRET).read())",
           full=pyerr("AttributeError", "'dict' object has no attribute '__dict__'"),
           kernel=pyerr("AttributeError", "'dict' object has no attribute '__dict__'",
                        "CPython (__builtins__ is a dict)"))


def test_sys_modules_os_listdir(build, host):
    """random._os.sys.modules['os'].listdir('/'): audit 'os.listdir' /
    seccomp openat (listing opens the directory)."""
    code = "import random\nprint(random._os.sys.modules['os'].listdir('/'))"
    r = attack(build, host, code, full=audit("os.listdir"), kernel=seccomp("openat"))
    assert r["output"] == ""


def test_settrace_frames(build, host):
    """sys.settrace through random._os.sys, the trace function handed
    frames and their real builtins: audit 'sys.settrace' / seccomp openat."""
    code = """
        import random
        got = []
        def tracer(frame, event, arg):
            got.append(frame.f_builtins)
        random._os.sys.settrace(tracer)
        def g():
            pass
        g()
        random._os.sys.settrace(None)
        print(got[0]['open']($SECRET).read())
    """
    attack(build, host, code, full=audit("sys.settrace"), kernel=seccomp("openat"))


def test_addaudithook(build, host):
    """sys.addaudithook (to watch, or to get called with the audited
    objects): audit 'sys.addaudithook' / in the kernel-only build the hook is
    harmless and seccomp refuses the open that follows."""
    code = """
        import random
        random._os.sys.addaudithook(lambda *a: None)
        print(random._os.open($SECRET, 0))
    """
    attack(build, host, code, full=audit("sys.addaudithook"),
           kernel=seccomp("openat"))


def test_inherited_descriptors(build, host):
    """Looks for a descriptor to abuse (the web server's socket, the request,
    a database) with lseek, which is allowed: only 0 (/dev/null, seekable)
    and the output and result pipes (1, 2, 3: ESPIPE) exist. Runs to the end:
    the barrier (fds_setup's close_range) shows as absence."""
    code = """
        import random
        found = []
        for fd in range(4096):
            try:
                random._os.lseek(fd, 0, 1)
                found.append((fd, 'seekable'))
            except OSError as e:
                if e.errno != 9:
                    found.append((fd, e.errno))
        print(found)
    """
    note_layer("fds (close_range)")
    r = build.run(textwrap.dedent(code))
    host.assert_untouched(r)
    assert r["success"] is True, r
    assert r["output"] == "[(0, 'seekable'), (1, 29), (2, 29), (3, 29)]\n", r


def test_forged_result_record(build, host):
    """The program writes a forged "ok" record on the result pipe (fd 3,
    posix.write raises no audit event), then reads the secret. The read is
    refused as usual and nothing leaks, but the refusal must still be what
    the response (and any log built from it) reports, not the forgery."""
    code = """
        import random
        p = random._os.sys.modules['posix']
        REC_OK = 2
        forged = ((0x70797831).to_bytes(4, 'little') + REC_OK.to_bytes(4, 'little')
                  + (1).to_bytes(8, 'little') + bytes(16))
        p.write(3, forged)
        print(p.read(p.open($SECRET, 0), 4096))
    """
    attack(build, host, code, full=audit("open"), kernel=seccomp("openat"))


# ==========================================================================
# Trace or read another process: ptrace, process_vm_readv, /proc/<pid>/mem,
# pidfds. The targets are the test process itself (root, the CGI's
# grandparent) and a bystander running as the sandbox's uid.


def test_ptrace_attach_via_ctypes(build, host):
    """ctypes' libc.ptrace(PTRACE_ATTACH, bystander): the allowlist refuses
    ctypes / in the kernel-only build ctypes cannot be loaded (seccomp
    newfstatat); ptrace itself is not on the seccomp allowlist either."""
    pid = host.start_victim()
    code = """
        import ctypes
        libc = ctypes.CDLL(None)
        print(libc.ptrace(16, $PID, 0, 0), libc.kill($PID, 9))
    """
    attack(build, host, code,
           full=pyerr("ImportError", "import of 'ctypes' is not allowed"),
           kernel=seccomp("newfstatat"), PID=pid)


def test_process_vm_readv_via_real_import(build, host):
    """process_vm_readv (syscall 310) of the test process through ctypes,
    imported with the unrestricted __import__ of json's builtins: audit
    'import' / seccomp newfstatat (ctypes is not loadable)."""
    code = """
        import json
        b = json.dumps.__globals__['__builtins__']
        ctypes = (b if isinstance(b, dict) else b.__dict__)['__import__']('ctypes')
        buf = ctypes.create_string_buffer(64)
        print(ctypes.CDLL(None).syscall(310, $PID, buf, 1, buf, 1, 0))
    """
    attack(build, host, code, full=audit("import"), kernel=seccomp("newfstatat"),
           PID=os.getpid())


@pytest.mark.parametrize("mode", ["read", "write"])
def test_proc_pid_mem(build, host, mode):
    """/proc/<pid>/mem of the test process (the classic way around ptrace
    to read or patch another process's memory): audit 'open' / seccomp
    openat (Landlock, which grants no path, stands behind it)."""
    code = """
        import random
        os = random._os
        fd = os.open('/proc/%d/mem' % $PID, os.O_RDWR if $WRITE else os.O_RDONLY)
        os.lseek(fd, 0x400000, 0)
        print(os.write(fd, b'\\xcc') if $WRITE else os.read(fd, 64))
    """
    attack(build, host, code, full=audit("open"), kernel=seccomp("openat"),
           PID=os.getpid(), WRITE=(mode == "write"))


def test_pidfd_open_bystander(build, host):
    """pidfd_open on the bystander (then pidfd_getfd to steal its
    descriptors, or pidfd_send_signal): os.pidfd_open raises no audit
    event, so seccomp refuses pidfd_open in both builds."""
    pid = host.start_victim()
    code = "import random\nprint(random._os.pidfd_open($PID))"
    attack(build, host, code, full=seccomp("pidfd_open"),
           kernel=seccomp("pidfd_open"), PID=pid)


def test_waitpid_bystander(build, host):
    """waitpid on the bystander and on any child (reaping or probing a
    process not its own): no audit event; seccomp refuses wait4."""
    pid = host.start_victim()
    code = "import random\nprint(random._os.waitpid($PID, 1), random._os.waitpid(-1, 1))"
    attack(build, host, code, full=seccomp("wait4"), kernel=seccomp("wait4"),
           PID=pid)


@pytest.mark.parametrize("call", ["setpriority", "sched_setaffinity"])
def test_change_another_process_scheduling(build, host, call):
    """Renices or pins the test process (no audit event for either):
    seccomp refuses the call in both builds."""
    stmt = {"setpriority": "random._os.setpriority(random._os.PRIO_PROCESS, $PID, 19)",
            "sched_setaffinity": "random._os.sched_setaffinity($PID, {0})"}[call]
    before = (os.getpriority(os.PRIO_PROCESS, 0), os.sched_getaffinity(0))
    attack(build, host, "import random\n" + stmt, full=seccomp(call),
           kernel=seccomp(call), PID=os.getpid())
    assert (os.getpriority(os.PRIO_PROCESS, 0), os.sched_getaffinity(0)) == before


# ==========================================================================
# Exhaust the host: processes, threads, disk, descriptors, output, CPU and
# memory. The run must end at its limit with the host as it was.


def test_fork_bomb(build, host):
    """A fork bomb that catches every failure and keeps forking: the audit
    hook's refusal cannot be caught (audit 'os.fork') / seccomp clone, the
    first fork already fails (RLIMIT_NPROC 0 behind it)."""
    code = """
        import random
        while True:
            try:
                random._os.fork()
            except BaseException:
                pass
    """
    attack(build, host, code, full=audit("os.fork"), kernel=seccomp(*SPAWN_CALLS))


def test_thread_bomb_via_builtin_importer(build, host):
    """A thread bomb through _thread (BuiltinImporter: no 'import' event, and
    start_new_thread raises none): seccomp refuses clone3 in both builds
    (reported as a process-creation call, signals being blocked)."""
    code = WALK + """
        t = BuiltinImporter.load_module('_thread')
        while True:
            t.start_new_thread(lambda: None, ())
    """
    attack(build, host, code, full=spawn_refused(), kernel=spawn_refused())


def test_thread_bomb_via_threading(build, host):
    """import threading and start threads in a loop: the allowlist /
    seccomp newfstatat (threading.py cannot be loaded)."""
    code = """
        import threading
        while True:
            threading.Thread(target=lambda: None).start()
    """
    attack(build, host, code,
           full=pyerr("ImportError", "import of 'threading' is not allowed"),
           kernel=seccomp("newfstatat"))


def test_disk_fill_via_a_file(build, host):
    """Fills the host's disk through a file in /tmp: audit 'open' / seccomp
    openat. RLIMIT_FSIZE 0 would stop the first write of any file that did
    get opened."""
    code = """
        import random
        os = random._os
        fd = os.open($TARGET, os.O_WRONLY | os.O_CREAT, 0o644)
        while True:
            os.write(fd, b'x' * 65536)
    """
    attack(build, host, code, full=audit("open"), kernel=seccomp("openat"))


def test_disk_fill_via_memfd(build, host):
    """An anonymous file (memfd_create, no audit event) grown without end,
    memory the RLIMIT_AS would not count: seccomp refuses memfd_create in
    both builds."""
    code = """
        import random
        os = random._os
        fd = os.memfd_create('fill')
        while True:
            os.write(fd, b'x' * 65536)
    """
    attack(build, host, code, full=seccomp("memfd_create"),
           kernel=seccomp("memfd_create"))


FD_BOMBS = {
    "dup": ("os.dup(1)", "fcntl"),
    "pipe": ("os.pipe()", "pipe2"),
    "eventfd": ("os.eventfd(0)", "eventfd2"),
}


@pytest.mark.parametrize("kind", sorted(FD_BOMBS))
def test_descriptor_exhaustion(build, host, kind):
    """Takes descriptors without end (none of these calls raises an audit
    event): seccomp refuses the call that makes one in both builds, with
    RLIMIT_NOFILE (16) behind it."""
    stmt, call = FD_BOMBS[kind]
    code = "import random\nos = random._os\nheld = []\nwhile True:\n    held.append(%s)\n" % stmt
    attack(build, host, code, full=seccomp(call), kernel=seccomp(call))


def assert_limit(r, error_type, layer, text=None):
    note_layer(layer)
    assert r.status == 200, r
    assert r["success"] is False and r["error_type"] == error_type, r
    if text:
        assert text in r["error"], r


@pytest.mark.parametrize("route", ["print", "posix_write"])
def test_huge_output(build, host, route):
    """Floods the output (print, or posix.write on fd 1 with no buffer in
    between): the broker's output cap stops the program at exactly 1 MiB in
    both builds, and the answer stays small."""
    stmt = {"print": "print('x' * 65536)",
            "posix_write": "random._os.write(1, b'x' * 65536)"}[route]
    r = build.run("import random\nwhile True:\n    %s\n" % stmt)
    host.assert_untouched(r)
    assert_limit(r, "OutputLimitExceeded", "broker (output cap)")
    assert r["truncated"] is True and len(r["output"]) == 1048576, len(r["output"])
    assert len(r.raw) < 1048576 + 65536


# The run's own limit, not the default, is the one that ended it (rather
# than a bound on the wall clock, which a shared machine can stretch).
ONE_SECOND_LIMIT = re.compile(r"time limit of (1000 ms|1 s)\b")


def test_cpu_burn(build, host):
    """Burns CPU forever: the wall clock and RLIMIT_CPU end it (TimeoutError)
    in both builds, at the 1 s the run was given."""
    t0 = time.monotonic()
    r = build.run("while True:\n    pass\n", env={"PYEXEC_TIMEOUT_MS": "1000"})
    host.assert_untouched(r)
    assert_limit(r, "TimeoutError", "broker (deadline) + rlimits (CPU)")
    assert time.monotonic() - t0 >= 1
    assert ONE_SECOND_LIMIT.search(r["error"]), r["error"]


def test_sleep_forever(build, host):
    """Holds a sandbox slot without using CPU (a lock acquired twice, a
    futex wait forever): the broker's wall clock ends it."""
    t0 = time.monotonic()
    code = WALK + "lock = BuiltinImporter.load_module('_thread').allocate_lock()\n" \
        "lock.acquire()\nlock.acquire()\n"
    r = build.run(code, env={"PYEXEC_TIMEOUT_MS": "1000"})
    host.assert_untouched(r)
    assert_limit(r, "TimeoutError", "broker (deadline)")
    assert time.monotonic() - t0 >= 1
    assert ONE_SECOND_LIMIT.search(r["error"]), r["error"]


@pytest.mark.parametrize("code", [
    "x = bytearray(1 << 40)",
    "x = 'x' * (1 << 36)",
    "x = []\nwhile True:\n    x.append(bytearray(16 * 1024 * 1024))",
], ids=["one-terabyte", "huge-str", "growing-list"])
def test_memory_bomb(build, host, code):
    """Asks for more memory than the host has, at once or bit by bit:
    RLIMIT_AS (256 MiB in the tests) turns it into a MemoryError in both
    builds."""
    r = build.run(code + "\n")
    host.assert_untouched(r)
    assert_limit(r, "MemoryError", "rlimits (RLIMIT_AS)")
    assert r["peak_memory_kb"] is None or r["peak_memory_kb"] < 300 * 1024, r


# ==========================================================================
# Break the broker or the audit log: whatever the program writes, closes,
# raises or exits with, the answer is one valid JSON object that tells what
# happened, never an InternalError, and the run's audit row is completed
# with the same outcome.


def assert_audited(build, r, layer):
    """The run's row is there, completed (not 'running'), and agrees with
    the answer."""
    note_layer(layer)
    assert r.status == 200, r
    assert r["error_type"] != "InternalError", r
    with sqlite3.connect(build.db, timeout=10) as c:
        got = c.execute("SELECT outcome, status, error_type, http_status "
                        "FROM runs_view WHERE id = ?", (r["run_id"],)).fetchall()
    assert len(got) == 1, "no audit row for %r" % (r,)
    outcome, status, error_type, http_status = got[0]
    assert status == outcome and outcome != "running", got
    assert http_status == 200 and error_type == r["error_type"], (got, r)
    assert (outcome == "ok") == (r["success"] is True), (got, r)
    return got[0]


def test_garbage_on_the_result_pipe(build, host):
    """Writes 25 KiB of binary garbage on fd 3 (the result pipe; posix.write
    raises no audit event), then ends normally. The broker's parser treats
    the pipe as hostile: it skips what cannot be a record and reads on to
    the sandbox's own last record, so the run is what really happened (it
    ended normally), never an internal error."""
    code = "import random\nrandom._os.write(3, bytes(range(256)) * 100)\nprint('hi')\n"
    r = build.run(code)
    host.assert_untouched(r)
    assert_audited(build, r, "broker (result parser)")
    assert r["success"] is True and r["output"] == "hi\n", r


def test_forged_ok_record_then_exit(build, host):
    """Writes a well-formed 'ok' record on fd 3 claiming 11 days of
    execution, and _exits with status 0 before the real one. The record
    lacks the run's key, so the run is what really happened: the program
    ended the interpreter itself (an error), and the figures the log keeps
    are the broker's and the kernel's, not the record's."""
    code = """
        import random
        p = random._os.sys.modules['posix']
        p.write(3, $FORGED)
        p._exit(0)
    """
    r = build.run(string.Template(textwrap.dedent(code)).substitute(
        FORGED=repr(forged_record(2, exec_ns=10**15))))
    host.assert_untouched(r)
    assert_audited(build, r, "broker (record key)")
    assert r["success"] is False and r["error_type"] == "SystemExit", r
    assert "exit status 0" in r["error"], r
    with sqlite3.connect(build.db, timeout=10) as c:
        exec_ms, wall_ms = c.execute("SELECT exec_ms, wall_ms FROM runs WHERE id = ?",
                                     (r["run_id"],)).fetchone()
    assert r["execution_time_ms"] <= wall_ms + 1 and exec_ms <= wall_ms + 1, \
        (r, exec_ms, wall_ms)


# A forged outcome: a record of each kind the broker knows, with the exit
# status the sandbox would pair with it, reached through len.__self__ (the
# real builtins: importing the already loaded posix raises no audit event).
FORGED_OUTCOMES = {
    "ok": (2, b"", b"", 0),
    "memory": (3, b"MemoryError", b"forged", 1),
    "security": (4, b"SecurityViolation", b"audit event 'open' refused", 4),
    "seccomp": (5, b"SecurityViolation", b"", 3),
    "internal": (6, b"InternalError", b"forged", 2),
}


@pytest.mark.parametrize("key", ["zeros", "guessed"])
@pytest.mark.parametrize("outcome", sorted(FORGED_OUTCOMES))
def test_forged_outcome_with_its_exit_status(build, host, outcome, key):
    """Writes a record of the broker's format on fd 3 and _exits with the
    status that goes with it. Without the run's key the record is noise:
    the answer and the row say that the program ended the interpreter
    itself with that status (an error), never the forged outcome."""
    kind, typ, msg, status = FORGED_OUTCOMES[outcome]
    guess = bytes(16) if key == "zeros" else bytes(range(1, 17))
    code = ("p = len.__self__.__import__('posix')\n"
            "p.write(3, %r)\np._exit(%d)\n"
            % (forged_record(kind, typ=typ, msg=msg, key=guess), status))
    r = build.run(code)
    host.assert_untouched(r)
    row = assert_audited(build, r, "broker (record key)")
    assert row[0] == "error" and r["error_type"] == "SystemExit", (row, r)
    assert "exit status %d" % status in r["error"], r


def test_the_result_pipe_cannot_be_closed(build, host):
    """close(3) is refused by seccomp (EPERM) in both builds, so a refusal
    after it still reports itself: the program cannot silence the trap
    handler's or the audit hook's record and pass its own exit off as one."""
    code = """
        p = len.__self__.__import__('posix')
        try:
            p.close(3)
        except OSError as e:
            print('close', e.errno)
        print(p.read(p.open($SECRET, 0), 4096))
    """
    r = attack(build, host, code, full=audit("open"), kernel=seccomp("openat"))
    assert r["output"] == "close 1\n", r
    assert_audited(build, r, "seccomp (close of fd 3)")


# Forged records: the program writes records of the broker's format on fd
# 3 (its own result pipe). The broker reads the pipe to its end and keeps
# the sandbox's own last record; times, classes and sizes are its own.

def forged_record(kind, exec_ns=1, typ=b"", msg=b"", key=bytes(16)):
    """A record in the broker's format (sandbox/internal.h, struct rec_hdr),
    with a key of the program's guess: zeros (a record written before the
    job arrives) unless given."""
    return ((0x70797831).to_bytes(4, "little") + kind.to_bytes(4, "little")
            + exec_ns.to_bytes(8, "little") + bytes(8)
            + len(typ).to_bytes(4, "little") + len(msg).to_bytes(4, "little")
            + key + typ + msg)


FILL_THEN = """
import random
p = random._os.sys.modules['posix']
forged = $FORGED * 64
for _ in range((1 << 20) // len(forged)):     # 1 MiB: past any pipe
    p.write(3, forged)
"""


def test_forged_records_filling_the_pipe_then_a_refused_call(build, host):
    """Fills the result pipe with forged 'ok' records (1 MiB, more than the
    broker's buffer and the pipe hold together), then reads the secret. The broker drains the pipe to its
    end, so the refusal's own record gets through: the run is the refusal,
    naming the call, not a timeout (the sandbox blocked on a full pipe) and
    not the forgery."""
    code = FILL_THEN + "print(p.read(p.open($SECRET, 0), 4096))\n"
    r = attack(build, host, code, full=audit("open"),
               kernel=seccomp("openat"), FORGED=forged_record(2))
    assert_audited(build, r, "broker (result parser)")


def test_forged_exception_filling_the_pipe_then_an_error(build, host):
    """Fills the pipe with forged 'MemoryError' exception records, then
    raises a ValueError: the outcome is the ValueError's."""
    code = FILL_THEN + "raise ValueError('real')\n"
    r = build.run(string.Template(textwrap.dedent(code)).substitute(
        FORGED=repr(forged_record(3, typ=b"MemoryError", msg=b"forged"))))
    host.assert_untouched(r)
    assert_audited(build, r, "broker (result parser)")
    assert r["error_type"] == "ValueError" and "real" in r["error"], r


def test_forged_header_swallowing_the_last_record(build, host):
    """Writes the header of a forged record whose message would run past
    the end of the stream, then raises: at the end of the pipe the broker
    skips the incomplete forgery and finds the sandbox's record inside it."""
    code = """
        import random
        p = random._os.sys.modules['posix']
        p.write(3, $HEADER)
        raise KeyError('inside')
    """
    header = forged_record(3, typ=b"MemoryError")[:28] + (60000).to_bytes(4, "little")
    r = build.run(string.Template(textwrap.dedent(code)).substitute(
        HEADER=repr(header + b"MemoryError")))
    host.assert_untouched(r)
    assert_audited(build, r, "broker (result parser)")
    assert r["error_type"] == "KeyError" and "inside" in r["error"], r


def test_forged_execution_time_is_not_billed(build, host):
    """Busy for a while (four million additions, well inside the test
    CGI's 3 s even on a loaded machine), the program fills the pipe with
    'ok' records claiming one nanosecond, then ends. The time the answer,
    the log and pyexec-admin's cost report use is the broker's own (from
    the READY record to the exit), never the child's claim."""
    code = "n = 0\nfor i in range(4_000_000):\n    n += i\n" + FILL_THEN
    r = build.run(string.Template(code).substitute(
        FORGED=repr(forged_record(2, exec_ns=1))))
    host.assert_untouched(r)
    assert_audited(build, r, "broker (result parser)")
    assert r["success"] is True, r
    with sqlite3.connect(build.db, timeout=10) as c:
        exec_ms, wall_ms, cpu_ms = c.execute(
            "SELECT exec_ms, wall_ms, cpu_ms FROM runs WHERE id = ?",
            (r["run_id"],)).fetchone()
    assert cpu_ms >= 100, (r, cpu_ms)        # the loop really ran
    assert exec_ms >= cpu_ms * 0.5, (exec_ms, cpu_ms)
    assert r["execution_time_ms"] == pytest.approx(exec_ms, abs=1), r
    assert exec_ms <= wall_ms + 1, (exec_ms, wall_ms)


@pytest.mark.parametrize("name,reserved", [("MemoryError", "memory"),
                                           ("SecurityViolation", "security")])
def test_a_class_named_like_an_outcome_does_not_set_it(build, host, name,
                                                       reserved):
    """A program's own exception class named MemoryError or
    SecurityViolation is an error of the program: the outcome is 'error'
    and the type is qualified by its module, never the broker's own name."""
    r = build.run("class %s(Exception):\n    pass\nraise %s('mine')\n"
                  % (name, name))
    host.assert_untouched(r)
    outcome = assert_audited(build, r, "broker (result classes)")[0]
    assert outcome == "error" and outcome != reserved, (outcome, r)
    assert r["error_type"] == "__main__." + name, r
    assert "mine" in r["error"], r


def test_the_builtin_memory_error_is_memory(build, host):
    """The real MemoryError (the interpreter's own class) still is."""
    r = build.run("raise MemoryError('real')\n")
    host.assert_untouched(r)
    outcome = assert_audited(build, r, "broker (result classes)")[0]
    assert outcome == "memory" and r["error_type"] == "MemoryError", r


def test_close_output_and_result_pipes(build, host):
    """Closes fds 3, 1 and 2, then prints: close(3) is refused (EPERM), and
    the failure is the program's."""
    code = "import random\nos = random._os\nos.close(3)\nos.close(1)\nos.close(2)\nprint('x')\n"
    r = build.run(code)
    host.assert_untouched(r)
    assert_audited(build, r, "broker (result parser)")
    assert r["success"] is False, r


def test_giant_error_message(build, host):
    """An exception whose message is 10 MB: the child bounds the message it
    reports (64 KiB), so the answer and the audit row stay small."""
    r = build.run("raise ValueError('x' * 10**7)\n")
    host.assert_untouched(r)
    assert_audited(build, r, "broker (bounded result)")
    assert r["error_type"] == "ValueError", r
    assert len(r["error"].encode()) <= 64 * 1024 and len(r.raw) < 256 * 1024


def test_exception_str_that_loops(build, host):
    """An exception whose __str__ never returns (formatting the error runs
    code of the program's): the deadline still ends the run."""
    code = "class E(Exception):\n    def __str__(self):\n        while True:\n            pass\nraise E()\n"
    r = build.run(code, env={"PYEXEC_TIMEOUT_MS": "1000"})
    host.assert_untouched(r)
    assert_audited(build, r, "broker (deadline)")
    assert r["error_type"] == "TimeoutError", r


def test_exception_str_that_raises(build, host):
    """An exception whose __str__ raises the same exception again: the error
    formatter (in C) reports it without recursing."""
    code = "class E(Exception):\n    def __str__(self):\n        raise E()\nraise E()\n"
    r = build.run(code)
    host.assert_untouched(r)
    assert_audited(build, r, "error formatter")
    assert r["error_type"] == "E" and "str() of the exception" in r["error"], r


@pytest.mark.parametrize("data", [
    "b'\\xff\\xfe\\xc0\\x80 ok'",
    "'\\udcff lone surrogate'.encode('utf-8', 'surrogatepass')",
    "b'\\x00\\r\\n\\r\\nStatus: 302 Found\\r\\nLocation: http://evil/\\r\\n\\r\\n'",
], ids=["invalid-utf8", "surrogate", "header-injection"])
def test_output_the_broker_must_encode(build, host, data):
    """Writes bytes that are not valid UTF-8, an encoded lone surrogate, or
    a NUL and CGI headers, straight to fd 1: the answer is valid JSON
    (U+FFFD for what is not UTF-8), the headers are the broker's alone."""
    r = build.run("import random\nrandom._os.write(1, %s)\n" % data)
    host.assert_untouched(r)
    assert_audited(build, r, "broker (JSON writer)")
    assert r["success"] is True, r
    assert "location" not in r.headers and r.status == 200, r.headers
    assert "\ufffd" in r["output"] or "Status: 302" in r["output"], r


@pytest.mark.parametrize("arg", [
    "2**100", "-1", "256", "'x' * 10**6", "Unprintable()", "0", "None",
], ids=["bignum", "minus-one", "256", "huge-string", "unprintable", "zero", "none"])
def test_system_exit_codes(build, host, arg):
    """raise SystemExit(<odd value>): a huge integer, a negative one, one
    that wraps to 0 as an exit status, a 1 MB message, an object whose
    __str__ raises. A non-zero or non-integer code is a failed run named
    SystemExit; 0 and None are a success; never an internal error."""
    code = ("class Unprintable:\n    def __str__(self):\n        raise RuntimeError\n"
            "raise SystemExit(%s)\n" % arg)
    r = build.run(code)
    host.assert_untouched(r)
    assert_audited(build, r, "broker (result parser)")
    if arg in ("0", "None"):
        assert r["success"] is True, r
    else:
        assert r["success"] is False and r["error_type"] == "SystemExit", r
        assert len(r["error"].encode()) <= 64 * 1024


def integrity(db):
    with sqlite3.connect(db, timeout=10) as c:
        return c.execute("PRAGMA integrity_check").fetchall()


DB_ROUTES = {
    "os_open_db": (
        "import random\nos = random._os\n"
        "fd = os.open($DB, os.O_RDWR)\nos.lseek(fd, 0, 0)\nos.write(fd, b'garbage' * 64)",
        audit("open"), seccomp("openat")),
    "os_open_wal": (
        "import random\nos = random._os\n"
        "fd = os.open($DB + '-wal', os.O_WRONLY | os.O_CREAT)\nos.write(fd, b'garbage')",
        audit("open"), seccomp("openat")),
    "slots_lock": (
        "import random\nos = random._os\n"
        "fd = os.open($DB.rsplit('/', 1)[0] + '/slots', os.O_RDWR)\nos.write(fd, b'x' * 4096)",
        audit("open"), seccomp("openat")),
    "import_sqlite3": (
        "import sqlite3\nsqlite3.connect($DB).execute('DELETE FROM runs')",
        pyerr("ImportError", "import of 'sqlite3' is not allowed"), seccomp("newfstatat")),
    "sqlite3_via_create_dynamic": (
        "import random\nimp = random._os.sys.modules['_imp']\n"
        "class Spec:\n    name = '_sqlite3'\n"
        "    origin = '/usr/lib/python3.11/lib-dynload/_sqlite3.cpython-311-x86_64-linux-gnu.so'\n"
        "m = imp.create_dynamic(Spec())\nm.connect($DB).execute('DELETE FROM runs')",
        audit("import"), seccomp("openat")),
}


@pytest.mark.parametrize("route", sorted(DB_ROUTES))
def test_write_the_audit_database(build, host, route):
    """Writes the audit database, its WAL or its slots file, directly or
    through sqlite3. The broker closed the database before it forked (the
    child holds no descriptor to it), and the routes to a new one are shut:
    audit 'open' / 'import' or the allowlist; seccomp in the kernel-only
    build. The database passes integrity_check and keeps its rows."""
    db = build.db
    with sqlite3.connect(db, timeout=10) as c:
        before = c.execute("SELECT count(*) FROM runs").fetchone()[0]
    code, full, kernel = DB_ROUTES[route]
    r = attack(build, host, code, full=full, kernel=kernel, DB=db)
    assert integrity(db) == [("ok",)]
    with sqlite3.connect(db, timeout=10) as c:
        after = c.execute("SELECT count(*) FROM runs").fetchone()[0]
        outcome, = c.execute("SELECT outcome FROM runs WHERE id = ?",
                             (r["run_id"],)).fetchone()
    expected = "error" if build.name == FULL and route == "import_sqlite3" else "security"
    assert after == before + 1 and outcome == expected, (before, after, outcome)


# ==========================================================================
# After everything: no sandbox process may be left behind


def _ours_but_not_pyexec(pid, p):
    """Not root, the sandbox's uid is ours, the test's own processes' too:
    a sandbox process is one named pyexec* or whose executable is hidden
    from us (undumpable); the test's are neither."""
    if ROOT or p.comm.startswith("pyexec"):
        return False
    try:
        os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return False
    return True


def _sandbox_processes():
    procs = {}
    for pid, p in proc_table().items():
        if p.uid != SANDBOX_UID or _ours_but_not_pyexec(pid, p):
            continue
        try:
            parent = os.readlink("/proc/%d/exe" % p.ppid)
        except OSError:
            parent = ""
        # A run still in progress (another session's) has a live CGI parent;
        # a leaked process has been re-parented away from it.
        if os.path.basename(parent).startswith("pyexec"):
            continue
        procs[pid] = (p.ppid, p.comm)
    return procs


def test_zz_no_sandbox_process_left():
    """After the whole module: no process with uid 65534 remains (no fork,
    daemon or stopped child survived its run; the bystanders were killed by
    the fixture)."""
    deadline = time.monotonic() + 3
    left = _sandbox_processes()
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = _sandbox_processes()
    assert not left, "uid %d processes left: %r" % (SANDBOX_UID, left)
