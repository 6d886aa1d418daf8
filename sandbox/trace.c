/* SPDX-License-Identifier: MIT */
/*
 * trace.c: PYEXEC_TRACE_TIMING=1 (trace.h). The report is one line:
 *
 *   pyexec-trace: db_open=412 read=21 ... broker_maxrss_kb=9120
 *
 * each figure the microseconds from the previous point that was reached.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include "trace.h"
#include "../cgi/banned.h"

volatile uint64_t *pyexec_trace;

static const char *const names[TR_NPOINTS] = {
	[TR_MAIN] = "main", [TR_DB_OPEN] = "db_open", [TR_READ] = "read",
	[TR_PARSE] = "parse", [TR_ADMIT] = "admit_txn", [TR_SLOT] = "slot",
	[TR_CLOSE] = "db_close", [TR_PREPARE] = "seccomp_build",
	[TR_FORK] = "pipes", [TR_C_START] = "fork",
	[TR_C_FDS] = "fds_env_signals", [TR_C_RLIMITS] = "rlimits",
	[TR_C_NS] = "namespaces_uid", [TR_C_AUDIT] = "audit_hook",
	[TR_C_PYINIT] = "py_init", [TR_C_STDIO] = "py_stdio",
	[TR_C_PRELOAD] = "preload", [TR_C_GLOBALS] = "globals_input",
	[TR_C_LANDLOCK] = "landlock", [TR_C_SECCOMP] = "seccomp_load",
	[TR_C_READY] = "ready_record", [TR_C_COMPILED] = "compile",
	[TR_C_RAN] = "run", [TR_REAPED] = "exit_reap",
	[TR_COMPLETE] = "db_complete", [TR_ANSWERED] = "answer",
};

void trace_init(void)
{
	const char *v = getenv("PYEXEC_TRACE_TIMING");
	void *p;

	if (!v || strcmp(v, "1") != 0)
		return;
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		 -1, 0);
	if (p == MAP_FAILED)
		return;
	pyexec_trace = p;
	pyexec_trace[TR_MAIN] = mono_ns();
}

void trace_report(void)
{
	struct rusage ru;
	uint64_t prev;
	char line[1024];
	size_t used;

	if (!pyexec_trace)
		return;
	used = (size_t)snprintf(line, sizeof(line), "pyexec-trace:");
	prev = pyexec_trace[TR_MAIN];
	for (int i = 1; i < TR_NPOINTS && used < sizeof(line); i++) {
		uint64_t t = pyexec_trace[i];
		if (!t || t < prev)
			continue;
		used += (size_t)snprintf(line + used, sizeof(line) - used,
					 " %s=%.0f", names[i],
					 (double)(t - prev) / 1e3);
		prev = t;
	}
	getrusage(RUSAGE_SELF, &ru);
	if (used < sizeof(line))
		snprintf(line + used, sizeof(line) - used,
			 " broker_maxrss_kb=%ld", ru.ru_maxrss);
	fprintf(stderr, "%s\n", line);
}
