/* SPDX-License-Identifier: MIT */
/*
 * pyexec-mcp: MCP over stdio (newline-delimited JSON-RPC) for clients that
 * launch a command. It runs no code and parses no JSON-RPC itself: every
 * message is handed to pyexec.cgi as one POST to /mcp, with a CGI
 * environment, and its answer relayed as one line. So each tools/call goes
 * through the same broker, sandbox child, audit row and quota as over
 * HTTP, and a run that crashes or is killed ends that pyexec.cgi, never
 * this process.
 *
 * stdout carries nothing but MCP messages; logs go to stderr (pyexec.cgi
 * inherits it). Messages are handled one at a time, in order: a message
 * that arrives while one runs waits in the pipe until the answer is out.
 * SIGTERM, SIGINT and SIGHUP are passed to a running pyexec.cgi, which
 * cancels its run (the audit row says so), then pyexec-mcp exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "stdio_relay.h"
#include "../cgi/banned.h"

#ifndef PYEXEC_CGI_PATH
#define PYEXEC_CGI_PATH "/usr/local/lib/pyexec/pyexec.cgi"
#endif

static volatile sig_atomic_t child_pid, stopping;

static void on_signal(int sig)
{
	stopping = 1;
	if (child_pid > 0)
		kill((pid_t)child_pid, sig == SIGINT ? SIGTERM : sig);
}

/* pyexec.cgi beside this program (a build tree), then where `make install`
 * puts it relative to this program (BINDIR/../lib/pyexec, whatever the
 * PREFIX and DESTDIR), then the compiled-in path. */
static int find_cgi(char *out, size_t n)
{
	static const char *const rel[] = { "pyexec.cgi", "../lib/pyexec/pyexec.cgi" };
	char self[PATH_MAX];
	ssize_t k = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (k > 0) {
		self[k] = 0;
		slash = strrchr(self, '/');
		for (size_t i = 0; slash && i < sizeof(rel) / sizeof(rel[0]); i++) {
			int len = snprintf(out, n, "%.*s/%s", (int)(slash - self),
					   self, rel[i]);
			if (len > 0 && (size_t)len < n && access(out, X_OK) == 0)
				return 0;
		}
	}
	snprintf(out, n, "%s", PYEXEC_CGI_PATH);
	return access(out, X_OK);
}

static void usage(void)
{
	fputs("usage: pyexec-mcp [--token-file PATH]\n"
	      "MCP over stdio: newline-delimited JSON-RPC on stdin and stdout.\n"
	      "The token comes from PYEXEC_TOKEN or the token file, never from\n"
	      "the command line; without one, runs are the local user's.\n",
	      stderr);
}

static int parse_args(int argc, char **argv, const char **token_file)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--token-file") == 0 && i + 1 < argc)
			*token_file = argv[++i];
		else if (strncmp(argv[i], "--token-file=", 13) == 0)
			*token_file = argv[i] + 13;
		else {
			usage();
			return strcmp(argv[i], "--help") == 0 ? 1 : 2;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct relay r = { 0 };
	const char *token_file = getenv("PYEXEC_TOKEN_FILE");
	struct sigaction sa = { 0 };
	int rc = parse_args(argc, argv, &token_file);

	if (rc)
		return rc == 1 ? 0 : 2;
	if (find_cgi(r.cgi, sizeof(r.cgi)) != 0) {
		fprintf(stderr, "pyexec-mcp: no pyexec.cgi beside this program "
			"nor at %s\n", PYEXEC_CGI_PATH);
		return 1;
	}
	if (relay_token(&r, token_file) != 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	r.child_pid = &child_pid;
	r.stopping = &stopping;
	rc = relay_loop(&r);
	relay_release(&r);
	return rc;
}
