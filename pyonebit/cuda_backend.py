"""The "cuda" backend, Python side: arrays of PyTorch, CuPy or anything with
``__cuda_array_interface__`` become device pointers; the result is allocated
by the caller's framework, on its device, and computed on its current stream,
with no copies. NumPy (host) inputs are copied to the device and the result
back (explicit, synchronous transfers: correct but slow, for tests and
convenience). The kernels and the core's validation are in the extension
``pyonebit._cuda``, built only where a CUDA compiler was found."""
from __future__ import annotations

import operator
import sys
from typing import Any, NamedTuple

import numpy as np

from . import _bfloat16, _core
from ._dtype_error import DTypeError

_OP = "quantized_matmul"
_module: Any = None  # pyonebit._cuda once loaded; False when it cannot be
_usable: bool | None = None
_tracing = 0  # open pyonebit.trace() blocks
_trace_log: list[dict] = []


def extension():
    """pyonebit._cuda, or None where it was not built (no CUDA compiler)."""
    global _module
    if _module is None:
        try:
            from . import _cuda
            _module = _cuda
        except ImportError:
            _module = False
    return _module or None


def available() -> bool:
    """True when the extension was built and a CUDA device is usable."""
    global _usable
    if _usable is None:
        ext = extension()
        _usable = bool(ext is not None and ext.device_count() > 0)
    return _usable


class _DeviceArray(NamedTuple):
    ptr: int
    shape: tuple
    dtype: str  # "float32", "float16", "bfloat16", "uint32", or the producer's name
    device: int
    framework: str  # "torch", "cupy" or "cai" (another __cuda_array_interface__ producer)
    obj: Any  # keeps the memory alive (a contiguous copy when the input was strided)

    @property
    def nbytes(self) -> int:
        size = int(np.prod(self.shape, dtype=np.int64))
        return size * (4 if self.dtype in ("float32", "uint32") else 2)


def _torch_view(t, name: str):
    if not t.is_cuda:
        return None
    import torch

    names = _torch_dtype_names(torch)
    if not t.is_contiguous():
        t = t.contiguous()
    return _DeviceArray(t.data_ptr(), tuple(t.shape), names.get(t.dtype, str(t.dtype)[6:]),
                        t.device.index, "torch", t)


def _cupy_view(a, name: str):
    import cupy

    if not a.flags.c_contiguous:
        a = cupy.ascontiguousarray(a)
    return _DeviceArray(a.data.ptr, tuple(a.shape), np.dtype(a.dtype).name, a.device.id, "cupy", a)


def _cai_view(obj, name: str):
    cai = obj.__cuda_array_interface__
    shape = tuple(cai["shape"])
    dtype = np.dtype(cai["typestr"])
    strides = cai.get("strides")
    if strides is not None and tuple(strides) != tuple(
            int(np.prod(shape[i + 1:], dtype=np.int64)) * dtype.itemsize for i in range(len(shape))):
        raise ValueError(f"[{_OP}] {name} must be C-contiguous (its __cuda_array_interface__ has "
                         f"strides {tuple(strides)})")
    if not dtype.isnative:
        raise DTypeError(f"[{_OP}] {name} must be in native byte order, got {dtype.str}")
    return _DeviceArray(cai["data"][0], shape, dtype.name, -1, "cai", obj)


def _device_view(obj, name: str):
    """A _DeviceArray for a device array, None for host data."""
    if obj is None:
        return None
    if isinstance(obj, _DeviceArray):  # a layer's resident weight (DeviceWeights)
        return obj
    framework = type(obj).__module__.split(".", 1)[0]
    if framework == "torch":
        return _torch_view(obj, name)
    if framework == "cupy" and hasattr(obj, "__cuda_array_interface__"):
        return _cupy_view(obj, name)
    if hasattr(obj, "__cuda_array_interface__"):
        return _cai_view(obj, name)
    return None


def is_device_array(obj) -> bool:
    """True for a CUDA array of PyTorch, CuPy or another __cuda_array_interface__ producer."""
    framework = type(obj).__module__.split(".", 1)[0]
    if framework == "torch":
        return bool(getattr(obj, "is_cuda", False))
    return hasattr(obj, "__cuda_array_interface__")


