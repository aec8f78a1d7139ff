"""Channel pruning (compress/training/prune/channel.py): the rebuilt model's shapes, its equivalence to the
original with the removed channels zeroed, the importance rankings, and the files it exports
holding exactly the surviving channels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_same_choices, group, needs_data, needs_teacher, student_group
from omegaconf import OmegaConf

from compress.core.compat import keras
from compress.core.errors import ConfigError
from compress.data.arrays import unit
from compress.training.prune import channel
from compress.training.students import build_student

FAMILIES = [("cnn", "flatten"), ("cnn", "gap"), ("dsconv", "gap"), ("dsconv", "flatten"), ("dsconv_s2", "flatten"),
            ("dsconv_sp", "gap")]


def student(arch: str, head: str, width: float = 0.25, seed: int = 0) -> keras.Model:
    """A student whose BatchNorm layers hold distinct, non-trivial statistics (as after training)."""
    model = build_student(student_group(arch, width=width, head=head))
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.1, 2.0, gamma.shape).astype("float32"),
                               rng.normal(0, 0.5, beta.shape).astype("float32"),
                               rng.normal(0, 0.2, mean.shape).astype("float32"),
                               rng.uniform(0.5, 2.0, var.shape).astype("float32")])
        elif isinstance(layer, keras.layers.Dense):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.1, bias.shape).astype("float32")])
    return model


def zeroed(model: keras.Model, kept: dict[str, np.ndarray]) -> keras.Model:
    """A copy of `model` whose removed channels output zero: their BatchNorm scale and shift set
    to 0 (so BN, ReLU and max pooling give 0), a removed dense unit's weights and bias to 0."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for layer in copy.layers:
        if layer.name not in kept:
            continue
        weights = layer.get_weights()
        if isinstance(layer, keras.layers.BatchNormalization):
            gone = np.setdiff1d(np.arange(len(weights[0])), kept[layer.name])
            weights[0][gone] = 0
            weights[1][gone] = 0
        elif isinstance(layer, keras.layers.Dense) and len(kept[layer.name]) < weights[0].shape[1]:
            gone = np.setdiff1d(np.arange(weights[0].shape[1]), kept[layer.name])
            weights[0][:, gone] = 0
            weights[1][gone] = 0
        layer.set_weights(weights)
    return copy


def kernels(model: keras.Model) -> dict[str, tuple]:
    return {layer.name: tuple(layer.get_weights()[0].shape) for layer in model.layers
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense))}


@pytest.mark.parametrize("arch,head", FAMILIES)
@pytest.mark.parametrize("importance", ["bn", "l1"])
def test_before_fine_tuning_the_narrow_model_equals_the_original_with_removed_channels_zeroed(arch, head,
                                                                                               importance):
    model = student(arch, head)
    result = channel.narrow(model, 0.5, importance)
    images = np.random.default_rng(1).uniform(0, 1, (16, 28, 28, 1)).astype("float32")
    expected = zeroed(model, result.kept)(images, training=False).numpy()
    got = result.model(images, training=False).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    untouched = model(images, training=False).numpy()
    assert np.abs(untouched - got).max() > 1e-3  # the removed channels did contribute: the check has teeth


@pytest.mark.parametrize("arch,head", FAMILIES)
def test_every_layer_keeps_its_share_of_channels_and_inner_kernels_shrink_quadratically(arch, head):
    model = student(arch, head)
    before, after = kernels(model), kernels(channel.narrow(model, 0.5).model)
    assert before.keys() == after.keys()
    for name, shape in before.items():
        if name == "logits":
            assert after[name][-1] == shape[-1] == 10  # every class stays
        elif name.startswith("dw"):  # a depthwise conv follows its input's channels
            assert after[name][2] == channel.keep_count(shape[2], 0.5) and after[name][3] == 1
        else:
            assert after[name][-1] == channel.keep_count(shape[-1], 0.5)
    inner = "conv2" if arch == "cnn" else "pw2"  # both its inputs and its outputs are halved
    ratio = np.prod(after[inner]) / np.prod(before[inner])
    assert ratio == pytest.approx(0.25, abs=0.02)
    assert channel.keep_count(5, 0.9) == 1 and channel.keep_count(16, 0.25) == 12


def test_bn_importance_keeps_the_largest_scales_and_l1_the_largest_filters():
    model = student("cnn", "gap")
    bn1, conv1 = model.get_layer("bn1"), model.get_layer("conv1")
    gamma, beta, mean, var = bn1.get_weights()
    gamma = np.linspace(0.1, 1.6, len(gamma)).astype("float32")[::-1].copy()  # channel 0 the largest
    bn1.set_weights([gamma, beta, mean, var])
    kernel = conv1.get_weights()[0]
    kernel = np.ones_like(kernel) * np.linspace(0.1, 1.6, kernel.shape[-1]).astype("float32")  # last the largest
    conv1.set_weights([kernel])
    half = channel.keep_count(len(gamma), 0.5)
    by_bn = channel.narrow(model, 0.5, "bn").kept["conv1"]
    by_l1 = channel.narrow(model, 0.5, "l1").kept["conv1"]
    assert by_bn.tolist() == list(range(half))
    assert by_l1.tolist() == list(range(len(gamma) - half, len(gamma)))


def test_models_that_are_not_a_single_chain_or_use_unknown_layers_are_refused_in_one_line():
    inputs = keras.Input((28, 28, 1), name="image")
    a = keras.layers.Conv2D(8, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(8, 3, padding="same", name="b")(a)
    residual = keras.Model(inputs, keras.layers.Add(name="add")([a, b]))
    with pytest.raises(ConfigError, match=r"^prune\.method=channel: layer add \(Add\) .*single chain"):
        channel.narrow(residual, 0.5)
    reshaped = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Reshape((784,)), keras.layers.Dense(4)])
    with pytest.raises(ConfigError, match=r"Reshape\) is not supported"):
        channel.narrow(reshaped, 0.5)
    with pytest.raises(ConfigError, match=r"prune\.importance=size: allowed bn, l1"):
        channel.narrow(student("cnn", "gap"), 0.5, "size")


