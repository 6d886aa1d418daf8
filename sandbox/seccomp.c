/* SPDX-License-Identifier: MIT */
/*
 * seccomp.c: the system-call allowlist, compiled to BPF at build time
 * (seccomp-gen, below) and loaded in the child just before the program runs, after the interpreter has
 * opened every file it needs. What the program may do from then on: compute,
 * allocate non-executable memory, read and write the descriptors it holds,
 * read the standard clocks and randomness, and exit; it names no
 * process but itself, so it cannot probe the host's pids or their clocks.
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
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <seccomp.h>
#include "internal.h"
#include "../cgi/banned.h"

static scmp_filter_ctx filter;

/* Allowed without conditions. */
static const char *const allow[] = {
	/* stdio on the descriptors the child already holds */
	"read", "write", "readv", "writev", "lseek", "fstat",
	/* the allocator: brk and mmap'd arenas (mmap: see below) */
	"brk", "munmap", "mremap", "madvise",
	/* the interpreter's locks (single-threaded, but glibc still uses them) */
	"futex",
	/* time.* and datetime.now(); usually answered by the vDSO (the
	 * clock_* calls: see add_rules) */
	"gettimeofday", "time", "nanosleep",
	/* random and hash seeds */
	"getrandom",
	/* signal masks and returns (rt_sigaction: see add_rules) */
	"rt_sigreturn", "rt_sigprocmask", "sigaltstack",
	"restart_syscall",
	/* identity queries that reveal nothing outside the namespaces */
	"getpid", "gettid", "getuid", "geteuid", "getgid", "getegid",
	/* resource queries */
	"getrusage", "times", "getrlimit", "sched_yield",
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

/*
 * The calls that name a clock or a process: only the standard clocks and
 * the process itself (pid 0). A negative clock id encodes another
 * process's or thread's CPU clock, and any pid other than 0 probes the host
 * (its pids are visible: there is no PID namespace without privileges),
 * so both trap. The kernel reads a clock id as a 32-bit int; the rules
 * compare all 64 bits, so only 0..CLOCK_TAI with the upper half clear pass.
 */
static int add_self_rules(void)
{
	static const char *const clocks[] = {
		"clock_gettime", "clock_getres", "clock_nanosleep",
	};
	const struct scmp_arg_cmp std_clock = SCMP_A0(SCMP_CMP_LE, CLOCK_TAI);
	const struct scmp_arg_cmp self = SCMP_A0(SCMP_CMP_EQ, 0);
	/* prlimit64 only on itself and only to read (new_limit == NULL). */
	const struct scmp_arg_cmp read_self[2] = {
		SCMP_A0(SCMP_CMP_EQ, 0), SCMP_A2(SCMP_CMP_EQ, 0),
	};
	int rc = 0;

	for (size_t i = 0; i < sizeof(clocks) / sizeof(clocks[0]) && rc == 0; i++)
		rc = add_rule(SCMP_ACT_ALLOW, clocks[i], 1, &std_clock);
	if (rc == 0)
		rc = add_rule(SCMP_ACT_ALLOW, "sched_getaffinity", 1, &self);
	if (rc == 0)
		rc = add_rule(SCMP_ACT_ALLOW, "prlimit64", 2, read_self);
	return rc;
}

static int add_rules(void)
{
	/* Never executable memory: no JIT, no loaded code after lockdown. */
	const struct scmp_arg_cmp noexec = SCMP_A2(SCMP_CMP_MASKED_EQ,
						   PROT_EXEC, 0);
	/* Handlers for any signal but SIGSYS: the trap handler that reports
	 * refused calls cannot be replaced or ignored. */
	const struct scmp_arg_cmp not_sigsys = SCMP_A0(SCMP_CMP_NE, SIGSYS);
	const struct scmp_arg_cmp low_fd = SCMP_A0(SCMP_CMP_LT, CHILD_RESULT_FD);
	const struct scmp_arg_cmp result_fd = SCMP_A0(SCMP_CMP_GE,
						      CHILD_RESULT_FD);
	int rc = 0;

	for (size_t i = 0; i < sizeof(allow) / sizeof(allow[0]) && rc == 0; i++)
		rc = add_rule(SCMP_ACT_ALLOW, allow[i], 0, NULL);
	if (rc == 0)
		rc = add_rule(SCMP_ACT_ALLOW, "mmap", 1, &noexec);
	if (rc == 0)
		rc = add_rule(SCMP_ACT_ALLOW, "mprotect", 1, &noexec);
	if (rc == 0)
		rc = add_self_rules();
	if (rc == 0)
		rc = add_rule(SCMP_ACT_ALLOW, "rt_sigaction", 1, &not_sigsys);
	/* close: stdin and the output pipe only. The result pipe (fd 3) stays
	 * open to the end, so the trap handler's and the audit hook's records
	 * always get through (the broker believes no status without one). All
	 * 64 bits are compared, so 0x100000003 (the kernel's 3) is refused. */
	if (rc == 0)
		rc = add_rule(SCMP_ACT_ALLOW, "close", 1, &low_fd);
	if (rc == 0)
		rc = add_rule(SCMP_ACT_ERRNO(EPERM), "close", 1, &result_fd);
	/* isatty() on a pipe: answer as the kernel would, without a trap. */
	if (rc == 0)
		rc = add_rule(SCMP_ACT_ERRNO(ENOTTY), "ioctl", 0, NULL);
	return rc;
}

/* The filter, as libseccomp builds it from the rules above. */
static int build(char *err, size_t errlen)
{
	int rc;

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
	return 0;
}

#ifdef PYEXEC_SECCOMP_GEN
/*
 * The build runs this once (build/sandbox/seccomp_bpf.c): the BPF program
 * libseccomp generates from the rules, as a C array. Building it per
 * request cost about 0.2 ms (seccomp_init and the rules in the broker,
 * the program's generation inside seccomp_load in the child); compiled in,
 * loading it is one prctl.
 */
int main(void)
{
	char err[128];
	struct sock_filter ins;
	FILE *tmp = tmpfile();
	size_t n = 0;

	if (!tmp || build(err, sizeof(err)) != 0 ||
	    seccomp_export_bpf(filter, fileno(tmp)) != 0) {
		fprintf(stderr, "seccomp-gen: cannot build the filter\n");
		return 1;
	}
	rewind(tmp);
	printf("/* generated by seccomp-gen from sandbox/seccomp.c: do not edit */\n"
	       "#include <stddef.h>\n#include <linux/filter.h>\n"
	       "extern const struct sock_filter pyexec_seccomp_bpf[];\n"
	       "extern const size_t pyexec_seccomp_bpf_len;\n"
	       "const struct sock_filter pyexec_seccomp_bpf[] = {\n");
	while (fread(&ins, sizeof(ins), 1, tmp) == 1) {
		printf("\t{ 0x%04x, %u, %u, 0x%08x },\n", ins.code, ins.jt,
		       ins.jf, ins.k);
		n++;
	}
	printf("};\nconst size_t pyexec_seccomp_bpf_len = %zu;\n", n);
	return n ? 0 : 1;
}
#else

extern const struct sock_filter pyexec_seccomp_bpf[];
extern const size_t pyexec_seccomp_bpf_len;

/* Nothing left to build per request; PYEXEC_DEBUG_SECCOMP=1 still prints
 * the rules (libseccomp's pseudo-code) from a fresh build. */
int seccomp_prepare(char *err, size_t errlen)
{
	if (pyexec_seccomp_bpf_len == 0) {
		snprintf(err, errlen, "seccomp filter empty");
		return -1;
	}
	if (getenv("PYEXEC_DEBUG_SECCOMP") && !filter &&
	    build(err, errlen) == 0)
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
	struct sock_fprog prog = {
		.len = (unsigned short)pyexec_seccomp_bpf_len,
		.filter = (struct sock_filter *)pyexec_seccomp_bpf,
	};
	struct sigaction sa;
	int rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigfillset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) != 0) {
		snprintf(err, errlen, "sigaction(SIGSYS): %s", strerror(errno));
		return -1;
	}
	/* As seccomp_load would, with the program compiled in. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, errlen, "no_new_privs: %s", strerror(errno));
		return -1;
	}
	rc = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
	if (rc != 0) {
		snprintf(err, errlen, "seccomp filter: %s", strerror(errno));
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
#endif /* PYEXEC_SECCOMP_GEN */
