/* SPDX-License-Identifier: MIT */
/*
 * fds.c: the child's descriptors. stdin is /dev/null, stdout and stderr
 * are one pipe (so their order is kept), fd 3 is the result pipe, fd 4
 * the job's pipe until the job is read, fd 5 the trace's page when the
 * trace is on, and nothing else survives: not the web server's sockets,
 * not the request.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "internal.h"
#include "../cgi/banned.h"

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE 2
#endif

/* Moves fd to a number above 5 first, so the dup2 calls below never
 * overwrite a descriptor that is still to be moved. */
static int lift(int fd)
{
	if (fd > CHILD_TRACE_FD || fd < 0)
		return fd;
	return fcntl(fd, F_DUPFD, CHILD_TRACE_FD + 1);
}

static int close_from(int lowfd)
{
	if (syscall(SYS_close_range, (unsigned)lowfd, ~0u, 0) == 0)
		return 0;
	/* Older kernels: walk the table; RLIMIT_NOFILE bounds it. */
	long max = sysconf(_SC_OPEN_MAX);
	for (long fd = lowfd; fd < max && fd < 65536; fd++)
		close((int)fd);
	return 0;
}

int fds_setup(int out_fd, int res_fd, int null_fd, int job_fd, int trace_fd)
{
	out_fd = lift(out_fd);
	res_fd = lift(res_fd);
	null_fd = lift(null_fd);
	job_fd = lift(job_fd);
	trace_fd = lift(trace_fd);
	if (out_fd < 0 || res_fd < 0 || null_fd < 0 || job_fd < 0)
		return -1;
	if (dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 ||
	    dup2(out_fd, 2) < 0 || dup2(res_fd, CHILD_RESULT_FD) < 0 ||
	    dup2(job_fd, CHILD_JOB_FD) < 0)
		return -1;
	if (trace_fd < 0)
		return close_from(CHILD_JOB_FD + 1);
	if (dup2(trace_fd, CHILD_TRACE_FD) < 0)
		return -1;
	return close_from(CHILD_TRACE_FD + 1);
}
