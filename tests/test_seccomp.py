# SPDX-License-Identifier: MIT
"""test_seccomp.py: the seccomp filter, one system call at a time, through the
try-syscall helper (PYEXEC_TRY_SYSCALL): forbidden calls trap and report
their own number (other ABIs theirs and their architecture), and the
controls are allowed."""
import os
import platform
import signal
import subprocess

import pytest

# What the helper must print after the name, on x86_64. A trap reports the
# number of the call the kernel refused: the x86_64 table's (fork() is
# clone, setrlimit the legacy call, prlimit_set prlimit64 with a new limit).
EXPECT = {
    "socket": "trapped nr=41",
    "connect": "trapped nr=42",
    "openat": "trapped nr=257",
    "execve": "trapped nr=59",
    "fork": "trapped nr=56",
    "clone3": "trapped nr=435",
    "ptrace": "trapped nr=101",
    "kill": "trapped nr=62",
    "setrlimit": "trapped nr=160",
    "prlimit_set": "trapped nr=302",
    # Nothing that names another process: its CPU clock (a negative clock
    # id), its affinity, its limits. Its pid is never confirmed either.
    "clock_other": "trapped nr=228",
    "clock_getres_other": "trapped nr=229",
    "clock_nanosleep_other": "trapped nr=230",
    "clock_high_bits": "trapped nr=228",
    "affinity_other": "trapped nr=204",
    "prlimit_other": "trapped nr=302",
    "mount": "trapped nr=165",
    "unshare": "trapped nr=272",
    "setns": "trapped nr=308",
    "bpf": "trapped nr=321",
    "userfaultfd": "trapped nr=323",
    "perf_event_open": "trapped nr=298",
    "keyctl": "trapped nr=250",
    "io_uring_setup": "trapped nr=425",
    "process_vm_readv": "trapped nr=310",
    "mprotect_exec": "trapped nr=10",
    "mmap_exec": "trapped nr=9",
    # rt_sigaction: any signal but SIGSYS, whose handler reports the traps.
    "sigaction_sigsys": "trapped nr=13",
    # Other ABIs meet the filter's bad-architecture action, which traps as
    # well: i386 getpid (20 in its own table) comes with its architecture,
    # AUDIT_ARCH_I386; an x32 call is x86_64's to the kernel, and its number
    # carries __X32_SYSCALL_BIT (0x40000000 + 39, getpid).
    "i386": "trapped nr=20 arch=0x40000003",
    "x32": "trapped nr=%d" % (0x40000000 + 39),
    # Controls: the filter lets the program run at all.
    "getpid": "allowed",
    "write": "allowed",
    # The standard clocks (time.time, monotonic, perf_counter, process_time)
    # and the queries about the process itself still work.
    "clocks_std": "allowed",
    "self_queries": "allowed",
}


@pytest.fixture(scope="module")
def helper():
    path = os.environ.get("PYEXEC_TRY_SYSCALL", "")
    if not path:
        pytest.fail("PYEXEC_TRY_SYSCALL is not set: build the helper with "
                    "`make build/tests/try-syscall` and set "
                    "PYEXEC_TRY_SYSCALL=$PWD/build/tests/try-syscall")
    if not os.access(path, os.X_OK):
        pytest.fail("PYEXEC_TRY_SYSCALL=%s is not an executable" % path)
    if platform.machine() != "x86_64":
        pytest.fail("the expected system call numbers are x86_64's, this "
                    "is %s" % platform.machine())
    return path


def try_syscall(helper, *args):
    return subprocess.run([helper, *args], capture_output=True, timeout=30,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("name", [n for n in EXPECT if n != "i386"])
def test_syscall(helper, name):
    p = try_syscall(helper, name)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, (out, p.stderr)
    assert out == "%s %s\n" % (name, EXPECT[name]), p.stderr


def test_syscall_i386(helper):
    """An i386 call never runs. Where the kernel has IA32 emulation (most
    6.x builds) the filter's bad-architecture action traps it and reports
    it; where emulation is absent or off (CONFIG_IA32_EMULATION=n,
    ia32_emulation=0, or a kernel that disables it by default) the kernel
    itself answers `int 0x80` with SIGSEGV, and the filter never sees the
    call. The second case is accepted only when the same call without the
    filter dies the same way: the kernel, not a gap in the filter, is what
    stopped it."""
    p = try_syscall(helper, "i386")
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, (out, p.stderr)
    if out == "i386 %s\n" % EXPECT["i386"]:
        return
    assert out == "i386 killed sig=%d\n" % signal.SIGSEGV, (out, p.stderr)
    bare = try_syscall(helper, "--no-filter", "i386")
    assert bare.returncode == 0, (bare.stdout, bare.stderr)
    assert bare.stdout.decode() == "i386 killed sig=%d\n" % signal.SIGSEGV, (
        "the kernel runs i386 calls without the filter, yet under it the "
        "call was not trapped but killed: %r" % bare.stdout)


def test_no_filter_mode_makes_the_call(helper):
    """--no-filter really leaves the filter out: a call the filter traps
    returns normally (kill(parent, 0) only asks whether it exists)."""
    p = try_syscall(helper, "--no-filter", "kill")
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode() == "kill allowed\n"


def test_helper_names_match(helper):
    """Every call the helper can make is tested here, and only those."""
    p = try_syscall(helper, "--list")
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().split() == list(EXPECT)


def test_helper_refuses_unknown_name(helper):
    p = try_syscall(helper, "getppid")
    assert p.returncode == 2
    assert p.stdout == b""
    assert b"usage" in p.stderr
