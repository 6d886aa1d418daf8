/* SPDX-License-Identifier: MIT */
/*
 * launch.c: runs one request's command for bench.py and reports its cost
 * on stderr as "launch: wall_us=... cpu_us=... maxrss_kb=...". The fork
 * happens here, in a small process, because a process's peak RSS survives
 * exec: forked from the Python driver, every subject would report the
 * driver's 16 MB. Wall time is measured here too, around fork and wait4.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
	struct timespec a, b;
	struct rusage ru;
	int status;
	pid_t pid;

	if (argc < 2)
		return 127;
	clock_gettime(CLOCK_MONOTONIC, &a);
	pid = fork();
	if (pid == 0) {
		execv(argv[1], argv + 1);
		_exit(127);
	}
	if (pid < 0 || wait4(pid, &status, 0, &ru) != pid)
		return 127;
	clock_gettime(CLOCK_MONOTONIC, &b);
	fprintf(stderr, "\nlaunch: wall_us=%ld cpu_us=%ld maxrss_kb=%ld\n",
		(b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000,
		(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000L +
		ru.ru_utime.tv_usec + ru.ru_stime.tv_usec, ru.ru_maxrss);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
