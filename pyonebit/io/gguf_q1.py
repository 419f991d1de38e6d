"""llama.cpp's Q1_0 blocks <-> pyonebit's symmetric 1-bit arrays (NumPy only).

A Q1_0 block covers 128 consecutive weights of a row in 18 bytes: a
little-endian float16 ``d``, then 16 bytes of sign bits; weight ``j`` of the
block is bit ``j % 8`` of byte ``j // 8`` (least significant bit first), and
decodes to ``+d`` when set, ``-d`` when clear. This is what ggml's
``block_q1_0`` (``ggml/src/ggml-common.h``), ``quantize_row_q1_0_ref`` and
``dequantize_row_q1_0`` (``ggml/src/ggml-quants.c``) define in
ggml-org/llama.cpp, read for this module; no code is taken from there.

pyonebit's symmetric mode at group size 128 packs the same bits as a
little-endian uint32 stream (weight ``k`` at bit ``k % 32`` of word
``k // 32``), so the 16 bytes of a block are exactly the 4 words of that
group: converting is a byte shuffle, with no per-bit work and no rounding.
"""
from __future__ import annotations

import numpy as np

Q1_0_BLOCK_WEIGHTS = 128
Q1_0_BLOCK_BYTES = 18  # float16 d + 128 bits
_SCALE_BYTES = 2
_BITS_BYTES = Q1_0_BLOCK_WEIGHTS // 8


def q1_0_blocks(wq: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Q1_0 bytes of symmetric 1-bit weights.

    ``wq``: uint32 ``(..., K // 32)``; ``scales``: float16 ``(..., K // 128)``.
    Returns uint8 ``(..., (K // 128) * 18)``: each row's blocks in order, as
    GGUF stores a Q1_0 tensor. The caller has checked shapes and dtypes.
    """
    lead = scales.shape[:-1]
    n_blocks = scales.shape[-1]
    # '<' views give the file's little-endian bytes on any host.
    scale_bytes = np.ascontiguousarray(scales, dtype="<f2").view(np.uint8)
    bit_bytes = np.ascontiguousarray(wq, dtype="<u4").view(np.uint8)
    blocks = np.empty(lead + (n_blocks, Q1_0_BLOCK_BYTES), np.uint8)
    blocks[..., :_SCALE_BYTES] = scale_bytes.reshape(lead + (n_blocks, _SCALE_BYTES))
    blocks[..., _SCALE_BYTES:] = bit_bytes.reshape(lead + (n_blocks, _BITS_BYTES))
    return blocks.reshape(lead + (n_blocks * Q1_0_BLOCK_BYTES,))


def packed_from_q1_0(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`q1_0_blocks`: uint8 ``(..., n_blocks * 18)`` ->
    ``(wq, scales)``, uint32 ``(..., n_blocks * 4)`` and float16
    ``(..., n_blocks)``, both native byte order and freshly allocated."""
    lead = blocks.shape[:-1]
    if blocks.shape[-1] % Q1_0_BLOCK_BYTES:
        raise ValueError(
            f"[load_gguf] a Q1_0 row holds {blocks.shape[-1]} bytes, not a multiple of {Q1_0_BLOCK_BYTES}"
        )
    n_blocks = blocks.shape[-1] // Q1_0_BLOCK_BYTES
    by_block = blocks.reshape(lead + (n_blocks, Q1_0_BLOCK_BYTES))
    scale_bytes = np.ascontiguousarray(by_block[..., :_SCALE_BYTES])
    bit_bytes = np.ascontiguousarray(by_block[..., _SCALE_BYTES:])
    scales = scale_bytes.view("<f2").reshape(lead + (n_blocks,)).astype(np.float16)
    wq = bit_bytes.view("<u4").reshape(lead + (n_blocks * _BITS_BYTES // 4,)).astype(np.uint32)
    return wq, scales
