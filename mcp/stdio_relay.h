/* SPDX-License-Identifier: MIT */
/* stdio_relay.h: pyexec-mcp's loop: a line in, pyexec.cgi, a line out. */
#ifndef PYEXEC_STDIO_RELAY_H
#define PYEXEC_STDIO_RELAY_H

#include <signal.h>
#include <stddef.h>

/* The longest message taken from stdin; longer ones are refused whole. */
#define RELAY_LINE_MAX (16L << 20)
#define RELAY_TOKEN_MAX 128

struct relay {
	char cgi[4096];			/* pyexec.cgi's path */
	char auth[RELAY_TOKEN_MAX + 16];	/* "Bearer <token>", or "" */
	char *line;
	size_t cap;
	volatile sig_atomic_t *child_pid, *stopping;
};

/* The token from PYEXEC_TOKEN, else from token_file (may be NULL). */
int relay_token(struct relay *r, const char *token_file);

/* Until stdin ends: 0, or 1 when stdout cannot be written. */
int relay_loop(struct relay *r);
void relay_release(struct relay *r);

#endif
