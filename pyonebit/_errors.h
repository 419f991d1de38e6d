// Maps the core's C++ exceptions to Python exceptions (Cython `except +`).
// Lives with the binding: the core itself never includes Python.h.
#pragma once

#include <Python.h>

#include <new>
#include <stdexcept>

#include "onebit/onebit.h"

// pyonebit.DTypeError (a ValueError and a TypeError), set by _core on import;
// the core's TypeErrors are all about dtypes.
static PyObject* onebit_dtype_error = nullptr;

inline void raise_py_error() {
  try {
    throw;
  } catch (const onebit::TypeError& e) {
    PyErr_SetString(onebit_dtype_error ? onebit_dtype_error : PyExc_TypeError, e.what());
  } catch (const onebit::ValueError& e) {
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "pyonebit: unknown C++ exception");
  }
}
