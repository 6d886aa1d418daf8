/* SPDX-License-Identifier: MIT */
/*
 * try-syscall.c: makes one system call under the sandbox's seccomp filter
 * and prints what the kernel did.
 *
 * Usage: try-syscall NAME    (try-syscall --list prints the names)
 *        try-syscall --unfiltered NAME
 *
 * --unfiltered makes the call without loading the filter: what the kernel
 * itself does with it (an i386 call on a kernel without IA32 emulation
 * never reaches a system call table: the child dies of SIGSEGV).
 *
 * The filter is the one pyexec.cgi loads (seccomp_prepare, then
 * seccomp_apply in a forked child, with the result pipe on fd 3 as the
 * sandbox has it). The child makes the call; the parent prints one line:
 *
 *   NAME allowed          the call returned (any value but -1)
 *   NAME errno=N          the call returned -1 with errno N
 *   NAME trapped nr=N     SIGSYS: the handler's REC_SYSCALL record, N the
 *                         number it reported; " arch=0x..." follows when
 *                         the call came in through another ABI (i386)
 *   NAME killed sig=N     the child died on signal N
 *
 * Exit status 0 for these, 1 for anything else (printed as NAME
 * unexpected ...), 2 for a usage or setup error.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <seccomp.h>
#include "../../sandbox/internal.h"
#include "../../cgi/banned.h"

#define NOWHERE "/nonexistent/pyexec-try-syscall"

/* Taken before the filter is loaded: the calls that find them out
 * (getppid, getrlimit, sysconf) are not all allowed afterwards. */
static pid_t self_pid, parent_pid;
static struct rlimit nofile;
static void *rw_page;
static long page_size;
static char peek_src[8] = "pyexec!";
/* 0 with --unfiltered: the child makes its call without the filter. */
static int filtered = 1;

/* struct clone_args of <linux/sched.h>, version 0 (64 bytes). */
struct clone_args_v0 {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack,
		 stack_size, tls;
};

/* Each returns what the call returned, with errno set when it is -1. A
 * call that succeeded where it should not must do no harm: paths that
 * do not exist, invalid descriptors, NULL arguments. */

static long try_socket(void)
{
	return socket(AF_INET, SOCK_STREAM, 0);
}

static long try_connect(void)
{
	struct sockaddr_un a;

	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	memcpy(a.sun_path, NOWHERE, sizeof(NOWHERE));
	return connect(STDIN_FILENO, (struct sockaddr *)&a, sizeof(a));
}

static long try_openat(void)
{
	return openat(AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC);
}

static long try_execve(void)
{
	char *const argv[] = { (char *)NOWHERE, NULL };
	char *const envp[] = { NULL };

	return execve(NOWHERE, argv, envp);
}

static long try_fork(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	return pid;
}

static long try_clone3(void)
{
	struct clone_args_v0 args;
	long pid;

	memset(&args, 0, sizeof(args));
	args.exit_signal = SIGCHLD;
	pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid == 0)
		_exit(0);	/* a copy of this process: nothing to do */
	return pid;
}

static long try_ptrace(void)
{
	return ptrace(PTRACE_TRACEME, 0, NULL, NULL);
}

static long try_kill(void)
{
	return kill(parent_pid, 0);
}

static long try_setrlimit(void)
{
	return syscall(SYS_setrlimit, RLIMIT_NOFILE, &nofile);
}

static long try_prlimit_set(void)
{
	return syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &nofile, NULL);
}

/* Another process's CPU clock, as glibc's clock_getcpuclockid encodes it:
 * ~pid << 3 | CPUCLOCK_SCHED. */
static clockid_t other_cpu_clock(void)
{
	return (clockid_t)((~(unsigned)parent_pid << 3) | 2);
}

static long try_clock_other(void)
{
	struct timespec ts;

	return syscall(SYS_clock_gettime, other_cpu_clock(), &ts);
}

