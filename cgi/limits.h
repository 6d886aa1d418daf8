/* SPDX-License-Identifier: MIT */
/*
 * limits.h: every numeric cap of the request path, with the reason for it.
 * The run-time limits (time, memory, output, code) are defaults: tests and
 * operators override them through the environment (see config.c).
 */
#ifndef PYEXEC_LIMITS_H
#define PYEXEC_LIMITS_H

/* The reference service's Cloud Function timeout. */
#define DEFAULT_TIMEOUT_MS      30000
/* CPU seconds: the same as the wall clock, so a busy loop and an idle one
 * meet the same end; RLIMIT_CPU has one-second granularity. */
#define DEFAULT_CPU_MS          30000
/* The reference service's function memory. Applied as RLIMIT_AS. */
#define DEFAULT_MEMORY_MB       512
/* What a client can usefully read back; past it the run is stopped. */
#define DEFAULT_OUTPUT_BYTES    (1024 * 1024)
/* Largest accepted program text, in bytes of UTF-8. */
#define DEFAULT_CODE_BYTES      (64 * 1024)
/* Largest input_data, as the JSON text that carried it. */
#define DEFAULT_INPUT_BYTES     (256 * 1024)
/* Largest request body. JSON escapes can make a 64 KiB program up to six
 * times longer on the wire; this leaves room for that and for input_data. */
#define DEFAULT_BODY_BYTES      (1024 * 1024)

/* Hard ceilings the environment cannot raise: a misconfiguration must not
 * turn into an unbounded allocation or an hour-long child. */
#define MAX_TIMEOUT_MS          (15 * 60 * 1000)
#define MAX_MEMORY_MB           (64 * 1024)
#define MAX_OUTPUT_BYTES        (64 * 1024 * 1024)
#define MAX_CODE_BYTES          (16 * 1024 * 1024)
#define MAX_INPUT_BYTES         (64 * 1024 * 1024)
#define MAX_BODY_BYTES          (128 * 1024 * 1024)

/* JSON nesting accepted in a request: deep enough for real input_data,
 * shallow enough that no recursive walker (cJSON's, ours, the Python
 * conversion) comes near the stack limit. */
#define JSON_MAX_DEPTH          64

/* How long a client may take to send a body it announced. */
#define BODY_READ_TIMEOUT_MS    10000
/* The most of a refused body read and dropped so that the refusal reaches
 * the client (request_discard): above the shipped servers' own body limits
 * (2 MiB), with room. */
#define DISCARD_MAX_BYTES       (16 * 1024 * 1024)

/* The child's structured result: error type and message (the traceback). */
#define RESULT_TYPE_MAX         128
#define RESULT_MESSAGE_MAX      (64 * 1024)

/* Descriptors the child may hold: stdin, stdout, stderr, the result pipe
 * and a few for the interpreter's own use before lockdown. */
#define CHILD_NOFILE            16

#endif
