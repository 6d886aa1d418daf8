/* SPDX-License-Identifier: MIT */
/*
 * ns.c: identity and namespaces. Root is dropped to an unprivileged uid
 * first (a CGI run by root must not run the program as root), then the
 * child unshares user, network, IPC and UTS namespaces: no interface but a
 * down loopback, no System V objects of the host, its own hostname. Both
 * are best effort; the caller records what took effect.
 */
#include <grp.h>
#include <sched.h>
#include <unistd.h>
#include "internal.h"
#include "../cgi/banned.h"

/* The conventional "nobody": owns no file the program could reach. */
#define SANDBOX_UID 65534
#define SANDBOX_GID 65534

static unsigned drop_root(void)
{
	if (geteuid() != 0)
		return 0;
	if (setgroups(0, NULL) != 0 ||
	    setresgid(SANDBOX_GID, SANDBOX_GID, SANDBOX_GID) != 0 ||
	    setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID) != 0)
		rec_internal("drop root", "cannot switch to uid 65534");
	return SB_LAYER_UID;
}

unsigned ns_enter(void)
{
	unsigned layers = drop_root();

#ifdef PYEXEC_TEST_NO_USERNS
	/* Test build only: as on a kernel without user namespaces. */
	return layers;
#endif
	if (unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWIPC |
		    CLONE_NEWUTS) == 0)
		return layers | SB_LAYER_USERNS | SB_LAYER_NETNS |
		       SB_LAYER_IPCNS | SB_LAYER_UTSNS;
	/* Without user namespaces only a privileged process could unshare
	 * the rest, and we have just given that up. */
	return layers;
}
