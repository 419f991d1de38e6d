# cython: language_level=3, boundscheck=False, wraparound=False
# distutils: language = c++
"""Thin binding over the C++ core: converts NumPy buffers to ArrayRefs,
allocates outputs, releases the GIL around kernels. All validation happens in
C++ (plan_* functions); errors arrive as ValueError or DTypeError (dtypes)."""

from cpython.ref cimport PyObject

from libc.stdint cimport int64_t, uint32_t, uint64_t
from libcpp cimport bool as cbool
from libcpp.string cimport string
from libcpp.vector cimport vector

cimport numpy as cnp
import numpy as np

from pyonebit._onebit cimport (
    CArrayRef, CBinding, CCpuKernelChoice, CDeviceCaps, CDispatch, CDType, CDequantizePlan, CMatmulPlan, CMode,
    CWeightLayout,
    CQuantSpec, CQuantizePlan,
)
from pyonebit cimport _onebit as core

cnp.import_array()

from pyonebit import _bfloat16, _dlpack
from pyonebit._dtype_error import DTypeError

cdef extern from "_errors.h":
    PyObject* onebit_dtype_error

# The class stays referenced by this module, so the borrowed pointer stays valid.
onebit_dtype_error = <PyObject*>DTypeError

# bfloat16 is resolved through pyonebit._bfloat16, which imports ml_dtypes only when needed.
_NP_DTYPES = {
    CDType.float32: np.dtype(np.float32),
    CDType.float16: np.dtype(np.float16),
    CDType.uint32: np.dtype(np.uint32),
}
_CORE_DTYPES = {v: k for k, v in _NP_DTYPES.items()}


cdef CDType _core_dtype(dt):
    found = _CORE_DTYPES.get(dt)
    if found is not None:
        return found
    return CDType.bfloat16 if _bfloat16.is_bfloat16(dt) else CDType.unsupported


cdef _np_dtype(CDType dtype):
    return _bfloat16.dtype() if dtype == CDType.bfloat16 else _NP_DTYPES[dtype]


def _as_array(obj, str name, str op):
    """A native-byte-order, C-contiguous ndarray view of obj (copying only
    when obj is strided or byte-swapped). Accepts what NumPy can view without
    a copy: arrays, the buffer protocol, __array_interface__, and __dlpack__
    (CPU tensors of other frameworks; bfloat16 ones through __array__:
    pyonebit._dlpack)."""
    # The common case, an ndarray to use as it is, in C-level checks (a decode step's calls
    # are short enough for the attribute lookups below to show).
    if cnp.PyArray_CheckExact(obj) and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>obj) and \
            cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>obj):
        return obj
    if obj is None:
        raise TypeError(f"[{op}] {name} must be an array, got None")
    if not isinstance(obj, np.ndarray) and hasattr(obj, "__dlpack__"):
        a = _dlpack.view(obj, name, op)
    else:
        a = np.asarray(obj)
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if not a.flags.c_contiguous:
        a = a.copy(order="C")
    return a


cdef CArrayRef _ref(cnp.ndarray a):
    cdef CArrayRef r
    r.data = cnp.PyArray_DATA(a)
    r.dtype = _core_dtype(a.dtype)
    r.shape = (<object>a).shape
    if r.dtype == CDType.unsupported:
        r.label = str(a.dtype).encode()
    return r


cdef CQuantSpec _spec(group_size, bits, mode, str op) except *:
    cdef CQuantSpec s
    if type(group_size) is int and type(bits) is int and type(mode) is str:  # the common case
        s.group_size = group_size
        s.bits = bits
        s.mode = core.parse_mode(mode.encode(), op.encode())
        return s
    for name, value in (("group_size", group_size), ("bits", bits)):
        if isinstance(value, bool) or not hasattr(value, "__index__"):
            raise TypeError(f"[{op}] {name} must be an int, got {type(value).__name__}")
    if not isinstance(mode, str):
        raise TypeError(f"[{op}] mode must be a str, got {type(mode).__name__}")
    s.group_size = group_size
    s.bits = bits
    s.mode = core.parse_mode(mode.encode(), op.encode())
    return s


cdef _empty(vector[int64_t] shape, CDType dtype):
    return np.empty(tuple(shape), dtype=_np_dtype(dtype))


