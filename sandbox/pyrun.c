/* SPDX-License-Identifier: MIT */
/*
 * pyrun.c: the embedded interpreter, in the child only.
 *
 * py_prepare() runs before lockdown: it starts an isolated interpreter
 * (no site, no environment, no bytecode writing, explicit paths), loads
 * the allowlisted modules the source names (and json when there is
 * input_data) and builds the program's globals. py_run() runs after
 * lockdown: it compiles the program, decodes input_data, runs the program
 * as __main__ and writes the outcome on the result pipe. The
 * interpreter is never finalized: the child flushes and exits.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <string.h>
#include <unistd.h>
#include "internal.h"
#include "trace.h"
#include "allowlist.h"
#include "profile.h"
#include "standin.h"
#include "pyerr.h"
#include "../cgi/banned.h"

#ifndef PYEXEC_PYTHON_HOME
#error "the Makefile defines PYEXEC_PYTHON_HOME and PYEXEC_PYTHON_STDLIB"
#endif

/* Set in the test-only build whose Python-level layer is off, to show that
 * the kernel layers hold on their own. Never in the shipped binary. */
#ifdef PYEXEC_TEST_NO_PYLAYER
#define PYLAYER 0
#else
#define PYLAYER 1
#endif

static const struct sb_job *job;
static PyObject *globals;	/* the program's module namespace */
static PyObject *out;		/* sys.stdout, kept to flush it at the end */
static PyObject *real_import;	/* builtins.__import__ */
static uint64_t mask;		/* the job's profile: sandbox/profile.h */
static PyObject *sys_standin;	/* `import sys` when the profile has sys */

/*
 * Built-in modules that only reach the system: the program has no use for
 * them, and without them in the table no loader can create them (not even
 * BuiltinImporter found through object.__subclasses__()). Defence in depth:
 * seccomp refuses what they would do anyway.
 */
static void trim_builtin_modules(void)
{
	static const char *const dropped[] = {
		"_socket", "_posixsubprocess", "select", "fcntl", "grp", "pwd",
		"spwd", "syslog", "faulthandler", "_signal", "_tracemalloc",
	};
	static struct _inittab table[128];
	size_t n = 0;

	for (struct _inittab *t = PyImport_Inittab; t->name; t++) {
		size_t i = 0;
		while (i < sizeof(dropped) / sizeof(dropped[0]) &&
		       strcmp(t->name, dropped[i]) != 0)
			i++;
		if (i == sizeof(dropped) / sizeof(dropped[0]) &&
		    n + 1 < sizeof(table) / sizeof(table[0]))
			table[n++] = *t;
	}
	table[n].name = NULL;
	table[n].initfunc = NULL;
	PyImport_Inittab = table;
}

static PyStatus start_interpreter(void)
{
	PyPreConfig pre;
	PyConfig config;
	PyStatus st;

	if (PYLAYER)
		trim_builtin_modules();
	PyPreConfig_InitIsolatedConfig(&pre);
	pre.utf8_mode = 1;	/* the environment is empty: no locale to ask */
	st = Py_PreInitialize(&pre);
	if (PyStatus_Exception(st))
		return st;
	PyConfig_InitIsolatedConfig(&config);
	config.site_import = 0;
	config.write_bytecode = 0;
	config.user_site_directory = 0;
	config.install_signal_handlers = 0;
	config.module_search_paths_set = 1;
	st = PyConfig_SetString(&config, &config.home, PYEXEC_PYTHON_HOME);
	if (!PyStatus_Exception(st))
		st = PyConfig_SetString(&config, &config.program_name, L"pyexec");
	if (!PyStatus_Exception(st))
		st = PyConfig_SetString(&config, &config.stdio_errors,
					L"backslashreplace");
	if (!PyStatus_Exception(st))
		st = PyWideStringList_Append(&config.module_search_paths,
					     PYEXEC_PYTHON_STDLIB);
	if (!PyStatus_Exception(st))
		st = PyWideStringList_Append(&config.module_search_paths,
					     PYEXEC_PYTHON_STDLIB L"/lib-dynload");
	if (!PyStatus_Exception(st))
		st = Py_InitializeFromConfig(&config);
	PyConfig_Clear(&config);
	return st;
}

