/* SPDX-License-Identifier: MIT */
/*
 * fcgi_probe.c: a FastCGI client of one request, for pyexec-admin doctor
 * --fcgi. The request is /metrics without a token: pyexec-fcgi answers it
 * through its whole request path (the FastCGI library, the request flow,
 * the database's users) with a 401, and neither runs code nor writes an
 * audit row for it.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "fcgi_probe.h"
#include "../cgi/banned.h"

#define PROBE_MS 10000
#define ANSWER_MAX 16384
enum { BEGIN = 1, END = 3, PARAMS = 4, STDIN = 5, STDOUT = 6 };

static int connect_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int connect_tcp(const char *addr)
{
	const char *colon = strrchr(addr, ':');
	char host[256];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	int fd = -1;

	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	if (getaddrinfo(*host ? host : "127.0.0.1", colon + 1, &hints, &ai) != 0) {
		errno = EINVAL;
		return -1;
	}
	for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	return fd;
}

/* One record: header, content, no padding (none is required). */
static size_t record(unsigned char *out, int type, const void *p, size_t n)
{
	out[0] = 1;
	out[1] = (unsigned char)type;
	out[2] = 0;
	out[3] = 1;		/* request id 1 */
	out[4] = (unsigned char)(n >> 8);
	out[5] = (unsigned char)n;
	out[6] = out[7] = 0;
	memcpy(out + 8, p, n);
	return 8 + n;
}

static size_t param(unsigned char *out, const char *name, const char *value)
{
	size_t n = strlen(name), v = strlen(value);

	out[0] = (unsigned char)n;	/* both shorter than 128 */
	out[1] = (unsigned char)v;
	memcpy(out + 2, name, n);
	memcpy(out + 2 + n, value, v);
	return 2 + n + v;
}

static int send_request(int fd)
{
	static const unsigned char begin[8] = { 0, 1 };	/* responder */
	unsigned char params[256], msg[512];
	size_t np = 0, n = 0;

	np += param(params + np, "REQUEST_METHOD", "GET");
	np += param(params + np, "REQUEST_URI", "/metrics");
	np += param(params + np, "GATEWAY_INTERFACE", "CGI/1.1");
	np += param(params + np, "SERVER_PROTOCOL", "HTTP/1.1");
	n += record(msg + n, BEGIN, begin, sizeof(begin));
	n += record(msg + n, PARAMS, params, np);
	n += record(msg + n, PARAMS, "", 0);
	n += record(msg + n, STDIN, "", 0);
	return write(fd, msg, n) == (ssize_t)n ? 0 : -1;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Everything until the server closes, at most ANSWER_MAX bytes. */
static ssize_t read_all(int fd, unsigned char *buf, size_t cap)
{
	long deadline = now_ms() + PROBE_MS;
	size_t got = 0;

	while (got < cap) {
		struct pollfd p = { fd, POLLIN, 0 };
		long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return -1;
		n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* The status of the CGI headers in the STDOUT records of buf. */
static int status_of(const unsigned char *buf, size_t len)
{
	char out[ANSWER_MAX + 1];
	size_t used = 0, pos = 0;
	const char *s;

	while (pos + 8 <= len) {
		size_t n = (size_t)buf[pos + 4] << 8 | buf[pos + 5];
		size_t pad = buf[pos + 6];

		if (pos + 8 + n > len)
			break;
		if (buf[pos + 1] == STDOUT && used + n <= ANSWER_MAX) {
			memcpy(out + used, buf + pos + 8, n);
			used += n;
		}
		pos += 8 + n + pad;
	}
	out[used] = 0;
	s = strncmp(out, "Status: ", 8) == 0 ? out + 8 : NULL;
	if (!s || s[0] < '1' || s[0] > '5' || s[1] < '0' || s[1] > '9' ||
	    s[2] < '0' || s[2] > '9')
		return -1;
	return (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
}

int fcgi_probe(const char *addr, char *why, size_t len)
{
	static unsigned char buf[ANSWER_MAX];
	int fd = strchr(addr, ':') ? connect_tcp(addr) : connect_unix(addr);
	ssize_t n;
	int status;

	if (fd < 0) {
		snprintf(why, len, "cannot connect to %s: %s", addr,
			 strerror(errno));
		return -1;
	}
	if (send_request(fd) != 0 || (n = read_all(fd, buf, sizeof(buf))) < 0) {
		snprintf(why, len, "%s did not answer within %d s", addr,
			 PROBE_MS / 1000);
		close(fd);
		return -1;
	}
	close(fd);
	status = status_of(buf, (size_t)n);
	if (status < 0)
		snprintf(why, len, "%s answered, but not as pyexec-fcgi does",
			 addr);
	return status;
}