def _stream(framework: str, device: int) -> int:
    """The framework's current stream on device (0, the legacy default stream, otherwise)."""
    if framework == "torch":
        import torch

        return _torch_stream(torch, device)
    if framework == "cupy":
        import cupy

        return cupy.cuda.get_current_stream().ptr
    return 0


def _allocate(lead: _DeviceArray, shape: tuple, dtype: str):
    if lead.framework == "torch":
        import torch

        return torch.empty(shape, dtype=getattr(torch, dtype), device=lead.obj.device)
    import cupy

    if dtype == "bfloat16":
        raise DTypeError(f"[{_OP}] the result would be bfloat16, which CuPy cannot hold; "
                        "pass PyTorch tensors for bfloat16")
    with cupy.cuda.Device(lead.device if lead.device >= 0 else cupy.cuda.runtime.getDevice()):
        return cupy.empty(shape, dtype=dtype)


def _check_int(value, name: str) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"[{_OP}] {name} must be an int, got {type(value).__name__}")
    return operator.index(value)


def _overlaps(a: _DeviceArray, b: _DeviceArray) -> bool:
    return a.ptr < b.ptr + b.nbytes and b.ptr < a.ptr + a.nbytes


# Validated plans by signature (shapes, dtypes, spec): the core's validation depends on
# those alone, so a repeated call only sets the pointers (Plan.launch). Bounded: a model
# has few distinct shapes; the cache is emptied when it grows past this.
_PLAN_CACHE_SIZE = 4096
_plans: dict = {}
_torch_names: dict = {}  # torch dtype -> our dtype name, filled once torch is imported


def _torch_dtype_names(torch) -> dict:
    if not _torch_names:
        _torch_names.update({torch.float32: "float32", torch.float16: "float16",
                             torch.bfloat16: "bfloat16"})
        if hasattr(torch, "uint32"):
            _torch_names[torch.uint32] = "uint32"
    return _torch_names


def _fast_operand(a, tensor_type, device: int):
    """(pointer, shape, dtype) of a contiguous torch tensor on device or a resident weight;
    None for anything else (the general path handles and checks it)."""
    if type(a) is tensor_type:
        if a.get_device() != device or not a.is_contiguous():
            return None
        return a.data_ptr(), a.shape, a.dtype
    if type(a) is _DeviceArray and a.framework == "resident" and a.device == device:
        return a.ptr, a.shape, a.dtype
    return None


def _torch_fast_path(x, wq, scales, biases, transpose, group_size, bits, mode, layout):
    """The result for the common call (contiguous PyTorch tensors or a layer's resident
    weights on x's device, no out=, plain argument types), or None for the general path."""
    torch = sys.modules.get("torch")
    if torch is None or type(x) is not torch.Tensor or layout != "mlx" or type(transpose) is not bool \
            or type(group_size) is not int or type(bits) is not int or type(mode) is not str:
        return None
    device = x.get_device()
    if device < 0 or not x.is_contiguous():
        return None
    ops = [_fast_operand(a, torch.Tensor, device) for a in (wq, scales)]
    ops.append(_fast_operand(biases, torch.Tensor, device) if biases is not None else (0, (), None))
    if None in ops:
        return None
    (pw, sw, dw), (ps, ss, ds), (pb, sb, db) = ops
    key = (x.shape, x.dtype, sw, dw, ss, ds, sb, db, transpose, group_size, bits, mode)
    plan = _plans.get(key)
    if plan is None:
        return None
    if _tracing:
        _trace_log.append({"backend": "cuda", "kernel": plan.kernel,
                           "grid": tuple(plan.out_shape[-1:]) + (0, 0), "threadgroup": (0, 0, 0)})
    out = torch.empty(plan.out_shape, dtype=plan.torch_dtype, device=device)
    plan.launch(x.data_ptr(), pw, ps, pb, out.data_ptr(), _torch_stream(torch, device))
    return out


def _plan_key(x, wq, scales, biases, transpose, group_size, bits, mode):
    return (x.shape, x.dtype, wq.shape, wq.dtype, scales.shape, scales.dtype,
            biases.shape if biases is not None else (), biases.dtype if biases is not None else None,
            transpose, group_size, bits, mode)


def _torch_stream(torch, device: int) -> int:
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)  # no Stream object built
    if raw is not None:
        return raw(device)
    return torch.cuda.current_stream(device).cuda_stream


