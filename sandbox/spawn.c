/* SPDX-License-Identifier: MIT */
/*
 * spawn.c: the parent side of a run (the keeper). Forks the child, reads
 * its output and result pipes under a wall-clock deadline and an output cap,
 * kills it when either is passed, reaps it with its resource usage, and
 * decides the outcome from what it saw itself first (deadline, cap, signal)
 * and from the child's own record second.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "internal.h"
#include "trace.h"
#include "../cgi/limits.h"
#include "../cgi/banned.h"

/* Room for one whole record and more: what is parsed is dropped, so the
 * pipe is drained to its end whatever the program writes on it. */
#define RESULT_BUF (2 * sizeof(struct rec_hdr) + RESULT_TYPE_MAX + \
		    RESULT_MESSAGE_MAX)

struct run {
	pid_t pid;
	int out_fd, res_fd, pid_fd;
	int cancel_fd;
	int exited, timed_out, over_output, cancelled;
	char *out;
	size_t out_len, out_cap, out_limit;
	char res[RESULT_BUF];
	size_t res_len;
	struct rec_store rec;
	int status;
	struct rusage ru;
	uint64_t start_ns, end_ns;
};

/* Reads what is there; returns 0 at EOF, 1 while open. */
static int read_output(struct run *r)
{
	char chunk[16384];
	ssize_t n = read(r->out_fd, chunk, sizeof(chunk));

	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return 0;
	if (r->out_len + (size_t)n > r->out_limit) {
		n = (ssize_t)(r->out_limit - r->out_len);
		r->over_output = 1;
	}
	if (r->out_len + (size_t)n > r->out_cap) {
		size_t cap = r->out_cap ? r->out_cap * 2 : 65536;
		while (cap < r->out_len + (size_t)n)
			cap *= 2;
		if (cap > r->out_limit)
			cap = r->out_limit;
		char *p = realloc(r->out, cap);
		if (!p) {
			r->over_output = 1;
			return 0;
		}
		r->out = p;
		r->out_cap = cap;
	}
	memcpy(r->out + r->out_len, chunk, (size_t)n);
	r->out_len += (size_t)n;
	return !r->over_output;
}

/* Parses what the buffer holds and drops it; what is left is the start of
 * a record still arriving (always shorter than the buffer). */
static void take_result(struct run *r, int eof)
{
	size_t used = rec_scan(r->res, r->res_len, eof, &r->rec);

	memmove(r->res, r->res + used, r->res_len - used);
	r->res_len -= used;
}

/* Reads the result pipe to its end, however much the program writes on
 * it: a pipe left full would block the sandbox's own last record. */
static int read_result(struct run *r)
{
	char chunk[16384];
	size_t room;
	ssize_t n;

	/* take_result always leaves room; were it ever full, what it holds
	 * is noise that no record can start in. */
	if (r->res_len >= sizeof(r->res))
		r->res_len = 0;
	room = sizeof(r->res) - r->res_len;
	n = read(r->res_fd, chunk, room < sizeof(chunk) ? room : sizeof(chunk));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 1;
	if (n <= 0) {
		take_result(r, 1);
		return 0;
	}
	memcpy(r->res + r->res_len, chunk, (size_t)n);
	r->res_len += (size_t)n;
	take_result(r, 0);
	return 1;
}

static void kill_child(struct run *r)
{
	kill(-r->pid, SIGKILL);
	kill(r->pid, SIGKILL);
}

/* The event loop: until the child is gone and both pipes are drained, or
 * the deadline or the output cap is passed, or the run is cancelled. */
