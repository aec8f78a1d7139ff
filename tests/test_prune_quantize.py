"""Pruning reaches its sparsity; each quant mode gives the expected tensor types; the
float32 file scores what the Keras model scores."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import group, have_dataset

from compress.core.errors import ConfigError
from compress.data.arrays import unit
from compress.measure import model_counts
from compress.measure import tflite as measure
from compress.training import distill, prune, quantize
from compress.training.students import build_student

STUDENT = group("student", width=0.125, head="flatten")
DISTILL = group("distill", temperature=4.0, alpha=0.1, batch_size=64)


@pytest.fixture(scope="module")
def images_labels():
    """Real images where the dataset is installed, else random ones (said in the test id)."""
    if have_dataset():
        from compress.data import fashion_mnist as data

        s = data.load()
        return unit(s.x_train[:640]), s.y_train[:640], unit(s.x_test[:300]), s.y_test[:300]
    rng = np.random.default_rng(0)
    return (rng.random((640, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 640),
            rng.random((300, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 300))


@pytest.fixture(scope="module")
def trained(images_labels):
    x, y, _, _ = images_labels
    model = build_student(STUDENT)
    targets = distill.pack_targets(y, np.zeros((len(y), 10), np.float32))
    distill.fit(model, x, targets, x[:0], targets[:0], group("distill", alpha=1.0, batch_size=64), 2, 3e-3, 0)
    return model


@pytest.mark.slow
@pytest.mark.parametrize("sparsity", [0.5, 0.8])
def test_pruning_reaches_target_sparsity_within_one_point(images_labels, trained, sparsity):
    from compress.core.compat import keras

    x, y, _, _ = images_labels
    model = keras.models.clone_model(trained)
    model.set_weights(trained.get_weights())
    targets = distill.pack_targets(y, np.zeros((len(y), 10), np.float32))
    cfg = group("prune", sparsity=sparsity, epochs=2, learning_rate=1e-3)
    stripped, _ = prune.prune(model, x, targets, x[:0], targets[:0], DISTILL, cfg, seed=0)
    per_layer = prune.kernel_sparsity(stripped)
    assert set(per_layer) == {"conv1", "conv2", "conv3", "fc", "logits"}
    for name, value in per_layer.items():
        assert abs(value - sparsity) <= 0.01, (name, value)
    assert not any("prune" in w.name for w in stripped.weights)  # wrappers stripped
    total, nonzero = model_counts.parameter_counts(stripped)
    assert nonzero < total * (1 - sparsity * 0.9)


def test_out_of_range_sparsity_is_refused(trained):
    cfg = group("prune", sparsity=1.0, epochs=1)
    with pytest.raises(ConfigError, match=r"prune.sparsity=1.0: allowed \[0, 1\)"):
        prune.prune(trained, None, None, None, None, DISTILL, cfg, seed=0)


EXPECTED = {
    # mode: (input dtype, output dtype, a dtype the weights must include, dtypes that must be absent)
    "float32": ("float32", "float32", "float32", {"int8", "float16"}),
    "float16": ("float32", "float32", "float16", {"int8"}),
    "dynamic": ("float32", "float32", "int8", {"float16"}),
    "int8": ("int8", "int8", "int8", {"float16", "float32"}),
}


@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_each_mode_yields_expected_tensor_types(tmp_path, images_labels, trained, mode):
    x = images_labels[0]
    path = quantize.write(quantize.convert(trained, mode, x[:50]), tmp_path / f"{mode}.tflite")
    types = measure.tensor_dtypes(path)
    inp, out, weights, absent = EXPECTED[mode]
    assert types["input"] == {inp} and types["output"] == {out}
    assert weights in types["all"]
    assert not (absent & types["all"]), types["all"]


@pytest.mark.parametrize("mode", ["float32", "dynamic"])
def test_conversion_writes_the_bytes_of_the_converter_s_own_keras_path(trained, mode):
    """quantize.convert hands the converter a SavedModel of the serving signature alone (faster than
    `from_keras_model`, which traces every layer's functions too): the flatbuffer is the same, byte for byte."""
    from compress.core.compat import tf
    from compress.core.quiet import native_quiet

    converter = tf.lite.TFLiteConverter.from_keras_model(trained)
    if mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    with native_quiet():
        expected = converter.convert()
    assert quantize.convert(trained, mode) == expected


def test_a_model_keras_cannot_save_so_converts_the_converter_s_own_way_and_keeps_its_optimizer(trained, monkeypatch):
    from compress.core.compat import keras

    expected, optimizer = quantize.convert(trained, "float32"), trained.optimizer

    def refuse(model, *args, **kwargs):  # as tf_keras fails: the optimizer already taken off the model
        model.optimizer = None
        raise NotImplementedError("a layer without get_config")

    monkeypatch.setattr(keras.models, "save_model", refuse)
    assert quantize.convert(trained, "float32") == expected
    assert trained.optimizer is optimizer


@pytest.mark.slow
def test_qat_yields_int8_file_and_keeps_sparsity(tmp_path, images_labels, trained):
    from compress.core.compat import keras

    x, y, _, _ = images_labels
    model = keras.models.clone_model(trained)
    model.set_weights(trained.get_weights())
    targets = distill.pack_targets(y, np.zeros((len(y), 10), np.float32))
    pruned, _ = prune.prune(model, x, targets, x[:0], targets[:0], DISTILL,
                            group("prune", sparsity=0.5, epochs=1, learning_rate=1e-3), seed=0)
    qcfg = group("quant", qat_epochs=1, learning_rate=5e-4)
    qat_model, _ = quantize.quantization_aware(pruned, x, targets, x[:0], targets[:0], DISTILL, qcfg, True, 0)
    kernels = [w.numpy() for w in qat_model.weights if w.name.endswith("kernel:0")]
    assert kernels and all(np.mean(k == 0) >= 0.49 for k in kernels)
    path = quantize.write(quantize.convert(qat_model, "qat", x[:50]), tmp_path / "qat.tflite")
    types = measure.tensor_dtypes(path)
    assert types["input"] == {"int8"} and types["output"] == {"int8"} and "float32" not in types["all"]


@pytest.mark.slow
def test_float_twin_carries_the_weights_quantization_aware_training_left(images_labels, trained):
    """The Core ML package and student.keras of a qat trial are made from this twin: the model QAT
    started from keeps its earlier weights (tfmot fine-tunes a clone)."""
    from compress.core.compat import keras

    x, y, x_test, _ = images_labels
    start = keras.models.clone_model(trained)
    start.set_weights(trained.get_weights())
    targets = distill.pack_targets(y, np.zeros((len(y), 10), np.float32))
    qat_model, _ = quantize.quantization_aware(start, x, targets, x[:0], targets[:0], DISTILL,
                                               group("quant", qat_epochs=1, learning_rate=3e-3), False, 0)
    twin = quantize.float_twin(qat_model, start)
    trained_values = {w.name: w.numpy() for w in qat_model.weights}
    changed = 0
    for layer in start.layers:
        for before, after in zip(layer.weights, twin.get_layer(layer.name).weights, strict=True):
            (source,) = [v for k, v in trained_values.items() if k.endswith(before.name.split("/", 1)[-1])
                         and k.split("/")[0] == layer.name]
            np.testing.assert_array_equal(after.numpy(), source)
            changed += not np.array_equal(after.numpy(), before.numpy())
    assert changed >= len(start.trainable_weights) // 2  # the fine-tuning moved the kernels the twin now holds
    # its float outputs follow the fake-quantized model's more closely than the starting model's do
    fake = qat_model.predict(x_test, verbose=0)
    twin_gap, start_gap = (np.abs(m.predict(x_test, verbose=0) - fake).mean() for m in (twin, start))
    assert twin_gap < start_gap


def test_float32_tflite_accuracy_equals_keras(tmp_path, images_labels, trained):
    _, _, x_test, y_test = images_labels
    path = quantize.write(quantize.convert(trained, "float32"), tmp_path / "f32.tflite")
    keras_pred = np.argmax(trained.predict(x_test, verbose=0), axis=1)
    tflite_out = measure.predict(path, x_test, batch=128)
    np.testing.assert_allclose(tflite_out, trained.predict(x_test, verbose=0), rtol=1e-4, atol=1e-4)
    assert measure.accuracy(path, x_test, y_test, batch=128) == pytest.approx(float(np.mean(keras_pred == y_test)))


def test_unknown_mode_is_refused(trained):
    with pytest.raises(ConfigError, match="quant.mode=int4: allowed float32, float16, dynamic, int8, qat"):
        quantize.convert(trained, "int4")
