/* SPDX-License-Identifier: MIT */
/*
 * sandbox.h: the whole interface between the broker and the sandbox.
 *
 * sandbox_start() forks a child that executes pyexec-sandbox (child.c),
 * confines itself and waits for its job; sandbox_run() hands the job over.
 * The child runs the program in an embedded interpreter and reports on a
 * result pipe. The parent side (spawn.c) enforces the wall clock and the
 * output cap and turns what it saw into a struct sb_result. Nothing here
 * touches the database or writes to stdout.
 */
#ifndef PYEXEC_SANDBOX_H
#define PYEXEC_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

struct sb_limits {
	long timeout_ms;	/* wall clock of the whole child */
	long cpu_ms;		/* RLIMIT_CPU, rounded up to seconds */
	long memory_mb;		/* RLIMIT_AS */
	long output_bytes;	/* stdout + stderr, past it the run stops */
};

struct sb_job {
	const char *code;	/* UTF-8, NUL-terminated, no NUL inside */
	size_t code_len;
	/* input_data: its JSON text as the client sent it (nothing else of
	 * the request), decoded in the child with Python's json (exact
	 * numbers) after lockdown. When input_empty is set the program gets
	 * {} without that work. */
	const char *input_json;
	size_t input_json_len;
	int input_empty;
	/* The modules the program may import (sandbox/profile.h's mask): the
	 * child imports and allows only these. */
	uint64_t modules;
	/* Readable: stop the run now, the request was cancelled (cgi/cancel.h).
	 * -1 for none; 0 is a real descriptor. */
	int cancel_fd;
};

enum sb_outcome {
	SB_OK,			/* the program ran to the end (or SystemExit(0)) */
	SB_ERROR,		/* an uncaught exception: error_type names it */
	SB_TIMEOUT,		/* wall clock or CPU limit */
	SB_MEMORY,		/* MemoryError or killed for memory */
	SB_OUTPUT_LIMIT,	/* stopped at output_bytes */
	SB_SECURITY,		/* refused by the audit hook or the kernel */
	SB_CRASH,		/* the interpreter died on a signal */
	SB_INTERNAL,		/* the sandbox itself failed */
	SB_CANCELLED,		/* stopped through cancel_fd */
};

/* Layers the child confirmed active before running the code. */
enum {
	SB_LAYER_PYTHON   = 1u << 0,	/* import allowlist, restricted builtins */
	SB_LAYER_AUDIT    = 1u << 1,	/* C audit hook */
	SB_LAYER_SECCOMP  = 1u << 2,
	SB_LAYER_RLIMITS  = 1u << 3,
	SB_LAYER_NNP      = 1u << 4,	/* no_new_privs */
	SB_LAYER_UID      = 1u << 5,	/* root dropped to an unprivileged uid */
	SB_LAYER_USERNS   = 1u << 6,
	SB_LAYER_NETNS    = 1u << 7,
	SB_LAYER_IPCNS    = 1u << 8,
	SB_LAYER_UTSNS    = 1u << 9,
	SB_LAYER_LANDLOCK = 1u << 10,	/* filesystem denied */
	SB_LAYER_LL_SCOPE = 1u << 11,	/* signals and abstract sockets scoped */
};

struct sb_result {
	enum sb_outcome outcome;
	char error_type[64];
	char *error;		/* message or traceback, NUL-terminated; may be NULL */
	char *output;		/* what the program printed, output_len bytes */
	size_t output_len;
	int truncated;
	double exec_ms;		/* the program's wall time: READY to exit,
				 * as the broker measured it */
	long cpu_ms;		/* user + system, from wait4 */
	long peak_kb;		/* max RSS, from wait4 */
	unsigned layers;	/* SB_LAYER_* bits */
	int landlock_abi;
};

/*
 * A sandbox child forked ahead of its job. sandbox_start() forks it before
 * the broker opens the database, so it never holds the database's
 * descriptor or anything read from it; it confines itself and waits. Then
 * sandbox_run() (the request was admitted) or sandbox_discard() (it was
 * refused: the child is killed unused), and sandbox_release() last, which
 * reaps a child still there (so the kill has the refusal's audit row and
 * answer to take effect before anyone waits for it).
 */
struct sb_child {
	int pid;		/* 0 when the start failed */
	int out_fd, res_fd;	/* the program's output, the result records */
	int job_fd;		/* where the job goes (handoff.c) */
	int start_errno;	/* why the start failed */
	char failed[96];	/* what failed, "" when it did not */
};

/* Returns 0, or -1 with c->failed set (sandbox_run then reports it). */
int sandbox_start(struct sb_child *c);
void sandbox_discard(struct sb_child *c);
void sandbox_release(struct sb_child *c);

/*
 * Hands the child job and lim and waits for it. Always fills res (the
 * caller releases it with sb_result_release); returns 0 when the sandbox
 * worked, whatever the program did, and -1 when the sandbox itself failed
 * (res->outcome is then SB_INTERNAL with a message in res->error).
 */
int sandbox_run(struct sb_child *c, const struct sb_job *job,
		const struct sb_limits *lim, struct sb_result *res);

void sb_result_release(struct sb_result *res);

/*
 * pyexec-fcgi: sandbox_start asks fn for the child instead of executing
 * pyexec-sandbox. fn gets the child's descriptors (count of them: output,
 * result, /dev/null, job, and the trace's page when the trace is on) and
 * returns the pid of a child of this process that took them and confines
 * itself as the executed one does, or -1.
 */
typedef int (*sb_spawner)(const int *fds, int count);
void sandbox_set_spawner(sb_spawner fn);

/* Names for the response and the log: "ok", "TimeoutError", ... */
const char *sb_outcome_name(enum sb_outcome o);

/* Writes the names of the layers in mask, comma-separated. */
void sb_layers_describe(unsigned mask, int landlock_abi, char *buf, size_t len);

#endif
