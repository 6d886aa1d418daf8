/* SPDX-License-Identifier: MIT */
/*
 * zygote.h: pyexec-fcgi's side of the zygote (zygote_ctl.c): start it,
 * have it fork a sandbox child, replace it. The zygote's own side is
 * sandbox/zygote.c, in pyexec-sandbox.
 */
#ifndef PYEXEC_ZYGOTE_H
#define PYEXEC_ZYGOTE_H

#include <stdint.h>
#include <sys/types.h>

struct zygote {
	pid_t pid;		/* 0: none running */
	int ctl;		/* the control socket, -1 with none */
	long runs;		/* children forked since it started */
	int64_t started_ms;	/* CLOCK_MONOTONIC */
	int seed;		/* it imports the seed profile's modules */
};

/* Executes pyexec-sandbox as a zygote of this process. 0, or -1. */
int zygote_start(struct zygote *z);

/* Stops it (closing its socket ends it; SIGKILL to be sure) and reaps it. */
void zygote_stop(struct zygote *z);

/* Has it fork a child that takes fds (count of them): its pid, a child of
 * this process, or -1 (the zygote is gone or refused). */
pid_t zygote_fork(struct zygote *z, const int *fds, int count);

/* 1 when z has forked max_runs children or is older than max_age_s. */
int zygote_worn(const struct zygote *z, long max_runs, long max_age_s);

#endif