static long try_clock_getres_other(void)
{
	struct timespec ts;

	return syscall(SYS_clock_getres, other_cpu_clock(), &ts);
}

static long try_clock_nanosleep_other(void)
{
	struct timespec ts = { 0, 1 };

	return syscall(SYS_clock_nanosleep, other_cpu_clock(), 0, &ts, NULL);
}

/* A clock id whose low 32 bits are CLOCK_REALTIME: the kernel would read
 * it as clock 0, the filter must not. */
static long try_clock_high_bits(void)
{
	struct timespec ts;

	return syscall(SYS_clock_gettime, 1L << 32, &ts);
}

/* The result pipe, which the program must not close: its records (the
 * trap handler's, the audit hook's) are how the broker tells a refusal
 * from the program's own exit. */
static long try_close_result(void)
{
	return syscall(SYS_close, CHILD_RESULT_FD);
}

/* Its number with high bits set: the kernel reads an unsigned int (fd 3),
 * the filter all 64 bits. */
static long try_close_result_high_bits(void)
{
	return syscall(SYS_close, (1L << 32) | CHILD_RESULT_FD);
}

/* stdin: the program may close what is its own. */
static long try_close_stdin(void)
{
	return syscall(SYS_close, 0);
}

static long try_affinity_other(void)
{
	cpu_set_t set;

	return syscall(SYS_sched_getaffinity, parent_pid, sizeof(set), &set);
}

static long try_prlimit_other(void)
{
	struct rlimit old;

	return syscall(SYS_prlimit64, parent_pid, RLIMIT_NOFILE, NULL, &old);
}

static long try_mount(void)
{
	return mount("none", NOWHERE, "tmpfs", 0, NULL);
}

static long try_unshare(void)
{
	return unshare(CLONE_NEWUSER);
}

static long try_setns(void)
{
	return setns(-1, 0);
}

static long try_bpf(void)
{
	return syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, NULL, 0);
}

static long try_userfaultfd(void)
{
	return syscall(SYS_userfaultfd, O_CLOEXEC);
}

static long try_perf_event_open(void)
{
	return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
}

static long try_keyctl(void)
{
	/* KEYCTL_GET_KEYRING_ID of KEY_SPEC_SESSION_KEYRING, no create */
	return syscall(SYS_keyctl, 0, -3, 0);
}

static long try_io_uring_setup(void)
{
	return syscall(SYS_io_uring_setup, 1, NULL);
}

static long try_process_vm_readv(void)
{
	char dst[sizeof(peek_src)];
	struct iovec local = { dst, sizeof(dst) };
	struct iovec remote = { peek_src, sizeof(peek_src) };

	return process_vm_readv(self_pid, &local, 1, &remote, 1, 0);
}

static long try_mprotect_exec(void)
{
	return mprotect(rw_page, (size_t)page_size, PROT_READ | PROT_EXEC);
}

/* The trap handler must stay in place: no new SIGSYS disposition. */
static long try_sigaction_sigsys(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	return sigaction(SIGSYS, &sa, NULL);
}

static long try_mmap_exec(void)
{
	void *p = mmap(NULL, (size_t)page_size, PROT_READ | PROT_EXEC,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? -1 : 0;
}

/* getpid through the i386 entry point (20 is its number there). */
static long try_i386(void)
{
#if defined(__x86_64__)
	long ret = 20;

	__asm__ volatile ("int $0x80"
			  : "+a" (ret)
			  :
			  : "r8", "r9", "r10", "r11", "memory");
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
#else
	errno = ENOSYS;
	return -1;
#endif
}

static long try_x32(void)
{
#if defined(__x86_64__)
	return syscall(__X32_SYSCALL_BIT | __NR_getpid);
#else
	errno = ENOSYS;
	return -1;
#endif
}

/* The controls: both must be allowed. */
static long try_getpid(void)
{
	return syscall(SYS_getpid);
}

static long try_write(void)
{
	return write(STDOUT_FILENO, "", 0);
}

/* time.time(), monotonic(), perf_counter(), process_time(), thread_time()
 * and the other standard clocks, through the system call (not the vDSO). */
static long try_clocks_std(void)
{
	static const clockid_t ids[] = {
		CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID,
		CLOCK_THREAD_CPUTIME_ID, CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME,
	};
	struct timespec ts = { 0, 1 };

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		if (syscall(SYS_clock_gettime, ids[i], &ts) != 0 ||
		    syscall(SYS_clock_getres, ids[i], &ts) != 0)
			return -1;
	ts.tv_sec = 0;
	ts.tv_nsec = 1;
	return syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &ts, NULL);
}

