"""Each executor op against an independent computation (NumPy by hand, or Keras), on shapes that
exercise its attributes; and the runner on MIL programs with list inputs and several outputs."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from compress.coreml.ops import OPS

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
    from compress.core.compat import keras

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
    from compress.core.compat import keras

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

    from compress.coreml.executor import Program

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


def test_the_coreml_page_lists_every_op_of_the_registry():
    from conftest import ROOT

    readme = (ROOT / "docs" / "coreml.md").read_text()
    table = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] and cells[1].startswith("`"):
            table[cells[0]] = set(re.findall(r"`([a-z0-9_]+)`", cells[1]))
    by_kind = {}
    for name, fn in OPS.items():
        by_kind.setdefault(fn.__module__.rsplit(".", 1)[-1], set()).add(name)
    assert {kind: table.get(kind) for kind in by_kind} == by_kind  # each row lists exactly its module's ops


def test_vector_palettization_by_hand():
    """coremltools' documented example: 1-bit indices of shape (2, 2, 2), two 3-vectors a and b."""
    idx = np.array([[[0, 0], [1, 0]], [[1, 1], [0, 0]]], dtype=np.uint8)
    a, b = np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0, 30.0])
    lut = np.stack([a, b]).reshape(1, 1, 1, 2, 3).astype(np.float32)
    table = {0: a, 1: b}
    along1 = np.zeros((2, 6, 2), np.float32)
    along2 = np.zeros((2, 2, 6), np.float32)
    for i, j, k in np.ndindex(*idx.shape):
        for v in range(3):
            along1[i, 3 * j + v, k] = table[idx[i, j, k]][v]
            along2[i, j, 3 * k + v] = table[idx[i, j, k]][v]
    np.testing.assert_array_equal(OPS["constexpr_lut_to_dense"](lut, idx, vector_axis=1), along1)
    np.testing.assert_array_equal(OPS["constexpr_lut_to_dense"](lut, idx, vector_axis=-1), along2)


def test_palettized_and_quantized_sparse_weights_by_hand():
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 1], [1, 1, 0, 0]], dtype=bool)
    data = np.array([10, 11, 3, 4, 5, 6, 7, 8, 9], dtype=np.int8)
    scale, offset = np.array([[0.1, 0.2, 0.3, 0.4]], np.float32), np.array([[1, 2, 3, 4]], np.int8)
    out_mask, values = OPS["constexpr_sparse_blockwise_shift_scale"](mask, data, scale, offset)
    assert np.array_equal(out_mask, mask)
    np.testing.assert_allclose(values, [0.9, 1.8, 0.2, 0.4, 0.6, 0.9, 1.2, 0.7, 1.4], rtol=1e-6)  # the docs' example
    lut = np.array([[[[-1.0], [2.0]]], [[[5.0], [7.0]]]], np.float32)  # (2 row groups, 1, 2 entries, 1)
    indices = np.array([0, 1, 1, 0, 1, 1, 0, 0, 1], np.uint8)
    out_mask, values = OPS["constexpr_lut_to_sparse"](mask, indices, lut)
    assert np.array_equal(out_mask, mask)
    rows = np.nonzero(mask)[0]  # rows 0-1 read the first table, rows 2-3 the second
    np.testing.assert_array_equal(values, [lut[int(r >= 2), 0, i, 0] for r, i in zip(rows, indices)])
    dense = OPS["constexpr_sparse_to_dense"](values, out_mask)
    assert dense[0, 1] == 2.0 and dense[3, 0] == 5.0 and dense[0, 2] == 0.0


def _conv_nchw(x, w):
    import tensorflow as tf

    y = tf.nn.conv2d(np.transpose(x, (0, 2, 3, 1)), np.transpose(w, (2, 3, 1, 0)), 1, "SAME")
    return np.transpose(y.numpy(), (0, 3, 1, 2))


