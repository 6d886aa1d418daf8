/* SPDX-License-Identifier: MIT */
/*
 * internal.h: the pieces of the sandbox, one file each. Only sandbox/ and
 * the tests include this header.
 */
#ifndef PYEXEC_SANDBOX_INTERNAL_H
#define PYEXEC_SANDBOX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "../cgi/limits.h"
#include <sys/types.h>
#include "sandbox.h"

/* The child's descriptors after fds_setup(). */
#define CHILD_RESULT_FD 3
#define CHILD_JOB_FD 4		/* closed once the job is read */
#define CHILD_TRACE_FD 5	/* PYEXEC_TRACE_TIMING's page, when on */

/* child.c is the main() of pyexec-sandbox, which the child executes
 * (spawn.c) as: pyexec-sandbox SANDBOX_ARG <broker pid>. */
#define SANDBOX_ARG "--child-of"
#define SANDBOX_EXE "pyexec-sandbox"	/* next to pyexec.cgi */

/* pyexec-fcgi's zygote (zygote.c): pyexec-sandbox ZYGOTE_ARG <broker
 * pid> <seed|none> (the modules it imports: ZYGOTE_SEED's, or none), its
 * control socket on ZYGOTE_CTL_FD. Each message there carries
 * a child's descriptors (output, result, /dev/null, job and, when the
 * trace is on, its page); the zygote forks the child as the broker's own
 * (CLONE_PARENT) and answers with its pid. */
#define ZYGOTE_ARG "--zygote-of"
#define ZYGOTE_CTL_FD 3
#define ZYGOTE_FDS_MAX 5
#define ZYGOTE_SEED "seed"
#define ZYGOTE_NONE "none"
void zygote_main(const char *broker_pid, const char *modules)
	__attribute__((noreturn));

/* child.c: the confinement list, then the run; never returns. */
void child_confine_and_run(pid_t broker) __attribute__((noreturn));

/* handoff.c: the job over a pipe, with the run's record key (REC_KEY_LEN
 * bytes: recv hands it to rec_set_key and keeps no copy). recv returns 1 with the job (its
 * strings allocated), 0 when the broker closed the pipe without one (the
 * request was refused), -1 on anything else. */
int handoff_send(int fd, const struct sb_job *job, const struct sb_limits *lim,
		 const uint8_t *key);
int handoff_recv(int fd, struct sb_job *job, struct sb_limits *lim);

/* spawn.c: pyexec-sandbox's path, beside this program. */
int sandbox_path(char *buf, size_t len);

/* fds.c */
int fds_setup(int out_fd, int res_fd, int null_fd, int job_fd, int trace_fd);

/* rlimit.c */
int rlimits_apply(const struct sb_limits *lim, char *err, size_t errlen);

/* ns.c: best effort; returns the SB_LAYER_* bits that took effect. */
unsigned ns_enter(void);

/* landlock.c: best effort; returns SB_LAYER_LANDLOCK | SB_LAYER_LL_SCOPE
 * bits that took effect and the kernel's ABI in *abi. */
unsigned landlock_apply(int *abi);

/* seccomp.c */
int seccomp_prepare(char *err, size_t errlen);	/* parent, before fork */
int seccomp_apply(char *err, size_t errlen);	/* child: NNP + filter */
void seccomp_name(int nr, uint32_t arch, char *buf, size_t len); /* parent */

/* How the child exits; the trap and the audit hook exit with their own
 * codes, which the program cannot prevent, so the parent can tell a real
 * refusal from a record the program forged. */
enum {
	CHILD_EXIT_OK = 0,
	CHILD_EXIT_EXCEPTION = 1,
	CHILD_EXIT_INTERNAL = 2,
	CHILD_EXIT_TRAPPED = 3,
	CHILD_EXIT_REFUSED = 4,
};

/* audit.c */
enum audit_mode {
	AUDIT_OFF,		/* interpreter start and preloading */
	AUDIT_COMPILING,	/* only quiet refusals of "<...>" opens */
	AUDIT_ARMED,		/* refused events end the run */
};
int audit_install(void);	/* before Py_Initialize */
void audit_set(enum audit_mode m);
/* What a wider profile changes in the hook (the seed's has neither):
 * with dataclasses, the stdlib may read what inspect.signature reads; with
 * typing, its eval of the program's string annotations is refused. */
