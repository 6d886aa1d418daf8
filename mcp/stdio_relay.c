/* SPDX-License-Identifier: MIT */
/*
 * stdio_relay.c: one message at a time. The line goes to pyexec.cgi as its
 * body (from a memfd: the CGI may answer before it reads, as for a refusal
 * by length), with the CGI environment of a POST to /mcp; the answer's
 * body, one JSON text with no raw newline, goes out as one line. A 202
 * (notification, response) has no body and nothing goes out.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "stdio_relay.h"
#include "../cgi/mcp.h"
#include "../cgi/banned.h"

extern char **environ;

static int token_ok(const char *t, size_t n)
{
	if (n == 0 || n > RELAY_TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return 0;
	return 1;
}

static int read_token_file(const char *path, char *out, size_t n)
{
	FILE *f = fopen(path, "re");
	size_t k;

	if (!f) {
		fprintf(stderr, "pyexec-mcp: token file %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	k = fread(out, 1, n - 1, f);
	fclose(f);
	out[k] = 0;
	out[strcspn(out, "\r\n")] = 0;	/* the first line */
	return 0;
}

int relay_token(struct relay *r, const char *token_file)
{
	char buf[RELAY_TOKEN_MAX + 2] = "";
	const char *t = getenv("PYEXEC_TOKEN");

	if (t && *t)
		snprintf(buf, sizeof(buf), "%s", strlen(t) <= RELAY_TOKEN_MAX ?
			 t : "");
	else if (token_file && read_token_file(token_file, buf, sizeof(buf)) != 0)
		return -1;
	else if (!token_file)
		return 0;	/* the local user's identity */
	if (!token_ok(buf, strlen(buf))) {
		fprintf(stderr, "pyexec-mcp: the token (PYEXEC_TOKEN or the "
			"token file) is empty, too long or has spaces\n");
		return -1;
	}
	snprintf(r->auth, sizeof(r->auth), "Bearer %s", buf);
	return 0;
}

/* One line of stdin into r->line (NUL-terminated, newline dropped).
 * Returns its length, -1 at the end, -2 for a line over RELAY_LINE_MAX
 * (read to its end and dropped). */
static long read_line(struct relay *r)
{
	size_t n = 0;
	int c, over = 0;

	while ((c = getchar()) != EOF && c != '\n') {
		if (n + 1 >= r->cap && !over) {
			size_t cap = r->cap ? r->cap * 2 : 65536;
			char *p = cap <= (size_t)RELAY_LINE_MAX + 1 ?
				  realloc(r->line, cap) : NULL;
			if (!p) {
				over = 1;
				continue;
			}
			r->line = p;
			r->cap = cap;
		}
		if (!over)
			r->line[n++] = (char)c;
	}
	if (c == EOF && n == 0 && !over)
		return -1;
	if (over)
		return -2;
	r->line[n] = 0;
	return (long)n;
}

static int write_line(const char *s, size_t n)
{
	if (fwrite(s, 1, n, stdout) != n || fputc('\n', stdout) == EOF ||
	    fflush(stdout) != 0)
		return -1;
	return 0;
}

/* An error of our own, for a message pyexec.cgi did not answer. */
static int own_error(const char *id, int code, const char *msg)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "{\"jsonrpc\": \"2.0\", \"id\": %s, "
			 "\"error\": {\"code\": %d, \"message\": \"%s\"}}",
			 id, code, msg);

	return write_line(buf, (size_t)n < sizeof(buf) ? (size_t)n : 0);
}

/* The message's id as sent, or "null"; "" for a notification. */
static void message_id(const char *s, size_t n, char *out, size_t cap)
{
	cJSON *root = cJSON_ParseWithLength(s, n);
	const char *v;
	size_t vn;

	snprintf(out, cap, "null");
	if (cJSON_IsObject(root) && !cJSON_GetObjectItem(root, "id"))
		out[0] = 0;
	else if (cJSON_IsObject(root) && json_member(s, n, "id", &v, &vn) == 0 &&
		 vn < cap && (cJSON_IsNumber(cJSON_GetObjectItem(root, "id")) ||
			      cJSON_IsString(cJSON_GetObjectItem(root, "id"))))
		snprintf(out, cap, "%.*s", (int)vn, v);
	cJSON_Delete(root);
}