/* stdout line-buffered (what was printed before a timeout still arrives)
 * and stderr the same object (so the two keep their order). */
static int setup_stdio(void)
{
	PyObject *meth, *args, *kw, *r = NULL;

	out = PySys_GetObject("stdout");	/* borrowed */
	if (!out)
		return -1;
	Py_INCREF(out);
	meth = PyObject_GetAttrString(out, "reconfigure");
	args = PyTuple_New(0);
	kw = Py_BuildValue("{s:O}", "line_buffering", Py_True);
	if (meth && args && kw)
		r = PyObject_Call(meth, args, kw);
	Py_XDECREF(meth);
	Py_XDECREF(args);
	Py_XDECREF(kw);
	if (!r)
		return -1;
	Py_DECREF(r);
	return PySys_SetObject("stderr", out) == 0 ? 0 : -1;
}

static int load_one(const char *name, void *arg)
{
	PyObject *m = PyImport_ImportModule(name);

	(void)arg;
	if (!m)
		return -1;
	Py_DECREF(m);
	return 0;
}

/* 1 when the guard should hand out the sys stand-in for name. */
static int is_sys(const char *s, Py_ssize_t n)
{
	return sys_standin && n == 3 && memcmp(s, "sys", 3) == 0;
}

/* sys.anything: the stand-in has no submodules. */
static int is_sys_submodule(const char *s, const char *dot)
{
	return sys_standin && dot && dot - s == 3 && memcmp(s, "sys", 3) == 0;
}

static PyObject *refuse_import(const char *s)
{
	return PyErr_Format(PyExc_ImportError, "import of '%s' is not allowed "
			    "(allowed modules: %s)", s, allowlist_names(mask));
}

/*
 * PyImport_Import (C code such as datetime.strftime importing time) passes
 * an empty list as fromlist and never uses what __import__ returns: it
 * takes the module from sys.modules itself. A module an allowlisted one
 * needs is let through for it, and the caller gets None, so a program that
 * calls __import__(name, None, None, []) itself reaches nothing.
 */
static PyObject *lazy_import(PyObject *from, const char *s, Py_ssize_t n,
			     int loaded)
{
	if (!(from && PyList_CheckExact(from) && PyList_GET_SIZE(from) == 0 &&
	      loaded && allowlist_allows_loaded(mask, s, (size_t)n)))
		return refuse_import(s);
	Py_RETURN_NONE;
}

/* __import__ for the program: allowlisted, absolute, already loaded. */
static PyObject *guarded_import(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "globals", "locals", "fromlist",
				  "level", NULL };
	PyObject *name, *g = NULL, *l = NULL, *from = NULL, *mods;
	int level = 0, loaded;
	const char *s, *dot;
	Py_ssize_t n;

	(void)self;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "U|OOOi:__import__", kwlist,
					 &name, &g, &l, &from, &level))
		return NULL;
	s = PyUnicode_AsUTF8AndSize(name, &n);
	if (!s)
		return NULL;
	if (level != 0)
		return PyErr_Format(PyExc_ImportError,
				    "relative import of '%s' is not allowed", s);
	if (is_sys(s, n))
		return Py_NewRef(sys_standin);
	dot = memchr(s, '.', (size_t)n);
	mods = PyImport_GetModuleDict();
	loaded = PyDict_GetItemWithError(mods, name) != NULL;
	if (PyErr_Occurred())
		return NULL;
	if (is_sys_submodule(s, dot) ||
	    !allowlist_allows(mask, s, dot ? (size_t)(dot - s) : (size_t)n))
		return lazy_import(from, s, n, loaded);
	if (!loaded)
		return PyErr_Format(PyExc_ImportError,
				    "module '%s' was not loaded before the program "
				    "started: name it in a plain import statement", s);
	return PyObject_Call(real_import, args, kw);
}

