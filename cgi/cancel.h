/* SPDX-License-Identifier: MIT */
/*
 * cancel.h: a web server that gives up on a request (its client went away,
 * its own timeout, a shutdown) signals the CGI, usually with SIGTERM. The
 * broker must not simply die then: the run's audit row would stay
 * 'running' until its deadline. The signal becomes a byte on a pipe that
 * the sandbox's event loop watches, so the run stops at once and the row
 * says why. The waits before the run (the body, a sandbox slot) watch
 * the same pipe: a request cancelled there ends at once, with its row.
 */
#ifndef PYEXEC_CANCEL_H
#define PYEXEC_CANCEL_H

/*
 * Catches SIGTERM, SIGINT and SIGHUP. Returns the descriptor that becomes
 * readable when one arrives (for sb_job.cancel_fd), or -1 when no pipe
 * could be made (the signals then keep their default action).
 */
int cancel_init(void);

/* The first of those signals received, or 0. */
int cancel_signal(void);

/* The descriptor cancel_init returned (-1 before it, or without a pipe),
 * for the waits before the run to poll beside their own. */
int cancel_fd(void);

struct http_error;

/*
 * A request cancelled before it ran (while its body was read, while it
 * waited for a slot): e becomes status 499 (nginx's "client closed
 * request": nobody reads the answer), error_type "Cancelled", the signal
 * and what was going on named. Returns -1.
 */
int cancel_fail(struct http_error *e, const char *while_doing);

#endif
