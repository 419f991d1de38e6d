"""llama.cpp's Q4_1 and Q8_0 blocks as pyonebit affine arrays, without rounding.

Q4_1 (``block_q4_1`` in ggml-common.h): 32 weights in 20 bytes, float16 ``d``
and ``m``, then 16 bytes; weight ``j < 16`` is the low nibble of byte ``j``,
weight ``j + 16`` its high nibble; value ``d * q + m``. That is pyonebit's
(MLX's) affine 4-bit format at group size 32 with scale ``d`` and bias ``m``;
only the order of the nibbles differs (MLX: weight ``k`` at bits
``4 (k % 8)`` of word ``k / 8``).

Q8_0 (``block_q8_0``): 32 weights in 34 bytes, float16 ``d`` then 32 int8
``q``; value ``d * q``. As affine 8-bit at group size 32: code ``q + 128``,
scale ``d``, bias ``-128 d`` (exact in float16: a power-of-two multiple), so
``d (q + 128) - 128 d = d q`` with no rounding in float32.
"""
import numpy as np

GROUP = 32  # both block types cover 32 weights
Q4_1_BYTES, Q8_0_BYTES = 20, 34


def _blocks(raw, n_rows, k, block_bytes, name):
    """The raw bytes as (n_rows, k / 32, block_bytes), checking the size."""
    raw = np.ascontiguousarray(raw).view(np.uint8).reshape(-1)
    if k % GROUP:
        raise ValueError(f"{name}: in_features {k} is not a multiple of the block size {GROUP}")
    expected = n_rows * (k // GROUP) * block_bytes
    if raw.size != expected:
        raise ValueError(f"{name}: {raw.size} bytes, expected {expected} for ({n_rows}, {k})")
    return raw.reshape(n_rows, k // GROUP, block_bytes)


def _scale_pairs(blocks, count):
    """The first `count` float16 values of each block, as (n, groups) arrays."""
    halves = np.ascontiguousarray(blocks[..., : 2 * count]).view(np.float16)
    return [np.ascontiguousarray(halves[..., i]) for i in range(count)]


def q4_1_to_affine(raw, n_rows, k, name="Q4_1 tensor"):
    """(wq uint32 (n, k / 8), scales float32 (n, k / 32), biases float32)."""
    blocks = _blocks(raw, n_rows, k, Q4_1_BYTES, name)
    d, m = _scale_pairs(blocks, 2)
    qs = blocks[..., 4:]
    codes = np.concatenate([qs & 0xF, qs >> 4], axis=-1)  # weights 0..15, then 16..31
    return pack_codes(codes.reshape(n_rows, k), 4), _f32(d), _f32(m)


def q8_0_to_affine(raw, n_rows, k, name="Q8_0 tensor"):
    """(wq uint32 (n, k / 4), scales float32 (n, k / 32), biases float32)."""
    blocks = _blocks(raw, n_rows, k, Q8_0_BYTES, name)
    (d,) = _scale_pairs(blocks, 1)
    codes = (blocks[..., 2:].view(np.int8).astype(np.int16) + 128).astype(np.uint8)
    return pack_codes(codes.reshape(n_rows, k), 8), _f32(d), _f32(d) * np.float32(-128)


def _f32(halves):
    # float16 -> float32 is exact; float32 scales make pyonebit.dequantize
    # compute d * q + m in float32, as gguf-py and the kernels do (with
    # float16 scales it would round the weights to float16).
    return halves.astype(np.float32)


def pack_codes(codes, bits):
    """MLX's packing: code k at bits ``bits * (k % per_word)`` of word ``k / per_word``."""
    per_word = 32 // bits
    c = codes.astype(np.uint32).reshape(codes.shape[0], -1, per_word)
    shifts = (np.arange(per_word, dtype=np.uint32) * bits)
    return np.bitwise_or.reduce(c << shifts, axis=-1)