cdef CDequantizePlan _dequantize_plan(list keep, wq, scales, biases, CQuantSpec spec,
                                      CDType* out_dtype, str op="dequantize") except *:
    """Validated plan, its messages in op's name; the arrays it points into are appended to keep."""
    a_wq = _as_array(wq, "wq", op)
    a_s = _as_array(scales, "scales", op)
    a_b = _as_array(biases, "biases", op) if biases is not None else None
    keep += [a_wq, a_s, a_b]
    cdef CArrayRef r_b
    if a_b is not None:
        r_b = _ref(a_b)
    return core.plan_dequantize_for(op.encode(), _ref(a_wq), _ref(a_s),
                                    &r_b if a_b is not None else NULL, spec, out_dtype)


# The weight layouts by name (onebit.h, WeightLayout).
_LAYOUTS = {"mlx": CWeightLayout.mlx, "interleaved16": CWeightLayout.interleaved16}


cdef CWeightLayout _layout(layout, str op) except *:
    if not isinstance(layout, str):
        raise TypeError(f"[{op}] layout must be a str, got {type(layout).__name__}")
    if layout not in _LAYOUTS:
        raise ValueError(f"[{op}] layout must be one of {', '.join(map(repr, _LAYOUTS))}, "
                         f"got {layout!r}")
    return _LAYOUTS[layout]


cdef CMatmulPlan _matmul_plan(list keep, x, wq, scales, biases, transpose,
                              CQuantSpec spec, layout="mlx") except *:
    """Validated plan; the arrays it points into are appended to keep."""
    op = "quantized_matmul"
    a_x = _as_array(x, "x", op)
    a_wq = _as_array(wq, "wq", op)
    a_s = _as_array(scales, "scales", op)
    a_b = _as_array(biases, "biases", op) if biases is not None else None
    keep += [a_x, a_wq, a_s, a_b]
    cdef CArrayRef r_b
    if a_b is not None:
        r_b = _ref(a_b)
    return core.plan_quantized_matmul(_ref(a_x), _ref(a_wq), _ref(a_s),
                                      &r_b if a_b is not None else NULL,
                                      <cbool>bool(transpose), spec, _layout(layout, op))


def quantize(w, group_size=128, bits=1, mode="affine"):
    """Quantize ``w`` (float32/float16/bfloat16, shape ``(..., N, K)``).

    Returns ``(wq, scales, biases)``: ``wq`` uint32 of shape
    ``(..., N, K * bits // 32)``, ``scales``/``biases`` of shape
    ``(..., N, K // group_size)`` in the dtype of ``w``. Bit-for-bit equal to
    ``mlx.core.quantize`` (MLX 0.32.4) in affine mode. ``mode="symmetric"``
    (bits=1 only) returns ``(wq, scales, None)`` with ``scales`` the mean of
    ``|w|`` per group and bit 1 marking ``w >= 0``.
    """
    return _quantize(w, group_size, bits, mode, False)


def _emulated_quantize(w, group_size=128, bits=1, mode="affine"):
    """quantize with the Metal kernel on the emulator (tests)."""
    return _quantize(w, group_size, bits, mode, True)


cdef _quantize(w, group_size, bits, mode, cbool emulated):
    cdef CQuantSpec spec = _spec(group_size, bits, mode, "quantize")
    a = _as_array(w, "w", "quantize")
    cdef CQuantizePlan plan = core.plan_quantize(_ref(a), spec)
    wq = _empty(plan.wq_shape, CDType.uint32)
    scales = np.empty(tuple(plan.scales_shape), dtype=a.dtype)
    biases = np.empty(tuple(plan.scales_shape), dtype=a.dtype) if plan.has_biases else None
    cdef uint32_t* wq_ptr = <uint32_t*>cnp.PyArray_DATA(wq)
    cdef void* s_ptr = cnp.PyArray_DATA(scales)
    cdef void* b_ptr = cnp.PyArray_DATA(biases) if biases is not None else NULL
    with nogil:
        if emulated:
            core.emulated_quantize(plan, wq_ptr, s_ptr, b_ptr)
        else:
            core.quantize(plan, wq_ptr, s_ptr, b_ptr)
    return wq, scales, biases


