"""QuantizedLinear: the layer against the float64 model of its packed weight,
on every backend, and its construction checks."""
import mmap

import numpy as np
import pytest

import pyonebit
from conftest import BF16, FLOAT_DTYPES, assert_matmul_close, dtype_id, random_weights, w_hat64

MODES = [(bits, "affine") for bits in pyonebit.supported_bits()] + [(1, "symmetric")]


@pytest.mark.parametrize("backend", pyonebit.backends())
@pytest.mark.parametrize("bits,mode", MODES, ids=lambda v: str(v))
@pytest.mark.parametrize("group_size", pyonebit.supported_group_sizes())
def test_layer_matches_model_of_its_weight(rng, backend, bits, mode, group_size):
    out_features, in_features = 37, 2 * group_size
    w = random_weights(rng, (out_features, in_features), np.float32)
    layer = pyonebit.QuantizedLinear.from_float(w, bits=bits, group_size=group_size, mode=mode,
                                                backend=backend)
    what = w_hat64(layer.wq, layer.scales, layer.biases, bits, group_size, mode)
    for shape in [(in_features,), (1, in_features), (5, in_features), (2, 3, in_features)]:
        x = random_weights(rng, shape, np.float32)
        assert_matmul_close(layer(x), x, what, True, np.float32)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_dtypes_follow_quantized_matmul(rng, dtype):
    w = random_weights(rng, (16, 128), dtype)
    layer = pyonebit.QuantizedLinear.from_float(w)
    assert layer.scales.dtype == dtype and layer.biases.dtype == dtype
    what = w_hat64(layer.wq, layer.scales, layer.biases, 1, 128)
    x = random_weights(rng, (3, 128), dtype)
    assert_matmul_close(layer(x), x, what, True, dtype)
    x32 = random_weights(rng, (3, 128), np.float32)
    expected_dtype = np.float32  # mixed dtypes promote to float32, as in MLX
    assert_matmul_close(layer(x32), x32, what, True, expected_dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_bias_is_added_to_the_product(rng, dtype):
    w = random_weights(rng, (24, 64), dtype)
    bias = random_weights(rng, (24,), np.float32)
    plain = pyonebit.QuantizedLinear.from_float(w, group_size=64)
    biased = pyonebit.QuantizedLinear.from_float(w, bias, group_size=64)
    x = random_weights(rng, (4, 64), dtype)
    expected = plain(x)
    np.add(expected, bias, out=expected, casting="unsafe")
    np.testing.assert_array_equal(biased(x), expected)
    assert biased.nbytes == plain.nbytes + bias.nbytes


def test_out_receives_the_result(rng):
    w = random_weights(rng, (40, 128), np.float32)
    bias = random_weights(rng, (40,), np.float32)
    layer = pyonebit.QuantizedLinear.from_float(w, bias)
    x = random_weights(rng, (2, 3, 128), np.float32)
    out = np.full((2, 3, 40), np.nan, np.float32)
    assert layer(x, out=out) is out
    np.testing.assert_array_equal(out, layer(x))


def test_weights_are_owned_page_aligned_and_read_only(rng):
    w = random_weights(rng, (64, 256), np.float16)
    wq, scales, biases = pyonebit.quantize(w)
    layer = pyonebit.QuantizedLinear(wq, scales, biases)
    # _wq, _scales, _biases: as stored (in the layer's layout); wq...: MLX's order.
    stored = [(layer._wq, wq), (layer._scales, scales), (layer._biases, biases)]
    for mine, theirs in stored:
        assert mine.ctypes.data % mmap.PAGESIZE == 0
        assert not mine.flags.writeable
        assert not np.shares_memory(mine, theirs)
    for mine, theirs in [(layer.wq, wq), (layer.scales, scales), (layer.biases, biases)]:
        assert not mine.flags.writeable
        np.testing.assert_array_equal(mine, theirs)
    x = random_weights(rng, (1, 256), np.float16)
    before = layer(x)
    wq[:] = 0  # the caller's arrays no longer matter
    np.testing.assert_array_equal(layer(x), before)


def test_dequantize_and_attributes(rng):
    w = random_weights(rng, (48, 384), BF16)
    layer = pyonebit.QuantizedLinear.from_float(w, bits=4, group_size=64)
    assert (layer.in_features, layer.out_features) == (384, 48)
    assert (layer.bits, layer.group_size, layer.mode, layer.backend) == (4, 64, "affine", None)
    np.testing.assert_array_equal(
        layer.dequantize(np.float32),
        pyonebit.dequantize(layer.wq, layer.scales, layer.biases, 64, 4, dtype=np.float32))
    assert layer.nbytes == 48 * 384 * 4 // 8 + 2 * 48 * 6 * 2
    assert repr(layer) == (
        "QuantizedLinear(in_features=384, out_features=48, bits=4, group_size=64, "
        "mode='affine', dtype=bfloat16, bias=False, backend=None, layout='mlx', nbytes=10368)")


def test_symmetric_layer_has_no_biases(rng):
    w = random_weights(rng, (8, 128), np.float32)
    layer = pyonebit.QuantizedLinear.from_float(w, mode="symmetric")
    assert layer.biases is None
    assert "mode='symmetric'" in repr(layer)


BAD_LAYERS = [
    (dict(wq=np.zeros((4, 4, 4), np.uint32)), ValueError,
     "[QuantizedLinear] wq must be 2-D (out_features, in_features * bits / 32), got shape (4, 4, 4)"),
    (dict(bits=True), TypeError, "[QuantizedLinear] bits must be an int, got bool"),
    (dict(bits=7), ValueError,
     "[QuantizedLinear] bits=7 is not supported; use one of "
     + ", ".join(map(str, pyonebit.supported_bits()))),
    (dict(bits=3, wq=np.zeros((4, 5), np.uint32)), ValueError,
     "[QuantizedLinear] wq's last dimension (5 words) must hold a whole number of 3-bit codes"),
    (dict(biases=None), ValueError, "[QuantizedLinear] biases are required in affine mode"),
    (dict(scales=np.ones((4, 3), np.float32)), ValueError, "[QuantizedLinear] scales"),
    # The weight's own arrays are named (the layer used to blame an internal x).
    (dict(scales=np.ones((4, 1)), biases=np.zeros((4, 1))), TypeError,
     "[QuantizedLinear] scales must be float32, float16 or bfloat16, got float64"),
    (dict(group_size=48), ValueError,
     "[QuantizedLinear] group_size=48 is not supported; use one of "
     + ", ".join(map(str, pyonebit.supported_group_sizes()))),
    (dict(backend="gpu"), ValueError, "[QuantizedLinear] backend must be one of"),
    (dict(bias=np.ones(5, np.float32)), ValueError,
     "[QuantizedLinear] bias must have shape (4,) (out_features), got (5,)"),
    (dict(bias=np.ones(4, np.float64)), TypeError,
     "[QuantizedLinear] bias must be float32, float16 or bfloat16, got float64"),
]


@pytest.mark.parametrize("change,error,message", BAD_LAYERS, ids=lambda v: str(v)[:40])
def test_bad_layers_are_rejected_with_the_rule(change, error, message):
    args = dict(wq=np.zeros((4, 4), np.uint32), scales=np.ones((4, 1), np.float32),
                biases=np.zeros((4, 1), np.float32), bias=None, group_size=128, bits=1)
    args.update(change)
    with pytest.raises(error) as info:
        pyonebit.QuantizedLinear(args.pop("wq"), args.pop("scales"), args.pop("biases"),
                                 args.pop("bias"), **args)
    assert str(info.value).startswith(message)


def test_bad_inputs_to_a_layer_name_the_argument(rng):
    layer = pyonebit.QuantizedLinear.from_float(random_weights(rng, (8, 128), np.float32))
    with pytest.raises(ValueError, match=r"^\[quantized_matmul\] .*x"):
        layer(np.ones((2, 64), np.float32))
    with pytest.raises(ValueError, match=r"^\[QuantizedLinear.from_float\] weight must be 2-D"):
        pyonebit.QuantizedLinear.from_float(np.ones(128, np.float32))


ATTRIBUTES = ["in_features", "out_features", "bits", "group_size", "mode", "backend", "layout",
              "bias", "wq", "scales", "biases"]


@pytest.mark.parametrize("name", ATTRIBUTES)
def test_attributes_are_read_only(rng, name):
    w = random_weights(rng, (16, 128), np.float32)
    layer = pyonebit.QuantizedLinear.from_float(w, np.ones(16, np.float32), bits=2)
    before = getattr(layer, name)
    with pytest.raises(AttributeError):
        setattr(layer, name, 4 if name == "bits" else None)
    assert getattr(layer, name) is before or np.array_equal(getattr(layer, name), before)
    if isinstance(before, np.ndarray):
        assert not before.flags.writeable  # nor can the arrays be changed in place


@pytest.mark.parametrize("backend", pyonebit.backends())
@pytest.mark.parametrize("bits,mode", MODES, ids=lambda v: str(v))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_concatenated_layers_give_their_outputs_side_by_side(rng, backend, bits, mode, dtype):
    # Row counts off the 16-row blocks, so the fused layer's rows sit at other lanes.
    group_size = 64
    layers = [pyonebit.QuantizedLinear.from_float(random_weights(rng, (n, 3 * group_size), dtype),
                                                  bits=bits, group_size=group_size, mode=mode,
                                                  backend=backend) for n in (5, 16, 37)]
    fused = pyonebit.QuantizedLinear.concatenate(layers)
    assert (fused.out_features, fused.backend, fused.bias) == (58, backend, None)
    for name in ("wq", "scales", "biases"):
        parts = [getattr(layer, name) for layer in layers]
        if parts[0] is None:
            assert getattr(fused, name) is None
        else:
            np.testing.assert_array_equal(getattr(fused, name), np.concatenate(parts))
    what = w_hat64(fused.wq, fused.scales, fused.biases, bits, group_size, mode)
    for shape in [(3 * group_size,), (1, 3 * group_size), (2, 9, 3 * group_size), (40, 3 * group_size)]:
        x = random_weights(rng, shape, dtype)
        y = fused(x)
        apart = np.concatenate([layer(x) for layer in layers], -1)
        assert_matmul_close(y, x, what, True, apart.dtype)
        # The CPU kernels' sums do not depend on where a row sits; Metal's tiles of rows at
        # the end of a matrix add in another order (so do CUDA's).
        if backend == "cpu":
            np.testing.assert_array_equal(y, apart)


@pytest.mark.parametrize("backend", pyonebit.backends())
def test_concatenate_takes_a_backend_one_layer_and_biases(rng, backend):
    layers = [pyonebit.QuantizedLinear.from_float(random_weights(rng, (n, 128), np.float16),
                                                  random_weights(rng, (n,), np.float32))
              for n in (8, 3)]
    alone = pyonebit.QuantizedLinear.concatenate(layers[:1], backend=backend)
    assert alone.backend == backend
    np.testing.assert_array_equal(alone.wq, layers[0].wq)
    assert alone.wq is not layers[0].wq  # a copy: the layers stay independent
    fused = pyonebit.QuantizedLinear.concatenate(layers)
    assert fused.backend is None  # the first layer's
    np.testing.assert_array_equal(fused.bias, np.concatenate([layers[0].bias, layers[1].bias]))
    x = random_weights(rng, (4, 128), np.float16)
    np.testing.assert_array_equal(fused(x), np.concatenate([layer(x) for layer in layers], -1))


def _layer(rng, n=8, k=128, dtype=np.float32, bias=None, **kw):
    return pyonebit.QuantizedLinear.from_float(
        random_weights(rng, (n, k), dtype), np.ones(n, bias) if bias else None, **kw)


BAD_CONCATENATIONS = [
    (lambda r: [], ValueError, "layers must hold at least one layer"),
    (lambda r: _layer(r), TypeError, "layers must be a sequence of QuantizedLinear, got QuantizedLinear"),
    (lambda r: [_layer(r), "q_proj"], TypeError, "layers[1] must be a QuantizedLinear, got str"),
    (lambda r: [_layer(r), _layer(r, k=256)], ValueError,
     "every layer must have the in_features of layers[0] (128), layers[1] has 256"),
    (lambda r: [_layer(r), _layer(r), _layer(r, bits=2)], ValueError,
     "every layer must have the bits of layers[0] (1), layers[2] has 2"),
    (lambda r: [_layer(r), _layer(r, group_size=64)], ValueError,
     "every layer must have the group_size of layers[0] (128), layers[1] has 64"),
    (lambda r: [_layer(r), _layer(r, mode="symmetric")], ValueError,
     "every layer must have the mode of layers[0] (affine), layers[1] has symmetric"),
    (lambda r: [_layer(r), _layer(r, dtype=np.float16)], TypeError,
     "every layer must have the scales dtype of layers[0] (float32), layers[1] has float16"),
    (lambda r: [_layer(r, bias=np.float32), _layer(r)], ValueError,
     "every layer must have the bias (present or not) of layers[0] (True), layers[1] has False"),
    (lambda r: [_layer(r, bias=np.float32), _layer(r, bias=np.float16)], TypeError,
     "every layer must have the bias dtype of layers[0] (float32), layers[1] has float16"),
]


@pytest.mark.parametrize("layers,error,message", BAD_CONCATENATIONS,
                         ids=[m[:24] for _, _, m in BAD_CONCATENATIONS])
def test_bad_concatenations_name_the_layer_and_the_rule(rng, layers, error, message):
    with pytest.raises(error) as info:
        pyonebit.QuantizedLinear.concatenate(layers(rng))
    assert str(info.value) == "[QuantizedLinear.concatenate] " + message
