/* SPDX-License-Identifier: MIT */
/*
 * cancel.c: signals to a pipe (see cancel.h). A flag alone would race with
 * poll (a signal arriving between the check and the call is missed until
 * the deadline); a byte on a pipe the loop already polls cannot be missed.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include "cancel.h"
#include "http.h"
#include "banned.h"

static int pipe_fds[2] = { -1, -1 };
static volatile sig_atomic_t received;

static void on_signal(int sig)
{
	int saved = errno;
	char b = 1;

	if (!received)
		received = sig;
	/* Non-blocking: a full pipe already says enough. */
	if (write(pipe_fds[1], &b, 1) < 0)
		(void)0;
	errno = saved;
}

int cancel_init(void)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	struct sigaction sa;

	if (pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a wait in progress (body read, slot) returns
	 * early and sees the signal; a busy database's wait goes on. */
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	return pipe_fds[0];
}

int cancel_signal(void)
{
	return received;
}

int cancel_fd(void)
{
	return pipe_fds[0];
}

int cancel_fail(struct http_error *e, const char *while_doing)
{
	const char *sig = sigabbrev_np(received);

	http_fail(e, 499, "cancelled while %s (SIG%s from the web server: "
		  "its client went away, its own timeout or a shutdown)",
		  while_doing, sig ? sig : "?");
	e->type = "Cancelled";
	return -1;
}
