/* SPDX-License-Identifier: MIT */
/* fcgi.h: pyexec-fcgi's supervisor (fcgi_main.c) and workers
 * (fcgi_worker.c). */
#ifndef PYEXEC_FCGI_H
#define PYEXEC_FCGI_H

struct fcgi_opts {
	int listen_fd;		/* the FastCGI socket every worker accepts on */
	int workers;		/* requests served at once */
	long zygote_runs;	/* a zygote is replaced after this many runs */
	long zygote_age_s;	/* ... or at this age */
	int zygote_seed;	/* the zygote imports the seed's modules */
};

/* A worker: accepts and serves requests one at a time until SIGTERM
 * (drained: the request in hand is finished first). Never returns. */
void fcgi_worker(const struct fcgi_opts *o) __attribute__((noreturn));

#endif