static PyMethodDef import_def = {
	"__import__", (PyCFunction)(void (*)(void))guarded_import,
	METH_VARARGS | METH_KEYWORDS,
	"Imports an allowlisted module."
};

static PyObject *restricted_builtins(void)
{
	static const char *const removed[] = {
		"eval", "exec", "compile", "open", "input", "breakpoint",
		"help", "exit", "quit", "copyright", "credits", "license",
	};
	PyObject *b = PyDict_Copy(PyEval_GetBuiltins());
	PyObject *imp;

	if (!b)
		return NULL;
	for (size_t i = 0; i < sizeof(removed) / sizeof(removed[0]); i++)
		if (PyDict_DelItemString(b, removed[i]) != 0)
			PyErr_Clear();	/* absent already: fine */
	imp = PyCFunction_New(&import_def, NULL);
	if (!imp || PyDict_SetItemString(b, "__import__", imp) != 0) {
		Py_XDECREF(imp);
		Py_DECREF(b);
		return NULL;
	}
	Py_DECREF(imp);
	return b;
}

/*
 * input_data: {} without the json module; anything else is decoded by
 * json.loads of the bytes the client sent, after lockdown (py_run), so a
 * bug in the decoder meets every layer. The json module and its C
 * accelerator are loaded here, before. Python's limit on the digits of an
 * int parsed from text (4300) is lifted while decoding only: large integers
 * stay exact, and the program then has Python's usual limit.
 */
static PyObject *restricted;	/* the program's builtins (py_boot) */
static PyObject *json_loads;	/* json.loads, NULL when input_empty */
static PyObject *set_int_digits;	/* sys.set_int_max_str_digits */
static PyObject *int_digits;	/* the limit in force before decoding */

static int prepare_input(void)
{
	PyObject *json, *sys, *get;

	if (job->input_empty || !job->input_json) {
		PyObject *empty = PyDict_New();
		int rc = empty ? PyDict_SetItemString(globals, "input_data",
						      empty) : -1;

		Py_XDECREF(empty);
		return rc;
	}
	json = PyImport_ImportModule("json");
	sys = PyImport_ImportModule("sys");
	json_loads = json ? PyObject_GetAttrString(json, "loads") : NULL;
	set_int_digits = sys ? PyObject_GetAttrString(
		sys, "set_int_max_str_digits") : NULL;
	get = sys ? PyObject_GetAttrString(sys, "get_int_max_str_digits") : NULL;
	int_digits = get ? PyObject_CallNoArgs(get) : NULL;
	Py_XDECREF(get);
	Py_XDECREF(json);
	Py_XDECREF(sys);
	return json_loads && set_int_digits && int_digits ? 0 : -1;
}

static int set_digits(PyObject *limit)
{
	PyObject *r = PyObject_CallOneArg(set_int_digits, limit);

	Py_XDECREF(r);
	return r ? 0 : -1;
}

/* After lockdown: input_data into the globals, or -1 with the exception. */
static int decode_input(void)
{
	PyObject *zero, *val;
	int rc;

	if (!json_loads)
		return 0;	/* input_empty: {} is there already */
	zero = PyLong_FromLong(0);
	if (!zero || set_digits(zero) != 0) {
		Py_XDECREF(zero);
		return -1;
	}
	Py_DECREF(zero);
	val = PyObject_CallFunction(json_loads, "s#", job->input_json,
				    (Py_ssize_t)job->input_json_len);
	if (!val) {		/* keep the decoder's exception over the call */
		PyObject *t, *v, *tb;

		PyErr_Fetch(&t, &v, &tb);
		if (set_digits(int_digits) != 0)
			PyErr_Clear();
		PyErr_Restore(t, v, tb);
		return -1;
	}
	if (set_digits(int_digits) != 0) {
		Py_DECREF(val);
		return -1;
	}
	rc = PyDict_SetItemString(globals, "input_data", val);
	Py_DECREF(val);
	return rc;
}

