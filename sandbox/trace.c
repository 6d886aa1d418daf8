/* SPDX-License-Identifier: MIT */
/*
 * trace.c: PYEXEC_TRACE_TIMING=1 (trace.h). The report is one line:
 *
 *   pyexec-trace: pipes=40 fork=150 db_open=412 ... c_scheduled=180 c_fds=40 c_exec=400 ... total=9120
 *
 * each figure the microseconds from the previous point that was reached in
 * its chain (trace.h): the broker's points first, then the child's.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <sys/resource.h>
#include "trace.h"
#include "../cgi/banned.h"

volatile uint64_t *pyexec_trace;

static const char *const names[TR_NPOINTS] = {
	[TR_MAIN] = "main", [TR_PIPES] = "pipes",
	[TR_FORK] = "fork", [TR_DB_OPEN] = "db_open",
	[TR_READ] = "read", [TR_PARSE] = "parse", [TR_IDENTIFY] = "identify",
	[TR_ADMIT] = "admit_txn", [TR_SLOT] = "slot", [TR_HANDOFF] = "handoff",
	[TR_REAPED] = "wait_child", [TR_COMPLETE] = "db_complete",
	[TR_ANSWERED] = "answer",
	[TR_C_FORKED] = "c_scheduled", [TR_C_FDS] = "c_fds",
	[TR_C_START] = "c_exec",
	[TR_C_NS] = "c_namespaces_uid", [TR_C_JOB] = "c_job_wait",
	[TR_C_RLIMITS] = "c_rlimits", [TR_C_AUDIT] = "c_audit_hook",
	[TR_C_PYINIT] = "c_py_init", [TR_C_STDIO] = "c_py_stdio",
	[TR_C_PRELOAD] = "c_preload", [TR_C_GLOBALS] = "c_globals_input",
	[TR_C_LANDLOCK] = "c_landlock", [TR_C_SECCOMP] = "c_seccomp_load",
	[TR_C_READY] = "c_ready_record", [TR_C_COMPILED] = "c_compile",
	[TR_C_RAN] = "c_run",
};

static int page_fd = -1;
static uint64_t *page;	/* kept for the next request (pyexec-fcgi) */

/* The page is a memfd, so that the child keeps it across its exec. In
 * pyexec-fcgi each request calls this again: the page is reused, and the
 * trace is on for the requests that ask for it. */
void trace_init(void)
{
	const char *v = getenv("PYEXEC_TRACE_TIMING");
	int fd;
	void *p;

	pyexec_trace = NULL;
	if (!v || strcmp(v, "1") != 0)
		return;
	if (page) {
		memset(page, 0, 4096);
		pyexec_trace = page;
		pyexec_trace[TR_MAIN] = mono_ns();
		return;
	}
	fd = memfd_create("pyexec-trace", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, 4096) != 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		close(fd);
		return;
	}
	page_fd = fd;
	page = p;
	pyexec_trace = p;
	pyexec_trace[TR_MAIN] = mono_ns();
}

int trace_fd(void)
{
	return pyexec_trace ? page_fd : -1;
}

void trace_attach(int fd)
{
	void *p;

	if (fcntl(fd, F_GETFD) < 0)
		return;		/* the trace is off */
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p != MAP_FAILED)
		pyexec_trace = p;
}

/* Appends the points first..last of one chain, each as the time since
 * the previous one reached (from `from`). */
static size_t report_chain(char *line, size_t used, size_t len, uint64_t from,
			   int first, int last)
{
	uint64_t prev = from;

	for (int i = first; i <= last && used < len; i++) {
		uint64_t t = pyexec_trace[i];
		if (!t || t < prev)
			continue;
		used += (size_t)snprintf(line + used, len - used, " %s=%.0f",
					 names[i], (double)(t - prev) / 1e3);
		prev = t;
	}
	return used;
}

void trace_report(void)
{
	struct rusage ru;
	char line[1024];
	size_t used;
	uint64_t end;

	if (!pyexec_trace)
		return;
	end = pyexec_trace[TR_ANSWERED] ? pyexec_trace[TR_ANSWERED] : mono_ns();
	used = (size_t)snprintf(line, sizeof(line), "pyexec-trace:");
	used = report_chain(line, used, sizeof(line), pyexec_trace[TR_MAIN],
			    TR_PIPES, TR_ANSWERED);
	used = report_chain(line, used, sizeof(line), pyexec_trace[TR_PIPES],
			    TR_C_FORKED, TR_C_RAN);
	getrusage(RUSAGE_SELF, &ru);
	if (used < sizeof(line))
		snprintf(line + used, sizeof(line) - used,
			 " total=%.0f broker_maxrss_kb=%ld",
			 (double)(end - pyexec_trace[TR_MAIN]) / 1e3,
			 ru.ru_maxrss);
	fprintf(stderr, "%s\n", line);
}
