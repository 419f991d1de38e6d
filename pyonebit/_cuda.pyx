# cython: language_level=3, boundscheck=False, wraparound=False
# distutils: language = c++
"""Binding of the CUDA backend (src/cuda): plans validated by the core's
planner (src/common/plan.cpp, linked into this module too) over device
pointers, launches on a caller's stream, and device buffers for NumPy data.
Built only where a CUDA compiler exists; pyonebit.cuda_backend is the
Python side that turns framework arrays into pointers."""

from libc.stdint cimport int64_t, uintptr_t
from libcpp cimport bool as cbool
from libcpp.string cimport string
from libcpp.vector cimport vector

from pyonebit._onebit cimport (
    CArrayRef, CDType, CMatmulPlan, CQuantSpec, CWeightLayout, raise_py_error,
)
from pyonebit cimport _onebit as core
from cpython.ref cimport PyObject

from pyonebit._dtype_error import DTypeError

cdef extern from "_errors.h":
    PyObject* onebit_dtype_error

# As in _core: the core's dtype errors raise pyonebit.DTypeError (held by this module).
onebit_dtype_error = <PyObject*>DTypeError


cdef extern from "cuda/api.h" namespace "onebit::cuda" nogil:
    int c_device_count "onebit::cuda::device_count"()
    string c_device_error "onebit::cuda::device_error"()
    void c_quantized_matmul "onebit::cuda::quantized_matmul"(
        const CMatmulPlan& plan, void* out, uintptr_t stream) except +raise_py_error
    string c_choose_kernel "onebit::cuda::choose_kernel"(const CMatmulPlan& plan)
    void* c_device_alloc "onebit::cuda::device_alloc"(size_t nbytes) except +raise_py_error
    void c_device_free "onebit::cuda::device_free"(void* ptr)
    void c_copy_to_device "onebit::cuda::copy_to_device"(
        void* dst, const void* src, size_t nbytes, uintptr_t stream) except +raise_py_error
    void c_copy_to_host "onebit::cuda::copy_to_host"(
        void* dst, const void* src, size_t nbytes, uintptr_t stream) except +raise_py_error
    void c_synchronize "onebit::cuda::synchronize"(uintptr_t stream) except +raise_py_error
    int c_current_device "onebit::cuda::current_device"() except +raise_py_error


# The plan's arrays (its other fields are the core's business: _onebit.pxd leaves them out).
cdef extern from "onebit/onebit.h" nogil:
    cdef cppclass CPlanArrays "onebit::MatmulPlan":
        CArrayRef x, wq, scales, biases


_DTYPES = {"float32": CDType.float32, "float16": CDType.float16, "bfloat16": CDType.bfloat16,
           "uint32": CDType.uint32}
_NAMES = {v: k for k, v in _DTYPES.items()}


def device_count():
    """CUDA devices usable by this process (0 without a driver or GPU)."""
    return c_device_count()


def device_error():
    """Why device_count() is 0 ('' when it is not)."""
    return c_device_error().decode()


def current_device():
    return c_current_device()


cdef CArrayRef _ref(uintptr_t ptr, shape, str dtype):
    cdef CArrayRef r
    r.data = <void*>ptr
    r.dtype = _DTYPES.get(dtype, CDType.unsupported)
    r.shape = shape
    if r.dtype == CDType.unsupported:
        r.label = dtype.encode()
    return r


cdef class Plan:
    """A validated quantized_matmul over device pointers: the result's shape
    and dtype, the kernel it launches, and run(out, stream)."""
    cdef CMatmulPlan* plan  # on the heap: constructed and destroyed here, explicitly
    cdef readonly tuple out_shape
    cdef readonly str out_dtype
    cdef public object torch_dtype  # out_dtype as a torch.dtype, set by cuda_backend's plan cache

    def __cinit__(self, *args, **kwargs):
        self.plan = new CMatmulPlan()

    def __dealloc__(self):
        del self.plan

    def __init__(self, uintptr_t x, tuple x_shape, str x_dtype, uintptr_t wq, tuple wq_shape,
                 str wq_dtype, uintptr_t scales, tuple s_shape, str s_dtype, uintptr_t biases,
                 tuple b_shape, str b_dtype, transpose, int group_size, int bits, str mode):
        cdef CQuantSpec spec
        spec.group_size = group_size
        spec.bits = bits
        spec.mode = core.parse_mode(mode.encode(), b"quantized_matmul")
        cdef CArrayRef r_b
        if b_dtype:
            r_b = _ref(biases, b_shape, b_dtype)
        self.plan[0] = core.plan_quantized_matmul(
            _ref(x, x_shape, x_dtype), _ref(wq, wq_shape, wq_dtype), _ref(scales, s_shape, s_dtype),
            &r_b if b_dtype else NULL, <cbool>bool(transpose), spec, CWeightLayout.mlx)
        self.out_shape = tuple(self.plan.out_shape)
        self.out_dtype = _NAMES[self.plan.out_dtype]

    @property
    def kernel(self):
        return c_choose_kernel(self.plan[0]).decode()

    def launch(self, uintptr_t x, uintptr_t wq, uintptr_t scales, uintptr_t biases, uintptr_t out,
               uintptr_t stream):
        """run() on other arrays of the same shapes and dtypes (validation depends on those
        alone: a plan is reused across calls). Keeps the GIL: the pointers live in this plan."""
        cdef CPlanArrays* arrays = <CPlanArrays*>self.plan
        arrays.x.data = <void*>x
        arrays.wq.data = <void*>wq
        arrays.scales.data = <void*>scales
        arrays.biases.data = <void*>biases
        c_quantized_matmul(self.plan[0], <void*>out, stream)

    def run(self, uintptr_t out, uintptr_t stream):
        """Launch on `stream` (a cudaStream_t as an int) into `out` (device memory of
        out_shape / out_dtype, C-contiguous). Asynchronous."""
        with nogil:
            c_quantized_matmul(self.plan[0], <void*>out, stream)


cdef class DeviceBuffer:
    """Device memory owned by Python (NumPy inputs and results, layer weights)."""
    cdef void* ptr_
    cdef readonly size_t nbytes

    def __cinit__(self, size_t nbytes):
        self.ptr_ = c_device_alloc(nbytes)
        self.nbytes = nbytes

    def __dealloc__(self):
        if self.ptr_ != NULL:
            c_device_free(self.ptr_)

    @property
    def ptr(self):
        return <uintptr_t>self.ptr_

    def upload(self, const unsigned char[::1] src, uintptr_t stream=0):
        if <size_t>src.shape[0] > self.nbytes:
            raise ValueError("[cuda] upload larger than the buffer")
        with nogil:
            c_copy_to_device(self.ptr_, &src[0] if src.shape[0] else NULL, src.shape[0], stream)

    def download(self, unsigned char[::1] dst, uintptr_t stream=0):
        """Copy into dst and wait for the copy (and the stream's earlier work)."""
        if <size_t>dst.shape[0] > self.nbytes:
            raise ValueError("[cuda] download larger than the buffer")
        with nogil:
            c_copy_to_host(&dst[0] if dst.shape[0] else NULL, self.ptr_, dst.shape[0], stream)
            c_synchronize(stream)


def synchronize(uintptr_t stream=0):
    with nogil:
        c_synchronize(stream)