def quantized_matmul(x, wq, scales, biases=None, transpose=True, group_size=128, bits=1,
                     mode="affine", out=None, layout="mlx"):
    """pyonebit.quantized_matmul on the GPU (see its docstring). Device arrays in,
    the same framework's array out, on its current stream; NumPy in, NumPy out."""
    if out is None and _usable:
        y = _torch_fast_path(x, wq, scales, biases, transpose, group_size, bits, mode, layout)
        if y is not None:
            return y
    ext = extension()
    if not available():
        reason = ext.device_error() if ext is not None else "pyonebit was built without nvcc"
        raise ValueError(f"[{_OP}] backend 'cuda' is not available here ({reason})")
    group_size, bits = _check_int(group_size, "group_size"), _check_int(bits, "bits")
    if not isinstance(mode, str):
        raise TypeError(f"[{_OP}] mode must be a str, got {type(mode).__name__}")
    if layout != "mlx":  # the core's messages for the other layouts
        if not isinstance(layout, str):
            raise TypeError(f"[{_OP}] layout must be a str, got {type(layout).__name__}")
        if layout != "interleaved16":
            raise ValueError(f"[{_OP}] layout must be one of 'mlx', 'interleaved16', got {layout!r}")
        raise ValueError(f"[{_OP}] layout='interleaved16' runs on the 'cpu' backend only, "
                         "not on 'cuda'")
    names = ("x", "wq", "scales", "biases")
    inputs = (x, wq, scales, biases)
    for name, a in zip(names[:3], inputs):
        if a is None:
            raise TypeError(f"[{_OP}] {name} must be an array, got None")
    views = [_device_view(a, n) for n, a in zip(names, inputs)]
    on_device = [v for v in views if v is not None]
    # The result's framework: x's or another input's; only NumPy and resident weights: NumPy.
    lead = next((v for v in on_device if v.framework in ("torch", "cupy")),
                next((v for v in on_device if v.framework == "cai"), None))
    if lead is not None and len({v.device for v in on_device if v.device >= 0}) > 1:
        raise ValueError(f"[{_OP}] x, wq, scales and biases must be on one CUDA device, got "
                         + ", ".join(f"{n}: cuda:{v.device}" for n, v in zip(names, views)
                                     if v is not None))
    stream = _stream(lead.framework, lead.device) if lead is not None else 0
    if lead is None and on_device and any(v.device != ext.current_device() for v in on_device):
        raise ValueError(f"[{_OP}] the layer's weights are on cuda:{on_device[0].device}, "
                         f"not the current device cuda:{ext.current_device()}")
    # Host inputs go to the device with explicit copies, on the stream of the call.
    keep = []
    for i, (name, a) in enumerate(zip(names, inputs)):
        if a is not None and views[i] is None:
            host = _core._as_array(a, name, _OP)
            buf = ext.DeviceBuffer(host.nbytes)
            buf.upload(host.reshape(-1).view(np.uint8), stream)
            keep.append(buf)
            views[i] = _DeviceArray(buf.ptr, host.shape, host.dtype.name, -1, "numpy", buf)
    vx, vw, vs, vb = views
    plan = ext.Plan(vx.ptr, vx.shape, vx.dtype, vw.ptr, vw.shape, vw.dtype, vs.ptr, vs.shape,
                    vs.dtype, vb.ptr if vb else 0, vb.shape if vb else (), vb.dtype if vb else "",
                    bool(transpose), group_size, bits, mode)
    if _tracing:
        _trace_log.append({"backend": "cuda", "kernel": plan.kernel,
                           "grid": tuple(plan.out_shape[-1:]) + (0, 0), "threadgroup": (0, 0, 0)})
    if lead is not None and lead.framework == "torch" and not keep and type(transpose) is bool:
        _remember_plan(plan, x, wq, scales, biases, transpose, group_size, bits, mode)
    if lead is None:  # NumPy in, NumPy out
        result_dtype = _bfloat16.as_dtype(plan.out_dtype)
        if out is None:
            out = np.empty(plan.out_shape, result_dtype)
        else:
            _core._check_out(out, plan.out_shape, result_dtype,
                             [a for a in inputs if isinstance(a, np.ndarray)], _OP)
        dev_out = ext.DeviceBuffer(out.nbytes)
        plan.run(dev_out.ptr, stream)
        dev_out.download(out.reshape(-1).view(np.uint8), stream)
        return out
    if out is None:
        out = _allocate(lead, plan.out_shape, plan.out_dtype)
        vo = _device_view(out, "out")
    else:
        vo = _device_view(out, "out")
        if vo is None or vo.obj is not out:
            raise TypeError(f"[{_OP}] out must be a C-contiguous device array like x")
        if vo.dtype != plan.out_dtype:
            raise DTypeError(f"[{_OP}] out must have dtype {plan.out_dtype} (the result dtype), "
                             f"got {vo.dtype}")
        if vo.shape != plan.out_shape:
            raise ValueError(f"[{_OP}] out must have shape {plan.out_shape}, got {vo.shape}")
        if any(_overlaps(vo, v) for v in views if v is not None):
            raise ValueError(f"[{_OP}] out must not overlap an input array")
    plan.run(vo.ptr, stream)
    if keep:  # the uploads' buffers must outlive the kernel
        ext.synchronize(stream)
    return out