enum {
	AUDIT_SIGNATURE_READS = 1u << 0,
	AUDIT_TYPING_EVAL_REFUSED = 1u << 1,
};
void audit_configure(unsigned flags);

/* pyrun.c: py_boot starts the interpreter (audit hook, isolated
 * configuration, stdio): the zygote's work, or py_prepare's first step;
 * py_prepare then loads the job's modules and builds its globals. */
int py_boot(char *err, size_t errlen);
/* In a child forked from a booted interpreter: Python's own after-fork
 * work, and the per-process seeds renewed (random's state). */
int py_after_fork(char *err, size_t errlen);
int py_preload_seed(char *err, size_t errlen);	/* the zygote's */
int py_prepare(const struct sb_job *job, char *err, size_t errlen);
void py_run(void) __attribute__((noreturn));

/* result.c: the record the child writes on CHILD_RESULT_FD. */
enum rec_kind {
	REC_READY = 1,		/* about to run the code; detail = layers */
	REC_OK,			/* finished; exec_ns set (the broker keeps
				 * its own measure, never this claim) */
	REC_EXCEPTION,		/* type + traceback */
	REC_SECURITY,		/* type = "SecurityViolation", message says what */
	REC_SYSCALL,		/* a system call trapped; detail = its number */
	REC_INTERNAL,		/* setup failed; message says where */
	REC_ABORT,		/* the interpreter called abort() */
};

/*
 * Every record carries the run's key: REC_KEY_LEN random bytes the broker
 * draws for the run and hands over with the job, which the sandbox keeps in
 * C memory only (no Python object holds it) and never writes anywhere but
 * in its records. The program can write on fd 3 too, but it never sees a
 * record (it holds the pipe's write end only), so what it writes there
 * without the key is noise to the broker. Before the job arrives the key is
 * all zeros: such a record is believed only as REC_INTERNAL before READY,
 * when no code of the program has run.
 */
#define REC_KEY_LEN 16

struct rec_hdr {
	uint32_t magic;
	uint32_t kind;
	uint64_t exec_ns;
	uint32_t detail;
	uint32_t extra;		/* landlock ABI in REC_READY */
	uint32_t type_len;
	uint32_t msg_len;
	uint8_t key[REC_KEY_LEN];
};
#define REC_MAGIC 0x70797831u	/* "pyx1" */

/* Child side: async-signal-safe, never allocates. rec_set_key once the
 * job is read; records written before carry zeros. */
void rec_set_key(const uint8_t *key);
void rec_write(enum rec_kind kind, uint64_t exec_ns, uint32_t detail,
	       uint32_t extra, const char *type, size_t type_len,
	       const char *msg, size_t msg_len);
void rec_internal(const char *where, const char *what)
	__attribute__((noreturn));
uint64_t mono_ns(void);
/* All len bytes of p on fd, through EINTR; -1 when fd will not take them.
 * Async-signal-safe. */
int write_full(int fd, const void *p, size_t len);

/* Parent side: a fresh key for a run (never all zeros), 0 or -1. */
int rec_new_key(uint8_t *key);
/* Parses the records in buf (len bytes, untrusted). Only records that
 * carry v->key (set by the caller) count; anything else is not a record. */
struct rec_view {
	uint8_t key[REC_KEY_LEN];	/* the run's key: set by the caller */
	int have_ready;
	uint64_t ready_ns;	/* the parent's clock when READY was parsed */
	unsigned layers;
	int landlock_abi;
	int have_final;
	struct rec_hdr final;
	const char *type;
	const char *msg;
};
size_t rec_parse(const char *buf, size_t len, struct rec_view *v);

/*
 * The parent's reader of the whole result stream, in pieces as they
 * arrive: parses what buf holds, skipping bytes that cannot start a record
 * (the program may write anything on the pipe), and returns the bytes the
 * caller may drop; what is left is the start of a record still arriving.
 * At eof nothing is left: an incomplete record is skipped a byte at a time,
 * so a forged header cannot hide the records written after it. The final
 * record kept (its type and message copied into s) is the last complete
 * one, which is the sandbox's own: it writes it just before it exits.
 */
struct rec_store {
	struct rec_view v;	/* v.type and v.msg point into text */
	char text[RESULT_TYPE_MAX + RESULT_MESSAGE_MAX];
};
size_t rec_scan(const char *buf, size_t len, int eof, struct rec_store *s);

#endif
