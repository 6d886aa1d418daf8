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
    # The result pipe stays open (EPERM), whatever the upper 32 bits of
    # its number: the refusals' records always reach the broker.
    "close_result": "errno=1",
    "close_result_high_bits": "errno=1",
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
    "close_stdin": "allowed",
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


def kernel_i386(helper):
    """What this kernel does with an i386 call when no filter is loaded:
    "allowed" with IA32 emulation, "killed sig=11" without it (built
    without CONFIG_IA32_EMULATION, or booted with ia32_emulation=0: int 0x80
    is then a general protection fault, and no system call table is
    reached)."""
    p = try_syscall(helper, "--unfiltered", "i386")
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, (out, p.stderr)
    return out.split(" ", 1)[1].strip()


def expected(helper, name):
    """EXPECT[name], but for i386 on a kernel without IA32 emulation: the
    call is then refused by the kernel before the filter sees it, and the
    safe outcome is the child's death by SIGSEGV with no record and no
    status (the call returned nothing to the program)."""
    if name != "i386":
        return EXPECT[name]
    native = kernel_i386(helper)
    if native == "allowed":
        return EXPECT[name]
    if native == "killed sig=%d" % signal.SIGSEGV:
        return native
    pytest.fail("unfiltered i386 call: %r, neither allowed (IA32 emulation) "
                "nor SIGSEGV (none): this kernel is not one the README "
                "supports" % native)


@pytest.mark.parametrize("name", list(EXPECT))
def test_syscall(helper, name):
    p = try_syscall(helper, name)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, (out, p.stderr)
    assert out == "%s %s\n" % (name, expected(helper, name)), p.stderr


def test_unfiltered_calls_run(helper):
    """The helper's --unfiltered mode does make calls: the controls and a
    call the filter traps run without it (so a trap above is the filter's
    doing, and the i386 probe is the kernel's answer)."""
    for name in ("getpid", "kill"):
        p = try_syscall(helper, "--unfiltered", name)
        assert p.returncode == 0, p.stderr
        assert p.stdout.decode() == "%s allowed\n" % name


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
