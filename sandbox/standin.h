/* SPDX-License-Identifier: MIT */
/* standin.h: the sys a program of the compute profile imports. */
#ifndef PYEXEC_STANDIN_H
#define PYEXEC_STANDIN_H

#include <Python.h>

/* A new module named sys with harmless facts and functions only (see
 * standin.c); NULL with a Python error set. Before lockdown. */
PyObject *standin_sys(void);

#endif
