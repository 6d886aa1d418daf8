/* SPDX-License-Identifier: MIT */
/*
 * seccomp.c: the system-call allowlist, built once in the parent and loaded
 * in the child just before the program runs, after the interpreter has
 * opened every file it needs. What the program may do from then on: compute,
 * allocate non-executable memory, read and write the descriptors it holds,
 * read clocks and randomness, and exit.
 *
 * Anything else traps: the kernel refuses the call and raises SIGSYS, whose
 * handler reports the call's number on the result pipe and exits, so the
 * response can name it. System calls of other ABIs (i386 through int 0x80,
 * x32) trap too, whatever their number: the handler reports their
 * architecture. When SIGSYS is blocked (glibc blocks every signal around
 * clone3 and vfork) the kernel kills the process with it instead; the
 * broker reports that as a refusal too.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <seccomp.h>
#include "internal.h"
#include "../cgi/banned.h"

static scmp_filter_ctx filter;

/* Allowed without conditions. */
static const char *const allow[] = {
	/* stdio on the descriptors the child already holds */
	"read", "write", "readv", "writev", "close", "lseek", "fstat",
	/* the allocator: brk and mmap'd arenas (mmap: see below) */
	"brk", "munmap", "mremap", "madvise",
	/* the interpreter's locks (single-threaded, but glibc still uses them) */
	"futex",
	/* time.* and datetime.now(); usually answered by the vDSO */
	"clock_gettime", "clock_getres", "gettimeofday", "time",
	"clock_nanosleep", "nanosleep",
	/* random and hash seeds */
	"getrandom",
	/* signal masks and returns (rt_sigaction: see add_rules) */
	"rt_sigreturn", "rt_sigprocmask", "sigaltstack",
	"restart_syscall",
	/* identity queries that reveal nothing outside the namespaces */
	"getpid", "gettid", "getuid", "geteuid", "getgid", "getegid",
	/* resource queries */
	"getrusage", "times", "getrlimit", "sched_yield", "sched_getaffinity",
	"exit", "exit_group",
};

static int add_rule(uint32_t action, const char *name, unsigned n,
		    const struct scmp_arg_cmp *cmp)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR)
		return 0;	/* unknown to this architecture: nothing to allow */
	return seccomp_rule_add_array(filter, action, nr, n, cmp);
}

static int add_rules(void)
{
	/* Never executable memory: no JIT, no loaded code after lockdown. */
	const struct scmp_arg_cmp noexec = SCMP_A2(SCMP_CMP_MASKED_EQ,
						   PROT_EXEC, 0);
	/* prlimit64 only to read a limit (new_limit == NULL). */
	const struct scmp_arg_cmp readonly = SCMP_A2(SCMP_CMP_EQ, 0);
	/* Handlers for any signal but SIGSYS: the trap handler that reports
	 * refused calls cannot be replaced or ignored. */
	const struct scmp_arg_cmp not_sigsys = SCMP_A0(SCMP_CMP_NE, SIGSYS);
	int rc = 0;

	for (size_t i = 0; i < sizeof(allow) / sizeof(allow[0]) && rc == 0; i++)
		rc = add_rule(SCMP_ACT_ALLOW, allow[i], 0, NULL);
	if (rc == 0)
		rc = add_rule(SCMP_ACT_ALLOW, "mmap", 1, &noexec);
	if (rc == 0)
		rc = add_rule(SCMP_ACT_ALLOW, "mprotect", 1, &noexec);
	if (rc == 0)
		rc = add_rule(SCMP_ACT_ALLOW, "prlimit64", 1, &readonly);
	if (rc == 0)
		rc = add_rule(SCMP_ACT_ALLOW, "rt_sigaction", 1, &not_sigsys);
	/* isatty() on a pipe: answer as the kernel would, without a trap. */
	if (rc == 0)
		rc = add_rule(SCMP_ACT_ERRNO(ENOTTY), "ioctl", 0, NULL);
	return rc;
}

int seccomp_prepare(char *err, size_t errlen)
{
	int rc;

	if (filter)
		return 0;
	filter = seccomp_init(SCMP_ACT_TRAP);
	if (!filter) {
		snprintf(err, errlen, "seccomp_init failed");
		return -1;
	}
	rc = seccomp_attr_set(filter, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_TRAP);
	if (rc == 0)
		rc = seccomp_attr_set(filter, SCMP_FLTATR_CTL_NNP, 1);
	if (rc == 0)
		rc = add_rules();
	if (rc != 0) {
		snprintf(err, errlen, "seccomp rule: %s", strerror(-rc));
		seccomp_release(filter);
		filter = NULL;
		return -1;
	}
	if (getenv("PYEXEC_DEBUG_SECCOMP"))
		seccomp_export_pfc(filter, STDERR_FILENO);
	return 0;
}

/* abort() ends in tgkill(self, SIGABRT), which the filter refuses: that is
 * the interpreter failing (Py_FatalError), not the program reaching out. */
static int is_abort(const siginfo_t *si, const void *ucv)
{
#if defined(__x86_64__)
	const ucontext_t *uc = ucv;

	return si->si_syscall == __NR_tgkill &&
	       uc->uc_mcontext.gregs[REG_RDX] == SIGABRT &&
	       uc->uc_mcontext.gregs[REG_RDI] == getpid();
#else
	(void)si;
	(void)ucv;
	return 0;
#endif
}

/* SIGSYS from SCMP_ACT_TRAP: say which call, then go. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	if (is_abort(si, uc))
		rec_write(REC_ABORT, 0, 0, 0, "Crash", 5, NULL, 0);
	else
		rec_write(REC_SYSCALL, 0, (uint32_t)si->si_syscall,
			  si->si_arch, "SecurityViolation", 17, NULL, 0);
	_exit(CHILD_EXIT_TRAPPED);
}

int seccomp_apply(char *err, size_t errlen)
{
	struct sigaction sa;
	int rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigfillset(&sa.sa_mask);
	if (!filter || sigaction(SIGSYS, &sa, NULL) != 0) {
		snprintf(err, errlen, "seccomp filter not prepared");
		return -1;
	}
	rc = seccomp_load(filter);
	if (rc != 0) {
		snprintf(err, errlen, "seccomp_load: %s", strerror(-rc));
		return -1;
	}
	return 0;
}

void seccomp_name(int nr, uint32_t arch, char *buf, size_t len)
{
	char *name;

	if (arch != seccomp_arch_native()) {
		snprintf(buf, len, "#%d of a foreign architecture (i386 or x32)",
			 nr);
		return;
	}
	name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
	if (name)
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, "#%d", nr);
	free(name);
}
