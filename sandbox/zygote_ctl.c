/* SPDX-License-Identifier: MIT */
/*
 * zygote_ctl.c: the broker's side of the zygote. The zygote is executed
 * afresh (a new address-space layout, nothing of the broker's memory) with
 * an environment of TZ alone, /dev/null as stdin and stdout, and its
 * control socket on fd 3; every other descriptor is closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "internal.h"
#include "zygote.h"
#include "../cgi/banned.h"

/* How long the zygote may take to answer a fork: it does nothing else. */
#define ZYGOTE_ANSWER_MS 10000

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void exec_zygote(const char *path, int ctl, pid_t broker, int seed)
{
	static char *const env[] = { "TZ=UTC0", NULL };
	char pid[24];
	char *argv[] = { SANDBOX_EXE, ZYGOTE_ARG, pid,
			 seed ? ZYGOTE_SEED : ZYGOTE_NONE, NULL };
	int null = open("/dev/null", O_RDWR);
	sigset_t none;

	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
	    dup2(ctl, ZYGOTE_CTL_FD) < 0 ||
	    syscall(SYS_close_range, ZYGOTE_CTL_FD + 1, ~0u, 0) != 0)
		_exit(2);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	snprintf(pid, sizeof(pid), "%ld", (long)broker);
	execve(path, argv, env);
	_exit(2);
}

int zygote_start(struct zygote *z)
{
	static char path[4096];
	int sv[2];
	pid_t broker = getpid();

	z->pid = 0;
	z->ctl = -1;
	if (sandbox_path(path, sizeof(path)) != 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		return -1;
	z->pid = fork();
	if (z->pid == 0)
		exec_zygote(path, sv[1], broker, z->seed);
	close(sv[1]);
	if (z->pid < 0) {
		z->pid = 0;
		close(sv[0]);
		return -1;
	}
	z->ctl = sv[0];
	z->runs = 0;
	z->started_ms = mono_ms();
	return 0;
}

void zygote_stop(struct zygote *z)
{
	if (z->ctl >= 0)
		close(z->ctl);
	z->ctl = -1;
	if (z->pid > 0) {
		kill(z->pid, SIGKILL);
		while (waitpid(z->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	z->pid = 0;
}

static int send_fds(int ctl, const int *fds, int count)
{
	char byte = 'f';
	struct iovec iov = { &byte, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * ZYGOTE_FDS_MAX)];
	} u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = CMSG_SPACE(sizeof(int) *
							 (size_t)count) };
	struct cmsghdr *c;
	ssize_t n;

	if (count < 1 || count > ZYGOTE_FDS_MAX)
		return -1;
	memset(u.buf, 0, sizeof(u.buf));
	c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)count);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)count);
	do
		n = sendmsg(ctl, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == 1 ? 0 : -1;
}

static pid_t recv_pid(int ctl)
{
	int64_t deadline = mono_ms() + ZYGOTE_ANSWER_MS;
	int32_t v;
	ssize_t n;

	for (;;) {
		struct pollfd p = { ctl, POLLIN, 0 };
		int64_t left = deadline - mono_ms();

		if (left <= 0)
			return -1;
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return -1;
		if (!p.revents)
			continue;
		n = recv(ctl, &v, sizeof(v), MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		return n == (ssize_t)sizeof(v) && v > 1 ? (pid_t)v : -1;
	}
}

pid_t zygote_fork(struct zygote *z, const int *fds, int count)
{
	pid_t pid;

	if (z->ctl < 0 || send_fds(z->ctl, fds, count) != 0)
		return -1;
	pid = recv_pid(z->ctl);
	if (pid > 0)
		z->runs++;
	return pid;
}

int zygote_worn(const struct zygote *z, long max_runs, long max_age_s)
{
	return (max_runs > 0 && z->runs >= max_runs) ||
	       (max_age_s > 0 && mono_ms() - z->started_ms >= max_age_s * 1000);
}
