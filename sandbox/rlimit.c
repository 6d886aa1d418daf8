/* SPDX-License-Identifier: MIT */
/*
 * rlimit.c: the child's resource limits, as a table. Soft and hard limits
 * are set equal (CPU excepted) so the program cannot raise them back, and
 * the seccomp filter refuses setrlimit/prlimit64 writes in any case.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include "internal.h"
#include "../cgi/limits.h"
#include "../cgi/banned.h"

int rlimits_apply(const struct sb_limits *lim, char *err, size_t errlen)
{
	rlim_t cpu_s = (rlim_t)((lim->cpu_ms + 999) / 1000);
	rlim_t as = (rlim_t)lim->memory_mb * 1024 * 1024;
	const struct {
		int res;
		rlim_t soft, hard;
		const char *name;	/* and why */
	} table[] = {
		/* The memory limit: malloc fails, Python raises MemoryError. */
		{ RLIMIT_AS, as, as, "RLIMIT_AS" },
		/* SIGXCPU at the soft limit, SIGKILL one second later. */
		{ RLIMIT_CPU, cpu_s, cpu_s + 1, "RLIMIT_CPU" },
		/* No file may grow: the program has no business writing one. */
		{ RLIMIT_FSIZE, 0, 0, "RLIMIT_FSIZE" },
		{ RLIMIT_NOFILE, CHILD_NOFILE, CHILD_NOFILE, "RLIMIT_NOFILE" },
		/* No new processes or threads for this uid. */
		{ RLIMIT_NPROC, 0, 0, "RLIMIT_NPROC" },
		{ RLIMIT_CORE, 0, 0, "RLIMIT_CORE" },
		{ RLIMIT_MEMLOCK, 0, 0, "RLIMIT_MEMLOCK" },
		{ RLIMIT_MSGQUEUE, 0, 0, "RLIMIT_MSGQUEUE" },
	};

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		struct rlimit rl = { table[i].soft, table[i].hard };
		if (setrlimit(table[i].res, &rl) != 0) {
			snprintf(err, errlen, "setrlimit(%s): %s", table[i].name,
				 strerror(errno));
			return -1;
		}
	}
	return 0;
}
