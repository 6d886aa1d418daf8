/* SPDX-License-Identifier: MIT */
/* slots.c: the concurrency cap, as byte-range locks (see slots.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include "slots.h"
#include "banned.h"

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

int slots_acquire(const char *db_path, long max, long wait_ms)
{
	char path[4096];
	struct timespec pause = { 0, 10 * 1000000 };
	long waited = 0;
	int fd, rc;

	if (snprintf(path, sizeof(path), "%s.slots", db_path) >= (int)sizeof(path))
		return -2;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0660);
	if (fd < 0)
		return -2;
	while ((rc = try_all(fd, max)) == -1 && waited < wait_ms) {
		nanosleep(&pause, NULL);
		waited += 10;
	}
	if (rc != 0) {
		close(fd);
		return rc;
	}
	return fd;
}
