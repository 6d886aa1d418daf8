/* SPDX-License-Identifier: MIT */
/* flow.h: one request from top to bottom (main.c), for the CGI and for
 * pyexec-fcgi's workers alike. */
#ifndef PYEXEC_FLOW_H
#define PYEXEC_FLOW_H

/*
 * Serves the request the environment describes (REQUEST_METHOD,
 * CONTENT_LENGTH, HTTP_AUTHORIZATION, ...), its body on fd 0, the answer
 * to fd 1, against the database at db_path. cancel_fd becomes readable
 * when the request is cancelled (-1: never). mode is what the audit row
 * records as the way the service runs: "cgi" or "fcgi".
 */
void pyexec_request(int cancel_fd, const char *db_path, const char *mode);

#endif