@pytest.mark.slow
@pytest.mark.parametrize("arch,head", [("cnn", "flatten"), ("dsconv", "gap")])
def test_exported_files_hold_exactly_the_surviving_channels_and_run_in_the_executor(tmp_path, arch, head,
                                                                                     splits):
    from compress.coreml import convert as coreml
    from compress.coreml import executor as coreml_exec
    from compress.coreml import package as coreml_package
    from compress.measure import model_counts
    from compress.measure import tflite as measure
    from compress.training import batchnorm, quantize

    wide = student(arch, head)
    narrow = channel.narrow(wide, 0.5).model
    # A few steps of training first, then its BatchNorm statistics recomputed as a trial does: an untrained
    # model scores every class near 0.1, and so many of its images are near-ties that fp16 rounding flips more
    # than the 1% the comparison allows. One epoch alone left the random statistics in the moving averages
    # (85% of them): 10% accuracy, and 3 of 200 flipped once in a suite; two epochs settled: ~73%, 4-5 near-ties.
    narrow.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    narrow.fit(unit(splits.x_train[:2048]), splits.y_train[:2048], batch_size=128, epochs=2, verbose=0)
    assert batchnorm.settle(narrow, splits.x_train[:2048], steps=2 * 16) is not None  # 32 steps leave them stale
    images = unit(splits.x_test[:200])
    tflite = quantize.write(quantize.convert(narrow, "int8", splits.x_train[:100]), tmp_path / "m.tflite")
    package = coreml.to_mlpackage(narrow, tmp_path / "m.mlpackage", "linear8")
    keras_kernels = sum(int(np.prod(s)) for s in kernels(narrow).values())
    wide_macs = model_counts.count_macs(wide)
    for counted in (measure.file_counts(tflite), coreml_package.package_counts(package)):
        assert counted["weights"] == keras_kernels
        assert counted["macs"] == model_counts.count_macs(narrow) < 0.5 * wide_macs
    wide_tflite = quantize.write(quantize.convert(wide, "int8", splits.x_train[:100]), tmp_path / "w.tflite")
    assert measure.file_counts(wide_tflite)["weights"] > 3 * keras_kernels
    assert tflite.stat().st_size < 0.6 * wide_tflite.stat().st_size
    logits = narrow.predict(images, verbose=0)  # floats in [0, 1], as the students take
    carried = keras.activations.softmax(keras.backend.constant(
        coreml.keras_carrying(narrow, package).predict(images, verbose=0))).numpy()
    assert_same_choices(coreml_exec.predict(package, images), carried)  # the package's int8 weights, in Keras
    # the int8 file computes the Keras model's logits up to its rounding: their error, after each image's own
    # offset (softmax ignores one), is a small share of the logits' spread (measured: cnn 1-2%, dsconv 5-9%),
    # where the wide model's file is 104-132% off these logits. Top-1 agreement is no measure on this barely
    # trained student: half the dsconv's images have their two best classes within 0.05 in probability, and
    # int8 rounding flipped 6-16% of them (agreement 0.84 once in a suite; cnn 98-99%)
    int8 = measure.predict(tflite, images)
    centred, int8_centred = (z - z.mean(axis=1, keepdims=True) for z in (logits, int8))
    assert np.linalg.norm(int8_centred - centred) / np.linalg.norm(centred) < 0.25


@needs_data
@needs_teacher
@pytest.mark.slow
def test_a_channel_pruned_trial_logs_the_narrow_models_figures(tmp_path, small_cfg):
    from compress.measure import model_counts
    from compress.measure import tflite as measure
    from compress.search import trial

    cfg = small_cfg
    OmegaConf.update(cfg, "prune.method", "channel")
    OmegaConf.update(cfg, "prune.sparsity", 0.5)
    OmegaConf.update(cfg, "quant.mode", "int8")
    OmegaConf.update(cfg, "coreml.compression", "linear8")
    OmegaConf.update(cfg, "tracking.enabled", False)
    from compress.coreml import package as coreml_package

    results = trial.run_trial(cfg, tmp_path)
    counted = measure.file_counts(tmp_path / "model.tflite")
    assert results["macs"] == counted["macs"] < 0.5 * model_counts.count_macs(build_student(cfg.student))
    assert coreml_package.package_counts(tmp_path / "model.mlpackage")["macs"] == results["macs"]  # both shipped files
    pruned = keras.models.load_model(tmp_path / "student.keras", compile=False)
    assert results["params"] == pruned.count_params() < 0.5 * build_student(cfg.student).count_params()
    saved = OmegaConf.load(tmp_path / "config.yaml")
    assert saved.prune.method == "channel"
    assert json.dumps(results)  # every figure is a plain number


def test_channel_pruning_at_share_zero_keeps_every_channel_and_still_fine_tunes():
    from compress.training import prune

    model = student("dsconv", "gap")
    same = channel.narrow(model, 0.0)
    assert kernels(same.model) == kernels(model)
    images = np.random.default_rng(2).uniform(0, 1, (4, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(same.model(images, training=False), model(images, training=False), atol=1e-6)
    assert prune.runs(group("prune", "channel"))  # at share 0: the equal-training baseline
    assert not prune.runs(group("prune", "magnitude"))
    assert not prune.leaves_zeros(group("prune", "channel", sparsity=0.5))
    assert prune.leaves_zeros(group("prune", "magnitude", sparsity=0.5))