def dequantize(wq, scales, biases=None, group_size=128, bits=1, mode="affine", dtype=None):
    """The core's dequantize: ``dtype`` (default: the scales') float32, float16
    or bfloat16; :func:`pyonebit.dequantize` adds the exact wider dtypes."""
    return _dequantize(wq, scales, biases, group_size, bits, mode, dtype, False)


def _emulated_dequantize(wq, scales, biases=None, group_size=128, bits=1, mode="affine",
                         dtype=None):
    """dequantize with the Metal kernel on the emulator (tests)."""
    return _dequantize(wq, scales, biases, group_size, bits, mode, dtype, True)


cdef _dequantize(wq, scales, biases, group_size, bits, mode, dtype, cbool emulated):
    cdef CQuantSpec spec = _spec(group_size, bits, mode, "dequantize")
    cdef CDType out_dtype
    cdef CDType* out_dtype_ptr = NULL
    if dtype is not None:
        dt = _bfloat16.as_dtype(dtype)
        out_dtype = _core_dtype(dt)
        if out_dtype == CDType.unsupported or out_dtype == CDType.uint32:
            raise DTypeError(f"[dequantize] dtype must be float32, float16 or bfloat16, got {dt}")
        out_dtype_ptr = &out_dtype
    keep = []
    cdef CDequantizePlan plan = _dequantize_plan(keep, wq, scales, biases, spec, out_dtype_ptr)
    out = _empty(plan.out_shape, plan.out_dtype)
    cdef void* out_ptr = cnp.PyArray_DATA(out)
    with nogil:
        if emulated:
            core.emulated_dequantize(plan, out_ptr)
        else:
            core.dequantize(plan, out_ptr)
    return out


def _check_spec(group_size, bits, mode, str op):
    """Private (QuantizedLinear): the core's checks of group_size, bits and
    mode, its messages in op's name."""
    cdef CQuantSpec spec = _spec(group_size, bits, mode, op)
    core.check_spec(spec, op.encode())


def _check_weight(wq, scales, biases, group_size, bits, mode, str op):
    """Private (QuantizedLinear): the core's checks of a packed weight, as
    dequantize makes them (a transposed product's weight obeys the same rules),
    its messages in op's name."""
    cdef CQuantSpec spec = _spec(group_size, bits, mode, op)
    keep = []
    _dequantize_plan(keep, wq, scales, biases, spec, NULL, op)


def _check_out(out, tuple shape, dtype, list inputs, str op):
    """The caller's out= array must be exactly what the kernel would allocate
    (the kernels write every element, densely, and never read it) and must not
    overlap an input (the kernels read inputs while writing)."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"[{op}] out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise DTypeError(f"[{op}] out must have dtype {dtype} (the result dtype), got {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"[{op}] out must have shape {shape}, got {out.shape}")
    if not (out.flags.c_contiguous and out.flags.aligned and out.dtype.isnative):
        raise ValueError(f"[{op}] out must be C-contiguous, aligned and native byte order")
    if not out.flags.writeable:
        raise ValueError(f"[{op}] out must be writeable")
    cdef char* o = <char*>cnp.PyArray_DATA(<cnp.ndarray>out)
    cdef cnp.npy_intp o_bytes = cnp.PyArray_NBYTES(<cnp.ndarray>out), a_bytes
    cdef char* p
    for a in inputs:
        if a is None:
            continue
        if cnp.PyArray_CheckExact(a) and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>a):
            # Dense: its bytes are one range (an empty array shares none, as np.may_share_memory says).
            p = <char*>cnp.PyArray_DATA(<cnp.ndarray>a)
            a_bytes = cnp.PyArray_NBYTES(<cnp.ndarray>a)
            if o_bytes and a_bytes and p < o + o_bytes and o < p + a_bytes:
                raise ValueError(f"[{op}] out must not overlap an input array")
        elif np.may_share_memory(out, a):
            raise ValueError(f"[{op}] out must not overlap an input array")


def quantized_matmul(x, wq, scales, biases=None, transpose=True, group_size=128, bits=1,
                     mode="affine", backend=None, out=None, layout="mlx"):
    """``x @ dequantize(wq).T`` (``transpose=True``) or ``x @ dequantize(wq)``
    without ever materialising the dequantized weights.

    Batch dimensions of ``x`` and ``wq`` broadcast; a 1-D ``x`` is one row.
    Activations are never rounded and sums accumulate in float32 or wider.
    The result dtype is that of ``x`` when it equals that of ``scales``, else
    float32 (as in MLX). ``backend`` names one of :func:`backends`
    (``None`` picks the best). Inputs may be anything NumPy views without a
    copy (buffer protocol, ``__array_interface__``, ``__dlpack__`` on the CPU).
    ``out``, if given, receives the result and is returned: a C-contiguous,
    writeable array of exactly the result's shape and dtype that overlaps no input.
    ``layout`` says how ``wq``'s words are ordered: ``"mlx"`` (row by row) or
    ``"interleaved16"`` (see :func:`interleave16`; ``transpose=True`` and the
    CPU backend only). :class:`QuantizedLinear` picks the layout itself.
    """
    op = "quantized_matmul"
    cdef CQuantSpec spec = _spec(group_size, bits, mode, op)
    if backend is not None and not isinstance(backend, str):
        raise TypeError(f"[{op}] backend must be a str or None, got {type(backend).__name__}")
    cdef string backend_name = backend.encode() if backend is not None else b""
    keep = []
    cdef CMatmulPlan plan = _matmul_plan(keep, x, wq, scales, biases, transpose, spec, layout)
    if out is None:
        out = _empty(plan.out_shape, plan.out_dtype)
    else:
        _check_out(out, tuple(plan.out_shape), _np_dtype(plan.out_dtype), keep, op)
    cdef void* out_ptr = cnp.PyArray_DATA(out)
    with nogil:
        core.quantized_matmul(plan, out_ptr, backend_name)
    return out


def backends():
    """The core's backends usable here, the default first (pyonebit.backends adds "cuda")."""
    return [name.decode() for name in core.backends()]