/* os.cpu_count() and getrlimit() ask about the process itself: pid 0. */
static long try_self_queries(void)
{
	cpu_set_t set;
	struct rlimit old;

	if (syscall(SYS_sched_getaffinity, 0, sizeof(set), &set) < 0)
		return -1;
	return syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &old);
}

static const struct attempt {
	const char *name;
	long (*fn)(void);
} attempts[] = {
	{ "socket", try_socket },
	{ "connect", try_connect },
	{ "openat", try_openat },
	{ "execve", try_execve },
	{ "fork", try_fork },
	{ "clone3", try_clone3 },
	{ "ptrace", try_ptrace },
	{ "kill", try_kill },
	{ "setrlimit", try_setrlimit },
	{ "prlimit_set", try_prlimit_set },
	{ "clock_other", try_clock_other },
	{ "clock_getres_other", try_clock_getres_other },
	{ "clock_nanosleep_other", try_clock_nanosleep_other },
	{ "clock_high_bits", try_clock_high_bits },
	{ "close_result", try_close_result },
	{ "close_result_high_bits", try_close_result_high_bits },
	{ "affinity_other", try_affinity_other },
	{ "prlimit_other", try_prlimit_other },
	{ "mount", try_mount },
	{ "unshare", try_unshare },
	{ "setns", try_setns },
	{ "bpf", try_bpf },
	{ "userfaultfd", try_userfaultfd },
	{ "perf_event_open", try_perf_event_open },
	{ "keyctl", try_keyctl },
	{ "io_uring_setup", try_io_uring_setup },
	{ "process_vm_readv", try_process_vm_readv },
	{ "mprotect_exec", try_mprotect_exec },
	{ "mmap_exec", try_mmap_exec },
	{ "sigaction_sigsys", try_sigaction_sigsys },
	{ "i386", try_i386 },
	{ "x32", try_x32 },
	{ "getpid", try_getpid },
	{ "write", try_write },
	{ "close_stdin", try_close_stdin },
	{ "clocks_std", try_clocks_std },
	{ "self_queries", try_self_queries },
};
#define NATTEMPTS (sizeof(attempts) / sizeof(attempts[0]))

