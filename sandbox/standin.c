/* SPDX-License-Identifier: MIT */
/*
 * standin.c: the module a program gets for `import sys` when its profile
 * has sys. Never the interpreter's sys (whose modules, _getframe,
 * settrace... reach everything): a new module holding copies of harmless,
 * read-only facts and functions written here, whose __self__ is None, so
 * no attribute leads back to the real one.
 *
 *   maxsize, maxunicode, byteorder, float_info, int_info, hash_info,
 *   version_info, version   copied values
 *   getsizeof(obj[, default])   the real one's answer
 *   getrecursionlimit()         the limit in force
 *   setrecursionlimit(n)        capped at STANDIN_RECURSION_CAP
 *   stdout, stderr              write() and flush() to the program's output
 *
 * Built before lockdown; only the program's import guard hands it out.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "standin.h"
#include "../cgi/banned.h"

/* Deep enough for recursive programs, shallow enough that C recursion
 * (repr, comparisons) stays inside the stack. */
#define STANDIN_RECURSION_CAP 10000

static PyObject *real_getsizeof;

static PyObject *getsizeof(PyObject *self, PyObject *args)
{
	(void)self;
	return PyObject_Call(real_getsizeof, args, NULL);
}

static PyObject *getrecursionlimit(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	return PyLong_FromLong(Py_GetRecursionLimit());
}

static PyObject *setrecursionlimit(PyObject *self, PyObject *arg)
{
	long n = PyLong_AsLong(arg);

	(void)self;
	if (n == -1 && PyErr_Occurred())
		return NULL;
	if (n < 1)
		return PyErr_Format(PyExc_ValueError,
				    "recursion limit must be greater or equal "
				    "than 1");
	Py_SetRecursionLimit(n < STANDIN_RECURSION_CAP ? (int)n :
			     STANDIN_RECURSION_CAP);
	Py_RETURN_NONE;
}

/* The program's output is the real sys.stdout (stderr is the same
 * object), looked up at each call, never handed out. */
static PyObject *out_call(const char *method, PyObject *arg)
{
	PyObject *out = PySys_GetObject("stdout");	/* borrowed */

	if (!out)
		return PyErr_Format(PyExc_RuntimeError, "no output");
	return arg ? PyObject_CallMethod(out, method, "O", arg) :
		     PyObject_CallMethod(out, method, NULL);
}

static PyObject *out_write(PyObject *self, PyObject *arg)
{
	(void)self;
	if (!PyUnicode_Check(arg))
		return PyErr_Format(PyExc_TypeError, "write() argument must "
				    "be str, not %.100s", Py_TYPE(arg)->tp_name);
	return out_call("write", arg);
}

static PyObject *out_flush(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	return out_call("flush", NULL);
}

static PyMethodDef sys_methods[] = {
	{ "getsizeof", getsizeof, METH_VARARGS,
	  "getsizeof(object[, default]): the size of object in bytes" },
	{ "getrecursionlimit", getrecursionlimit, METH_NOARGS,
	  "The current recursion limit." },
	{ "setrecursionlimit", setrecursionlimit, METH_O,
	  "Sets the recursion limit (capped at 10000 in the sandbox)." },
	{ NULL, NULL, 0, NULL },
};

static PyMethodDef write_def = {
	"write", out_write, METH_O, "Writes a str to the program's output."
};
static PyMethodDef flush_def = {
	"flush", out_flush, METH_NOARGS, "Flushes the program's output."
};

/* A namespace (the type of sys.implementation) with write and flush. */
static PyObject *writer(void)
{
	PyObject *impl = PySys_GetObject("implementation");	/* borrowed */
	PyObject *w = PyCFunction_New(&write_def, NULL);
	PyObject *f = PyCFunction_New(&flush_def, NULL);
	PyObject *kw = w && f ? Py_BuildValue("{s:O,s:O}", "write", w,
					      "flush", f) : NULL;
	PyObject *args = PyTuple_New(0);
	PyObject *ns = NULL;

	if (impl && kw && args)
		ns = PyObject_Call((PyObject *)Py_TYPE(impl), args, kw);
	Py_XDECREF(w);
	Py_XDECREF(f);
	Py_XDECREF(kw);
	Py_XDECREF(args);
	return ns;
}

static int copy_fact(PyObject *m, const char *name)
{
	PyObject *v = PySys_GetObject(name);	/* borrowed */

	if (!v) {
		PyErr_Format(PyExc_RuntimeError, "sys.%s is missing", name);
		return -1;
	}
	Py_INCREF(v);
	if (PyModule_AddObject(m, name, v) != 0) {
		Py_DECREF(v);
		return -1;
	}
	return 0;
}

static int add_functions(PyObject *m)
{
	for (PyMethodDef *d = sys_methods; d->ml_name; d++) {
		PyObject *f = PyCFunction_New(d, NULL);
		if (!f || PyModule_AddObject(m, d->ml_name, f) != 0) {
			Py_XDECREF(f);
			return -1;
		}
	}
	return 0;
}

static int add_writers(PyObject *m)
{
	static const char *const names[] = { "stdout", "stderr" };

	for (size_t i = 0; i < 2; i++) {
		PyObject *w = writer();
		if (!w || PyModule_AddObject(m, names[i], w) != 0) {
			Py_XDECREF(w);
			return -1;
		}
	}
	return 0;
}

PyObject *standin_sys(void)
{
	static const char *const facts[] = {
		"maxsize", "maxunicode", "byteorder", "float_info", "int_info",
		"hash_info", "version_info", "version",
	};
	PyObject *m;

	real_getsizeof = PySys_GetObject("getsizeof");
	if (!real_getsizeof) {
		PyErr_SetString(PyExc_RuntimeError, "sys.getsizeof is missing");
		return NULL;
	}
	Py_INCREF(real_getsizeof);
	m = PyModule_New("sys");
	if (!m)
		return NULL;
	for (size_t i = 0; i < sizeof(facts) / sizeof(facts[0]); i++)
		if (copy_fact(m, facts[i]) != 0)
			goto fail;
	if (add_functions(m) != 0 || add_writers(m) != 0)
		goto fail;
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
