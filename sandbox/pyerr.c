/* SPDX-License-Identifier: MIT */
/*
 * pyerr.c: formats an uncaught exception the way Python prints it, limited
 * to the program's own frames (File "<code>", line N, with the source
 * line). Written in C against the traceback and frame structures so that
 * formatting triggers no audit event and imports nothing after lockdown.
 * The output goes into one static buffer of RESULT_MESSAGE_MAX bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <stdarg.h>
#include <string.h>
#include "pyerr.h"
#include "../cgi/limits.h"
#include "../cgi/banned.h"

static char buf[RESULT_MESSAGE_MAX];
static size_t used;

static void put(const char *s, size_t n)
{
	if (n > sizeof(buf) - used)
		n = sizeof(buf) - used;
	memcpy(buf + used, s, n);
	used += n;
}

static void putf(const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Line lineno (from 1) of src, without its indentation and newline. */
static void source_line(const char *src, size_t len, long lineno,
			const char **start, size_t *n)
{
	const char *p = src, *end = src + len, *nl;

	*start = NULL;
	*n = 0;
	for (long i = 1; i < lineno && p < end; i++) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			return;
		p = nl + 1;
	}
	if (lineno < 1 || p >= end)
		return;
	nl = memchr(p, '\n', (size_t)(end - p));
	if (!nl)
		nl = end;
	while (p < nl && (*p == ' ' || *p == '\t' || *p == '\f'))
		p++;
	while (nl > p && (nl[-1] == '\r' || nl[-1] == ' ' || nl[-1] == '\t'))
		nl--;
	*start = p;
	*n = (size_t)(nl - p);
}

static void put_source(const char *src, size_t len, long lineno)
{
	const char *s;
	size_t n;

	source_line(src, len, lineno, &s, &n);
	if (s && n) {
		put("    ", 4);
		put(s, n);
		put("\n", 1);
	}
}

static int is_program(PyCodeObject *code)
{
	return PyUnicode_Check(code->co_filename) &&
	       PyUnicode_CompareWithASCIIString(code->co_filename, "<code>") == 0;
}

/* Python's own rule: after three identical entries, count the rest. */
#define REPEAT_SHOWN 3

struct tb_state {
	int header;
	long last_line;
	PyObject *last_code;	/* identity only, never dereferenced */
	long repeats;
};

static void flush_repeats(struct tb_state *st)
{
	if (st->repeats > REPEAT_SHOWN)
		putf("  [Previous line repeated %ld more time%s]\n",
		     st->repeats - REPEAT_SHOWN,
		     st->repeats - REPEAT_SHOWN > 1 ? "s" : "");
	st->repeats = 0;
}

static void put_entry(struct tb_state *st, PyCodeObject *code, long lineno,
		      const char *src, size_t len)
{
	if ((PyObject *)code == st->last_code && lineno == st->last_line) {
		if (++st->repeats >= REPEAT_SHOWN)
			return;
	} else {
		flush_repeats(st);
		st->last_code = (PyObject *)code;
		st->last_line = lineno;
	}
	if (!st->header++)
		putf("Traceback (most recent call last):\n");
	putf("  File \"<code>\", line %ld, in %s\n", lineno,
	     PyUnicode_AsUTF8(code->co_name) ?: "?");
	PyErr_Clear();
	put_source(src, len, lineno);
}

static void put_traceback(PyObject *tb, const char *src, size_t len)
{
	struct tb_state st = { 0, -1, NULL, 0 };

	for (; tb && PyTraceBack_Check(tb);
	     tb = (PyObject *)((PyTracebackObject *)tb)->tb_next) {
		PyFrameObject *f = ((PyTracebackObject *)tb)->tb_frame;
		PyCodeObject *code = f ? PyFrame_GetCode(f) : NULL;
		PyObject *ln;
		long lineno = -1;

		if (!code)
			continue;
		if (is_program(code)) {
			ln = PyObject_GetAttrString(tb, "tb_lineno");
			if (ln)
				lineno = PyLong_AsLong(ln);
			Py_XDECREF(ln);
			PyErr_Clear();
			put_entry(&st, code, lineno, src, len);
		}
		Py_DECREF(code);
	}
	flush_repeats(&st);
}

