/* SPDX-License-Identifier: MIT */
/*
 * handoff.c: the job, from the broker to a child that is already waiting
 * for it. The child is forked before the broker opens the database (so it
 * never holds its descriptor or anything read from it) and gets the job
 * over a pipe once the request is admitted: a fixed header, then the code,
 * and input_data's JSON text (only those bytes of the request: never its
 * token). The broker closes the pipe
 * without a word when the request is refused; the child then just exits.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "internal.h"
#include "../cgi/limits.h"
#include "../cgi/banned.h"

#define HANDOFF_MAGIC 0x70796a32u	/* "pyj2" */

struct handoff_hdr {
	uint32_t magic;
	uint32_t input_empty;
	uint64_t code_len, input_len;
	int64_t timeout_ms, cpu_ms, memory_mb, output_bytes;
	uint64_t modules;	/* the profile's mask */
	uint8_t key[REC_KEY_LEN];	/* the run's record key */
};

/* 1 when all len bytes arrived, 0 at EOF before the first one, -1 else. */
static int read_full(int fd, void *p, size_t len)
{
	char *c = p;
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, c + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return got == 0 && n == 0 ? 0 : -1;
		got += (size_t)n;
	}
	return 1;
}

int handoff_send(int fd, const struct sb_job *job, const struct sb_limits *lim,
		 const uint8_t *key)
{
	struct handoff_hdr h;

	memset(&h, 0, sizeof(h));
	h.magic = HANDOFF_MAGIC;
	h.input_empty = job->input_empty != 0;
	h.code_len = job->code_len;
	h.input_len = job->input_json ? job->input_json_len : 0;
	h.timeout_ms = lim->timeout_ms;
	h.cpu_ms = lim->cpu_ms;
	h.memory_mb = lim->memory_mb;
	h.output_bytes = lim->output_bytes;
	h.modules = job->modules;
	memcpy(h.key, key, REC_KEY_LEN);
	if (write_full(fd, &h, sizeof(h)) != 0 ||
	    write_full(fd, job->code, job->code_len) != 0 ||
	    write_full(fd, job->input_json, h.input_len) != 0)
		return -1;
	return 0;
}

/* One NUL-terminated copy of the next len bytes on fd. */
static char *read_text(int fd, size_t len)
{
	char *p = malloc(len + 1);

	if (!p)
		return NULL;
	if (len && read_full(fd, p, len) != 1) {
		free(p);
		return NULL;
	}
	p[len] = 0;
	return p;
}

int handoff_recv(int fd, struct sb_job *job, struct sb_limits *lim)
{
	struct handoff_hdr h;
	int rc = read_full(fd, &h, sizeof(h));

	if (rc != 1)
		return rc;
	/* From here on every record carries it; no copy stays behind. */
	rec_set_key(h.key);
	explicit_bzero(h.key, sizeof(h.key));
	/* The broker is trusted, but the sizes still get the bounds its own
	 * settings can never exceed. */
	if (h.magic != HANDOFF_MAGIC || h.code_len > MAX_CODE_BYTES ||
	    h.input_len > MAX_INPUT_BYTES)
		return -1;
	memset(job, 0, sizeof(*job));
	job->code = read_text(fd, (size_t)h.code_len);
	job->input_json = h.input_len ? read_text(fd, (size_t)h.input_len) : NULL;
	if (!job->code || (h.input_len && !job->input_json)) {
		free((char *)job->code);
		free((char *)job->input_json);
		memset(job, 0, sizeof(*job));
		return -1;
	}
	job->code_len = (size_t)h.code_len;
	job->input_json_len = (size_t)h.input_len;
	job->input_empty = (int)h.input_empty;
	job->cancel_fd = -1;
	job->modules = h.modules;
	lim->timeout_ms = (long)h.timeout_ms;
	lim->cpu_ms = (long)h.cpu_ms;
	lim->memory_mb = (long)h.memory_mb;
	lim->output_bytes = (long)h.output_bytes;
	return 1;
}