static int body_fd(const char *s, size_t n)
{
	int fd = memfd_create("pyexec-mcp-body", MFD_CLOEXEC);
	size_t off = 0;

	if (fd < 0)
		return -1;
	while (off < n) {
		ssize_t k = write(fd, s + off, n - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)k;
	}
	if (lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The CGI's environment: ours minus what could misroute or misidentify the
 * request, plus the request's. */
static char **cgi_env(const struct relay *r, size_t len, char *lenbuf,
		      size_t lencap, char *authbuf, size_t authcap)
{
	static const char *const drop[] = {
		"GATEWAY_INTERFACE=", "REQUEST_METHOD=", "CONTENT_TYPE=",
		"CONTENT_LENGTH=", "PATH_INFO=", "REQUEST_URI=", "HTTP_",
		"REMOTE_ADDR=", "PYEXEC_TOKEN", "PYEXEC_MCP_STDIO=",
	};
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 8, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		size_t d;
		for (d = 0; d < sizeof(drop) / sizeof(drop[0]); d++)
			if (strncmp(environ[i], drop[d], strlen(drop[d])) == 0)
				break;
		if (d == sizeof(drop) / sizeof(drop[0]))
			env[k++] = environ[i];
	}
	snprintf(lenbuf, lencap, "CONTENT_LENGTH=%zu", len);
	env[k++] = "REQUEST_METHOD=POST";
	env[k++] = "CONTENT_TYPE=application/json";
	env[k++] = lenbuf;
	env[k++] = "PATH_INFO=/mcp";
	env[k++] = "PYEXEC_MCP_STDIO=1";
	if (r->auth[0]) {
		snprintf(authbuf, authcap, "HTTP_AUTHORIZATION=%s", r->auth);
		env[k++] = authbuf;
	}
	env[k] = NULL;
	return env;
}

static pid_t start_cgi(const struct relay *r, int in, int out, size_t len)
{
	char lenbuf[64], authbuf[sizeof(r->auth) + 32];
	char **env = cgi_env(r, len, lenbuf, sizeof(lenbuf), authbuf,
			     sizeof(authbuf));
	pid_t pid;

	if (!env)
		return -1;
	pid = fork();
	if (pid == 0) {
		char *argv[] = { (char *)r->cgi, NULL };
		if (dup2(in, 0) < 0 || dup2(out, 1) < 0)
			_exit(127);
		execve(r->cgi, argv, env);
		_exit(127);
	}
	free(env);
	return pid;
}

/* All of the CGI's stdout, until it closes it. */
static char *read_all(int fd, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);

	while (buf) {
		ssize_t k;
		if (n == cap) {
			char *p = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
			if (!p)
				break;
			buf = p;
			cap *= 2;
		}
		k = read(fd, buf + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			*len = n;
			return buf;
		}
		n += (size_t)k;
	}
	free(buf);
	return NULL;
}

/* The CGI's answer: the body after the headers, newlines trimmed. */
static int relay_answer(const char *out, size_t n, const char *id)
{
	const char *body = memmem(out, n, "\n\n", 2);
	size_t bn;

	if (!body)
		return id[0] ? own_error(id, -32603, "pyexec.cgi gave no answer "
					 "(see the log on stderr)") : 0;
	body += 2;
	bn = n - (size_t)(body - out);
	while (bn > 0 && (body[bn - 1] == '\n' || body[bn - 1] == '\r'))
		bn--;
	if (bn == 0)
		return 0;	/* 202: nothing to say */
	if (memchr(body, '\n', bn))
		return id[0] ? own_error(id, -32603, "pyexec.cgi's answer is "
					 "not one line") : 0;
	return write_line(body, bn);
}

static int one_message(struct relay *r, const char *s, size_t n)
{
	char id[128];
	int in, p[2], st = 0, rc;
	size_t olen = 0;
	char *out;
	pid_t pid;

	message_id(s, n, id, sizeof(id));
	if ((in = body_fd(s, n)) < 0 || pipe2(p, O_CLOEXEC) != 0) {
		fprintf(stderr, "pyexec-mcp: %s\n", strerror(errno));
		if (in >= 0)
			close(in);
		return id[0] ? own_error(id, -32603, "out of resources") : 0;
	}
	pid = start_cgi(r, in, p[1], n);
	close(in);
	close(p[1]);
	*r->child_pid = pid;
	out = pid > 0 ? read_all(p[0], &olen) : NULL;
	close(p[0]);
	while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	*r->child_pid = 0;
	if (pid > 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		fprintf(stderr, "pyexec-mcp: %s ended with status %d\n", r->cgi,
			WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	rc = relay_answer(out ? out : "", olen, id);
	free(out);
	return rc;
}

int relay_loop(struct relay *r)
{
	long n;

	while (!*r->stopping && (n = read_line(r)) != -1) {
		if (n == -2) {
			if (own_error("null", -32600, "message over the 16 MiB "
				      "line limit") != 0)
				return 1;
			continue;
		}
		if (n == 0 || (n == 1 && r->line[0] == '\r'))
			continue;
		if (one_message(r, r->line, (size_t)n) != 0)
			return 1;
	}
	return 0;
}

void relay_release(struct relay *r)
{
	free(r->line);
	r->line = NULL;
}
