/* SPDX-License-Identifier: MIT */
/* slots.c: the concurrency cap, as byte-range locks (see slots.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cancel.h"
#include "slots.h"
#include "banned.h"

/* Where the identities' regions start: far past the host's slots. */
#define IDENTITY_BASE ((off_t)1 << 40)
#define IDENTITY_STRIDE 4096	/* at least the largest per-identity cap */

/* FNV-1a, 64 bits, cut to 40: the region of key. */
static off_t region_of(const char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	return IDENTITY_BASE + (off_t)(h & ((1ULL << 40) - 1)) * IDENTITY_STRIDE;
}

/* One byte of [base, base + n) locked: 0, -1 all taken, -2 error. */
static int try_range(int fd, off_t base, long n, long first)
{
	for (long k = 0; k < n; k++) {
		struct flock fl = {
			.l_type = F_WRLCK, .l_whence = SEEK_SET,
			.l_start = base + (first + k) % n, .l_len = 1,
		};
		if (fcntl(fd, F_SETLK, &fl) == 0)
			return 0;
		if (errno != EACCES && errno != EAGAIN)
			return -2;
	}
	return -1;
}

static int try_all(int fd, long max)
{
	/* Start at a different slot each time so waiters spread out. */
	long first = (long)(getpid() % (max > 0 ? max : 1));

	for (long k = 0; k < max; k++) {
		struct flock fl = {
			.l_type = F_WRLCK, .l_whence = SEEK_SET,
			.l_start = (first + k) % max, .l_len = 1,
		};
		if (fcntl(fd, F_SETLK, &fl) == 0)
			return 0;
		if (errno != EACCES && errno != EAGAIN)
			return -2;
	}
	return -1;
}

#ifndef PYEXEC_RUN_DIR_DEFAULT
#define PYEXEC_RUN_DIR_DEFAULT "/run/pyexec"
#endif

/* PYEXEC_RUN_DIR; else, for a user's own process with a runtime directory
 * (pyexec-mcp over stdio, say), $XDG_RUNTIME_DIR/pyexec; else /run/pyexec,
 * which a web server's user cannot make: the operator makes it. */
const char *slots_run_dir(void)
{
	static char user_dir[4096];
	const char *d = getenv("PYEXEC_RUN_DIR");
	const char *x = getenv("XDG_RUNTIME_DIR");

	if (d && *d)
		return d;
	if (x && x[0] == '/' && geteuid() != 0 &&
	    snprintf(user_dir, sizeof(user_dir), "%s/pyexec", x) <
	    (int)sizeof(user_dir))
		return user_dir;
	return PYEXEC_RUN_DIR_DEFAULT;
}

int slots_acquire(const char *run_dir, long max, long wait_ms)
{
	return slots_acquire_for(run_dir, max, NULL, 0, wait_ms);
}

/* The identity's slot (when there is a key), then the host's. An identity
 * slot held while the host is full is kept: waiting counts too. */
static int try_both(int fd, long max, const char *key, long per_identity,
		    int *have_own)
{
	int rc;

	if (key && !*have_own) {
		rc = try_range(fd, region_of(key), per_identity,
			       (long)(getpid() % per_identity));
		if (rc == -1)
			return SLOTS_IDENTITY_FULL;
		if (rc != 0)
			return rc;
		*have_own = 1;
	}
	return try_all(fd, max);
}

int slots_acquire_for(const char *run_dir, long max, const char *key,
		      long per_identity, long wait_ms)
{
	char path[4096];
	struct timespec pause = { 0, 10 * 1000000 };
	long waited = 0;
	int fd, rc, have_own = 0;

	if (per_identity < 1 || per_identity > IDENTITY_STRIDE)
		key = NULL;
	if (snprintf(path, sizeof(path), "%s/slots", run_dir) >= (int)sizeof(path))
		return -2;
	if (mkdir(run_dir, 0770) != 0 && errno != EEXIST)
		return -2;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0660);
	if (fd < 0)
		return -2;
	while ((rc = try_both(fd, max, key, per_identity, &have_own)) != 0 &&
	       rc != -2 && waited < wait_ms) {
		if (cancel_signal()) {
			rc = SLOTS_CANCELLED;
			break;
		}
		/* A signal cuts the pause short; the check above sees it. */
		nanosleep(&pause, NULL);
		waited += 10;
	}
	if (rc != 0) {
		close(fd);
		return rc;
	}
	return fd;
}