static void write_str(int fd, const char *s)
{
	size_t n = strlen(s);

	while (n > 0) {
		ssize_t k = write(fd, s, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;
		s += k;
		n -= (size_t)k;
	}
}

/* The child: confine, call, say how the call returned on status_fd. */
static void __attribute__((noreturn))
child(const struct attempt *a, int res_fd, int status_fd)
{
	struct rlimit no_core = { 0, 0 };
	char err[256], line[64];
	long rc;

	/* A process killed by SIGSYS would dump core into the cwd. */
	setrlimit(RLIMIT_CORE, &no_core);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* The status descriptor must not be where the result pipe goes. */
	status_fd = fcntl(status_fd, F_DUPFD, CHILD_RESULT_FD + 1);
	if (status_fd < 0 || dup2(res_fd, CHILD_RESULT_FD) != CHILD_RESULT_FD) {
		perror("try-syscall: child descriptors");
		_exit(101);
	}
	if (filtered && seccomp_apply(err, sizeof(err)) != 0) {
		fprintf(stderr, "try-syscall: %s\n", err);
		_exit(102);
	}
	/* From here on only calls the filter allows, or the one tried. */
	errno = 0;
	rc = a->fn();
	if (rc == -1)
		snprintf(line, sizeof(line), "errno=%d", errno);
	else
		snprintf(line, sizeof(line), "allowed");
	write_str(status_fd, line);
	_exit(0);
}

/* Reads fd to EOF into buf (at most cap bytes); returns the length. */
static size_t drain(int fd, char *buf, size_t cap)
{
	size_t got = 0;

	while (got < cap) {
		ssize_t n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

static int usage(void)
{
	fprintf(stderr, "usage: try-syscall [--unfiltered] NAME | --list\n"
		"NAME:");
	for (size_t i = 0; i < NATTEMPTS; i++)
		fprintf(stderr, " %s", attempts[i].name);
	fputc('\n', stderr);
	return 2;
}

int main(int argc, char **argv)
{
	static char rec[2 * sizeof(struct rec_hdr) + 4096];
	const struct attempt *a = NULL;
	struct rec_view v;
	char err[256], status[64];
	size_t rec_len, status_len;
	int res[2], st[2], ws = 0;
	pid_t pid;

	if (argc == 3 && strcmp(argv[1], "--unfiltered") == 0) {
		filtered = 0;
		argc--;
		argv++;
	}
	if (argc != 2)
		return usage();
	if (strcmp(argv[1], "--list") == 0) {
		for (size_t i = 0; i < NATTEMPTS; i++)
			printf("%s\n", attempts[i].name);
		return 0;
	}
	for (size_t i = 0; i < NATTEMPTS; i++)
		if (strcmp(argv[1], attempts[i].name) == 0)
			a = &attempts[i];
	if (!a)
		return usage();

	self_pid = getpid();
	page_size = sysconf(_SC_PAGESIZE);
	rw_page = mmap(NULL, (size_t)page_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (rw_page == MAP_FAILED || getrlimit(RLIMIT_NOFILE, &nofile) != 0) {
		perror("try-syscall: setup");
		return 2;
	}
	if (seccomp_prepare(err, sizeof(err)) != 0) {
		fprintf(stderr, "try-syscall: %s\n", err);
		return 2;
	}
	if (pipe(res) != 0 || pipe(st) != 0) {
		perror("try-syscall: pipe");
		return 2;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("try-syscall: fork");
		return 2;
	}
	if (pid == 0) {
		/* The child's view of its parent, for kill(getppid(), 0). */
		parent_pid = getppid();
		self_pid = getpid();
		close(res[0]);
		close(st[0]);
		child(a, res[1], st[1]);
	}
	close(res[1]);
	close(st[1]);
	while (waitpid(pid, &ws, 0) < 0) {
		if (errno != EINTR) {
			perror("try-syscall: waitpid");
			return 2;
		}
	}
	rec_len = drain(res[0], rec, sizeof(rec));
	status_len = drain(st[0], status, sizeof(status) - 1);
	status[status_len] = 0;

	memset(&v, 0, sizeof(v));
	rec_parse(rec, rec_len, &v);
	if (v.have_final && v.final.kind == REC_SYSCALL && WIFEXITED(ws) &&
	    WEXITSTATUS(ws) == CHILD_EXIT_TRAPPED && status_len == 0) {
		printf("%s trapped nr=%u", a->name, v.final.detail);
		if (v.final.extra != seccomp_arch_native())
			printf(" arch=%#x", v.final.extra);
		putchar('\n');
		return 0;
	}
	if (rec_len == 0 && status_len == 0 && WIFSIGNALED(ws)) {
		printf("%s killed sig=%d\n", a->name, WTERMSIG(ws));
		return 0;
	}
	if (rec_len == 0 && status_len > 0 && WIFEXITED(ws) &&
	    WEXITSTATUS(ws) == 0) {
		printf("%s %s\n", a->name, status);
		return 0;
	}
	printf("%s unexpected wait=%#x record=%zu bytes status=\"%s\"\n",
	       a->name, (unsigned)ws, rec_len, status);
	return 1;
}
