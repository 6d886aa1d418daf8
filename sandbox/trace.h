/* SPDX-License-Identifier: MIT */
/*
 * trace.h: where a request's time goes, for the benchmark (bench/) and the
 * README's cost breakdown. Off unless the web server's environment has
 * PYEXEC_TRACE_TIMING=1 (clients cannot set it: their headers arrive as
 * HTTP_*); off, each point costs one load and one branch. On, the broker maps
 * one shared page (a memfd, which the child maps again after its exec), the
 * child stores its own timestamps there
 * (plain stores: no system call, so nothing changes under seccomp), and the
 * broker prints every phase's duration on stderr when the request is over.
 */
#ifndef PYEXEC_TRACE_H
#define PYEXEC_TRACE_H

#include <stdint.h>

/* Two chains that overlap in time: the broker's, and the child's (forked
 * between TR_PIPES and TR_FORK, it confines itself while the broker does
 * its database work, then waits for the job; its first point counts from
 * TR_PIPES, so it is the fork plus the wait to be scheduled). Each point is reported as the time since the
 * previous point reached in its own chain. */
enum trace_point {
	/* broker */
	TR_MAIN, TR_PIPES, TR_FORK, TR_DB_OPEN, TR_READ, TR_PARSE, TR_IDENTIFY,
	TR_ADMIT, TR_SLOT, TR_HANDOFF, TR_REAPED, TR_COMPLETE, TR_ANSWERED,
	/* child */
	TR_C_FORKED, TR_C_FDS, TR_C_START, TR_C_NS, TR_C_JOB, TR_C_RLIMITS, TR_C_AUDIT,
	TR_C_PYINIT, TR_C_STDIO, TR_C_PRELOAD, TR_C_GLOBALS, TR_C_LANDLOCK,
	TR_C_SECCOMP, TR_C_READY, TR_C_COMPILED, TR_C_RAN,
	TR_NPOINTS
};

extern volatile uint64_t *pyexec_trace;
uint64_t mono_ns(void);

#define TRACE(p) do { if (pyexec_trace) pyexec_trace[(p)] = mono_ns(); } while (0)

void trace_init(void);		/* broker, first thing */
int trace_fd(void);		/* broker: the page's memfd, or -1 */
void trace_attach(int fd);	/* pyexec-sandbox: map the page from fd */
void trace_report(void);	/* broker, last thing: one line on stderr */

#endif
