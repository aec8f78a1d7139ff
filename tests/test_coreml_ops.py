"""Each executor op against an independent computation (NumPy by hand, or Keras), on shapes that
exercise its attributes; and the runner on MIL programs with list inputs and several outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from compress.coreml_ops import OPS

RNG = np.random.default_rng(0)


def test_concat_split_slice_pad_gather_tile():
    a, b = RNG.normal(size=(2, 3, 4)), RNG.normal(size=(2, 5, 4))
    np.testing.assert_array_equal(OPS["concat"]([a, b], axis=1), np.concatenate([a, b], 1))
    parts = OPS["split"](b, split_sizes=[2, 3], axis=1)
    assert [p.shape for p in parts] == [(2, 2, 4), (2, 3, 4)] and np.array_equal(parts[1], b[:, 2:])
    assert len(OPS["split"](a, num_splits=2, axis=2)) == 2
    x = np.arange(2 * 6 * 5).reshape(2, 6, 5)
    got = OPS["slice_by_index"](x, begin=[0, 1, 4], end=[2, 5, 0], stride=[1, 2, -1],
                                begin_mask=[True, False, False], end_mask=[False, False, True],
                                squeeze_mask=[False, False, False])
    np.testing.assert_array_equal(got, x[:2, 1:5:2, 4::-1])
    np.testing.assert_array_equal(OPS["slice_by_index"](x, begin=[1, 0, 0], end=[2, 6, 5], squeeze_mask=[True, False,
                                                                                                      False]), x[1])
    np.testing.assert_array_equal(OPS["slice_by_size"](x, begin=[0, 2, 1], size=[-1, 3, 2]), x[:, 2:5, 1:3])
    y = np.arange(12.0).reshape(1, 1, 3, 4)
    np.testing.assert_array_equal(OPS["pad"](y, pad=[1, 0, 2, 1], mode="constant", constant_val=-1.0),
                                  np.pad(y, [(0, 0), (0, 0), (1, 0), (2, 1)], constant_values=-1))
    np.testing.assert_array_equal(OPS["pad"](y, pad=[1, 1, 1, 1], mode="reflect"),
                                  np.pad(y, [(0, 0), (0, 0), (1, 1), (1, 1)], mode="reflect"))
    np.testing.assert_array_equal(OPS["pad"](y, pad=[0, 0, 2, 2], mode="replicate")[0, 0, 0], [0, 0, 0, 1, 2, 3, 3, 3])
    np.testing.assert_array_equal(OPS["gather"](x, indices=np.array([-1, 0]), axis=1), x[:, [5, 0]])
    np.testing.assert_array_equal(OPS["tile"](y, reps=[1, 2, 1, 2]), np.tile(y, (1, 2, 1, 2)))


def test_conv_transpose_matches_the_scatter_definition():
    x = RNG.normal(size=(2, 3, 4, 5)).astype(np.float32)
    w = RNG.normal(size=(3, 2, 3, 3)).astype(np.float32)
    got = OPS["conv_transpose"](x, w, strides=[2, 2], pad_type="valid")
    ref = np.zeros((2, 2, 9, 11), np.float32)
    for n in range(2):
        for c in range(3):
            for i in range(4):
                for j in range(5):
                    ref[n, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3] += x[n, c, i, j] * w[c]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    cropped = OPS["conv_transpose"](x, w, strides=[2, 2], pad_type="custom", pad=[1, 1, 1, 1])
    np.testing.assert_allclose(cropped, ref[:, :, 1:-1, 1:-1], rtol=1e-5, atol=1e-5)


def test_conv_transpose_and_upsampling_match_keras():
    from compress.compat import keras

    x = RNG.normal(size=(2, 5, 6, 3)).astype(np.float32)
    layer = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same", use_bias=True)
    ref = layer(x).numpy()
    kernel, bias = layer.get_weights()  # (kh, kw, out, in)
    got = OPS["conv_transpose"](np.transpose(x, (0, 3, 1, 2)), np.transpose(kernel, (3, 2, 0, 1)), bias,
                                strides=[2, 2], pad_type="same")
    np.testing.assert_allclose(np.transpose(got, (0, 2, 3, 1)), ref, rtol=1e-4, atol=1e-4)
    up = keras.layers.UpSampling2D(2, interpolation="nearest")(x).numpy()
    got = OPS["upsample_nearest_neighbor"](np.transpose(x, (0, 3, 1, 2)), 2, 2)
    np.testing.assert_array_equal(np.transpose(got, (0, 2, 3, 1)), up)
    bil = keras.layers.UpSampling2D(2, interpolation="bilinear")(x).numpy()
    got = OPS["upsample_bilinear"](np.transpose(x, (0, 3, 1, 2)), 2, 2, align_corners=False)
    np.testing.assert_allclose(np.transpose(got, (0, 2, 3, 1)), bil, rtol=1e-4, atol=1e-4)


def test_pools_with_padding_excluded_ceil_mode_and_l2():
    x = RNG.normal(size=(1, 2, 5, 5)).astype(np.float32)
    got = OPS["avg_pool"](x, [3, 3], [2, 2], "custom", [1, 1, 1, 1], exclude_padding_from_average=True)
    xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)], constant_values=np.nan)
    ref = np.array([[[[np.nanmean(xp[0, c, 2 * i:2 * i + 3, 2 * j:2 * j + 3]) for j in range(3)] for i in range(3)]
                     for c in range(2)]])
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    assert OPS["max_pool"](x, [2, 2], [2, 2], "valid", ceil_mode=True).shape == (1, 2, 3, 3)
    assert OPS["max_pool"](x, [2, 2], [2, 2], "valid").shape == (1, 2, 2, 2)
    np.testing.assert_allclose(OPS["l2_pool"](x, [5, 5], [1, 1], "valid")[0, :, 0, 0],
                               np.sqrt((x[0] ** 2).sum(axis=(1, 2))), rtol=1e-5)


def test_activations_by_their_formulas():
    x = np.linspace(-4, 4, 41, dtype=np.float32)
    erf = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(OPS["erf"](x), erf, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(OPS["gelu"](x), 0.5 * x * (1 + np.array([math.erf(v / math.sqrt(2)) for v in x])),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(OPS["gelu"](x, mode="TANH_APPROXIMATION"),
                               0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(OPS["silu"](x), x / (1 + np.exp(-x)), rtol=1e-6)
    np.testing.assert_allclose(OPS["sigmoid_hard"](x, alpha=1 / 6, beta=0.5), np.clip(x / 6 + 0.5, 0, 1), atol=1e-6)
    np.testing.assert_array_equal(OPS["clip"](x, alpha=-1.0, beta=2.0), np.clip(x, -1, 2))
    np.testing.assert_allclose(OPS["leaky_relu"](x, alpha=0.1), np.where(x >= 0, x, 0.1 * x))


def test_norms_and_log_softmax():
    from compress.compat import keras

    x = RNG.normal(size=(2, 3, 4, 5)).astype(np.float32)
    gamma, beta = RNG.normal(size=3).astype(np.float32), RNG.normal(size=3).astype(np.float32)
    mean, var = x.mean(axis=(2, 3), keepdims=True), x.var(axis=(2, 3), keepdims=True)
    ref = (x - mean) / np.sqrt(var + 1e-5) * gamma[None, :, None, None] + beta[None, :, None, None]
    np.testing.assert_allclose(OPS["instance_norm"](x, gamma, beta, 1e-5), ref, rtol=1e-4, atol=1e-5)
    layer = keras.layers.LayerNormalization(axis=-1, epsilon=1e-3)
    y = RNG.normal(size=(4, 6)).astype(np.float32)
    np.testing.assert_allclose(OPS["layer_norm"](y, axes=[-1], epsilon=1e-3), layer(y).numpy(), rtol=1e-4,
                               atol=1e-5)
    z = RNG.normal(size=(3, 7)).astype(np.float32)
    import tensorflow as tf

    np.testing.assert_allclose(OPS["log_softmax"](z, axis=-1), tf.nn.log_softmax(z).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(OPS["reduce_l2_norm"](z, axes=[1]), np.linalg.norm(z, axis=1), rtol=1e-5)
    np.testing.assert_allclose(OPS["reduce_log_sum_exp"](z, axes=[1], keep_dims=True),
                               np.log(np.exp(z).sum(1, keepdims=True)), rtol=1e-5)
    np.testing.assert_array_equal(OPS["reduce_argmax"](z, axis=1), z.argmax(1))


def test_ios18_blockwise_and_grouped_palettization():
    data = RNG.integers(-8, 8, size=(4, 6)).astype(np.int8)
    scale = RNG.uniform(0.1, 1, size=(4, 2)).astype(np.float32)  # per row, blocks of 3 columns
    offset = RNG.integers(-2, 2, size=(4, 2)).astype(np.int8)
    got = OPS["constexpr_blockwise_shift_scale"](data, scale, offset)
    ref = (data - np.repeat(offset, 3, axis=1)) * np.repeat(scale, 3, axis=1)
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    lut = RNG.normal(size=(2, 1, 4, 1)).astype(np.float32)  # 2 row groups, 2-bit tables
    idx = RNG.integers(0, 4, size=(4, 3)).astype(np.uint8)
    dense = OPS["constexpr_lut_to_dense"](lut, idx)
    ref = np.stack([lut[0, 0, idx[r], 0] if r < 2 else lut[1, 0, idx[r], 0] for r in range(4)])
    np.testing.assert_array_equal(dense, ref)
    mask = RNG.integers(0, 2, size=(3, 4)).astype(bool)
    values = RNG.normal(size=int(mask.sum())).astype(np.float32)
    out = OPS["constexpr_sparse_to_dense"](values, mask)
    assert np.array_equal(out[mask], values) and not out[~mask].any()


@pytest.mark.parametrize("target", ["iOS16", "iOS18"])
def test_programs_with_list_inputs_several_outputs_and_compressed_weights_run(tmp_path, target):
    import coremltools as ct
    import coremltools.optimize.coreml as opt
    from coremltools.converters.mil import Builder as mb

    from compress.coreml_exec import Program

    w = RNG.normal(size=(8, 12)).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=(5, 12))], opset_version=getattr(ct.target, target))
    def prog(x):
        a, b = mb.split(x=x, split_sizes=[4, 8], axis=1)
        y = mb.concat(values=[b, a], axis=1)
        y = mb.linear(x=y, weight=w)
        y = mb.gelu(x=y, mode="EXACT")
        return mb.softmax(x=mb.pad(x=y, pad=[0, 0, 1, 1], mode="constant", constant_val=0.0), axis=-1)

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=getattr(ct.target, target),
                       compute_precision=ct.precision.FLOAT32)
    model = opt.linear_quantize_weights(model, opt.OptimizationConfig(
        global_config=opt.OpLinearQuantizerConfig(mode="linear_symmetric", weight_threshold=1)))
    path = tmp_path / f"{target}.mlpackage"
    model.save(str(path))
    program = Program(path)
    x = RNG.normal(size=(5, 12)).astype(np.float32)
    (out,) = program.run_all({program.input_name: x}).values()  # against exact float weights, by hand:
    y = np.concatenate([x[:, 4:], x[:, :4]], axis=1) @ w.T
    y = 0.5 * y * (1 + np.vectorize(math.erf)(y / math.sqrt(2)))
    y = np.pad(y, [(0, 0), (1, 1)])
    ref = np.exp(y - y.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    np.testing.assert_allclose(out, ref, atol=0.02)  # int8 weights
    assert np.mean(out.argmax(1) == ref.argmax(1)) >= 0.8


def test_the_readme_lists_every_op_of_the_registry():
    from conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    missing = [name for name in OPS if f"`{name}`" not in readme]
    assert not missing, f"ops missing from the README's table: {missing}"