@pytest.mark.parametrize("mode", ["vector_palettized", "sparse_palettized", "sparse_quantized"])
def test_ios18_compressed_conv_weights_decompress_as_coremltools_does(tmp_path, mode):
    """A conv compressed by coremltools.optimize.coreml (vector palettization; pruning jointly with
    palettization or int8): the executor's weights equal coremltools' own decompression of the
    same ops, and the program equals a TensorFlow conv with those weights."""
    import coremltools as ct
    import coremltools.optimize.coreml as opt
    from coremltools.converters.mil import Builder as mb
    from coremltools.optimize import _utils as ct_utils

    from compress.coreml.executor import Program

    w = RNG.normal(size=(16, 8, 3, 3)).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 8, 10, 10))], opset_version=ct.target.iOS18)
    def prog(x):
        return mb.conv(x=x, weight=w, pad_type="same")

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18,
                       compute_precision=ct.precision.FLOAT32)
    config = opt.OptimizationConfig
    pruned = lambda m: opt.prune_weights(m, config(global_config=opt.OpMagnitudePrunerConfig(  # noqa: E731
        target_sparsity=0.5, weight_threshold=1)))
    if mode == "vector_palettized":
        model = opt.palettize_weights(model, config(global_config=opt.OpPalettizerConfig(
            mode="kmeans", nbits=4, cluster_dim=2, weight_threshold=1)))
    elif mode == "sparse_palettized":
        model = opt.palettize_weights(pruned(model), config(global_config=opt.OpPalettizerConfig(
            mode="kmeans", nbits=4, weight_threshold=1)), joint_compression=True)
    else:
        model = opt.linear_quantize_weights(pruned(model), config(global_config=opt.OpLinearQuantizerConfig(
            mode="linear_symmetric", weight_threshold=1)), joint_compression=True)
    path = tmp_path / f"{mode}.mlpackage"
    model.save(str(path))
    program = Program(path)
    ops = {op.op_type: op for op in program.function.operations}
    val = lambda op, key: op.inputs[key].val if key in op.inputs else None  # noqa: E731
    if mode == "vector_palettized":
        op = ops["constexpr_lut_to_dense"]
        reference = ct_utils.lut_to_dense(val(op, "indices"), val(op, "lut"), val(op, "vector_axis"))
        assert op.inputs["lut"].val.shape[-1] == 2  # vectors of two
    elif mode == "sparse_palettized":
        op = ops["constexpr_lut_to_sparse"]
        dense_idx = ct_utils.sparse_to_dense(val(op, "indices_nonzero_data"), val(op, "indices_mask"))
        reference = ct_utils.lut_to_dense(dense_idx, val(op, "lut"), val(op, "vector_axis"))
        reference = reference * val(op, "indices_mask")
    else:
        op = ops["constexpr_sparse_blockwise_shift_scale"]
        dense = ct_utils.sparse_to_dense(val(op, "nonzero_data"), val(op, "data_mask")).astype(np.float32)
        offset = val(op, "offset")
        scale = np.asarray(val(op, "scale"), np.float32)
        reference = (dense - (0 if offset is None else np.asarray(offset, np.float32))) * scale
        reference = reference * val(op, "data_mask")
    x = RNG.normal(size=(2, 8, 10, 10)).astype(np.float32)
    (out,) = program.run_all({program.input_name: x}).values()
    np.testing.assert_allclose(out, _conv_nchw(x, reference.astype(np.float32)), atol=1e-4)
    assert np.abs(reference - w).mean() < 0.5 * np.abs(w).mean()  # the compressed weights are still w's


# -- every reduction, and the activations, pools, norms and grouped convs not covered above ---------
REDUCE_BY_HAND = {  # one row of the reduced values (a Python list) -> the result, in plain Python
    "reduce_sum": math.fsum,
    "reduce_mean": lambda v: math.fsum(v) / len(v),
    "reduce_max": max,
    "reduce_min": min,
    "reduce_prod": math.prod,
    "reduce_l1_norm": lambda v: math.fsum(abs(a) for a in v),
    "reduce_l2_norm": lambda v: math.sqrt(math.fsum(a * a for a in v)),
    "reduce_sum_square": lambda v: math.fsum(a * a for a in v),
    "reduce_log_sum": lambda v: math.log(math.fsum(v)),
    "reduce_log_sum_exp": lambda v: math.log(math.fsum(math.exp(a) for a in v)),
    # Core ML's argmax / argmin take one `axis`: the position of the first largest / smallest value
    "reduce_argmax": lambda v: v.index(max(v)),
    "reduce_argmin": lambda v: v.index(min(v)),
}


def reduce_by_hand(x, fn, axes, keep_dims):
    """Apply `fn` to the values along `axes` (None: all) for every index of the other axes."""
    axes = list(range(x.ndim)) if axes is None else sorted(int(a) % x.ndim for a in axes)
    kept = [a for a in range(x.ndim) if a not in axes]
    rows = np.transpose(x, kept + axes).reshape(-1, int(np.prod([x.shape[a] for a in axes])))
    out = np.array([fn([float(v) for v in row]) for row in rows]).reshape([x.shape[a] for a in kept])
    return out.reshape([1 if a in axes else x.shape[a] for a in range(x.ndim)]) if keep_dims else out


def test_every_registered_reduction_is_checked_by_hand():
    assert {name for name in OPS if name.startswith("reduce_")} == set(REDUCE_BY_HAND)


@pytest.mark.parametrize("name", sorted(REDUCE_BY_HAND))
def test_reductions_over_axes_with_and_without_keep_dims(name):
    x = RNG.uniform(-1.5, 1.5, size=(2, 3, 4)).astype(np.float32)
    if name == "reduce_log_sum":
        x = np.abs(x) + 0.5  # a log of sums of positive values
    fn = REDUCE_BY_HAND[name]
    arg = name in ("reduce_argmax", "reduce_argmin")
    for axes in ([0], [-1], [1]) if arg else (None, [1], [0, 2], [-1]):
        for keep_dims in (False, True):
            options = {"axis": axes[0]} if arg else {"axes": axes}
            got = OPS[name](x, keep_dims=keep_dims, **options)
            expected = reduce_by_hand(x.astype(np.float64), fn, axes, keep_dims)
            assert np.shape(got) == expected.shape, (name, axes, keep_dims)
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=f"{name} {axes} {keep_dims}")