def interleave16(a):
    """``a`` (``wq``, ``scales`` or ``biases``: uint32, float32, float16 or
    bfloat16, shape ``(..., N, C)``) with each matrix's elements in the
    ``interleaved16`` order: rows in blocks of 16 (the last block holds the
    ``N % 16`` rows left), and within a block column by column, so element
    ``c`` of row ``n`` sits at ``n0 * C + c * r + (n - n0)`` (``n0`` the
    block's first row, ``r`` its rows). Same shape, dtype and bytes, another
    order: one vector load then reads one word (or group factor) of 16 rows
    (two with AVX2), which the lookup kernels otherwise assemble by
    transposes on every call."""
    return _relayout(a, True)


def deinterleave16(a):
    """The inverse of :func:`interleave16`: back to MLX's row-by-row order."""
    return _relayout(a, False)


cdef _relayout(a, cbool to_interleaved):
    op = "interleave16" if to_interleaved else "deinterleave16"
    arr = _as_array(a, "a", op)
    out = np.empty(arr.shape, arr.dtype)
    cdef CArrayRef r = _ref(arr)
    cdef void* out_ptr = cnp.PyArray_DATA(out)
    with nogil:
        if to_interleaved:
            core.interleave16(r, out_ptr)
        else:
            core.deinterleave16(r, out_ptr)
    return out


def supported_bits():
    """The code widths quantize, dequantize and quantized_matmul take."""
    return list(core.supported_bits())


def supported_group_sizes():
    """The group sizes (weights per scale) quantize, dequantize and quantized_matmul take."""
    return list(core.supported_group_sizes())


def _trace_start():
    return core.trace_start()


def _trace_stop(size_t token):
    return [
        {"backend": e.backend.decode(), "kernel": e.kernel.decode(),
         "grid": tuple(e.grid), "threadgroup": tuple(e.threadgroup)}
        for e in core.trace_stop(token)
    ]