static int build_globals(void)
{
	PyObject *b, *name;

	globals = PyDict_New();
	if (!globals)
		return -1;
	real_import = PyDict_GetItemString(PyEval_GetBuiltins(), "__import__");
	Py_XINCREF(real_import);
	if (PYLAYER && profile_has(mask, "sys") &&
	    !(sys_standin = standin_sys()))
		return -1;
	b = Py_XNewRef(PYLAYER ? restricted : PyEval_GetBuiltins());
	if (!b || !real_import)
		return -1;
	name = PyUnicode_FromString("__main__");
	if (!name || PyDict_SetItemString(globals, "__builtins__", b) != 0 ||
	    PyDict_SetItemString(globals, "__name__", name) != 0 ||
	    prepare_input() != 0) {
		Py_DECREF(b);
		Py_XDECREF(name);
		return -1;
	}
	Py_DECREF(b);
	Py_DECREF(name);
	return 0;
}

static int booted;	/* the interpreter is up: py_boot ran */

static void describe_error(const char *step, char *err, size_t errlen);

int py_boot(char *err, size_t errlen)
{
	PyStatus st;

	if (audit_install() != 0) {
		snprintf(err, errlen, "audit hook failed");
		return -1;
	}
	TRACE(TR_C_AUDIT);
	st = start_interpreter();
	if (PyStatus_Exception(st)) {
		snprintf(err, errlen, "interpreter start: %s",
			 st.err_msg ? st.err_msg : "failed");
		return -1;
	}
	TRACE(TR_C_PYINIT);
	if (setup_stdio() != 0) {
		describe_error("stdio", err, errlen);
		return -1;
	}
	TRACE(TR_C_STDIO);
	/* The program's builtins, built here rather than per job: in the
	 * zygote, once for all its children, whose copy of the dictionary
	 * (its references taken one by one) would be a page copied per
	 * object; nothing in it depends on the job (guarded_import reads the
	 * job's profile when called). */
	if (PYLAYER && !(restricted = restricted_builtins())) {
		describe_error("builtins", err, errlen);
		return -1;
	}
	booted = 1;
	return 0;
}

/*
 * random's state is drawn from the kernel at import; a module imported in
 * the zygote would hand every child the same stream, so it is drawn again
 * (Python's own after-fork hook does it too: this does not rely on it).
 * The hash secret is fixed when the interpreter starts and cannot change
 * here: SECURITY.md says what that means.
 */
static int reseed_random(void)
{
	PyObject *mods = PyImport_GetModuleDict();
	PyObject *random = PyDict_GetItemString(mods, "random");
	PyObject *r;

	if (!random)
		return 0;
	r = PyObject_CallMethod(random, "seed", NULL);
	Py_XDECREF(r);
	return r ? 0 : -1;
}

int py_after_fork(char *err, size_t errlen)
{
	PyOS_AfterFork_Child();
	if (reseed_random() != 0) {
		describe_error("reseed", err, errlen);
		return -1;
	}
	return 0;
}

/*
 * The zygote's modules: the seed profile's (the default list), loaded as
 * a program that names them all would load them (allowlist_preload over
 * their names). A child still loads what its own program and profile name
 * (py_prepare), before lockdown, as an executed sandbox does; a child
 * whose profile leaves a seed module out has it in sys.modules but cannot
 * import it (guarded_import asks the profile, not sys.modules).
 */