def test_relu6_prelu_softplus_and_gelus_sigmoid_approximation_by_their_formulas():
    x = np.linspace(-8, 8, 33, dtype=np.float32)
    np.testing.assert_array_equal(OPS["relu6"](x), [min(max(float(v), 0.0), 6.0) for v in x])
    np.testing.assert_allclose(OPS["softplus"](x), [math.log1p(math.exp(float(v))) for v in x], rtol=1e-6)
    np.testing.assert_allclose(OPS["gelu"](x, mode="SIGMOID_APPROXIMATION"),
                               [float(v) / (1 + math.exp(-1.702 * float(v))) for v in x], rtol=1e-5, atol=1e-6)
    nchw = RNG.normal(size=(2, 3, 4, 5)).astype(np.float32)
    alpha = np.array([0.1, 0.5, 2.0], np.float32)  # one slope per channel (axis 1)
    got = OPS["prelu"](nchw, alpha)
    for n, c, i, j in np.ndindex(*nchw.shape):
        v = float(nchw[n, c, i, j])
        assert got[n, c, i, j] == pytest.approx(v if v >= 0 else float(alpha[c]) * v, rel=1e-6)


@pytest.mark.parametrize("size, kernel, stride, ceil_mode, out", [
    (5, 2, 2, False, 2), (5, 2, 2, True, 3), (6, 3, 2, False, 2), (6, 3, 2, True, 3), (7, 3, 2, True, 3)])
def test_max_pool_values_with_ceil_mode(size, kernel, stride, ceil_mode, out):
    """A ceil-mode window that runs past the edge takes the maximum of its cells inside."""
    x = RNG.normal(size=(2, 3, size, size)).astype(np.float32)
    got = OPS["max_pool"](x, [kernel, kernel], [stride, stride], "valid", [0, 0, 0, 0], ceil_mode=ceil_mode)
    assert got.shape == (2, 3, out, out)
    for n, c, i, j in np.ndindex(*got.shape):
        cells = [x[n, c, a, b] for a in range(i * stride, min(i * stride + kernel, size))
                 for b in range(j * stride, min(j * stride + kernel, size))]
        assert got[n, c, i, j] == max(cells)


@pytest.mark.parametrize("axes", [[-1], [1, 2]])
def test_layer_norm_with_gamma_and_beta_by_hand(axes):
    x = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    shape = [x.shape[a] for a in axes]
    gamma, beta = RNG.normal(size=shape).astype(np.float32), RNG.normal(size=shape).astype(np.float32)
    got = OPS["layer_norm"](x, axes=axes, gamma=gamma, beta=beta, epsilon=1e-5)
    for n in range(2):
        groups = [x[n, c] for c in range(3)] if axes == [-1] else [x[n]]
        outs = [got[n, c] for c in range(3)] if axes == [-1] else [got[n]]
        for values, result in zip(groups, outs):
            flat = [float(v) for v in values.reshape(-1)]
            mean = math.fsum(flat) / len(flat)
            var = math.fsum((v - mean) ** 2 for v in flat) / len(flat)
            expected = (values - mean) / math.sqrt(var + 1e-5) * gamma + beta
            np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-5)


def conv_pixel_by_pixel(x, w, groups, dilation, pad):
    """NCHW convolution, stride 1, one output value at a time (float64)."""
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    cout, cin_g, kh, kw = w.shape
    oh, ow = xp.shape[2] - dilation * (kh - 1), xp.shape[3] - dilation * (kw - 1)
    out = np.zeros((x.shape[0], cout, oh, ow))
    for n, o, i, j in np.ndindex(*out.shape):
        g = o // (cout // groups)
        out[n, o, i, j] = sum(xp[n, g * cin_g + c, i + a * dilation, j + b * dilation] * w[o, c, a, b]
                              for c in range(cin_g) for a in range(kh) for b in range(kw))
    return out


@pytest.mark.parametrize("cin, cout, groups, dilation", [(4, 4, 4, 1), (4, 8, 4, 2), (6, 6, 3, 2), (4, 4, 4, 3)])
def test_depthwise_and_grouped_dilated_convs_pixel_by_pixel(cin, cout, groups, dilation):
    """groups == channels (a depthwise conv, with a channel multiplier in the second case) and
    groups with dilation together."""
    x = RNG.normal(size=(2, cin, 9, 9)).astype(np.float32)
    w = RNG.normal(size=(cout, cin // groups, 3, 3)).astype(np.float32)
    pad = dilation
    got = OPS["conv"](x, w, None, strides=[1, 1], pad_type="custom", pad=[pad] * 4, dilations=[dilation] * 2,
                      groups=groups)
    np.testing.assert_allclose(got, conv_pixel_by_pixel(x, w, groups, dilation, pad), rtol=1e-4, atol=1e-4)
