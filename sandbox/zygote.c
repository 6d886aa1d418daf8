/* SPDX-License-Identifier: MIT */
/*
 * zygote.c: pyexec-sandbox --zygote-of <broker pid>, pyexec-fcgi's
 * pre-initialised interpreter. It starts the interpreter once (py_boot:
 * the audit hook, the isolated configuration, stdio), imports the seed
 * profile's modules unless told not to (py_preload_seed) and then only
 * forks
 * children on the broker's command; it never runs a program itself.
 *
 * What it holds is what pyexec-sandbox holds before it reads a job: an
 * interpreter, no database, no request, no token. The broker executes it
 * with an environment of TZ alone and its control socket on fd 3.
 *
 * Each child is forked with CLONE_PARENT, so it is the broker's child,
 * not the zygote's: the broker waits for it, kills it and reads its
 * resource usage exactly as it does a CGI's child. The child then takes
 * the descriptors the message carried and goes through the same
 * confinement list as an executed pyexec-sandbox (child.c).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sched.h>
#include <time.h>
#include "internal.h"
#include "trace.h"
#include "../cgi/banned.h"

/* Python.h is not included here: these are its fork hooks. */
void PyOS_BeforeFork(void);
void PyOS_AfterFork_Parent(void);

static pid_t parse_broker(const char *arg)
{
	char *end;
	long pid;

	errno = 0;
	pid = strtol(arg, &end, 10);
	if (errno || *end || pid <= 1 || pid != (pid_t)pid ||
	    getppid() != (pid_t)pid) {
		fprintf(stderr, "pyexec-sandbox: run by pyexec-fcgi only\n");
		exit(2);
	}
	return (pid_t)pid;
}

/* One command: its descriptors (2 or more), or 0 at the broker's end. */
static int recv_fds(int fds[ZYGOTE_FDS_MAX])
{
	char byte;
	struct iovec iov = { &byte, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * ZYGOTE_FDS_MAX)];
	} u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c;
	ssize_t n;
	int count;

	do
		n = recvmsg(ZYGOTE_CTL_FD, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return 0;
	c = CMSG_FIRSTHDR(&m);
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
		return -1;
	count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
	if (count < 4 || count > ZYGOTE_FDS_MAX || (m.msg_flags & MSG_CTRUNC)) {
		memcpy(fds, CMSG_DATA(c), sizeof(int) *
		       (size_t)(count > ZYGOTE_FDS_MAX ? ZYGOTE_FDS_MAX : count));
		for (int i = 0; i < count && i < ZYGOTE_FDS_MAX; i++)
			close(fds[i]);
		return -1;
	}
	memcpy(fds, CMSG_DATA(c), sizeof(int) * (size_t)count);
	return count;
}

/* In the new child: its descriptors and state as spawn.c's exec_sandbox
 * leaves them, then the confinement list. */
static void become_child(const int fds[ZYGOTE_FDS_MAX], int count,
			 pid_t broker)
{
	char err[256];
	sigset_t none;

	/* Named as an executed sandbox is (the zygote is pyexec-zygote). */
	prctl(PR_SET_NAME, SANDBOX_EXE);
	if (fds_setup(fds[0], fds[1], fds[2], fds[3],
		      count > 4 ? fds[4] : -1) != 0)
		_exit(CHILD_EXIT_INTERNAL);	/* no result pipe to report on */
	if (py_after_fork(err, sizeof(err)) != 0)
		rec_internal("after fork", err);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setpgid(0, 0);
	child_confine_and_run(broker);
}

/* Forks one child as the broker's; returns its pid, or -1. */
static pid_t fork_child(const int fds[ZYGOTE_FDS_MAX], int count,
			pid_t broker)
{
	long pid;

	PyOS_BeforeFork();
	pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL, 0);
	if (pid == 0)
		become_child(fds, count, broker);
	PyOS_AfterFork_Parent();
	return (pid_t)pid;
}

static void answer(pid_t pid)
{
	int32_t v = (int32_t)pid;

	if (write_full(ZYGOTE_CTL_FD, &v, sizeof(v)) != 0)
		_exit(0);	/* the broker is gone */
}

void zygote_main(const char *broker_pid, const char *modules)
{
	pid_t broker = parse_broker(broker_pid);
	int seed = strcmp(modules, ZYGOTE_SEED) == 0;
	char err[256];

	if (!seed && strcmp(modules, ZYGOTE_NONE) != 0)
		_exit(2);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != broker)
		_exit(2);
	if (chdir("/") != 0)
		_exit(2);
	prctl(PR_SET_NAME, "pyexec-zygote");
	tzset();
	if (py_boot(err, sizeof(err)) != 0 ||
	    (seed && py_preload_seed(err, sizeof(err)) != 0)) {
		fprintf(stderr, "pyexec-sandbox: zygote: %s\n", err);
		_exit(2);
	}
	for (;;) {
		int fds[ZYGOTE_FDS_MAX];
		int count = recv_fds(fds);
		pid_t pid;

		if (count == 0)
			_exit(0);	/* the broker closed the socket */
		if (count < 0) {
			answer(-1);
			continue;
		}
		pid = fork_child(fds, count, broker);
		for (int i = 0; i < count; i++)
			close(fds[i]);
		answer(pid);
	}
}