# ---------------------------------------------------------------- metal
def metal_stats():
    """How the Metal backend reached NumPy memory since the process started,
    and what its kernel library holds. ``built`` (compiled with Metal),
    ``wrapped`` (arrays bound without a copy), ``copied_inputs`` /
    ``copied_outputs`` (fallback copies when Metal refused to wrap the
    memory), ``copied_misaligned`` (inputs copied because their address was
    not a multiple of their element size); ``library``: ``loaded`` (once the
    first product ran, or _metal_load_library), ``os``, ``metallib_error``,
    ``nax_kernels``, ``bfloat_kernels`` and ``families``, one dict per .metal
    source: ``source``, ``origin`` (metallib, compiled, skipped),
    ``language`` (Metal version), ``ok``, ``error``."""
    cdef core.CMetalStats s = core.metal_stats_snapshot()
    cdef core.CMetalLibrary* lib = &s.library
    families = [{"source": f.source.decode(), "origin": f.origin.decode(),
                 "language": f.language.decode(), "ok": f.ok, "error": f.error.decode("utf-8", "replace")}
                for f in lib.families]
    return {"built": s.built, "wrapped": s.wrapped,
            "copied_inputs": s.copied_inputs, "copied_outputs": s.copied_outputs,
            "copied_misaligned": s.copied_misaligned,
            "library": {"loaded": lib.loaded, "os": lib.os.decode(),
                        "metallib_error": lib.metallib_error.decode("utf-8", "replace"),
                        "nax_kernels": lib.nax_kernels, "bfloat_kernels": lib.bfloat_kernels,
                        "families": families}}


def _metal_load_library():
    """Private (info): load the Metal kernel library now (compiling it where
    no prebuilt metallib loads); False without a Metal device."""
    cdef cbool loaded
    with nogil:
        loaded = core.metal_load_library()
    return loaded


# ---------------------------------------------------------------- Metal planner
# Private: the Metal planner's decision for an operation, for routing tests on
# machines without Metal. Arguments as for the public functions.

cdef dict _dispatch_dict(const CDispatch& d):
    cdef const CBinding* b
    buffers, params = [], {}
    for i in range(d.buffers.size()):
        b = &d.buffers[i]
        buffers.append((b.index, core.operand_name(b.operand).decode()))
        if b.bytes.size():
            params[b.index] = bytes(b.bytes)
    return {
        "kernel": d.kernel.decode(),
        "threadgroups": (d.threadgroups[0], d.threadgroups[1], d.threadgroups[2]),
        "threads": (d.threads[0], d.threads[1], d.threads[2]),
        "buffers": buffers,
        "params": params,
        "threadgroup_memory": list(d.threadgroup_memory),
    }


cdef CDeviceCaps _caps(dict caps) except *:
    cdef CDeviceCaps c
    c.nax_policy = core.nax_policy_from_env()  # as the backends do
    if caps:
        c.nax = caps.get("nax", c.nax)
        c.simd_width = caps.get("simd_width", c.simd_width)
        c.max_threads_per_threadgroup = caps.get("max_threads_per_threadgroup",
                                                 c.max_threads_per_threadgroup)
        c.max_threadgroup_memory = caps.get("max_threadgroup_memory", c.max_threadgroup_memory)
        c.nax_kernels = caps.get("nax_kernels", c.nax_kernels)
        c.bfloat_kernels = caps.get("bfloat_kernels", c.bfloat_kernels)
    return c


def _metal_plan(x, wq, scales, biases=None, transpose=True, group_size=128, bits=1,
                mode="affine", caps=None):
    cdef CQuantSpec spec = _spec(group_size, bits, mode, "quantized_matmul")
    keep = []
    cdef CMatmulPlan plan = _matmul_plan(keep, x, wq, scales, biases, transpose, spec)
    return _dispatch_dict(core.plan_matmul(plan, _caps(caps)))


def _metal_plan_quantize(w, group_size=128, bits=1, mode="affine", caps=None):
    cdef CQuantSpec spec = _spec(group_size, bits, mode, "quantize")
    a = _as_array(w, "w", "quantize")
    cdef CQuantizePlan plan = core.plan_quantize(_ref(a), spec)
    return _dispatch_dict(core.metal_plan_quantize(plan, _caps(caps)))


def _metal_plan_dequantize(wq, scales, biases=None, group_size=128, bits=1, mode="affine",
                           caps=None):
    cdef CQuantSpec spec = _spec(group_size, bits, mode, "dequantize")
    keep = []
    cdef CDequantizePlan plan = _dequantize_plan(keep, wq, scales, biases, spec, NULL)
    return _dispatch_dict(core.metal_plan_dequantize(plan, _caps(caps)))

