"""QuantizedLinear: a linear layer whose weight stays packed.

The layer is the unit users load from checkpoints (``load_mlx``, ``load_gguf``)
and call from their own networks: ``y = x @ W_hat.T + bias`` with ``W_hat`` of
shape ``(out_features, in_features)`` in pyonebit's (MLX's) packed format.
"""
from __future__ import annotations

import operator
from typing import Sequence, cast

import numpy as np
import numpy.typing as npt

from . import _core, cuda_backend
from ._dequantize import dequantize
from ._dtype_error import DTypeError
from ._memory import aligned_empty


_SAME_BACKEND = object()  # QuantizedLinear.concatenate's default: the first layer's backend


def _owned_copy(a: np.ndarray) -> np.ndarray:
    """A read-only, page-aligned copy: the Metal backend wraps page-aligned
    memory without copying it, and the layer's weights cannot change under it."""
    owned = aligned_empty(a.shape, a.dtype)
    np.copyto(owned, a)
    owned.flags.writeable = False
    return owned


def _check_ids(ids: npt.ArrayLike, n: int, op: str) -> np.ndarray:
    """``ids`` as an int64 array, each in ``[0, n)``."""
    a = np.asarray(ids)
    if a.dtype.kind not in "iu":
        raise DTypeError(f"[{op}] ids must be integers, got dtype {a.dtype}")
    if a.size and (a.min() < 0 or a.max() >= n):
        bad = a[(a < 0) | (a >= n)].flat[0]
        raise ValueError(f"[{op}] ids must be in [0, {n}) (out_features), got {bad}")
    return a.astype(np.int64, copy=False)


