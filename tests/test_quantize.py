"""quantize / dequantize: shapes, round trip bounds, exact grid recovery, the
1-bit and symmetric rules, edge values, empty arrays."""
import numpy as np
import pytest

import pyonebit
from conftest import BF16, BITS, FLOAT_DTYPES, GROUP_SIZES, dtype_id, random_weights, unpack_codes, w_hat64


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("group_size", GROUP_SIZES)
@pytest.mark.parametrize("bits", BITS)
def test_round_trip_error_bound(rng, bits, group_size, dtype):
    w = random_weights(rng, (2, 5, 4 * group_size), dtype)
    wq, scales, biases = pyonebit.quantize(w, group_size=group_size, bits=bits)
    assert wq.dtype == np.uint32 and wq.shape == (2, 5, 4 * group_size * bits // 32)
    assert scales.dtype == dtype and scales.shape == (2, 5, 4)
    assert biases.dtype == dtype and biases.shape == (2, 5, 4)
    wd = pyonebit.dequantize(wq, scales, biases, group_size=group_size, bits=bits)
    assert wd.dtype == dtype and wd.shape == w.shape
    s = np.repeat(np.abs(scales.astype(np.float64)), group_size, axis=-1)
    # 1-bit: half a step. 2..8 bits: MLX's grid makes the larger-magnitude
    # extreme and zero exact, which can cost up to one step at the other
    # extreme (clipped codes). Plus the rounding of scales/biases to the dtype.
    step = 0.5 if bits == 1 else 1.0
    eps = 2.0**-7 if dtype == BF16 else float(np.finfo(dtype).eps)
    slack = 4 * eps * (np.abs(w.astype(np.float64)) + s * (2**bits))
    err = np.abs(w.astype(np.float64) - wd.astype(np.float64))
    assert (err <= step * s + slack).all()
    # The codes never leave [0, 2^bits - 1] and dequantize is scale*q + bias.
    codes = unpack_codes(wq, bits, w.shape[-1])
    assert codes.max() <= 2**bits - 1
    exact = w_hat64(wq, scales, biases, bits, group_size)
    b = np.repeat(np.abs(biases.astype(np.float64)), group_size, axis=-1)
    # scale*q and the sum are each rounded to the dtype (as MLX does).
    assert (np.abs(wd.astype(np.float64) - exact) <= eps * (s * 2**bits + b + np.abs(exact))).all()


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("group_size", GROUP_SIZES)
def test_one_bit_rule(rng, group_size, dtype):
    w = random_weights(rng, (3, 2 * group_size), dtype)
    wq, scales, biases = pyonebit.quantize(w, group_size=group_size, bits=1)
    g = w.astype(np.float32).reshape(3, 2, group_size)
    wmin, wmax = g.min(-1), g.max(-1)
    assert (biases.astype(np.float32) == wmin.astype(dtype).astype(np.float32)).all()
    expected_scale = np.maximum(wmax - wmin, np.float32(1e-7)).astype(dtype)
    assert (scales.view(np.uint8) == expected_scale.view(np.uint8)).all()
    # bit 1 exactly where w is nearer wmax (ties, at the midpoint, go to 0).
    t = (g - wmin[..., None]) / np.maximum(wmax - wmin, np.float32(1e-7))[..., None]
    codes = unpack_codes(wq, 1, 2 * group_size).reshape(3, 2, group_size)
    assert (codes == np.rint(t).astype(np.uint32)).all()


@pytest.mark.parametrize("mode", ["affine", "symmetric"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_one_bit_grid_weights_recovered_exactly(rng, mode, dtype):
    # Groups already on a {-d, +d} grid come back bit for bit in both modes.
    d = np.abs(rng.standard_normal((4, 2, 1))).astype(np.float32) + 0.5
    d = d.astype(dtype).astype(np.float32)
    sign = rng.integers(0, 2, size=(4, 2, 64)) * 2 - 1
    sign[..., 0], sign[..., 1] = 1, -1  # both levels present in every group
    w = (sign * d).reshape(4, 128).astype(dtype)
    wq, scales, biases = pyonebit.quantize(w, group_size=64, bits=1, mode=mode)
    assert (biases is None) == (mode == "symmetric")
    wd = pyonebit.dequantize(wq, scales, biases, group_size=64, bits=1, mode=mode)
    assert (wd.view(np.uint8) == w.view(np.uint8)).all()


@pytest.mark.parametrize("bits", [b for b in BITS if b > 1])
def test_multi_bit_grid_weights_recovered_exactly(rng, bits):
    # Integer-valued groups that use the full code range sit on MLX's grid.
    q = rng.integers(0, 2**bits, size=(6, 64)).astype(np.float32)
    q[:, 0::32], q[:, 1::32] = 0, 2**bits - 1  # every group spans the range
    w = (q - 2 ** (bits - 1)) * np.float32(0.25)
    wq, scales, biases = pyonebit.quantize(w, group_size=32, bits=bits)
    wd = pyonebit.dequantize(wq, scales, biases, group_size=32, bits=bits)
    np.testing.assert_array_equal(wd, w)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_symmetric_rule(rng, dtype):
    w = random_weights(rng, (5, 256), dtype)
    w[0, :3] = 0  # zeros count as non-negative: bit 1
    wq, scales, biases = pyonebit.quantize(w, group_size=128, bits=1, mode="symmetric")
    assert biases is None and scales.dtype == dtype and scales.shape == (5, 2)
    g = w.astype(np.float32).reshape(5, 2, 128)
    # Mean of |w|: float32 sum in a fixed tree (v[i] += v[i + half]).
    acc = np.abs(g)
    while acc.shape[-1] > 1:
        half = acc.shape[-1] // 2
        acc = acc[..., :half] + acc[..., half:]
    expected = (acc[..., 0] / np.float32(128)).astype(dtype)
    assert (scales.view(np.uint8) == expected.view(np.uint8)).all()
    codes = unpack_codes(wq, 1, 256)
    np.testing.assert_array_equal(codes, (w.astype(np.float32) >= 0).astype(np.uint32))
    wd = pyonebit.dequantize(wq, scales, None, group_size=128, bits=1, mode="symmetric")
    s = np.repeat(scales.astype(np.float32), 128, axis=-1)
    np.testing.assert_array_equal(wd.astype(np.float32), np.where(codes > 0, s, -s))


@pytest.mark.parametrize("bits", BITS)
def test_constant_and_zero_groups(bits):
    w = np.zeros((3, 64), np.float32)
    w[1] = 2.5
    w[2] = -1.25
    wq, scales, biases = pyonebit.quantize(w, group_size=32, bits=bits)
    assert (scales != 0).all()  # floored, never a division by zero
    wd = pyonebit.dequantize(wq, scales, biases, group_size=32, bits=bits)
    np.testing.assert_allclose(wd, w, atol=1e-6 * 2**bits)
    if bits == 1:
        # The seed's zero-group note: scale = eps, bias = 0.
        assert scales[0, 0] == np.float32(1e-7) and biases[0, 0] == 0


def test_all_negative_group_one_bit():
    w = -np.linspace(1, 2, 64, dtype=np.float32).reshape(1, 64)
    wq, scales, biases = pyonebit.quantize(w, group_size=64, bits=1)
    assert biases[0, 0] == np.float32(-2) and scales[0, 0] == np.float32(1)
    codes = unpack_codes(wq, 1, 64)[0]
    np.testing.assert_array_equal(codes, (w[0] > -1.5).astype(np.uint32))


def test_dequantize_dtype_argument(rng):
    w = random_weights(rng, (4, 128), np.float16)
    wq, s, b = pyonebit.quantize(w, group_size=64, bits=4)
    d16 = pyonebit.dequantize(wq, s, b, group_size=64, bits=4)
    d32 = pyonebit.dequantize(wq, s, b, group_size=64, bits=4, dtype=np.float32)
    dbf = pyonebit.dequantize(wq, s, b, group_size=64, bits=4, dtype="bfloat16")
    assert d16.dtype == np.float16 and d32.dtype == np.float32 and dbf.dtype == BF16
    # float32 is wider than the scales: the exact weights, not d16 widened (issue 21 item 3).
    np.testing.assert_array_equal(d32, w_hat64(wq, s, b, 4, 64).astype(np.float32))
    np.testing.assert_array_equal(dbf, d16.astype(np.float32).astype(BF16))


@pytest.mark.parametrize("shape", [(0, 64), (3, 0), (0, 5, 64), (2, 0, 64)])
def test_empty_arrays_give_empty_results(shape):
    w = np.zeros(shape, np.float32)
    wq, s, b = pyonebit.quantize(w, group_size=32, bits=2)
    assert wq.shape == shape[:-1] + (shape[-1] * 2 // 32,)
    assert s.shape == b.shape == shape[:-1] + (shape[-1] // 32,)
    assert pyonebit.dequantize(wq, s, b, group_size=32, bits=2).shape == shape


def test_strided_and_byteswapped_inputs_are_accepted(rng):
    w = random_weights(rng, (6, 256), np.float32)
    expected = pyonebit.quantize(w[::2, :128], group_size=64, bits=1)
    strided = pyonebit.quantize(w[::2, :128], group_size=64, bits=1)
    swapped = pyonebit.quantize(w[::2, :128].astype(">f4"), group_size=64, bits=1)
    fortran = pyonebit.quantize(np.asfortranarray(w[::2, :128]), group_size=64, bits=1)
    for got in (strided, swapped, fortran):
        for a, b in zip(expected, got):
            np.testing.assert_array_equal(a, b)


def test_defaults_are_one_bit_group_128(rng):
    w = random_weights(rng, (2, 256), np.float32)
    wq, s, b = pyonebit.quantize(w)
    assert wq.shape == (2, 8) and s.shape == (2, 2)