/* "SyntaxError: msg" preceded by the place and a caret, as Python does. */
static void put_syntax(PyObject *v, const char *src, size_t len)
{
	PyObject *lo = PyObject_GetAttrString(v, "lineno");
	PyObject *off = PyObject_GetAttrString(v, "offset");
	PyObject *eoff = PyObject_GetAttrString(v, "end_offset");
	long lineno = lo && PyLong_Check(lo) ? PyLong_AsLong(lo) : -1;
	long o = off && PyLong_Check(off) ? PyLong_AsLong(off) : -1;
	long eo = eoff && PyLong_Check(eoff) ? PyLong_AsLong(eoff) : -1;
	const char *s, *raw;
	size_t n;

	Py_XDECREF(lo);
	Py_XDECREF(off);
	Py_XDECREF(eoff);
	PyErr_Clear();
	if (lineno < 1)
		return;
	putf("  File \"<code>\", line %ld\n", lineno);
	source_line(src, len, lineno, &s, &n);
	if (!s || !n)
		return;
	/* As traceback.py: only spaces and form feeds are stripped; a tab
	 * stays, in the line and in the caret line, so the caret lines up. */
	raw = s;
	while (raw > src && raw[-1] != '\n')
		raw--;
	n += (size_t)(s - raw);
	s = raw;
	while (n && (*s == ' ' || *s == '\f')) {
		s++;
		n--;
	}
	put("    ", 4);
	put(s, n);
	put("\n", 1);
	/* offset counts characters from 1 in the unstripped line. */
	o -= (long)(s - raw);
	eo -= (long)(s - raw);
	if (o < 1 || o > (long)n + 1)
		return;
	put("    ", 4);
	for (size_t b = 0, col = 1; b < n && (long)col < o; b++) {
		if (((unsigned char)s[b] & 0xC0) == 0x80)
			continue;	/* inside a character */
		put(s[b] == '\t' || s[b] == '\f' ? &s[b] : " ", 1);
		col++;
	}
	for (long i = o; i < (eo > o ? eo : o + 1) && i <= (long)n + 1; i++)
		put("^", 1);
	put("\n", 1);
}

static void put_name(PyObject *t)
{
	PyObject *mod = PyObject_GetAttrString(t, "__module__");
	const char *m = mod && PyUnicode_Check(mod) ? PyUnicode_AsUTF8(mod) : NULL;

	if (m && strcmp(m, "builtins") != 0 && strcmp(m, "__main__") != 0)
		putf("%s.", m);
	Py_XDECREF(mod);
	PyErr_Clear();
	putf("%s", ((PyTypeObject *)t)->tp_name);
}

static void put_message(PyObject *v)
{
	PyObject *s = v ? PyObject_Str(v) : NULL;
	const char *m;
	Py_ssize_t n = 0;

	if (!s) {
		PyErr_Clear();
		put(": <str() of the exception failed>\n", 35);
		return;
	}
	m = PyUnicode_AsUTF8AndSize(s, &n);
	if (m && n > 0) {
		put(": ", 2);
		put(m, (size_t)n);
	}
	put("\n", 1);
	Py_DECREF(s);
	PyErr_Clear();
}

/* The names the broker and the log give a meaning of their own (an
 * outcome, a refusal): a class the program defines with one of them is
 * reported qualified by its module ("__main__.MemoryError"), so that only
 * the interpreter's own classes (static types) carry them. */
static int reserved_name(const char *name)
{
	static const char *const names[] = {
		"MemoryError", "SecurityViolation", "TimeoutError",
		"OutputLimitExceeded", "InternalError", "Crash", "Cancelled",
		"SystemExit", "RateLimited",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return 1;
	return 0;
}

static void short_name(char *dst, size_t cap, PyObject *t)
{
	const char *full = ((PyTypeObject *)t)->tp_name;
	const char *dot = strrchr(full, '.');
	const char *name = dot ? dot + 1 : full;
	PyObject *mod;
	const char *m;

	if (!(((PyTypeObject *)t)->tp_flags & Py_TPFLAGS_HEAPTYPE) ||
	    !reserved_name(name)) {
		snprintf(dst, cap, "%s", name);
		return;
	}
	mod = PyObject_GetAttrString(t, "__module__");
	m = mod && PyUnicode_Check(mod) ? PyUnicode_AsUTF8(mod) : NULL;
	snprintf(dst, cap, "%.40s.%s", m && m[0] ? m : "?", name);
	Py_XDECREF(mod);
	PyErr_Clear();
}

void pyerr_format(struct pyerr *e, const char *src, size_t srclen)
{
	PyObject *t, *v, *tb;

	used = 0;
	PyErr_Fetch(&t, &v, &tb);
	PyErr_NormalizeException(&t, &v, &tb);
	if (!t) {
		snprintf(e->type, sizeof(e->type), "SystemError");
		put("SystemError: error without an exception\n", 40);
	} else {
		short_name(e->type, sizeof(e->type), t);
		if (PyErr_GivenExceptionMatches(t, PyExc_SyntaxError)) {
			put_syntax(v, src, srclen);
			put_name(t);
			PyObject *msg = PyObject_GetAttrString(v, "msg");
			put_message(msg && PyUnicode_Check(msg) ? msg : v);
			Py_XDECREF(msg);
		} else {
			put_traceback(tb, src, srclen);
			put_name(t);
			put_message(v);
		}
	}
	PyErr_Clear();
	Py_XDECREF(t);
	Py_XDECREF(v);
	Py_XDECREF(tb);
	if (used && buf[used - 1] == '\n')
		used--;
	e->text = buf;
	e->len = used;
}

int pyerr_exit_ok(void)
{
	PyObject *t, *v, *tb, *code;
	int ok;

	PyErr_Fetch(&t, &v, &tb);
	PyErr_NormalizeException(&t, &v, &tb);
	code = v ? PyObject_GetAttrString(v, "code") : NULL;
	ok = code && (code == Py_None ||
		      (PyLong_CheckExact(code) && PyLong_AsLong(code) == 0));
	Py_XDECREF(code);
	PyErr_Clear();
	if (ok) {
		Py_XDECREF(t);
		Py_XDECREF(v);
		Py_XDECREF(tb);
		return 1;
	}
	PyErr_Restore(t, v, tb);
	return 0;
}