def _cpu_kernel_plan(x, wq, scales, biases=None, transpose=True, group_size=128, bits=1,
                     mode="affine", layout="mlx", isa=""):
    """Private, for routing tests: the CPU kernel choose_cpu_kernel picks for
    this call on `isa` ('' = the active one), without running it."""
    cdef CQuantSpec spec = _spec(group_size, bits, mode, "quantized_matmul")
    keep = []
    cdef CMatmulPlan plan = _matmul_plan(keep, x, wq, scales, biases, transpose, spec, layout)
    cdef CCpuKernelChoice c = core.plan_cpu_kernel(plan, isa.encode())
    return {"kernel": core.cpu_kernel_name(c.kernel).decode(), "slabs": c.slabs,
            "serial": c.serial, "why": c.why.decode()}


def cpu_kernels():
    """The CPU kernel variants: compiled in, runnable here, and in use."""
    return {
        "compiled": [n.decode() for n in core.cpu_kernels_compiled()],
        "supported": [n.decode() for n in core.cpu_kernels_supported()],
        "active": core.cpu_kernel_active().decode(),
    }


def cpu_preferred_layout(bits=1, group_size=128, mode="affine"):
    """The weight layout the active CPU kernels read fastest (see
    quantized_matmul's layout=): 'interleaved16' or 'mlx'."""
    cdef CQuantSpec spec = _spec(group_size, bits, mode, "cpu_preferred_layout")
    return core.layout_name(core.cpu_preferred_layout(spec)).decode()


def _set_cpu_isa(str name):
    """Private, for tests and benchmarks: switch the CPU kernel variant."""
    core.set_cpu_kernel(name.encode())


def set_num_threads(n):
    """Threads used by the CPU kernels (default: the available cores)."""
    if isinstance(n, bool) or not hasattr(n, "__index__"):
        raise TypeError(f"[set_num_threads] n must be an int, got {type(n).__name__}")
    cdef int c_n = n
    with nogil:  # waits for a running kernel call to finish
        core.set_num_threads(c_n)


def _set_parallel_threshold(int64_t work):
    """Private, for tests: calls below `work` (M*N*K*bits) stay on one
    thread; 0 parallelizes everything, -1 restores the default."""
    core.set_parallel_threshold(work)


def _add_bias(cnp.ndarray y, cnp.ndarray bias):
    """Private, for QuantizedLinear: y += bias over y's last axis, in place, each sum as
    np.add(y, bias, out=y, casting="unsafe") rounds it, for C-contiguous, native float32,
    float16 or bfloat16 y (..., N) and bias (N,) that shares no memory with y (the layer's
    own copy); False (nothing done) for anything else."""
    cdef CDType yd = _core_dtype(y.dtype), bd = _core_dtype(bias.dtype)
    if (yd == CDType.unsupported or yd == CDType.uint32 or bd == CDType.unsupported
            or bd == CDType.uint32 or y.ndim == 0 or bias.ndim != 1
            or bias.shape[0] != y.shape[y.ndim - 1] or not cnp.PyArray_IS_C_CONTIGUOUS(y)
            or not cnp.PyArray_IS_C_CONTIGUOUS(bias) or not cnp.PyArray_ISWRITEABLE(y)
            or not cnp.PyArray_ISNOTSWAPPED(y) or not cnp.PyArray_ISNOTSWAPPED(bias)):
        return False
    cdef int64_t n = bias.shape[0]
    cdef int64_t rows = y.size // n if n else 0
    with nogil:
        core.add_bias(cnp.PyArray_DATA(y), yd, rows, n, cnp.PyArray_DATA(bias), bd)
    return True


def get_num_threads():
    """Threads used by the CPU kernels."""
    return core.get_num_threads()


def _read_memory(a):
    """Private, for the decode benchmark: reads every byte of the
    C-contiguous array ``a`` once with the CPU kernels' threads and returns
    the xor of all its bytes. Timed over an array larger than the last-level cache, it gives
    the memory read bandwidth the kernels are measured against."""
    cdef cnp.ndarray arr = np.ascontiguousarray(a)
    cdef const void* data = cnp.PyArray_DATA(arr)
    cdef size_t nbytes = arr.nbytes
    cdef uint64_t result
    with nogil:
        result = core.read_memory(data, nbytes)
    return result
