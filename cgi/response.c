/* SPDX-License-Identifier: MIT */
/* response.c: CGI headers and the JSON body, written once, to stdout. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include "response.h"
#include "jsonw.h"
#include "banned.h"

static void write_all(const char *s, size_t n)
{
	while (n > 0) {
		ssize_t k = write(STDOUT_FILENO, s, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;	/* the client is gone: nothing left to tell */
		s += k;
		n -= (size_t)k;
	}
}

void reply_header(struct reply *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(r->headers + r->hlen, sizeof(r->headers) - r->hlen, fmt, ap);
	va_end(ap);
	/* A header that does not fit is dropped whole, never cut. */
	if (n < 0 || (size_t)n + 1 >= sizeof(r->headers) - r->hlen) {
		r->headers[r->hlen] = 0;
		return;
	}
	r->hlen += (size_t)n;
	r->headers[r->hlen++] = '\n';
	r->headers[r->hlen] = 0;
}

static void write_response(int status, const struct reply *r,
			   const char *body, size_t len)
{
	char head[1024];
	int n;

	n = snprintf(head, sizeof(head),
		     "Status: %d %s\n"
		     "Content-Type: application/json\n"
		     "Cache-Control: no-store\n"
		     "X-Content-Type-Options: nosniff\n"
		     "X-Request-Id: %s\n"
		     "%s"
		     "Content-Length: %zu\n\n",
		     status, http_reason(status), r->run_id, r->headers, len);
	if (n > 0 && (size_t)n < sizeof(head))
		write_all(head, (size_t)n);
	write_all(body, len);
}

static const char oom_body[] =
	"{\"success\": false, \"output\": \"\", \"error\": "
	"\"out of memory\", \"execution_time_ms\": 0, "
	"\"error_type\": \"InternalError\"}\n";

static void emit(int status, const struct reply *r, struct jw *w)
{
	size_t len = 0;
	const char *body = jw_finish(w, &len);

	if (body)
		write_response(status, r, body, len);
	else
		write_response(500, r, oom_body, sizeof(oom_body) - 1);
	jw_release(w);
}

void refusal_object(const struct http_error *e, const struct reply *r,
		    struct jw *w)
{
	jw_begin(w);
	jw_bool(w, "success", 0);
	jw_str(w, "output", "", 0);
	jw_cstr(w, "error", e->msg);
	jw_ms(w, "execution_time_ms", 0);
	jw_cstr(w, "error_type", e->type);
	jw_cstr(w, "run_id", r->run_id);
}

void respond_refusal(const struct http_error *e, const struct reply *r)
{
	struct jw w;

	refusal_object(e, r, &w);
	emit(e->status, r, &w);
}

void respond_raw(int status, const struct reply *r, struct jw *w)
{
	if (w->failed)
		write_response(500, r, oom_body, sizeof(oom_body) - 1);
	else
		write_response(status, r, w->buf ? w->buf : "", w->len);
	jw_release(w);
}

int result_status(const struct sb_result *res)
{
	if (res->outcome == SB_CANCELLED)
		return 499;	/* nginx's "client closed request": none sent */
	return res->outcome == SB_INTERNAL ? 500 : 200;
}

void result_object(const struct sb_result *r, const struct reply *rep,
		   struct jw *w)
{
	char layers[256];

	jw_begin(w);
	jw_bool(w, "success", r->outcome == SB_OK);
	jw_str(w, "output", r->output ? r->output : "", r->output_len);
	jw_cstr(w, "error", r->outcome == SB_OK ? NULL : r->error);
	jw_ms(w, "execution_time_ms", r->exec_ms);
	jw_cstr(w, "error_type", r->outcome == SB_OK ? NULL : r->error_type);
	jw_bool(w, "truncated", r->truncated);
	jw_long(w, "cpu_time_ms", r->cpu_ms);
	jw_long(w, "peak_memory_kb", r->peak_kb);
	sb_layers_describe(r->layers, r->landlock_abi, layers, sizeof(layers));
	jw_cstr(w, "sandbox", layers);
	jw_cstr(w, "modules", rep->profile);
	jw_cstr(w, "run_id", rep->run_id);
}

void respond_result(const struct sb_result *r, const struct reply *rep)
{
	struct jw w;

	result_object(r, rep, &w);
	emit(result_status(r), rep, &w);
}

void respond_text(const char *content_type, const char *body, size_t len,
		  int head_only, const struct reply *r)
{
	char head[1024];
	int n = snprintf(head, sizeof(head),
			 "Status: 200 OK\n"
			 "Content-Type: %s\n"
			 "Cache-Control: no-store\n"
			 "X-Content-Type-Options: nosniff\n"
			 "X-Request-Id: %s\n"
			 "%s"
			 "Content-Length: %zu\n\n",
			 content_type, r->run_id, r->headers, len);

	if (n > 0 && (size_t)n < sizeof(head))
		write_all(head, (size_t)n);
	if (!head_only)
		write_all(body, len);
}
