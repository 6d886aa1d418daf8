/* SPDX-License-Identifier: MIT */
/*
 * cancel.h: a web server that gives up on a request (its client went away,
 * its own timeout, a shutdown) signals the CGI, usually with SIGTERM. The
 * broker must not simply die then: the run's audit row would stay
 * 'running' until its deadline. The signal becomes a byte on a pipe that
 * the sandbox's event loop watches, so the run stops at once and the row
 * says why.
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

#endif