class QuantizedLinear:
    """``y = x @ W_hat.T (+ bias)`` with ``W_hat`` (out_features, in_features) packed.

    ``wq`` is uint32 ``(out_features, in_features * bits / 32)``; ``scales``
    (and ``biases`` in affine mode) are ``(out_features, in_features /
    group_size)``; ``bias`` is an optional float vector ``(out_features,)``.
    The arrays are validated once and copied into page-aligned, read-only
    memory owned by the layer. ``backend`` (one of :func:`pyonebit.backends`,
    ``None`` for the default) is used by every call.

    On the CPU backend the layer keeps its weight (words, scales, biases) in
    the layout the CPU kernels read fastest (:func:`pyonebit.cpu_preferred_layout`:
    ``"interleaved16"`` at 1 bit with AVX-512 or AVX2, where one load reads a
    word of 16 rows; docs/performance.md has the measurements): same size,
    reordered once here.
    ``layout`` says which; ``wq``, ``scales`` and ``biases`` always give MLX's
    order (new arrays when the stored order differs).
    """

    def __init__(
        self,
        wq: npt.ArrayLike,
        scales: npt.ArrayLike,
        biases: npt.ArrayLike | None = None,
        bias: npt.ArrayLike | None = None,
        *,
        group_size: int = 128,
        bits: int = 1,
        mode: str = "affine",
        backend: str | None = None,
    ) -> None:
        op = "QuantizedLinear"
        # The arguments as arrays (views where possible), named apart for the type checker.
        w_arr = _core._as_array(wq, "wq", op)
        s_arr = _core._as_array(scales, "scales", op)
        b_arr = _core._as_array(biases, "biases", op) if biases is not None else None
        if w_arr.ndim != 2:
            raise ValueError(f"[{op}] wq must be 2-D (out_features, in_features * bits / 32), "
                             f"got shape {w_arr.shape}")
        backends = _core.backends() + (["cuda"] if cuda_backend.available() else [])
        if backend is not None and backend not in backends:
            raise ValueError(f"[{op}] backend must be one of {backends} or None, "
                             f"got {backend!r}")
        _core._check_spec(group_size, bits, mode, op)
        in_features = self._in_features_of(w_arr, bits, op)
        # The core's checks of the weight (dtypes, shapes, group size, mode), in the layer's name.
        _core._check_weight(w_arr, s_arr, b_arr, group_size, bits, mode, op)
        # Read-only through the properties below: the arrays were validated
        # against these values once, and the kernels trust them.
        self._in_features = in_features
        self._out_features = int(w_arr.shape[0])
        self._bits = operator.index(bits)
        self._group_size = operator.index(group_size)
        self._mode = mode
        self._backend = backend
        on_cpu = (backend or _core.backends()[0]) == "cpu"
        self._layout = _core.cpu_preferred_layout(bits, group_size, mode) if on_cpu else "mlx"
        stored = (lambda a: a) if self.layout == "mlx" else _core.interleave16
        # As stored (in self.layout); the properties give MLX's order.
        self._wq = _owned_copy(stored(w_arr))
        self._scales = _owned_copy(stored(s_arr))
        self._biases = _owned_copy(stored(b_arr)) if b_arr is not None else None
        self._bias = self._check_bias(bias, op)
        # backend="cuda": a device copy of the weight too (the host one serves wq, take ...).
        self._device = cuda_backend.DeviceWeights(self._wq, self._scales, self._biases, self._bias,
                                                  self._group_size, self._bits, mode) \
            if backend == "cuda" else None

    @property
    def in_features(self) -> int:
        """K, the length of an input row."""
        return self._in_features

    @property
    def out_features(self) -> int:
        """N, the length of an output row (rows of the weight)."""
        return self._out_features

    @property
    def bits(self) -> int:
        """Bits per weight code."""
        return self._bits

    @property
    def group_size(self) -> int:
        """Weights per scale (and bias)."""
        return self._group_size

    @property
    def mode(self) -> str:
        """``"affine"`` or ``"symmetric"``."""
        return self._mode

    @property
    def backend(self) -> str | None:
        """The backend every call uses (``None``: the default)."""
        return self._backend

    @property
    def layout(self) -> str:
        """The stored order of the weight: ``"mlx"`` or ``"interleaved16"``."""
        return self._layout

    @property
    def bias(self) -> np.ndarray | None:
        """The float vector added to every output row (out_features,), read-only, or None."""
        return self._bias

    @staticmethod
    def _in_features_of(wq: np.ndarray, bits: int, op: str) -> int:
        """in_features from the packed width of a 2-D wq (bits already checked)."""
        packed_bits = int(wq.shape[1]) * 32
        if packed_bits % operator.index(bits):
            raise ValueError(f"[{op}] wq's last dimension ({wq.shape[1]} words) must hold a whole "
                             f"number of {bits}-bit codes")
        return packed_bits // operator.index(bits)

    def _check_bias(self, bias, op: str) -> np.ndarray | None:
        if bias is None:
            return None
        b = _core._as_array(bias, "bias", op)
        if b.shape != (self.out_features,):
            raise ValueError(f"[{op}] bias must have shape ({self.out_features},) "
                             f"(out_features), got {b.shape}")
        if b.dtype.name not in ("float32", "float16", "bfloat16"):
            raise DTypeError(f"[{op}] bias must be float32, float16 or bfloat16, got {b.dtype}")
        return _owned_copy(b)

    @classmethod
    def from_float(
        cls,
        weight: npt.ArrayLike,
        bias: npt.ArrayLike | None = None,
        *,
        bits: int = 1,
        group_size: int = 128,
        mode: str = "affine",
        backend: str | None = None,
    ) -> "QuantizedLinear":
        """Quantize a float ``weight`` of shape (out_features, in_features)."""
        w = _core._as_array(weight, "weight", "QuantizedLinear.from_float")
        if w.ndim != 2:
            raise ValueError("[QuantizedLinear.from_float] weight must be 2-D "
                             f"(out_features, in_features), got shape {w.shape}")
        wq, scales, biases = _core.quantize(w, group_size, bits, mode)
        return cls(wq, scales, biases, bias, group_size=group_size, bits=bits, mode=mode,
                   backend=backend)

    @classmethod
    def concatenate(
        cls,
        layers: Sequence["QuantizedLinear"],
        *,
        backend: str | None | object = _SAME_BACKEND,
    ) -> "QuantizedLinear":
        """One layer for several that take the same input: its output is theirs side by
        side, ``np.concatenate([layer(x) for layer in layers], axis=-1)``, in one call.

        A decoder's q / k / v or gate / up projections fused: one pass over ``x`` and one
        kernel launch instead of three or two, which a decode step on CUDA pays for in
        launches (docs/cuda.md). The layers must agree on ``in_features``, ``bits``,
        ``group_size``, ``mode`` and the scales' dtype, and have a ``bias`` all or none
        (of one dtype). The weights are copied; ``backend`` defaults to the first layer's.
        """
        op = "QuantizedLinear.concatenate"
        if isinstance(layers, QuantizedLinear) or not hasattr(layers, "__len__"):
            raise TypeError(f"[{op}] layers must be a sequence of QuantizedLinear, got "
                            f"{type(layers).__name__}")
        if len(layers) == 0:
            raise ValueError(f"[{op}] layers must hold at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, QuantizedLinear):
                raise TypeError(f"[{op}] layers[{i}] must be a QuantizedLinear, got "
                                f"{type(layer).__name__}")
        first = layers[0]

        def same(what: str, value, error=ValueError) -> None:
            for i, layer in enumerate(layers[1:], 1):
                if value(layer) != value(first):
                    raise error(f"[{op}] every layer must have the {what} of layers[0] "
                                f"({value(first)}), layers[{i}] has {value(layer)}")

        same("in_features", lambda la: la.in_features)
        same("bits", lambda la: la.bits)
        same("group_size", lambda la: la.group_size)
        same("mode", lambda la: la.mode)
        same("scales dtype", lambda la: la._scales.dtype, DTypeError)
        same("bias (present or not)", lambda la: la.bias is not None)
        if first.bias is not None:
            same("bias dtype", lambda la: la.bias.dtype, DTypeError)

        def joined(arrays):
            return np.concatenate(arrays) if arrays[0] is not None else None

        return cls(joined([la.wq for la in layers]), joined([la.scales for la in layers]),
                   joined([la.biases for la in layers]), joined([la.bias for la in layers]),
                   group_size=first.group_size, bits=first.bits, mode=first.mode,
                   backend=first.backend if backend is _SAME_BACKEND else cast("str | None", backend))

    def _mlx_order(self, stored: np.ndarray) -> np.ndarray:
        if self.layout == "mlx":
            return stored
        a = _core.deinterleave16(stored)
        a.flags.writeable = False
        return a

    @property
    def wq(self) -> np.ndarray:
        """The packed weight (out_features, in_features * bits / 32), read-only."""
        return self._mlx_order(self._wq)

    @property
    def scales(self) -> np.ndarray:
        """The scales (out_features, in_features / group_size), read-only."""
        return self._mlx_order(self._scales)

    @property
    def biases(self) -> np.ndarray | None:
        """The biases (affine mode) like the scales, or None (symmetric), read-only."""
        return self._mlx_order(self._biases) if self._biases is not None else None

    def __call__(self, x: npt.ArrayLike, out: np.ndarray | None = None) -> np.ndarray:
        """``x @ W_hat.T (+ bias)`` for ``x`` of shape (..., in_features).

        The result dtype is that of ``x`` when it equals the scales' dtype,
        else float32. ``out``, if given, must be exactly that shape and dtype."""
        if self._device is not None:
            return self._device(x, out)
        y = _core.quantized_matmul(x, self._wq, self._scales, self._biases, True, self.group_size,
                                   self.bits, self.mode, self.backend, out, self.layout)
        if self.bias is not None and not _core._add_bias(y, self.bias):
            np.add(y, self.bias, out=y, casting="unsafe")  # what _add_bias computes, in NumPy
        return y

    def dequantize(self, dtype: npt.DTypeLike | None = None) -> np.ndarray:
        """``W_hat`` (out_features, in_features), in ``dtype`` (default: the scales').

        As :func:`pyonebit.dequantize`: ``float32`` from half-precision scales
        (or ``float64``) gives the exact weights the kernels multiply by."""
        return dequantize(self.wq, self.scales, self.biases, self.group_size, self.bits,
                          self.mode, dtype)

    def take(self, ids: npt.ArrayLike, dtype: npt.DTypeLike | None = None) -> np.ndarray:
        """Rows ``ids`` of ``W_hat``: an embedding lookup, shape ``ids.shape + (in_features,)``.

        ``ids`` are integers in ``[0, out_features)``, of any shape. Equal to
        ``self.dequantize(dtype)[ids]`` (``dtype`` defaults to the scales'),
        but only the rows asked for are dequantized, so a large vocabulary
        stays packed (as mlx-lm's ``QuantizedEmbedding``). The tied output
        projection (``QuantizedEmbedding.as_linear``) is the layer itself:
        ``layer(h)``. The layer's ``bias`` is not added.
        """
        rows = _check_ids(ids, self.out_features, "QuantizedLinear.take")
        flat = rows.reshape(-1)
        biases = self._stored_rows(self._biases, flat) if self._biases is not None else None
        w_hat = dequantize(self._stored_rows(self._wq, flat), self._stored_rows(self._scales, flat),
                           biases, self.group_size, self.bits, self.mode, dtype)
        return w_hat.reshape(rows.shape + (self.in_features,))

    def _stored_rows(self, stored: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` of a stored array, in MLX's order, without reordering
        the whole array (interleave16's formula: element c of row n sits at
        n0 * C + c * r + (n - n0), n0 the block's first row, r its rows)."""
        if self.layout == "mlx":
            return stored[rows]
        n_rows, cols = stored.shape
        n0 = rows - rows % 16
        r = np.minimum(16, n_rows - n0)
        index = (n0 * cols + rows - n0)[:, None] + np.arange(cols) * r[:, None]
        return stored.reshape(-1)[index]

    @property
    def nbytes(self) -> int:
        """Bytes of the packed weight, scales, biases and bias."""
        arrays = (self._wq, self._scales, self._biases, self.bias)
        return sum(a.nbytes for a in arrays if a is not None)

    def __repr__(self) -> str:
        return (f"QuantizedLinear(in_features={self.in_features}, "
                f"out_features={self.out_features}, bits={self.bits}, "
                f"group_size={self.group_size}, mode={self.mode!r}, dtype={self._scales.dtype}, "
                f"bias={self.bias is not None}, backend={self.backend!r}, layout={self.layout!r}, "
                f"nbytes={self.nbytes})")
