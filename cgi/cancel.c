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
	/* No SA_RESTART: a wait in progress (body read, slot, busy database)
	 * returns early and goes on; only the run itself is stopped. */
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	return pipe_fds[0];
}

int cancel_signal(void)
{
	return received;
}