static void watch(struct run *r, uint64_t deadline_ns)
{
	int out_open = 1, res_open = 1;

	while (out_open || res_open || !r->exited) {
		struct pollfd p[4] = {
			{ out_open ? r->out_fd : -1, POLLIN, 0 },
			{ res_open ? r->res_fd : -1, POLLIN, 0 },
			{ r->exited ? -1 : r->pid_fd, POLLIN, 0 },
			{ r->cancel_fd, POLLIN, 0 },
		};
		uint64_t now = mono_ns();
		int wait_ms;

		if (now >= deadline_ns) {
			r->timed_out = 1;
			return;
		}
		wait_ms = (int)((deadline_ns - now + 999999) / 1000000);
		if (r->pid_fd < 0 && !r->exited && wait_ms > 10)
			wait_ms = 10;	/* no pidfd: poll for the exit */
		if (poll(p, 4, wait_ms) < 0 && errno != EINTR)
			return;
		if (p[3].revents) {
			if (!r->exited) {
				r->cancelled = 1;
				return;
			}
			r->cancel_fd = -1;	/* over already: keep its outcome */
		}
		if (out_open && (p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			out_open = read_output(r);
		if (r->over_output)
			return;
		if (res_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
			res_open = read_result(r);
		if (!r->exited &&
		    wait4(r->pid, &r->status, WNOHANG, &r->ru) == r->pid) {
			r->exited = 1;
			r->end_ns = mono_ns();
		}
	}
}

static void set_error(struct sb_result *res, enum sb_outcome o,
		      const char *type, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void set_error(struct sb_result *res, enum sb_outcome o,
		      const char *type, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	res->outcome = o;
	snprintf(res->error_type, sizeof(res->error_type), "%s", type);
	free(res->error);
	res->error = strdup(msg);
}

static const char *signal_name(int sig)
{
	const char *d = sigabbrev_np(sig);
	static char num[16];

	if (d)
		return d;
	snprintf(num, sizeof(num), "%d", sig);
	return num;
}

/* The child died on a signal that nobody in the broker sent. */
static void classify_signal(struct run *r, const struct sb_limits *lim,
			    struct sb_result *res)
{
	int sig = WTERMSIG(r->status);

	if (sig == SIGXCPU || (sig == SIGKILL && res->cpu_ms >= lim->cpu_ms))
		set_error(res, SB_TIMEOUT, "TimeoutError",
			  "CPU time limit of %ld s exceeded",
			  (lim->cpu_ms + 999) / 1000);
	else if (sig == SIGSYS)
		set_error(res, SB_SECURITY, "SecurityViolation",
			  "a system call was refused by seccomp while signals "
			  "were blocked (process creation: clone3, clone or "
			  "vfork)");
	else if (sig == SIGKILL)
		set_error(res, SB_MEMORY, "MemoryError",
			  "killed by the kernel, most likely out of memory");
	else
		set_error(res, SB_CRASH, "Crash",
			  "the interpreter died on signal SIG%s",
			  signal_name(sig));
}

static char *copy_text(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = 0;
	}
	return p;
}

/* The kind of final record each exit status goes with. The trap handler
 * and the audit hook exit with their codes whatever the program did to the
 * result pipe, so the status is the stronger evidence. */
static int consistent(int status, uint32_t kind, int ready)
{
	switch (status) {
	case CHILD_EXIT_OK:
		return kind == REC_OK;
	case CHILD_EXIT_EXCEPTION:
		return kind == REC_EXCEPTION;
	case CHILD_EXIT_INTERNAL:
		return kind == REC_INTERNAL && !ready;
	case CHILD_EXIT_TRAPPED:
		return kind == REC_SYSCALL || kind == REC_ABORT;
	case CHILD_EXIT_REFUSED:
		return kind == REC_SECURITY;
	}
	return 0;
}

/* No usable record: what the exit status alone says. The trap handler
 * and the audit hook always get their keyed record through (seccomp
 * refuses to close fd 3), so after READY a status without one is the
 * program's own exit, whatever number it chose. */
static void classify_status(struct run *r, struct sb_result *res)
{
	int st = WEXITSTATUS(r->status);

	if (r->rec.v.have_ready)
		set_error(res, SB_ERROR, "SystemExit",
			  "the program ended the interpreter itself "
			  "(exit status %d)", st);
	else
		set_error(res, SB_INTERNAL, "InternalError",
			  "the sandbox exited (status %d) without a result", st);
}

/* The child exited by itself: its record says how. */
static void classify_record(struct run *r, struct sb_result *res)
{
	const struct rec_view *v = &r->rec.v;
	char name[64];

	if (!v->have_final ||
	    !consistent(WEXITSTATUS(r->status), v->final.kind, v->have_ready)) {
		classify_status(r, res);
		return;
	}
	switch (v->final.kind) {
	case REC_OK:
		res->outcome = SB_OK;
		return;
	case REC_SYSCALL:
		seccomp_name((int)v->final.detail, v->final.extra, name,
			     sizeof(name));
		set_error(res, SB_SECURITY, "SecurityViolation",
			  "system call '%s' refused by seccomp", name);
		return;
	case REC_ABORT:
		set_error(res, SB_CRASH, "Crash",
			  "the interpreter aborted (a fatal internal error)");
		return;
	default:	/* REC_EXCEPTION, REC_SECURITY, REC_INTERNAL */
		res->outcome = v->final.kind == REC_SECURITY ? SB_SECURITY :
			       v->final.kind == REC_INTERNAL ? SB_INTERNAL :
			       SB_ERROR;
		snprintf(res->error_type, sizeof(res->error_type), "%.*s",
			 (int)v->final.type_len, v->type);
		if (res->outcome == SB_ERROR &&
		    strcmp(res->error_type, "MemoryError") == 0)
			res->outcome = SB_MEMORY;
		res->error = copy_text(v->msg, v->final.msg_len);
	}
}

static void classify(struct run *r, const struct sb_limits *lim,
		     struct sb_result *res)
{
	res->cpu_ms = r->ru.ru_utime.tv_sec * 1000 + r->ru.ru_utime.tv_usec / 1000 +
		      r->ru.ru_stime.tv_sec * 1000 + r->ru.ru_stime.tv_usec / 1000;
	res->peak_kb = r->ru.ru_maxrss;
	res->layers = r->rec.v.layers;
	res->landlock_abi = r->rec.v.landlock_abi;
	/* The program's time is the broker's own measure, from the READY
	 * record (read as it arrived) to the exit; the child's exec_ns is a
	 * claim the program can forge on fd 3, and is never used. */
	if (r->rec.v.have_ready && r->end_ns > r->rec.v.ready_ns)
		res->exec_ms = (double)(r->end_ns - r->rec.v.ready_ns) / 1e6;
	if (r->cancelled)
		set_error(res, SB_CANCELLED, "Cancelled",
			  "the run was stopped after %.0f ms: its request was "
			  "cancelled", (double)(r->end_ns - r->start_ns) / 1e6);
	else if (r->timed_out)
		set_error(res, SB_TIMEOUT, "TimeoutError",
			  "execution exceeded the time limit of %ld ms",
			  lim->timeout_ms);
	else if (r->over_output)
		set_error(res, SB_OUTPUT_LIMIT, "OutputLimitExceeded",
			  "output exceeded the limit of %ld bytes and the "
			  "program was stopped", lim->output_bytes);
	else if (WIFSIGNALED(r->status))
		classify_signal(r, lim, res);
	else
		classify_record(r, res);
}

static int fail(struct sb_result *res, const char *what)
{
	set_error(res, SB_INTERNAL, "InternalError", "%s: %s", what,
		  strerror(errno));
	return -1;
}

static void reap(struct run *r)
{
	if (r->timed_out || r->over_output || r->cancelled || !r->exited)
		kill_child(r);
	if (!r->exited) {
		while (wait4(r->pid, &r->status, 0, &r->ru) < 0 && errno == EINTR)
			;
		r->exited = 1;
		r->end_ns = mono_ns();
	}
}

static int start_failed(struct sb_child *c, const char *what)
{
	c->start_errno = errno;
	if (!c->failed[0])
		snprintf(c->failed, sizeof(c->failed), "%s", what);
	return -1;
}

/* pyexec-sandbox, next to this program (make install puts them side by
 * side): found from /proc/self/exe, not from the working directory. */
int sandbox_path(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	char *slash;

	if (n < 0)
		return -1;
	errno = ENAMETOOLONG;
	if (n == 0 || (size_t)n >= len - 1)
		return -1;
	buf[n] = 0;
	slash = strrchr(buf, '/');
	if (!slash || (size_t)(slash - buf) + sizeof("/" SANDBOX_EXE) > len)
		return -1;
	memcpy(slash + 1, SANDBOX_EXE, sizeof(SANDBOX_EXE));
	return 0;
}

/*
 * The forked child, up to the exec of pyexec-sandbox: its descriptors,
 * its own process group, "/" as its directory (the web server's may be
 * unreadable to the sandbox's uid, or gone), no blocked signal, and an
 * environment of TZ alone (no zone file to read after lockdown).
 */
static void exec_sandbox(const char *path, int out_fd, int res_fd,
			 int null_fd, int job_fd, pid_t broker)
{
	static char *const env[] = { "TZ=UTC0", NULL };
	char pid[24];
	char *argv[] = { SANDBOX_EXE, SANDBOX_ARG, pid, NULL };
	sigset_t none;

	TRACE(TR_C_FORKED);
	if (fds_setup(out_fd, res_fd, null_fd, job_fd, trace_fd()) != 0)
		_exit(CHILD_EXIT_INTERNAL);	/* no result pipe to report on */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setpgid(0, 0);
	if (chdir("/") != 0)
		rec_internal("chdir", "/");
	snprintf(pid, sizeof(pid), "%ld", (long)broker);
	TRACE(TR_C_FDS);
	execve(path, argv, env);
	/* The client sees this: where the program lives is not its business. */
	rec_internal(SANDBOX_EXE " (beside pyexec.cgi)", strerror(errno));
}

static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static sb_spawner spawner;	/* pyexec-fcgi's zygote, or NULL */

void sandbox_set_spawner(sb_spawner fn)
{
	spawner = fn;
}

/* The child from the spawner: the descriptors fds_setup takes, in its
 * order (output, result, /dev/null, job, the trace's page when on). */
static int spawn_from(const int fd[7])
{
	int give[5] = { fd[1], fd[3], fd[6], fd[4], trace_fd() };

	return spawner(give, give[4] >= 0 ? 5 : 4);
}

int sandbox_start(struct sb_child *c)
{
	static char path[4096];
	/* out, result and job pipes (read, write), /dev/null */
	int fd[7] = { -1, -1, -1, -1, -1, -1, -1 };
	const char *failed = NULL;
	pid_t broker = getpid();

	memset(c, 0, sizeof(*c));
	c->out_fd = c->res_fd = c->job_fd = -1;
	if (seccomp_prepare(c->failed, sizeof(c->failed)) != 0) {
		errno = 0;
		return start_failed(c, "seccomp");
	}
	if (!spawner && sandbox_path(path, sizeof(path)) != 0)
		return start_failed(c, "the path of " SANDBOX_EXE);
	if (pipe2(fd, O_CLOEXEC) != 0 || pipe2(fd + 2, O_CLOEXEC) != 0 ||
	    pipe2(fd + 4, O_CLOEXEC) != 0)
		failed = "pipe";
	else if ((fd[6] = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
		failed = "/dev/null";
	else {
		TRACE(TR_PIPES);
		c->pid = spawner ? spawn_from(fd) : fork();
		if (c->pid < 0)
			failed = spawner ? "the zygote" : "fork";
	}
	if (failed) {
		start_failed(c, failed);
		close_all(fd, 7);
		c->pid = 0;
		return -1;
	}
	if (c->pid == 0)
		exec_sandbox(path, fd[1], fd[3], fd[6], fd[4], broker);
	TRACE(TR_FORK);
	c->out_fd = fd[0];
	c->res_fd = fd[2];
	c->job_fd = fd[5];
	fd[0] = fd[2] = fd[5] = -1;	/* kept: the rest was the child's */
	close_all(fd, 7);
	return 0;
}

static void close_child_fds(struct sb_child *c)
{
	int fds[] = { c->out_fd, c->res_fd, c->job_fd };

	close_all(fds, 3);
	c->out_fd = c->res_fd = c->job_fd = -1;
}

void sandbox_discard(struct sb_child *c)
{
	if (c->pid > 0)
		kill(c->pid, SIGKILL);
	close_child_fds(c);
}

void sandbox_release(struct sb_child *c)
{
	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
			;
		c->pid = 0;
	}
	close_child_fds(c);
}

int sandbox_run(struct sb_child *c, const struct sb_job *job,
		const struct sb_limits *lim, struct sb_result *res)
{
	static struct run r;

	memset(res, 0, sizeof(*res));
	memset(&r, 0, sizeof(r));
	if (!c->pid) {
		if (!c->start_errno) {	/* not a system call's failure */
			set_error(res, SB_INTERNAL, "InternalError", "%s",
				  c->failed);
			return -1;
		}
		errno = c->start_errno;
		return fail(res, c->failed);
	}
	r.pid = c->pid;
	r.out_limit = (size_t)lim->output_bytes;
	r.cancel_fd = job->cancel_fd;
	r.start_ns = mono_ns();
	uint64_t deadline = r.start_ns + (uint64_t)lim->timeout_ms * 1000000u;
	if (rec_new_key(r.rec.v.key) != 0) {
		sandbox_release(c);
		return fail(res, "getrandom");
	}
	r.pid_fd = (int)syscall(SYS_pidfd_open, r.pid, 0);
	/* A child that died before reading its job says why on its result
	 * pipe; the write failing here (EPIPE) is not the story. */
	(void)handoff_send(c->job_fd, job, lim, r.rec.v.key);
	close(c->job_fd);
	c->job_fd = -1;
	TRACE(TR_HANDOFF);
	r.out_fd = c->out_fd;
	r.res_fd = c->res_fd;
	watch(&r, deadline);
	reap(&r);
	TRACE(TR_REAPED);
	c->pid = 0;
	close_child_fds(c);
	if (r.pid_fd >= 0)
		close(r.pid_fd);
	res->output = r.out;
	res->output_len = r.out_len;
	res->truncated = r.over_output;
	classify(&r, lim, res);
	return res->outcome == SB_INTERNAL ? -1 : 0;
}

void sb_result_release(struct sb_result *res)
{
	free(res->output);
	free(res->error);
	res->output = res->error = NULL;
}

const char *sb_outcome_name(enum sb_outcome o)
{
	static const char *const names[] = {
		[SB_OK] = "ok", [SB_ERROR] = "error", [SB_TIMEOUT] = "timeout",
		[SB_MEMORY] = "memory", [SB_OUTPUT_LIMIT] = "output_limit",
		[SB_SECURITY] = "security", [SB_CRASH] = "crash",
		[SB_INTERNAL] = "internal",
		/* The audit log has no outcome of its own for it: error_type
		 * 'Cancelled' says which. */
		[SB_CANCELLED] = "internal",
	};
	return (unsigned)o < sizeof(names) / sizeof(names[0]) ? names[o] : "?";
}

void sb_layers_describe(unsigned mask, int landlock_abi, char *buf, size_t len)
{
	static const struct { unsigned bit; const char *name; } names[] = {
		{ SB_LAYER_PYTHON, "python" }, { SB_LAYER_AUDIT, "audit_hook" },
		{ SB_LAYER_SECCOMP, "seccomp" }, { SB_LAYER_NNP, "no_new_privs" },
		{ SB_LAYER_RLIMITS, "rlimits" }, { SB_LAYER_UID, "uid_drop" },
		{ SB_LAYER_USERNS, "userns" }, { SB_LAYER_NETNS, "netns" },
		{ SB_LAYER_IPCNS, "ipcns" }, { SB_LAYER_UTSNS, "utsns" },
		{ SB_LAYER_LANDLOCK, "landlock" },
		{ SB_LAYER_LL_SCOPE, "landlock_scope" },
	};
	size_t used = 0;

	(void)landlock_abi;
	buf[0] = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int n;
		if (!(mask & names[i].bit))
			continue;
		n = snprintf(buf + used, len - used, "%s%s", used ? "," : "",
			     names[i].name);
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
}
