/* SPDX-License-Identifier: MIT */
/*
 * floor.c: the process floor of the benchmark. A CGI that reads its body
 * (as every CGI must) and prints a fixed answer: what exec, the dynamic
 * loader and a process's exit cost with no interpreter at all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
	static const char body[] =
		"{\"success\": true, \"output\": \"Hello from Python!\\n15\\n\", "
		"\"error\": null}";
	const char *cl = getenv("CONTENT_LENGTH");
	long left = cl ? strtol(cl, NULL, 10) : 0;
	char buf[65536];

	while (left > 0) {
		ssize_t n = read(0, buf, sizeof(buf));
		if (n <= 0)
			break;
		left -= n;
	}
	printf("Status: 200 OK\r\nContent-Type: application/json\r\n"
	       "Content-Length: %zu\r\n\r\n%s", sizeof(body) - 1, body);
	return 0;
}
