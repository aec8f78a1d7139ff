"""The verifier on Core ML models it has never seen: made by coremltools from Keras models with
other input conventions (multiarray NHWC / NCHW / flat, floats in [0, 1] or pixels, an image
input under another name with its own scale and bias, RGB), other outputs (probabilities,
logits, a classifier with integer labels, several outputs) and weight compressions. Each must
agree with its source Keras model on real test images, and say how it read the interface."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import needs_data

from compress.coreml import executor as coreml_exec
from compress.coreml.interface import InterfaceError
from compress.pipeline import data
from compress.plumbing.compat import keras

pytestmark = needs_data
N = 500  # test images per model: enough for a 99.8% agreement to mean something


@pytest.fixture(scope="module")
def images():
    splits = data.load(None)
    return splits.x_test[:N], splits.y_test[:N]


def body(inputs, x):
    """A small CNN/MLP mix with the layers Keras users reach for (seeded, untrained: agreement,
    not accuracy, is what is checked)."""
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("swish")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(16, 3, dilation_rate=2, padding="same", activation="elu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(32, activation="relu6" if hasattr(keras.activations, "relu6") else "relu")(x)
    x = keras.layers.LayerNormalization()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def convert(model, tmp_path, name, inputs, classifier=None, precision="fp32", outputs=None, target="iOS16"):
    import coremltools as ct

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlmodel = ct.convert(model, source="tensorflow", inputs=inputs, convert_to="mlprogram",
                             classifier_config=classifier, outputs=outputs,
                             compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16,
                             minimum_deployment_target=getattr(ct.target, target))
    path = tmp_path / f"{name}.mlpackage"
    mlmodel.save(str(path))
    return path


def agreement(path, model, keras_input, x, **options):
    scores, reading = coreml_exec.predict(path, x, with_reading=True, **options)
    expected = np.argmax(model.predict(keras_input, verbose=0), axis=1)
    return float(np.mean(np.argmax(scores, axis=1) == expected)), reading


def test_multiarray_nhwc_floats_with_logits(tmp_path, images):
    import coremltools as ct

    keras.utils.set_random_seed(1)
    inp = keras.Input((28, 28, 1))
    model = body(inp, inp)
    path = convert(model, tmp_path, "nhwc", [ct.TensorType(shape=(1, 28, 28, 1))])
    agree, reading = agreement(path, model, images[0], images[0])
    assert agree >= 0.998, reading.describe()
    assert reading.input_kind == "array" and "NHWC" in reading.layout and "[0, 1]" in reading.scale
    assert reading.output_kind.startswith("logits")


def test_multiarray_nchw_and_flat_inputs(tmp_path, images):
    import coremltools as ct

    x = images[0]
    keras.utils.set_random_seed(2)
    inp = keras.Input((1, 28, 28))
    model = body(inp, keras.layers.Permute((2, 3, 1))(inp))
    path = convert(model, tmp_path, "nchw", [ct.TensorType(shape=(1, 1, 28, 28))])
    agree, reading = agreement(path, model, np.transpose(x, (0, 3, 1, 2)), x)
    assert agree >= 0.998 and "NCHW" in reading.layout
    flat_in = keras.Input((784,))
    flat = keras.Model(flat_in, keras.layers.Dense(10)(keras.layers.Dense(64, activation="tanh")(flat_in)))
    path = convert(flat, tmp_path, "flat", [ct.TensorType(shape=(1, 784))])
    agree, reading = agreement(path, flat, x.reshape(len(x), -1), x)
    assert agree >= 0.998 and "flattened" in reading.layout


def test_pixels_in_a_float_array_need_the_option_and_say_so(tmp_path, images):
    import coremltools as ct

    keras.utils.set_random_seed(3)
    inp = keras.Input((28, 28, 1))
    model = body(inp, keras.layers.Rescaling(1 / 255.0)(inp))  # a model that takes pixels 0-255
    path = convert(model, tmp_path, "pixels", [ct.TensorType(shape=(1, 28, 28, 1))])
    x = images[0]
    wrong, reading = agreement(path, model, x * 255.0, x)  # the default reading: floats in [0, 1]
    assert "Keras convention" in reading.scale
    right, reading = agreement(path, model, x * 255.0, x, input_range="0-255")
    assert right >= 0.998 and "0, 255" in reading.scale and wrong < right


def test_an_rgb_image_input_under_another_name_with_its_own_scale(tmp_path, images):
    import coremltools as ct

    keras.utils.set_random_seed(4)
    inp = keras.Input((28, 28, 3), name="photo")
    model = body(inp, inp)  # expects RGB in [-1, 1]
    image = ct.ImageType(name="photo", shape=(1, 28, 28, 3), scale=1 / 127.5, bias=[-1, -1, -1],
                         color_layout=ct.colorlayout.RGB)
    path = convert(model, tmp_path, "rgb", [image], classifier=ct.ClassifierConfig(list(range(10))))
    x = images[0]
    agree, reading = agreement(path, model, np.repeat(x, 3, axis=-1) * 2 - 1, x)
    assert agree >= 0.998, reading.describe()
    assert reading.input_name == "photo" and "RGB" in reading.layout and reading.output_kind == "classifier"
    assert reading.labels == list(range(10))


def test_fp16_program_with_weight_compression_and_a_probabilities_output(tmp_path, images):
    import coremltools as ct
    import coremltools.optimize.coreml as opt

    keras.utils.set_random_seed(5)
    inp = keras.Input((28, 28, 1))
    model = keras.Model(inp, keras.layers.Softmax()(body(inp, inp)(inp)))
    path = convert(model, tmp_path, "fp16", [ct.TensorType(shape=(1, 28, 28, 1))], precision="fp16")
    mlmodel = ct.models.MLModel(str(path))
    compressed = opt.linear_quantize_weights(mlmodel, opt.OptimizationConfig(
        global_config=opt.OpLinearQuantizerConfig(mode="linear_symmetric", weight_threshold=64)))
    compressed.save(str(tmp_path / "int8.mlpackage"))
    # the reference carries the package's own decompressed weights (the int8 error included)
    from compress.coreml.convert import keras_carrying

    packed, reading = coreml_exec.predict(tmp_path / "int8.mlpackage", images[0], with_reading=True)
    assert reading.output_kind == "probabilities"
    carried = keras_carrying(model, tmp_path / "int8.mlpackage")
    assert np.mean(np.argmax(packed, 1) == np.argmax(carried.predict(images[0], verbose=0), 1)) >= 0.998
    agree, _ = agreement(path, model, images[0], images[0])
    assert agree >= 0.99  # an fp16 program against float32 Keras: near-ties may flip


COMPRESSIONS = {  # coremltools.optimize.coreml configs a user reaches for (iOS 18: per-block, per-group, joint)
    "linear_per_block": lambda opt: [("linear", opt.OpLinearQuantizerConfig(
        mode="linear_symmetric", granularity="per_block", block_size=4, weight_threshold=64))],
    "palettize_per_group": lambda opt: [("palettize", opt.OpPalettizerConfig(
        mode="kmeans", nbits=4, granularity="per_grouped_channel", group_size=4, weight_threshold=64))],
    "palettize_vector": lambda opt: [("palettize", opt.OpPalettizerConfig(
        mode="kmeans", nbits=4, cluster_dim=2, weight_threshold=64))],
    "sparse_then_palettize": lambda opt: [
        ("prune", opt.OpMagnitudePrunerConfig(target_sparsity=0.5, weight_threshold=64)),
        ("palettize", opt.OpPalettizerConfig(mode="kmeans", nbits=4, weight_threshold=64))],
    "sparse_then_int8": lambda opt: [
        ("prune", opt.OpMagnitudePrunerConfig(target_sparsity=0.5, weight_threshold=64)),
        ("linear", opt.OpLinearQuantizerConfig(mode="linear_symmetric", weight_threshold=64))],
}


@pytest.mark.parametrize("compression", sorted(COMPRESSIONS))
def test_ios18_weight_compressions_agree_with_keras_carrying_the_packages_weights(tmp_path, images, compression):
    import coremltools as ct
    import coremltools.optimize.coreml as opt

    from compress.coreml.convert import keras_carrying, program_ops

    keras.utils.set_random_seed(7)
    inp = keras.Input((28, 28, 1))
    model = body(inp, inp)
    path = convert(model, tmp_path, "float", [ct.TensorType(shape=(1, 28, 28, 1))], target="iOS18")
    mlmodel = ct.models.MLModel(str(path), skip_model_load=True)
    passes = {"prune": opt.prune_weights, "palettize": opt.palettize_weights, "linear": opt.linear_quantize_weights}
    for i, (kind, config) in enumerate(COMPRESSIONS[compression](opt)):
        joint = {"joint_compression": True} if i else {}
        mlmodel = passes[kind](mlmodel, opt.OptimizationConfig(global_config=config), **joint)
    mlmodel.save(str(tmp_path / f"{compression}.mlpackage"))
    packed = tmp_path / f"{compression}.mlpackage"
    assert any(op.startswith("constexpr_") for op in program_ops(packed))
    scores, _ = coreml_exec.predict(packed, images[0], with_reading=True)
    carried = np.argmax(keras_carrying(model, packed).predict(images[0], verbose=0), 1)
    assert np.mean(np.argmax(scores, 1) == carried) >= 0.998


def test_data_that_cannot_fit_the_input_is_one_line(tmp_path, images):
    import coremltools as ct

    keras.utils.set_random_seed(6)
    inp = keras.Input((32, 32, 3), name="img")
    model = keras.Model(inp, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(inp)))
    path = convert(model, tmp_path, "cifar", [ct.ImageType(name="img", shape=(1, 32, 32, 3))])
    with pytest.raises(InterfaceError, match="wants 32x32 RGB images; the data is 28x28 images"):
        coreml_exec.predict(path, images[0])
    path = convert(model, tmp_path, "cifar_array", [ct.TensorType(shape=(1, 32, 32, 3))])
    with pytest.raises(InterfaceError, match=r"wants a multiarray of shape \[1, 32, 32, 3\]"):
        coreml_exec.predict(path, images[0])


def test_verify_prints_the_reading_and_scores_a_users_npz(tmp_path, images):
    import coremltools as ct

    from compress.verify import line, score

    keras.utils.set_random_seed(7)
    inp = keras.Input((28, 28, 1))
    model = body(inp, inp)
    path = convert(model, tmp_path, "user", [ct.TensorType(shape=(1, 28, 28, 1))])
    x, y = images
    np.savez(tmp_path / "test.npz", x=np.round(x[..., 0] * 255).astype(np.uint8), y=y)
    result = score(path, data_file=tmp_path / "test.npz", precision="fp16")
    expected = np.argmax(model.predict(x, verbose=0), axis=1)
    assert result["n"] == N and result["accuracy"] == pytest.approx(float(np.mean(expected == y)), abs=0.004)
    assert result["fp16_agreement"] >= 0.98
    text = line(result)
    assert "read as: input" in text and "NHWC" in text and "pixels 0-255" in text and "float16" in text