int py_preload_seed(char *err, size_t errlen)
{
	char names[PROFILE_TEXT_MAX + 64];

	profile_names(profile_seed(), names, sizeof(names));
	if (allowlist_preload(profile_seed(), names, strlen(names), load_one,
			      NULL) == 0)
		return 0;
	describe_error("preload", err, errlen);
	return -1;
}

int py_prepare(const struct sb_job *j, char *err, size_t errlen)
{
	const char *step;

	job = j;
	mask = j->modules ? j->modules : profile_seed();
	audit_configure((profile_has(mask, "dataclasses") ?
			 AUDIT_SIGNATURE_READS : 0) |
			(profile_has(mask, "typing") ?
			 AUDIT_TYPING_EVAL_REFUSED : 0));
	if (!booted && py_boot(err, errlen) != 0)
		return -1;
	step = "preload";
	if (allowlist_preload(mask, job->code, job->code_len, load_one,
			      NULL) != 0)
		goto fail;
	TRACE(TR_C_PRELOAD);
	step = "globals";
	if (build_globals() != 0)
		goto fail;
	TRACE(TR_C_GLOBALS);
	return 0;
fail:
	describe_error(step, err, errlen);
	return -1;
}

static void describe_error(const char *step, char *err, size_t errlen)
{
	if (PyErr_Occurred()) {
		PyObject *t, *v, *tb, *s;
		const char *m;

		PyErr_Fetch(&t, &v, &tb);
		s = v ? PyObject_Str(v) : NULL;
		m = s ? PyUnicode_AsUTF8(s) : NULL;
		snprintf(err, errlen, "%s: %s", step, m ? m : "failed");
		Py_XDECREF(s);
		Py_XDECREF(t);
		Py_XDECREF(v);
		Py_XDECREF(tb);
		PyErr_Clear();
	} else {
		snprintf(err, errlen, "%s failed", step);
	}
}

static void flush_output(void)
{
	PyObject *r;

	if (!out)
		return;
	r = PyObject_CallMethod(out, "flush", NULL);
	if (!r)
		PyErr_Clear();
	Py_XDECREF(r);
}

static void finish_ok(uint64_t t0)
{
	flush_output();
	rec_write(REC_OK, mono_ns() - t0, 0, 0, NULL, 0, NULL, 0);
	_exit(CHILD_EXIT_OK);
}

void py_run(void)
{
	uint64_t t0 = mono_ns();
	PyObject *code, *r = NULL, *t, *v, *tb;
	struct pyerr e;

	/* Compiled here, under seccomp: a parser bug meets the kernel layers.
	 * The hook turns the parser's attempt to read "<code>" from disk (for
	 * a SyntaxError's text) into a quiet failure. */
	audit_set(AUDIT_COMPILING);
	PyCompilerFlags cf = _PyCompilerFlags_INIT;
	cf.cf_flags = PyCF_IGNORE_COOKIE | PyCF_SOURCE_IS_UTF8;
	code = Py_CompileStringFlags(job->code, "<code>", Py_file_input, &cf);
	audit_set(PYLAYER ? AUDIT_ARMED : AUDIT_COMPILING);
	TRACE(TR_C_COMPILED);
	if (code && decode_input() == 0)
		r = PyEval_EvalCode(code, globals, globals);
	Py_XDECREF(code);
	TRACE(TR_C_RAN);
	if (r)
		finish_ok(t0);
	if (PyErr_ExceptionMatches(PyExc_SystemExit) && pyerr_exit_ok())
		finish_ok(t0);
	if (PyErr_ExceptionMatches(PyExc_MemoryError))
		PyDict_Clear(globals);	/* room to format the report */
	PyErr_Fetch(&t, &v, &tb);
	flush_output();
	PyErr_Restore(t, v, tb);
	pyerr_format(&e, job->code, job->code_len);
	rec_write(REC_EXCEPTION, mono_ns() - t0, 0, 0, e.type, strlen(e.type),
		  e.text, e.len);
	_exit(CHILD_EXIT_EXCEPTION);
}
