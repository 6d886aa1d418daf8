/* SPDX-License-Identifier: MIT */
/*
 * audit.c: a PEP 578 audit hook, installed before the interpreter starts
 * and armed (audit_lock) just before the program runs. Once armed, an event
 * on the list below ends the run at once: the hook writes a SecurityViolation
 * record naming the event and exits, so the program cannot catch the refusal
 * and carry on.
 *
 * This is detection and a clear message, not the boundary (PEP 578, "Why
 * Not A Sandbox"): whatever gets past it still meets seccomp, Landlock, the
 * namespaces and the rlimits.
 *
 * One refusal is quiet, in every mode but off: opening a pseudo-file such
 * as "<code>". The parser and the warnings machinery try to read the
 * program's source from disk to quote a line; the hook answers with an
 * OSError instead of letting the call reach the kernel (which would trap).
 */
#include <Python.h>
#include <frameobject.h>
#include <string.h>
#include <unistd.h>
#include "internal.h"
#include "../cgi/banned.h"

/* "/usr/lib/python3.11/" as a narrow string. */
#define STDLIB_PREFIX PYEXEC_PYTHON_STDLIB_NARROW "/"

static enum audit_mode mode = AUDIT_OFF;
static unsigned flags;		/* audit_configure */

/* Event names refused once armed; an entry ending in '.' is a prefix. */
static const char *const refused[] = {
	/* the filesystem, processes and the network */
	"open", "os.", "subprocess.", "socket.", "shutil.", "pty.",
	"fcntl.", "mmap.", "glob.", "tempfile.", "_posixsubprocess.",
	"resource.", "signal.", "syslog.", "webbrowser.", "urllib.",
	"http.", "ftplib.", "smtplib.", "poplib.", "imaplib.", "nntplib.",
	"telnetlib.", "sqlite3.", "ensurepip.", "_thread.", "winreg.",
	/* native code */
	"ctypes.", "cpython.",
	/* new code at run time: crafted code objects (exec, compile: see
	 * is_program_call) */
	"code.__new__", "function.__new__",
	"marshal.", "pickle.find_class", "import",
	/* frames, tracebacks and the object graph */
	"object.__getattr__", "sys._current_frames",
	"sys._current_exceptions", "sys.settrace", "sys.setprofile",
	"sys.addaudithook", "sys.excepthook", "sys.unraisablehook",
	"gc.get_objects", "gc.get_referrers", "gc.get_referents",
	"builtins.input", "builtins.breakpoint",
};

static int is_refused(const char *event)
{
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		size_t n = strlen(refused[i]);
		if (refused[i][n - 1] == '.' ? strncmp(event, refused[i], n) == 0
					     : strcmp(event, refused[i]) == 0)
			return 1;
	}
	return 0;
}

/* Swapping a function's code is crafting code by another name. */
static int is_code_swap(const char *event, PyObject *args)
{
	PyObject *name;

	if (strcmp(event, "object.__setattr__") != 0 || !PyTuple_Check(args) ||
	    PyTuple_GET_SIZE(args) < 2)
		return 0;
	name = PyTuple_GET_ITEM(args, 1);
	return PyUnicode_CheckExact(name) &&
	       PyUnicode_CompareWithASCIIString(name, "__code__") == 0;
}

/* Appends the first argument when it is a plain str (never calls repr,
 * which could run the program's code). */
static size_t describe(char *buf, size_t cap, const char *event,
		       PyObject *args)
{
	int n = snprintf(buf, cap, "audit event '%s' refused", event);
	size_t len = n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
	PyObject *a0;
	const char *s;
	Py_ssize_t sl;

	if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) < 1)
		return len;
	a0 = PyTuple_GET_ITEM(args, 0);
	if (!PyUnicode_CheckExact(a0))
		return len;
	s = PyUnicode_AsUTF8AndSize(a0, &sl);
	if (!s) {
		PyErr_Clear();
		return len;
	}
	n = snprintf(buf + len, cap - len, " (%.*s)", sl > 200 ? 200 : (int)sl, s);
	if (n > 0)
		len += (size_t)n >= cap - len ? cap - len - 1 : (size_t)n;
	return len;
}

/*
 * exec, eval, compile and sys._getframe called from the program (or from
 * code it made with them). The standard library uses them itself
 * (namedtuple builds its class with exec and names its module with
 * _getframe), so a call whose Python caller is a stdlib module is let
 * through: whatever comes of it still meets the rest of this list and the
 * kernel.
 *
 * Except, in a profile with typing, where the stdlib evaluates the
 * program's own text: typing's ForwardRef._evaluate (get_type_hints,
 * string annotations) runs eval on a string the program wrote, with
 * builtins the program does not have. Its compile (List["Node"]) is
 * harmless and stays allowed; its eval is the program's. (The seed's
 * profile keeps its behaviour: there typing is loaded only for
 * functools.singledispatch, which evaluates string annotations.)
 */
static int evaluates_program_text(const char *event, const char *fn)
{
	static const char typing_py[] = STDLIB_PREFIX "typing.py";

	return (flags & AUDIT_TYPING_EVAL_REFUSED) &&
	       strcmp(event, "exec") == 0 && strcmp(fn, typing_py) == 0;
}

/* 1 when the Python code that caused event is a stdlib module's (and not
 * one that evaluates the program's text). */
