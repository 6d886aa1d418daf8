/* SPDX-License-Identifier: MIT */
/*
 * fcgi_worker.c: one of pyexec-fcgi's brokers. It accepts a FastCGI
 * request, gives it to the CGI's own request flow (main.c's
 * pyexec_request) exactly as a web server gives a CGI its request, and
 * sends back what that wrote:
 *
 *   - the environment is the request's parameters (REQUEST_METHOD,
 *     CONTENT_LENGTH, HTTP_AUTHORIZATION, ...: the web server's, as a
 *     CGI's environment is), then this process's own PYEXEC_* variables
 *     for those the web server did not set (PYEXEC_DB, limits): what a
 *     web server's fastcgi_param says wins, as its setenv does for the
 *     CGI;
 *   - the body is on fd 0 and the answer goes to fd 1, both memory files;
 *   - the sandbox child comes from this worker's zygote instead of an
 *     executed pyexec-sandbox (sandbox_set_spawner), a child of this
 *     process all the same, which confines itself by the same list.
 *
 * The zygote is replaced when it is worn (runs, age), when SIGHUP asks,
 * and when it is found dead; a run whose zygote failed twice is reported
 * as the sandbox's failure and its row completed, as the CGI does.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <fcgiapp.h>
#include "fcgi.h"
#include "flow.h"
#include "limits.h"
#include "../sandbox/sandbox.h"
#include "../sandbox/trace.h"
#include "../sql/store.h"
#include "../sandbox/zygote.h"
#include "banned.h"

/* Parameters kept from one request; the rest are dropped. */
#define ENV_MAX 256
#define IO_CHUNK 65536

extern char **environ;

static const struct fcgi_opts *opts;
static struct zygote zyg = { .ctl = -1 };
static volatile sig_atomic_t stopping, renew, reconnect;

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
	FCGX_ShutdownPending();
}

static void on_hup(int sig)
{
	(void)sig;
	renew = 1;
	reconnect = 1;
}

static void worker_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_term;	/* no SA_RESTART: accept returns */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
}

static int fresh_zygote(void)
{
	zygote_stop(&zyg);
	renew = 0;
	return zygote_start(&zyg);
}

/* sandbox_start's spawner: the zygote's child, with a fresh zygote when
 * the one there is worn out, asked to renew, or does not answer. */
static int spawn(const int *fds, int count)
{
	pid_t pid = -1;

	if ((renew || zyg.pid <= 0 ||
	     zygote_worn(&zyg, opts->zygote_runs, opts->zygote_age_s)) &&
	    fresh_zygote() != 0)
		return -1;
	pid = zygote_fork(&zyg, fds, count);
	if (pid < 0) {
		fprintf(stderr, "pyexec-fcgi: the zygote did not answer: "
			"starting another\n");
		if (fresh_zygote() == 0)
			pid = zygote_fork(&zyg, fds, count);
	}
	return pid;
}

static int has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

/* The request's parameters, then this process's PYEXEC_* variables
 * (getenv finds the first of a name: the request's). */
static void request_environ(char **saved, char *const *params)
{
	static char *env[ENV_MAX + 1];
	size_t n = 0;

	for (char *const *e = params; e && *e && n < ENV_MAX; e++)
		env[n++] = *e;
	for (char **e = saved; e && *e && n < ENV_MAX; e++)
		if (has_prefix(*e, "PYEXEC_"))
			env[n++] = *e;
	env[n] = NULL;
	environ = env;
}

/* How much of the body to take in: CONTENT_LENGTH's bytes, or up to the
 * end of a body without one; never more than MAX_BODY_BYTES (+1, so that
 * the flow sees the excess), and nothing when CONTENT_LENGTH is over
 * that (the flow refuses it from the header alone). */
static long body_wanted(void)
{
	const char *cl = getenv("CONTENT_LENGTH");
	char *end;
	long n;

	if (!cl || !*cl)
		return MAX_BODY_BYTES + 1L;
	errno = 0;
	n = strtol(cl, &end, 10);
	if (errno || *end || n < 0 || n > MAX_BODY_BYTES)
		return 0;
	return n;
}

/* The body from the FastCGI stream into fd (a memory file), at most
 * want bytes; a stalled web server ends it at the socket's timeout. */
static void take_body(FCGX_Request *r, int fd, long want)
{
	static char buf[IO_CHUNK];
	struct timeval tv = { BODY_READ_TIMEOUT_MS / 1000, 0 };

	setsockopt(r->ipcFd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (want > 0) {
		int n = FCGX_GetStr(buf, want < IO_CHUNK ? (int)want : IO_CHUNK,
				    r->in);

		if (n <= 0 || write(fd, buf, (size_t)n) != n)
			break;
		want -= n;
	}
	lseek(fd, 0, SEEK_SET);
}

/* What the flow wrote on fd 1, to the web server. */
static void give_answer(FCGX_Request *r, int fd)
{
	static char buf[IO_CHUNK];
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (FCGX_PutStr(buf, (int)n, r->out) != (int)n)
			break;
}

static int memory_file(const char *name)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd < 0) {
		perror("pyexec-fcgi: memfd_create");
		exit(1);
	}
	return fd;
}

/* One request through the CGI's flow, fds 0 and 1 its body and answer. */
static void serve(FCGX_Request *r, char **saved)
{
	int in = memory_file("body"), out = memory_file("answer");
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	request_environ(saved, r->envp);
	take_body(r, in, body_wanted());
	if (null < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0) {
		perror("pyexec-fcgi: request descriptors");
		exit(1);
	}
	trace_init();	/* PYEXEC_TRACE_TIMING=1: the phases, on stderr */
	pyexec_request(-1, store_default_path(), "fcgi");
	trace_report();
	fflush(stdout);
	give_answer(r, out);
	dup2(null, 0);
	dup2(null, 1);
	close(null);
	close(in);
	close(out);
	environ = saved;
}

void fcgi_worker(const struct fcgi_opts *o)
{
	FCGX_Request req;
	char **saved = environ;

	opts = o;
	zyg.seed = o->zygote_seed;
	worker_signals();
	sandbox_set_spawner(spawn);
	/* The database stays open from one request to the next (checked
	 * before each: store.h), not opened per request as the CGI must. */
	store_keep_open();
	if (FCGX_Init() != 0 ||
	    FCGX_InitRequest(&req, o->listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		fprintf(stderr, "pyexec-fcgi: FastCGI library failed\n");
		exit(1);
	}
	if (fresh_zygote() != 0)
		perror("pyexec-fcgi: zygote (another is tried at the first run)");
	while (!stopping) {
		int rc;

		if (renew && fresh_zygote() != 0)
			perror("pyexec-fcgi: zygote");
		if (reconnect) {	/* SIGHUP: the database afresh too */
			reconnect = 0;
			store_forget();
		}
		rc = FCGX_Accept_r(&req);
		if (rc < 0) {	/* a signal, or a connection that failed */
			if (rc != -EINTR && !stopping)
				usleep(100000);	/* not a busy loop */
			continue;
		}
		serve(&req, saved);
		FCGX_Finish_r(&req);
	}
	zygote_stop(&zyg);
	exit(0);
}