def _remember_plan(plan, x, wq, scales, biases, transpose, group_size, bits, mode):
    """Keeps plan for _torch_fast_path, keyed as it looks it up (shapes as torch.Size)."""
    import torch

    if type(x) is not torch.Tensor or not all(
            type(a) is torch.Tensor or (type(a) is _DeviceArray and a.framework == "resident")
            for a in (wq, scales) + ((biases,) if biases is not None else ())):
        return
    if len(_plans) >= _PLAN_CACHE_SIZE:
        _plans.clear()
    plan.torch_dtype = getattr(torch, plan.out_dtype)
    _plans[_plan_key(x, wq, scales, biases, transpose, group_size, bits, mode)] = plan


class DeviceWeights:
    """A layer's packed weight copied to the current device once
    (QuantizedLinear(backend="cuda")); calls take device or NumPy x."""

    def __init__(self, wq: np.ndarray, scales: np.ndarray, biases: np.ndarray | None,
                 bias: np.ndarray | None, group_size: int, bits: int, mode: str):
        ext = extension()
        self._buffers: list = []
        self._arrays = [self._upload(ext, a) if a is not None else None for a in (wq, scales, biases)]
        ext.synchronize(0)
        self._spec = (int(group_size), int(bits), str(mode))  # plain types: the fast path's
        self._bias = bias
        self._device_bias: dict = {}  # (framework, device) -> bias as a float32 device array

    def _upload(self, ext, a: np.ndarray) -> _DeviceArray:
        buf = ext.DeviceBuffer(a.nbytes)
        buf.upload(np.ascontiguousarray(a).reshape(-1).view(np.uint8), 0)
        return _DeviceArray(buf.ptr, a.shape, a.dtype.name, ext.current_device(), "resident", buf)

    def __call__(self, x, out=None):
        y = quantized_matmul(x, *self._arrays, True, *self._spec, out=out)
        if self._bias is not None:
            self._add_bias(y)
        return y

    def _add_bias(self, y):
        """y += bias, computed in float32 and rounded to y's dtype (as np.add with casting='unsafe')."""
        if isinstance(y, np.ndarray):
            if not _core._add_bias(y, self._bias):
                np.add(y, self._bias, out=y, casting="unsafe")
            return
        framework = type(y).__module__.split(".", 1)[0]
        key = (framework, str(getattr(y, "device", "")))
        if key not in self._device_bias:
            b32 = self._bias.astype(np.float32)
            if framework == "torch":
                import torch

                self._device_bias[key] = torch.from_numpy(b32).to(y.device)
            else:
                import cupy

                self._device_bias[key] = cupy.asarray(b32)
        b = self._device_bias[key]
        if framework == "torch":
            y.copy_(y.float().add_(b))
        else:
            import cupy

            y[...] = (y.astype(cupy.float32) + b).astype(y.dtype)


def trace_start() -> int:
    global _tracing
    _tracing += 1
    return len(_trace_log)


def trace_stop(token: int) -> list[dict]:
    global _tracing
    _tracing -= 1
    entries = _trace_log[token:]
    if not _tracing:
        _trace_log.clear()
    return entries
