/* SPDX-License-Identifier: MIT */
/*
 * child.c: pyexec-sandbox, the program the sandbox child executes, and the
 * order in which it confines itself. It never opens the database, never
 * writes to the broker's stdout, and talks to the broker through three
 * pipes: the job in (fd 4), the program's output (fds 1 and 2) and the
 * result records (fd 3).
 *
 * The broker forks the child before it opens the database or reads the
 * request (spawn.c); the child sets up its descriptors and executes this
 * program with an empty environment, so nothing of the broker's memory
 * survives: not the web server's environment, not a token, not the
 * database's pages. It is a program of its own so that it can link
 * Debian's optimized static libpython (not position-independent) while the
 * broker, which parses untrusted input, stays PIE and loads no Python.
 *
 * The order is the security argument, so it is kept as one flat list:
 * identity and namespaces first, then the job and its limits (the part
 * before runs while the broker does its database work), then the
 * interpreter (which still needs the filesystem to load modules), then
 * Landlock and seccomp, and only then the client's data: input_data (its
 * bytes alone: the child never sees the rest of the request) is decoded
 * and the program runs. Steps that may be
 * missing on a kernel are recorded, not fatal; seccomp and the rlimits are
 * never optional.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include "internal.h"
#include "trace.h"
#include "../cgi/banned.h"

static void die_with_parent(pid_t broker)
{
	/* Set after the credential changes, which clear it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		rec_internal("prctl", "PR_SET_PDEATHSIG");
	if (getppid() != broker)
		_exit(2);	/* the broker is gone already */
}

/* The job, once the broker has admitted the request; a refused request
 * closes the pipe instead, and the child leaves without a record. */
static void await_job(struct sb_job *job, struct sb_limits *lim)
{
	int rc = handoff_recv(CHILD_JOB_FD, job, lim);

	if (rc == 0)
		_exit(CHILD_EXIT_INTERNAL);
	if (rc < 0)
		rec_internal("handoff", "the job did not arrive whole");
	close(CHILD_JOB_FD);
}

static int is_pipe(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/* Started by anything but the broker (by hand, or by a web server that
 * was pointed at its directory): say so and stop before doing anything.
 * The broker is this process's parent, named on the command line, and
 * left the result and job pipes on fds 3 and 4. */
static pid_t broker_of(int argc, char **argv)
{
	char *end;
	long pid;

	if (argc != 3 || strcmp(argv[1], SANDBOX_ARG) != 0 ||
	    !is_pipe(CHILD_RESULT_FD) || !is_pipe(CHILD_JOB_FD))
		goto usage;
	errno = 0;
	pid = strtol(argv[2], &end, 10);
	if (errno || *end || pid <= 1 || pid != (pid_t)pid ||
	    getppid() != (pid_t)pid)
		goto usage;
	return (pid_t)pid;
usage:
	fprintf(stderr, "pyexec-sandbox: run by pyexec.cgi only\n");
	exit(2);
}

/*
 * The list itself, shared by both ways a child starts: executed afresh as
 * pyexec-sandbox by the CGI (main below), or forked from pyexec-fcgi's
 * zygote (zygote.c), whose interpreter is up already (py_prepare then
 * skips its start). Either way the descriptors are set (fds_setup) and
 * nothing else of the parent's is open.
 */
void child_confine_and_run(pid_t broker)
{
	static struct sb_job job;
	static struct sb_limits lim;
	char err[256];
	unsigned layers = SB_LAYER_RLIMITS;
	int abi = 0;

	trace_attach(CHILD_TRACE_FD);
	TRACE(TR_C_START);
	tzset();	/* TZ=UTC0 from the broker: no zone file after lockdown */
	layers |= ns_enter();
	die_with_parent(broker);
	TRACE(TR_C_NS);
	await_job(&job, &lim);
	TRACE(TR_C_JOB);
	if (rlimits_apply(&lim, err, sizeof(err)) != 0)
		rec_internal("rlimits", err);
	TRACE(TR_C_RLIMITS);
	if (py_prepare(&job, err, sizeof(err)) != 0)
		rec_internal("interpreter", err);
	layers |= landlock_apply(&abi);
	TRACE(TR_C_LANDLOCK);
	if (seccomp_apply(err, sizeof(err)) != 0)
		rec_internal("seccomp", err);
	TRACE(TR_C_SECCOMP);
	layers |= SB_LAYER_SECCOMP | SB_LAYER_NNP;
#ifndef PYEXEC_TEST_NO_PYLAYER
	layers |= SB_LAYER_PYTHON | SB_LAYER_AUDIT;
#endif
	rec_write(REC_READY, 0, layers, (uint32_t)abi, NULL, 0, NULL, 0);
	TRACE(TR_C_READY);
	py_run();
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], ZYGOTE_ARG) == 0)
		zygote_main(argv[2], argv[3]);
	child_confine_and_run(broker_of(argc, argv));
}
