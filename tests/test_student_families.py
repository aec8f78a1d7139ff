"""Each student family builds at its planned size, converts to full-integer int8 TFLite and to
Core ML, and the exported files agree with the Keras model; the shipping encoding's bytes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import student_group, student_options

from compress.core.compat import set_seed
from compress.coreml import convert as coreml
from compress.coreml import executor as coreml_exec
from compress.coreml import package as coreml_package
from compress.data.arrays import unit
from compress.measure import model_counts
from compress.measure import tflite as measure
from compress.training import encode, quantize
from compress.training.students import build_student, dsconv_plan, round_channels


def student_cfg(arch: str, width: float, head: str = "gap"):
    return student_group(arch, width=width, head=head)


def sample_images(n: int = 64) -> np.ndarray:
    """Real test images where the dataset is installed, else seeded noise shaped like them."""
    from conftest import have_dataset

    if have_dataset():
        from compress.data import fashion_mnist as data

        return unit(data.load().x_test[:n])
    return np.random.default_rng(0).random((n, 28, 28, 1)).astype(np.float32)


def settled(model):
    """Give BatchNorm non-trivial statistics so that the checks below see real arithmetic."""
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if layer.__class__.__name__ == "BatchNormalization":
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 2.0, var.shape)])
    return model


def test_dsconv_plan_and_parameters_follow_the_width():
    stem, blocks = dsconv_plan(0.5)
    assert stem == 24 and [c for c, _ in blocks] == [48, 96, 96, 144, 144] and [p for _, p in blocks].count(True) == 3
    model = build_student(student_cfg("dsconv", 0.5))
    layer_types = {type(layer).__name__ for layer in model.layers}
    assert {"DepthwiseConv2D", "GlobalAveragePooling2D"} <= layer_types and "Flatten" not in layer_types
    channels = [stem] + [c for c, _ in blocks]
    # stem 3x3x1 + per block: 3x3 depthwise + 1x1 pointwise; the logits layer; BatchNorm's 4 per channel
    expected = 9 * stem + sum(9 * a + a * b for a, b in zip(channels, channels[1:])) + channels[-1] * 10 + 10
    expected += 4 * (stem + sum(channels[:-1]) + sum(channels[1:]))
    assert model.count_params() == expected
    small = build_student(student_cfg("dsconv", 0.2))
    assert small.count_params() < model.count_params() / 4


def test_dsconv_channels_round_to_the_multiple_of_8_the_int8_kernels_tile_by():
    assert [round_channels(c, 8) for c in (1, 4, 11, 12, 13, 18, 20, 21, 37)] == [8, 8, 8, 8, 16, 16, 16, 24, 40]
    assert dsconv_plan(0.381) == (18, ((37, True), (73, False), (73, True), (110, False), (110, True)))
    assert dsconv_plan(0.381, multiple=8) == (16, ((40, True), (72, False), (72, True), (112, False), (112, True)))
    cfg = student_cfg("dsconv", 0.381, "flatten")
    assert cfg.channel_multiple == 8  # the default
    built = build_student(cfg)
    assert [built.get_layer(n).filters for n in ("stem", "pw1", "pw2", "pw5")] == [16, 40, 72, 112]
    del cfg.channel_multiple  # a config saved before the key: the width's own counts, as it trained
    assert build_student(cfg).get_layer("stem").filters == 18
    # the cnn family ignores it: its channels decide its bytes in the smallest size class
    cnn = build_student(student_cfg("cnn", 0.111, "gap"))
    one = student_cfg("cnn", 0.111, "gap")
    one.channel_multiple = 1
    assert cnn.get_layer("conv1").filters == 7 and cnn.count_params() == build_student(one).count_params()


@pytest.mark.parametrize("arch,stem_map", [("dsconv_s2", (14, 14)), ("dsconv_sp", (28, 28))])
def test_a_family_that_downsamples_in_its_stem_is_dsconv_with_its_first_pool_moved(arch, stem_map):
    plain = build_student(student_cfg("dsconv", 0.3, "flatten"))
    early = build_student(student_cfg(arch, 0.3, "flatten"))
    assert early.count_params() == plain.count_params()  # the same layers and weights
    assert dsconv_plan(0.3, arch=arch)[1][0][1] is False and dsconv_plan(0.3)[1][0][1] is True
    shapes = {name: {layer.name: tuple(layer.output.shape[1:3]) for layer in model.layers}
              for name, model in (("plain", plain), ("early", early))}
    assert shapes["plain"]["stem"] == (28, 28) and shapes["early"]["stem"] == stem_map
    assert shapes["plain"]["pw1"] == (28, 28) and shapes["early"]["pw1"] == (14, 14)  # nothing past the stem at 28x28
    assert shapes["plain"]["pw2"] == shapes["early"]["pw2"] == (14, 14)  # from the second block on, the same maps
    assert shapes["plain"]["flatten"] == shapes["early"]["flatten"]
    assert model_counts.count_macs(early) < 0.9 * model_counts.count_macs(plain)


@pytest.mark.parametrize("arch,width,head", [("dsconv", 0.2, "gap"), ("dsconv", 0.15, "flatten"),
                                             ("dsconv_s2", 0.2, "flatten"), ("dsconv_sp", 0.2, "gap"),
                                             ("cnn", 0.1, "flatten")])
@pytest.mark.slow
def test_family_converts_to_int8_tflite_and_core_ml_and_both_agree_with_keras(tmp_path, arch, width, head):
    set_seed(0)  # the initial weights: not whatever the tests before left in TensorFlow's global generator
    model = settled(build_student(student_cfg(arch, width, head)))
    x = sample_images()
    keras_logits = model.predict(x, verbose=0)
    for granularity in encode.GRANULARITIES:
        flat = encode.slim(quantize.convert(model, "int8", x[:32], granularity))
        path = quantize.write(flat, tmp_path / f"{granularity}.tflite")
        assert measure.tensor_dtypes(path)["input"] == {"int8"}
        agree = np.mean(np.argmax(measure.predict(path, x), 1) == np.argmax(keras_logits, 1))
        assert agree >= 0.85, (granularity, agree)
    package = coreml.to_mlpackage(model, tmp_path / "m.mlpackage", "none")
    probs = coreml_exec.predict(package, x)
    softmax = np.exp(keras_logits - keras_logits.max(1, keepdims=True))
    softmax /= softmax.sum(1, keepdims=True)
    np.testing.assert_allclose(probs, softmax, atol=2e-3)
    if arch.startswith("dsconv"):
        assert "conv" in coreml_package.program_ops(package)  # the depthwise conv is a grouped conv in the program


@pytest.mark.slow
def test_slim_keeps_predictions_and_the_io_names_and_drops_the_rest(tmp_path):
    model = settled(build_student(student_cfg("dsconv", 0.2)))
    x = sample_images(32)
    full = quantize.write(quantize.convert(model, "int8", x, "per_tensor"), tmp_path / "full.tflite")
    slim = quantize.write(encode.slim(full.read_bytes()), tmp_path / "slim.tflite")
    assert np.array_equal(measure.predict(full, x), measure.predict(slim, x))
    before, after = encode.breakdown(full), encode.breakdown(slim)
    assert sum(v for k, v in after.items() if k != "total") == after["total"] == slim.stat().st_size
    assert after["weights"] == before["weights"] and after["quant_params"] == before["quant_params"]
    assert after["names"] < 40 < before["names"]  # "image" and "logits" (and the runtime version key) remain
    assert after["total"] < before["total"]
    io = encode.io_details(slim)
    assert io["input"]["name"] == "image" and io["output"]["name"] == "logits" and io["input"]["dtype"] == "int8"


@pytest.mark.slow
def test_per_tensor_quantization_carries_one_scale_a_tensor(tmp_path):
    model = settled(build_student(student_cfg("dsconv", 0.2)))
    x = sample_images(32)
    sizes = {}
    for granularity in encode.GRANULARITIES:
        path = quantize.write(encode.slim(quantize.convert(model, "int8", x, granularity)),
                              tmp_path / f"{granularity}.tflite")
        sizes[granularity] = encode.breakdown(path)
    stem, blocks = dsconv_plan(0.2, multiple=student_cfg("dsconv", 0.2).channel_multiple)
    channels = 2 * sum(c for c, _ in blocks) + stem  # conv output channels
    saved = sizes["per_channel"]["quant_params"] - sizes["per_tensor"]["quant_params"]
    assert saved >= 12 * (channels - 20)  # 4-byte scale + 8-byte zero point per channel, less per tensor
    assert sizes["per_tensor"]["total"] < sizes["per_channel"]["total"]


@pytest.mark.slow
def test_unfused_batchnorm_converts_to_the_same_bytes_as_the_fused_kernel(tmp_path, monkeypatch):
    """Students train with BatchNorm unfused (faster here); the files they ship must not change."""
    from compress.training import students

    assert students.BN_FUSED is False
    x = sample_images(32)
    files = {}
    for fused in (True, False):
        monkeypatch.setattr(students, "BN_FUSED", fused)
        model = settled(build_student(student_cfg("dsconv", 0.2, "flatten")))
        norms = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
        assert len(norms) == 11 and all(layer.fused is fused for layer in norms)
        if fused:
            weights = model.get_weights()
        model.set_weights(weights)
        files[fused] = encode.slim(quantize.convert(model, "int8", x, "per_tensor"))
    assert files[True] == files[False]


def test_the_family_names_agree_wherever_they_are_listed():
    # options (read at start-up, no Keras) and students (the builders) each name the families
    from compress.core.options import ARCHS, FAMILIES

    assert set(student_options()) == set(ARCHS) == set(FAMILIES)
    assert {f.name for f in FAMILIES.values() if f.blocks == "dsconv"} == set(ARCHS) - {"cnn"}
