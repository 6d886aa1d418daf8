/* SPDX-License-Identifier: MIT */
/*
 * floor-fcgi.c: the FastCGI floor of the benchmark. A FastCGI responder
 * (Debian's libfcgi, as pyexec-fcgi uses) that reads each request's body
 * and answers floor.c's fixed body: what the web server and the FastCGI
 * round trip cost with no work at all. Started by lighttpd (bin-path).
 */
#include <stdio.h>
#include <string.h>
#include <fcgiapp.h>

int main(void)
{
	static const char body[] =
		"{\"success\": true, \"output\": \"Hello from Python!\\n15\\n\", "
		"\"error\": null}";
	char head[128], buf[65536];
	FCGX_Request r;

	if (FCGX_Init() != 0 || FCGX_InitRequest(&r, 0, 0) != 0)
		return 1;
	snprintf(head, sizeof(head), "Status: 200 OK\r\nContent-Type: "
		 "application/json\r\nContent-Length: %zu\r\n\r\n",
		 sizeof(body) - 1);
	while (FCGX_Accept_r(&r) >= 0) {
		while (FCGX_GetStr(buf, sizeof(buf), r.in) > 0)
			;
		FCGX_PutStr(head, (int)strlen(head), r.out);
		FCGX_PutStr(body, (int)sizeof(body) - 1, r.out);
		FCGX_Finish_r(&r);
	}
	return 0;
}
