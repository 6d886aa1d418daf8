/* SPDX-License-Identifier: MIT */
/*
 * fcgi_main.c: pyexec-fcgi, the FastCGI mode. This process supervises:
 * it finds the listening socket, forks the workers (fcgi_worker.c: each a
 * broker with its own zygote) and keeps their number, and turns signals
 * into their lifecycle:
 *
 *   SIGHUP   every worker replaces its zygote (settings are read from the
 *            database at every request already)
 *   SIGTERM  every worker finishes the request in hand and exits; then
 *            this process exits
 *
 * A signal can land where no handler sees it in time: in a worker not yet
 * past its own sigaction, or just before a worker (or this process)
 * blocks in accept (or waitpid). So this process wakes every second
 * (SIGALRM) and, once stopping, repeats SIGTERM to the workers still
 * there: a repeat finds each one where it listens.
 *
 * The listening socket is, in this order: --listen ADDR (":PORT",
 * "HOST:PORT" or a socket path), the one systemd passes (LISTEN_FDS=1:
 * fd 3), or fd 0 as a web server's bin-path gives it (lighttpd).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcgiapp.h>
#include "fcgi.h"
#include "banned.h"

#define WORKERS_MAX 256
#define DEFAULT_WORKERS 8
#define DEFAULT_ZYGOTE_RUNS 1000
#define DEFAULT_ZYGOTE_AGE_S 600
#define LISTEN_BACKLOG 128

static volatile sig_atomic_t got_term, got_hup;
static pid_t workers[WORKERS_MAX];
static time_t born[WORKERS_MAX];

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else if (sig != SIGALRM)
		got_term = 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: pyexec-fcgi [--listen ADDR] [--workers N] "
		"[--zygote-runs N] [--zygote-age SECONDS]\n"
		"                   [--zygote-modules seed|none]\n"
		"  started by a web server (bin-path), by systemd socket "
		"activation, or with --listen\n");
	exit(2);
}

static long number(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = s ? strtol(s, &end, 10) : 0;
	if (!s || errno || *end || v < min || v > max)
		usage();
	return v;
}

static int is_socket(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* The socket away from fds 0-2, which each request's flow takes for its
 * body and answer (a web server's bin-path gives it as fd 0), and those
 * on /dev/null. */
static int lift_socket(int fd)
{
	int moved = fd > 2 ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 3);
	int null = open("/dev/null", O_RDWR);

	if (moved < 0 || null < 0)
		return -1;
	if (fd <= 2)
		dup2(null, fd);
	if (fd != 0)
		dup2(null, 0);
	dup2(null, 1);
	if (null > 2)
		close(null);
	fcntl(moved, F_SETFD, FD_CLOEXEC);
	return moved;
}

/* systemd's LISTEN_FDS protocol: one socket, on fd 3, for this pid. */
static int systemd_socket(void)
{
	const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");

	if (!fds || !pid || strcmp(fds, "1") != 0 ||
	    strtol(pid, NULL, 10) != (long)getpid() || !is_socket(3))
		return -1;
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	return 3;
}

static int listening_socket(const char *addr)
{
	int fd;

	if (addr) {
		fd = FCGX_OpenSocket(addr, LISTEN_BACKLOG);
		if (fd < 0)
			fprintf(stderr, "pyexec-fcgi: cannot listen on %s\n",
				addr);
		return fd;
	}
	if ((fd = systemd_socket()) >= 0)
		return fd;
	if (is_socket(0))
		return 0;
	fprintf(stderr, "pyexec-fcgi: no FastCGI socket: start it from a web "
		"server, by systemd, or with --listen ADDR\n");
	return -1;
}

static void parse(int argc, char **argv, struct fcgi_opts *o,
		  const char **addr)
{
	o->workers = DEFAULT_WORKERS;
	o->zygote_runs = DEFAULT_ZYGOTE_RUNS;
	o->zygote_age_s = DEFAULT_ZYGOTE_AGE_S;
	o->zygote_seed = 1;
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(argv[i], "--listen") == 0 && v)
			*addr = v;
		else if (strcmp(argv[i], "--workers") == 0)
			o->workers = (int)number(v, 1, WORKERS_MAX);
		else if (strcmp(argv[i], "--zygote-runs") == 0)
			o->zygote_runs = number(v, 1, 1000000000L);
		else if (strcmp(argv[i], "--zygote-age") == 0)
			o->zygote_age_s = number(v, 1, 1000000000L);
		else if (strcmp(argv[i], "--zygote-modules") == 0 && v &&
			 (strcmp(v, "seed") == 0 || strcmp(v, "none") == 0))
			o->zygote_seed = strcmp(v, "seed") == 0;
		else
			usage();
		i++;
	}
}

static void supervisor_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_signal;	/* no SA_RESTART: waitpid returns */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
}

static void start_worker(const struct fcgi_opts *o, int i)
{
	pid_t pid = fork();

	if (pid == 0)
		fcgi_worker(o);	/* fork clears the alarm */
	if (pid < 0)
		perror("pyexec-fcgi: fork");
	workers[i] = pid > 0 ? pid : 0;
	born[i] = time(NULL);
}

static void signal_all(int n, int sig)
{
	for (int i = 0; i < n; i++)
		if (workers[i] > 0)
			kill(workers[i], sig);
}

/* A worker ended: another in its place, unless we are stopping. One that
 * dies within a second of its start is replaced a second later. */
static void replace(const struct fcgi_opts *o, pid_t pid, int status)
{
	for (int i = 0; i < o->workers; i++) {
		if (workers[i] != pid)
			continue;
		workers[i] = 0;
		if (got_term)
			return;
		fprintf(stderr, "pyexec-fcgi: worker %ld ended (%s %d): "
			"starting another\n", (long)pid,
			WIFSIGNALED(status) ? "signal" : "status",
			WIFSIGNALED(status) ? WTERMSIG(status) :
			WEXITSTATUS(status));
		if (time(NULL) - born[i] < 1)
			sleep(1);
		start_worker(o, i);
	}
}

static int supervise(const struct fcgi_opts *o)
{
	for (int i = 0; i < o->workers; i++)
		start_worker(o, i);
	for (;;) {
		int status;
		pid_t pid;

		alarm(1);	/* waitpid returns at least once a second */
		pid = waitpid(-1, &status, 0);
		if (got_hup) {
			got_hup = 0;
			signal_all(o->workers, SIGHUP);
		}
		if (got_term)	/* again at every wake-up: see the top */
			signal_all(o->workers, SIGTERM);
		if (pid > 0)
			replace(o, pid, status);
		else if (errno == ECHILD)
			return 0;	/* stopping, and every worker is gone */
		for (int i = 0; got_term && pid <= 0 && i < o->workers; i++)
			if (workers[i] > 0 && kill(workers[i], 0) != 0)
				workers[i] = 0;
	}
}

int main(int argc, char **argv)
{
	static struct fcgi_opts o;
	const char *addr = NULL;

	parse(argc, argv, &o, &addr);
	if (FCGX_Init() != 0)
		return 1;
	o.listen_fd = lift_socket(listening_socket(addr));
	if (o.listen_fd < 0)
		return 1;
	supervisor_signals();
	return supervise(&o);
}
