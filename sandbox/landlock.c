/* SPDX-License-Identifier: MIT */
/*
 * landlock.c: a Landlock ruleset that handles every filesystem right the
 * kernel knows and grants none, so no path can be opened, created, removed
 * or executed. From ABI 6 it also scopes signals and abstract UNIX sockets
 * to the sandbox. Applied after the interpreter has loaded what it needs.
 */
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/landlock.h>
#include "internal.h"
#include "../cgi/banned.h"

/* Debian 12's headers stop at ABI 2; later rights by their ABI numbers. */
#define LL_REFER	(1ULL << 13)	/* ABI 2 */
#define LL_TRUNCATE	(1ULL << 14)	/* ABI 3 */
#define LL_IOCTL_DEV	(1ULL << 15)	/* ABI 5 */
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET	(1ULL << 0)	/* ABI 6 */
#define LL_SCOPE_SIGNAL			(1ULL << 1)	/* ABI 6 */

struct ll_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;	/* ABI 4 */
	uint64_t scoped;		/* ABI 6 */
};

static uint64_t fs_rights(int abi)
{
	uint64_t r = (1ULL << 13) - 1;	/* ABI 1: execute .. make_sym */

	if (abi >= 2)
		r |= LL_REFER;
	if (abi >= 3)
		r |= LL_TRUNCATE;
	if (abi >= 5)
		r |= LL_IOCTL_DEV;
	return r;
}

unsigned landlock_apply(int *abi_out)
{
	struct ll_attr attr;
	size_t size = sizeof(uint64_t);
	unsigned layers = SB_LAYER_LANDLOCK;
	long abi;
	int fd;

	*abi_out = 0;
	abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
		      LANDLOCK_CREATE_RULESET_VERSION);
#ifdef PYEXEC_TEST_NO_LANDLOCK
	abi = -1;	/* test build only: as on a kernel without Landlock */
#endif
	if (abi < 1)
		return 0;
	*abi_out = (int)abi;
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = fs_rights((int)abi);
	if (abi >= 6) {
		/* Network rights stay unhandled: seccomp refuses socket(). */
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
		size = sizeof(attr);
		layers |= SB_LAYER_LL_SCOPE;
	}
	fd = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	if (fd < 0)
		return 0;
	/* Landlock requires no_new_privs (or CAP_SYS_ADMIN) to restrict. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    syscall(SYS_landlock_restrict_self, fd, 0) != 0) {
		close(fd);
		return 0;
	}
	close(fd);
	return layers;
}
