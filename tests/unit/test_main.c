/* SPDX-License-Identifier: MIT */
/* test_main.c: runs the unit tests listed in unit.h and prints the tally. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "unit.h"
#include "../../cgi/banned.h"

static const struct unit_test {
	const char *name;
	void (*fn)(void);
} tests[] = {
#define UNIT_ENTRY(name) { #name, test_##name },
	UNIT_TESTS(UNIT_ENTRY)
#undef UNIT_ENTRY
};
#define NTESTS (sizeof(tests) / sizeof(tests[0]))

/* A test that blocks (a read that should have timed out) fails the run
 * instead of hanging it. */
#define TEST_TIMEOUT_S 60

static const char *current;
static unsigned long current_failures;

static void on_alarm(int sig)
{
	static const char msg[] = ": timed out; the run is abandoned\n";
	const char *name = current ? current : "?";
	ssize_t n;

	(void)sig;
	n = write(STDOUT_FILENO, name, strlen(name));
	n = write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	(void)n;
	_exit(3);
}

char *unit_exact(const void *s, size_t n)
{
	char *p = malloc(n ? n : 1);

	if (!p) {
		perror("malloc");
		exit(2);
	}
	memcpy(p, s, n);
	return p;
}

void unit_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	current_failures++;
	printf("%s:%d: %s: ", file, line, current ? current : "?");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

void unit_check_str(const char *file, int line, const char *expr,
		    const char *got, const char *want)
{
	if (got == want || (got && want && strcmp(got, want) == 0))
		return;
	unit_fail(file, line, "%s is \"%s\", expected \"%s\"", expr,
		  got ? got : "(null)", want ? want : "(null)");
}

void unit_check_contains(const char *file, int line, const char *expr,
			 const char *hay, const char *needle)
{
	if (hay && strstr(hay, needle))
		return;
	unit_fail(file, line, "%s is \"%s\", expected it to contain \"%s\"",
		  expr, hay ? hay : "(null)", needle);
}

static int selected(const char *name, int argc, char **argv)
{
	if (argc < 2)
		return 1;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return 1;
	return 0;
}

/* unit-tests [NAME...]: runs every test, or only those named. */
int main(int argc, char **argv)
{
	unsigned passed = 0, failed = 0;

	for (int i = 1; i < argc; i++) {
		size_t k;
		for (k = 0; k < NTESTS; k++)
			if (strcmp(argv[i], tests[k].name) == 0)
				break;
		if (k == NTESTS) {
			fprintf(stderr, "unit-tests: no test named %s\n",
				argv[i]);
			return 2;
		}
	}
	signal(SIGALRM, on_alarm);
	for (size_t i = 0; i < NTESTS; i++) {
		if (!selected(tests[i].name, argc, argv))
			continue;
		current = tests[i].name;
		current_failures = 0;
		fflush(stdout);
		alarm(TEST_TIMEOUT_S);
		tests[i].fn();
		alarm(0);
		if (current_failures)
			failed++;
		else
			passed++;
	}
	current = NULL;
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
