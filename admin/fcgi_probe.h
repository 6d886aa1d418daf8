/* SPDX-License-Identifier: MIT */
/* fcgi_probe.h: pyexec-admin doctor --fcgi, a request to a running
 * pyexec-fcgi that runs no code and writes no row. */
#ifndef PYEXEC_FCGI_PROBE_H
#define PYEXEC_FCGI_PROBE_H

#include <stddef.h>

/*
 * Sends GET /metrics without a token to the pyexec-fcgi at addr
 * ("HOST:PORT", ":PORT" or a socket path) and reads its answer within a
 * few seconds. Returns the answer's HTTP status (401 or 200: it answered
 * and could read its database; 503: it answered, the database did not),
 * or -1 with what went wrong in why.
 */
int fcgi_probe(const char *addr, char *why, size_t len);

#endif