static int stdlib_caller(const char *event)
{
	PyFrameObject *f;
	PyCodeObject *code;
	int stdlib = 0;

	f = PyEval_GetFrame();	/* borrowed */
	code = f ? PyFrame_GetCode(f) : NULL;
	if (code && PyUnicode_Check(code->co_filename)) {
		const char *fn = PyUnicode_AsUTF8(code->co_filename);
		stdlib = fn && strncmp(fn, STDLIB_PREFIX,
				       sizeof(STDLIB_PREFIX) - 1) == 0 &&
			 !evaluates_program_text(event, fn);
		if (!fn)
			PyErr_Clear();
	}
	Py_XDECREF(code);
	return stdlib;
}

static int is_program_call(const char *event)
{
	if (strcmp(event, "exec") != 0 && strcmp(event, "compile") != 0 &&
	    strcmp(event, "sys._getframe") != 0)
		return 0;
	return !stdlib_caller(event);
}

/*
 * A restricted attribute read by the stdlib on the program's behalf
 * (object.__getattr__ with a stdlib caller), in a profile with dataclasses
 * (the seed's refuses it, as it always has). dataclasses names a class by
 * its signature, which inspect reads from __init__'s __code__,
 * __defaults__ and __kwdefaults__: those reads are let through. A code
 * object in hand is inert here: building one (code.__new__, replace),
 * making a function of it (function.__new__), swapping it in (__code__
 * assignment) or running it (exec) are refused.
 * Any other restricted attribute (a traceback's or a generator's frame)
 * fails with a TypeError and nothing is handed out. The program's own reads
 * end the run like every refusal.
 */
enum { READ_REFUSED, READ_ALLOWED, READ_FAILS };

/* What inspect.signature reads of a function. */
static const char *const signature_attrs[] = {
	"__code__", "__defaults__", "__kwdefaults__",
};

static int stdlib_restricted_read(const char *event, PyObject *args)
{
	PyObject *name;

	if (!(flags & AUDIT_SIGNATURE_READS) ||
	    strcmp(event, "object.__getattr__") != 0 ||
	    !stdlib_caller(event))
		return READ_REFUSED;
	name = PyTuple_Check(args) && PyTuple_GET_SIZE(args) >= 2 ?
	       PyTuple_GET_ITEM(args, 1) : NULL;
	if (!name || !PyUnicode_CheckExact(name))
		return READ_FAILS;
	for (size_t i = 0; i < sizeof(signature_attrs) /
			       sizeof(signature_attrs[0]); i++)
		if (PyUnicode_CompareWithASCIIString(name,
						     signature_attrs[i]) == 0)
			return READ_ALLOWED;
	return READ_FAILS;
}

/* open("<code>"): a source that only ever existed in memory. */
static int is_pseudo_open(const char *event, PyObject *args)
{
	PyObject *path;

	if (strcmp(event, "open") != 0 || !PyTuple_Check(args) ||
	    PyTuple_GET_SIZE(args) < 1)
		return 0;
	path = PyTuple_GET_ITEM(args, 0);
	return PyUnicode_CheckExact(path) && PyUnicode_GET_LENGTH(path) > 0 &&
	       PyUnicode_READ_CHAR(path, 0) == '<';
}

/*
 * linecache, which warnings.formatwarning imports to show a warning's
 * source line, is not loaded before lockdown: it pulls in tokenize, and the
 * program's source is "<code>", for which it has no line anyway. Its import
 * fails quietly instead, which formatwarning expects (it catches the
 * exception and shows the warning without a line), so a FutureWarning from
 * re reads the same.
 *
 * The same for a codec that was not loaded before lockdown (allowlist.c
 * loads the standard text codecs when the source may use one): encodings'
 * search function catches the ImportError, and the program gets the
 * LookupError of an unknown encoding.
 */
static int is_quiet_import(const char *event, PyObject *args)
{
	PyObject *name;
	const char *s;

	if (strcmp(event, "import") != 0 || !PyTuple_Check(args) ||
	    PyTuple_GET_SIZE(args) < 1)
		return 0;
	name = PyTuple_GET_ITEM(args, 0);
	if (!PyUnicode_CheckExact(name))
		return 0;
	s = PyUnicode_AsUTF8(name);
	if (!s) {
		PyErr_Clear();
		return 0;
	}
	return strcmp(s, "linecache") == 0 ||
	       strncmp(s, "encodings.", 10) == 0;
}

static int hook(const char *event, PyObject *args, void *data)
{
	char msg[512];
	size_t len;

	(void)data;
	if (mode == AUDIT_OFF)
		return 0;
	if (is_pseudo_open(event, args)) {
		PyErr_SetString(PyExc_OSError, "no source file in the sandbox");
		return -1;
	}
	switch (mode == AUDIT_ARMED ? stdlib_restricted_read(event, args) :
		READ_REFUSED) {
	case READ_ALLOWED:
		return 0;
	case READ_FAILS:
		PyErr_SetString(PyExc_TypeError, "attribute not readable in "
				"the sandbox");
		return -1;
	default:
		break;
	}
	if (is_quiet_import(event, args)) {
		PyErr_SetString(PyExc_ImportError, "not loaded before lockdown "
				"(no source files in the sandbox)");
		return -1;
	}
	if (mode != AUDIT_ARMED ||
	    (!is_refused(event) && !is_code_swap(event, args) &&
	     !is_program_call(event)))
		return 0;
	len = describe(msg, sizeof(msg), event, args);
	rec_write(REC_SECURITY, 0, 0, 0, "SecurityViolation", 17, msg, len);
	_exit(CHILD_EXIT_REFUSED);
}

int audit_install(void)
{
	return PySys_AddAuditHook(hook, NULL);
}

void audit_set(enum audit_mode m)
{
	mode = m;
}

void audit_configure(unsigned f)
{
	flags = f;
}
