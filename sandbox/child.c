/* SPDX-License-Identifier: MIT */
/*
 * child.c: sandbox_enter(), the order in which the child confines itself.
 * Runs in the child only: it never opens the database, never writes to the
 * broker's stdout, and talks to the broker through two pipes (the program's
 * output, and the result record on fd 3).
 *
 * The child is forked before the broker opens the database, and waits
 * for its job (handoff.c) once it has done what does not depend on the
 * request, so that part runs while the broker does its database work.
 *
 * The order is the security argument, so it is kept as one flat list:
 * known descriptors and an empty environment first, then the identity and
 * namespaces, then the job and its limits, then the interpreter (which
 * still needs the filesystem to load modules), then Landlock and seccomp,
 * and only then the program. Steps that may be missing on a kernel are recorded, not fatal;
 * seccomp and the rlimits are never optional.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include "internal.h"
#include "trace.h"
#include "../cgi/banned.h"

extern char **environ;

/* Clears the environment and wipes its strings from memory: the program
 * must not find the web server's variables (or a bearer token) there. */
static void empty_environment(void)
{
	for (char **e = environ; e && *e; e++)
		explicit_bzero(*e, strlen(*e));
	clearenv();
	/* No time zone file to read after lockdown. */
	setenv("TZ", "UTC0", 1);
	tzset();
}

/* The broker's signal handlers are not the program's: a fork keeps them
 * where an exec would reset them, so reset them as exec does (ignored
 * signals stay ignored). */
static void default_signals(void)
{
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;

		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL &&
		    sa.sa_handler != SIG_IGN)
			signal(sig, SIG_DFL);
	}
}

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

void sandbox_enter(int out_fd, int res_fd, int null_fd, int job_fd,
		   pid_t broker)
{
	static struct sb_job job;
	static struct sb_limits lim;
	char err[256];
	unsigned layers = SB_LAYER_RLIMITS;
	int abi = 0;

	TRACE(TR_C_START);
	default_signals();
	if (fds_setup(out_fd, res_fd, null_fd, job_fd) != 0)
		_exit(2);	/* no result pipe to report on */
	setpgid(0, 0);
	/* Whatever directory the web server left us in may be unreadable to
	 * the sandbox's uid or gone; the interpreter resolves paths from it. */
	if (chdir("/") != 0)
		_exit(2);
	empty_environment();
	TRACE(TR_C_FDS);
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
