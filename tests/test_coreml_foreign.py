"""The verifier on Core ML models it has never seen: made by coremltools from Keras models with
other input conventions (multiarray NHWC / NCHW / flat, floats in [0, 1] or pixels, an image
input under another name with its own scale and bias, RGB or BGR), other outputs (probabilities,
logits, a classifier with integer labels, several outputs) and weight compressions; and a
program written the way PyTorch models convert (NCHW, grouped and dilated convs, upsampling,
instance norm, hard-swish). Each must agree with its source on real test images (a source that
predicts at least 3 classes: agreement with a constant model means nothing), and say how it read
the interface. The source models are trained once and converted once per test session."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from conftest import needs_data

from compress.core.compat import keras
from compress.core.errors import InterfaceError
from compress.coreml import executor as coreml_exec
from compress.data import fashion_mnist as data
from compress.data.arrays import unit

pytestmark = needs_data
N = 500  # test images per model: enough for a 99.8% agreement to mean something


@pytest.fixture(scope="session")
def fmnist():
    return data.load(None)


@pytest.fixture(scope="session")
def images(fmnist):
    return unit(fmnist.x_test[:N]), fmnist.y_test[:N]


def body(inputs, x):
    """A small CNN/MLP mix with the layers Keras users reach for."""
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.BatchNormalization(momentum=0.9)(x)
    x = keras.layers.Activation("swish")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(16, 3, dilation_rate=2, padding="same", activation="elu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(32, activation="relu6" if hasattr(keras.activations, "relu6") else "relu")(x)
    x = keras.layers.LayerNormalization()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def fitted(model, x, y):
    """One short epoch on 4,000 real images: enough for the model to predict many classes, so
    that agreement with it is not agreement with a near-constant function."""
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)
    return model


def channel_mix(weights, bias):
    """A fixed 1x1 conv from 3 channels to 1: how an RGB or BGR model here reaches the
    grayscale-trained body."""
    layer = keras.layers.Conv2D(1, 1, trainable=False)
    layer.build((None, 28, 28, 3))
    layer.set_weights([np.asarray(weights, np.float32).reshape(1, 1, 3, 1), np.full(1, bias, np.float32)])
    return layer


@dataclass
class Foreign:
    """A Keras source model, how Core ML's converter is told its input, and how it takes the
    test images (n, 28, 28, 1) in [0, 1]."""

    model: object
    inputs: Callable  # ct -> coremltools input types
    feed: Callable  # images -> the Keras model's input
    classifier: bool = False


@pytest.fixture(scope="session")
def sources(fmnist):
    """Every foreign source model, on one trained body (NHWC floats in [0, 1], logits)."""
    keras.utils.set_random_seed(1)
    x, y = unit(fmnist.x_train[:4000]), fmnist.y_train[:4000]
    inp = keras.Input((28, 28, 1))
    core = fitted(body(inp, inp), x, y)
    keras.utils.set_random_seed(2)
    flat_in = keras.Input((784,))
    flat = fitted(keras.Model(flat_in, keras.layers.Dense(10)(keras.layers.Dense(64, activation="tanh")(flat_in))),
                  x.reshape(len(x), -1), y)

    def wrap(shape, first=None, name=None, softmax=False):
        inp = keras.Input(shape, name=name)
        out = core(first(inp) if first else inp)
        return keras.Model(inp, keras.layers.Softmax()(out) if softmax else out)

    def tensor(shape):
        return lambda ct: [ct.TensorType(shape=shape)]

    def rgb(x):
        return np.repeat(x, 3, axis=-1)

    return {
        "nhwc": Foreign(core, tensor((1, 28, 28, 1)), lambda x: x),
        "nhwc_probabilities": Foreign(wrap((28, 28, 1), softmax=True), tensor((1, 28, 28, 1)), lambda x: x),
        "nchw": Foreign(wrap((1, 28, 28), keras.layers.Permute((2, 3, 1))), tensor((1, 1, 28, 28)),
                        lambda x: np.transpose(x, (0, 3, 1, 2))),
        "flat": Foreign(flat, tensor((1, 784)), lambda x: x.reshape(len(x), -1)),
        "pixels": Foreign(wrap((28, 28, 1), keras.layers.Rescaling(1 / 255.0)), tensor((1, 28, 28, 1)),
                          lambda x: x * 255.0),
        # an RGB image in [-1, 1] (the image input's own scale and bias), a classifier with labels 0..9
        "rgb_image": Foreign(wrap((28, 28, 3), channel_mix([1 / 6] * 3, 0.5), name="photo"),
                             lambda ct: [ct.ImageType(name="photo", shape=(1, 28, 28, 3), scale=1 / 127.5,
                                                      bias=[-1, -1, -1], color_layout=ct.colorlayout.RGB)],
                             lambda x: rgb(x) * 2 - 1, classifier=True),
        # a BGR image in [0, 1] that looks at its red channel only
        "bgr_image": Foreign(wrap((28, 28, 3), channel_mix([0, 0, 1], 0.0), name="photo"),
                             lambda ct: [ct.ImageType(name="photo", shape=(1, 28, 28, 3), scale=1 / 255.0,
                                                      color_layout=ct.colorlayout.BGR)],
                             lambda x: rgb(x)),
    }


def convert(model, path, inputs, classifier=False, precision="fp32", target="iOS16"):
    import coremltools as ct

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlmodel = ct.convert(model, source="tensorflow", inputs=inputs, convert_to="mlprogram",
                             classifier_config=ct.ClassifierConfig(list(range(10))) if classifier else None,
                             compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16,
                             minimum_deployment_target=getattr(ct.target, target))
    mlmodel.save(str(path))
    return path


@pytest.fixture(scope="session")
def package(sources, tmp_path_factory):
    """package(name, target, precision): the source `name` converted once per session."""
    import coremltools as ct

    folder, made = tmp_path_factory.mktemp("foreign"), {}

    def get(name, target="iOS16", precision="fp32"):
        key = (name, target, precision)
        if key not in made:
            s = sources[name]
            made[key] = convert(s.model, folder / f"{name}_{target}_{precision}.mlpackage", s.inputs(ct),
                                s.classifier, precision, target)
        return made[key]

    return get


def agreement(path, model, keras_input, x, **options):
    """Top-1 agreement of the package (through the verifier's executor) with `model`, which must
    predict at least 3 distinct classes on these images."""
    scores, reading = coreml_exec.predict(path, x, with_reading=True, **options)
    expected = np.argmax(model.predict(keras_input, verbose=0), axis=1)
    assert len(np.unique(expected)) >= 3, f"the source predicts {np.unique(expected)} only: agreement is trivial"
    return float(np.mean(np.argmax(scores, axis=1) == expected)), reading


@pytest.mark.slow
def test_multiarray_nhwc_floats_with_logits(sources, package, images):
    s = sources["nhwc"]
    agree, reading = agreement(package("nhwc"), s.model, s.feed(images[0]), images[0])
    assert agree >= 0.998, reading.describe()
    assert reading.input_kind == "array" and "NHWC" in reading.layout and "[0, 1]" in reading.scale
    assert reading.output_kind.startswith("logits") and reading.n_classes == 10


@pytest.mark.parametrize("name, layout", [("nchw", "NCHW"), ("flat", "flattened")])
def test_multiarray_nchw_and_flat_inputs(sources, package, images, name, layout):
    s = sources[name]
    agree, reading = agreement(package(name), s.model, s.feed(images[0]), images[0])
    assert agree >= 0.998 and layout in reading.layout


@pytest.mark.slow
def test_pixels_in_a_float_array_need_the_option_and_say_so(sources, package, images):
    s, x = sources["pixels"], images[0]
    wrong, reading = agreement(package("pixels"), s.model, s.feed(x), x)  # the default reading: floats in [0, 1]
    assert "Keras convention" in reading.scale
    right, reading = agreement(package("pixels"), s.model, s.feed(x), x, input_range="0-255")
    assert right >= 0.998 and "0, 255" in reading.scale and wrong < right


@pytest.mark.slow
def test_an_rgb_image_input_under_another_name_with_its_own_scale(sources, package, images):
    s, x = sources["rgb_image"], images[0]
    agree, reading = agreement(package("rgb_image"), s.model, s.feed(x), x)
    assert agree >= 0.998, reading.describe()
    assert reading.input_name == "photo" and "RGB" in reading.layout and reading.output_kind == "classifier"
    assert reading.labels == list(range(10))
    assert "image scale 0.00784314, bias -1" in reading.describe()  # 1 / 127.5 and -1, read from the program


@pytest.mark.slow
def test_rgb_data_reach_a_bgr_image_input_reversed_and_the_reading_says_so(sources, package, images):
    """RGB data (red: the garment, blue: its negative) fed to a model whose BGR input looks at
    red only: reversed, it sees the garment; unreversed it would see the negative."""
    s, gray = sources["bgr_image"], images[0]
    rgb = np.concatenate([gray, 0.5 * gray, 1 - gray], axis=-1)
    agree, reading = agreement(package("bgr_image"), s.model, rgb[..., ::-1], rgb)
    assert agree >= 0.998, reading.describe()
    unreversed = np.argmax(s.model.predict(rgb, verbose=0), 1)
    assert np.mean(unreversed == np.argmax(s.model.predict(rgb[..., ::-1], verbose=0), 1)) < 0.5
    assert reading.reversed_channels and "RGB channels reversed" in reading.describe()
    assert "image scale 0.00392157, bias 0" in reading.describe()
    _, gray_reading = coreml_exec.predict(package("bgr_image"), gray, with_reading=True)
    assert not gray_reading.reversed_channels and "reversed" not in gray_reading.describe()


@pytest.mark.slow
def test_fp16_program_with_weight_compression_and_a_probabilities_output(sources, package, images, tmp_path):
    import coremltools as ct
    import coremltools.optimize.coreml as opt

    from compress.coreml.convert import keras_carrying

    s, x = sources["nhwc_probabilities"], images[0]
    path = package("nhwc_probabilities", precision="fp16")
    compressed = opt.linear_quantize_weights(ct.models.MLModel(str(path), skip_model_load=True),
                                             opt.OptimizationConfig(global_config=opt.OpLinearQuantizerConfig(
                                                 mode="linear_symmetric", weight_threshold=64)))
    compressed.save(str(tmp_path / "int8.mlpackage"))
    # the reference carries the package's own decompressed weights (the int8 error included)
    carried = keras_carrying(s.model, tmp_path / "int8.mlpackage")
    agree, reading = agreement(tmp_path / "int8.mlpackage", carried, x, x)
    assert agree >= 0.998 and reading.output_kind == "probabilities"
    agree, _ = agreement(path, s.model, x, x)  # the fp16 program against float32 Keras
    assert agree >= 0.998


COMPRESSIONS = {  # coremltools.optimize.coreml configs a user reaches for, and the ops each must produce
    "linear_per_tensor": (lambda opt: [("linear", opt.OpLinearQuantizerConfig(
        mode="linear", granularity="per_tensor", weight_threshold=64))], {"constexpr_blockwise_shift_scale"}),
    "linear_per_block": (lambda opt: [("linear", opt.OpLinearQuantizerConfig(
        mode="linear_symmetric", granularity="per_block", block_size=4, weight_threshold=64))],
        {"constexpr_blockwise_shift_scale"}),
    "palettize_per_group": (lambda opt: [("palettize", opt.OpPalettizerConfig(
        mode="kmeans", nbits=4, granularity="per_grouped_channel", group_size=4, weight_threshold=64))],
        {"constexpr_lut_to_dense"}),
    "palettize_per_channel_scale": (lambda opt: [("palettize", opt.OpPalettizerConfig(
        mode="kmeans", nbits=4, enable_per_channel_scale=True, weight_threshold=64))],
        {"constexpr_lut_to_dense", "constexpr_blockwise_shift_scale"}),
    "palettize_int8_lut": (lambda opt: [  # the tables themselves quantized to int8
        ("palettize", opt.OpPalettizerConfig(mode="kmeans", nbits=4, weight_threshold=64)),
        ("linear", opt.OpLinearQuantizerConfig(mode="linear_symmetric", granularity="per_tensor",
                                               weight_threshold=64))],
        {"constexpr_lut_to_dense", "constexpr_blockwise_shift_scale"}),
    "palettize_vector": (lambda opt: [("palettize", opt.OpPalettizerConfig(
        mode="kmeans", nbits=4, cluster_dim=2, weight_threshold=64))], {"constexpr_lut_to_dense"}),
    "sparse_then_palettize": (lambda opt: [
        ("prune", opt.OpMagnitudePrunerConfig(target_sparsity=0.5, weight_threshold=64)),
        ("palettize", opt.OpPalettizerConfig(mode="kmeans", nbits=4, weight_threshold=64))],
        {"constexpr_lut_to_sparse", "constexpr_sparse_to_dense"}),
    "sparse_then_int8": (lambda opt: [
        ("prune", opt.OpMagnitudePrunerConfig(target_sparsity=0.5, weight_threshold=64)),
        ("linear", opt.OpLinearQuantizerConfig(mode="linear_symmetric", weight_threshold=64))],
        {"constexpr_sparse_blockwise_shift_scale", "constexpr_sparse_to_dense"}),
}


@pytest.mark.slow
@pytest.mark.parametrize("convention", ["nhwc", "nchw", "rgb_image"])
@pytest.mark.parametrize("compression", sorted(COMPRESSIONS))
def test_ios18_weight_compressions_agree_with_keras_carrying_the_packages_weights(sources, package, images, tmp_path,
                                                                                  compression, convention):
    """Every compression on three conventions (NHWC logits, NCHW multiarray, an RGB image
    classifier): the package, run by the verifier's executor, against the source Keras model
    carrying the package's own decompressed weights."""
    import coremltools as ct
    import coremltools.optimize.coreml as opt

    from compress.coreml.convert import keras_carrying
    from compress.coreml.package import program_ops

    s, x = sources[convention], images[0]
    mlmodel = ct.models.MLModel(str(package(convention, target="iOS18")), skip_model_load=True)
    passes = {"prune": opt.prune_weights, "palettize": opt.palettize_weights, "linear": opt.linear_quantize_weights}
    steps, produced = COMPRESSIONS[compression]
    for i, (kind, config) in enumerate(steps(opt)):
        joint = {"joint_compression": True} if i else {}
        mlmodel = passes[kind](mlmodel, opt.OptimizationConfig(global_config=config), **joint)
    packed = tmp_path / f"{compression}.mlpackage"
    mlmodel.save(str(packed))
    assert produced <= set(program_ops(packed)), set(program_ops(packed))
    agree, reading = agreement(packed, keras_carrying(s.model, packed), s.feed(x), x)
    assert agree >= 0.998, (agree, reading.describe())


@pytest.mark.slow
def test_data_that_cannot_fit_the_input_is_one_line(tmp_path, images):
    import coremltools as ct

    keras.utils.set_random_seed(6)
    inp = keras.Input((32, 32, 3), name="img")
    model = keras.Model(inp, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(inp)))
    path = convert(model, tmp_path / "cifar.mlpackage", [ct.ImageType(name="img", shape=(1, 32, 32, 3))])
    with pytest.raises(InterfaceError, match="wants 32x32 RGB images; the data is 28x28 images"):
        coreml_exec.predict(path, images[0])
    path = convert(model, tmp_path / "cifar_array.mlpackage", [ct.TensorType(shape=(1, 32, 32, 3))])
    with pytest.raises(InterfaceError, match=r"wants a multiarray of shape \[1, 32, 32, 3\]"):
        coreml_exec.predict(path, images[0])


def test_verify_prints_the_reading_and_scores_a_users_npz(sources, package, images, tmp_path):
    from compress.measure.scoring import line, score

    s = sources["nhwc"]
    x, y = images
    np.savez(tmp_path / "test.npz", x=np.round(x[..., 0] * 255).astype(np.uint8), y=y)
    result = score(package("nhwc"), data_file=tmp_path / "test.npz", precision="fp16")
    expected = np.argmax(s.model.predict(x, verbose=0), axis=1)
    assert result["n"] == N and result["accuracy"] == pytest.approx(float(np.mean(expected == y)), abs=0.004)
    assert result["fp16_agreement"] >= 0.98
    text = line(result)
    assert "read as: input" in text and "NHWC" in text and "pixels 0-255" in text and "float16" in text


@pytest.mark.parametrize("name", ["nhwc", "rgb_image"])
def test_a_test_set_missing_its_last_classes_still_scores_with_the_models_classes(sources, package, images, tmp_path,
                                                                                  name):
    """The number of classes is the model's (a classifier's labels, a logits output's class axis),
    not the data's largest label plus one."""
    from compress.measure.scoring import line, score

    s = sources[name]
    x, y = images
    keep = y < 8  # classes 8 and 9 absent
    np.savez(tmp_path / "test.npz", x=np.round(x[keep, ..., 0] * 255).astype(np.uint8), y=y[keep])
    result = score(package(name), data_file=tmp_path / "test.npz")
    expected = np.argmax(s.model.predict(s.feed(x[keep]), verbose=0), axis=1)
    assert np.any(expected >= 8)  # the model may still answer an absent class, and is scored wrong for it
    assert result["n"] == int(keep.sum())
    assert result["accuracy"] == pytest.approx(float(np.mean(expected == y[keep])), abs=0.004)
    assert "10 classes" in line(result)


# -- a program as PyTorch models convert: NCHW, built with coremltools' MIL builder -------------------
def conv_by_hand(x, w, b=None, stride=1, pad=0, dilation=1, groups=1):
    """NCHW convolution as a sum over kernel offsets of strided slices (float64)."""
    x = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    n, _, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    oh, ow = (h - dilation * (kh - 1) - 1) // stride + 1, (wd - dilation * (kw - 1) - 1) // stride + 1
    out = np.zeros((n, cout, oh, ow))
    per = cout // groups
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                patch = x[:, g * cin_g:(g + 1) * cin_g, i * dilation:i * dilation + (oh - 1) * stride + 1:stride,
                          j * dilation:j * dilation + (ow - 1) * stride + 1:stride]
                out[:, g * per:(g + 1) * per] += np.einsum("nchw,oc->nohw", patch, w[g * per:(g + 1) * per, :, i, j])
    return out if b is None else out + b[None, :, None, None]


def bilinear_aligned(size_in, size_out):
    """The (out, in) matrix of align_corners=True bilinear interpolation."""
    m = np.zeros((size_out, size_in))
    for p in range(size_out):
        src = p * (size_in - 1) / (size_out - 1)
        lo = min(int(np.floor(src)), size_in - 2)
        m[p, lo], m[p, lo + 1] = 1 - (src - lo), src - lo
    return m


def pytorch_style_features(x, w):
    """`pytorch_style_program`'s forward pass up to its global pooling, written out in NumPy
    (float64)."""
    y = np.clip(conv_by_hand(x, w["c1"], w["b1"], stride=2, pad=1), 0, 6)  # relu6, 14x14
    y = conv_by_hand(y, w["c2"], w["b2"], pad=2, dilation=2, groups=4)  # grouped, dilated
    mean, var = y.mean(axis=(2, 3), keepdims=True), y.var(axis=(2, 3), keepdims=True)
    y = (y - mean) / np.sqrt(var + 1e-5) * w["gamma"][None, :, None, None] + w["beta"][None, :, None, None]
    y = y * np.clip(y / 6 + 0.5, 0, 1)  # hard-swish
    y = conv_by_hand(y, w["c3"], w["b3"], stride=2, pad=1)  # 7x7
    m = bilinear_aligned(7, 14)
    y = np.einsum("ph,nchw,qw->ncpq", m, y, m)  # upsample x2, align_corners
    n, _, h, wd = y.shape  # conv_transpose, kernel 2 stride 2: each pixel becomes a 2x2 block
    y = np.einsum("ncij,coab->noiajb", y, w["t"]).reshape(n, -1, 2 * h, 2 * wd) + w["bt"][None, :, None, None]
    return np.maximum(y, 0).mean(axis=(2, 3))  # relu, global average pooling


def pytorch_style_by_hand(x, w):
    """The whole forward pass: features, linear layer, softmax."""
    z = pytorch_style_features(x, w) @ w["fc"].T + w["bfc"]
    z = np.exp(z - z.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


@pytest.fixture(scope="session")
def pytorch_style(tmp_path_factory, fmnist):
    """(package, weights): an NCHW program the way a PyTorch model converts (fixed batch of 1,
    a reshape to (1, C) before its linear layer), softmax probabilities out. Its convolutions
    are random; its linear layer is fitted (least squares on 1,000 training images' features),
    so that it tells the classes apart."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    rng = np.random.default_rng(3)
    shapes = {"c1": (8, 1, 3, 3), "b1": (8,), "c2": (8, 2, 3, 3), "b2": (8,), "gamma": (8,), "beta": (8,),
              "c3": (16, 8, 3, 3), "b3": (16,), "t": (16, 16, 2, 2), "bt": (16,)}
    w = {k: (rng.normal(size=s) * (1 / np.sqrt(np.prod(s[1:])) if len(s) > 1 else 0.3)).astype(np.float32)
         for k, s in shapes.items()}
    w["gamma"] = (1 + 0.2 * rng.normal(size=8)).astype(np.float32)
    x, y = unit(fmnist.x_train[:1000]), fmnist.y_train[:1000]
    features = pytorch_style_features(np.transpose(x, (0, 3, 1, 2)).astype(np.float64),
                                      {k: v.astype(np.float64) for k, v in w.items()})
    design = np.concatenate([features, np.ones((len(x), 1))], axis=1)
    solved = np.linalg.lstsq(design, 10 * np.eye(10)[y], rcond=None)[0]  # (17, 10)
    w["fc"], w["bfc"] = solved[:-1].T.astype(np.float32), solved[-1].astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 1, 28, 28))], opset_version=ct.target.iOS16)
    def prog(x):
        y = mb.relu6(x=mb.conv(x=x, weight=w["c1"], bias=w["b1"], strides=[2, 2], pad_type="custom",
                               pad=[1, 1, 1, 1]))
        y = mb.conv(x=y, weight=w["c2"], bias=w["b2"], pad_type="custom", pad=[2, 2, 2, 2], dilations=[2, 2],
                    groups=4)
        y = mb.instance_norm(x=y, gamma=w["gamma"], beta=w["beta"], epsilon=1e-5)
        y = mb.mul(x=y, y=mb.sigmoid_hard(x=y, alpha=1 / 6, beta=0.5))
        y = mb.conv(x=y, weight=w["c3"], bias=w["b3"], strides=[2, 2], pad_type="custom", pad=[1, 1, 1, 1])
        y = mb.upsample_bilinear(x=y, scale_factor_height=2.0, scale_factor_width=2.0, align_corners=True)
        y = mb.conv_transpose(x=y, weight=w["t"], bias=w["bt"], strides=[2, 2], pad_type="valid")
        y = mb.reshape(x=mb.reduce_mean(x=mb.relu(x=y), axes=[2, 3], keep_dims=True), shape=[1, 16])
        return mb.softmax(x=mb.linear(x=y, weight=w["fc"], bias=w["bfc"]), axis=-1, name="probs")

    path = tmp_path_factory.mktemp("pytorch") / "pytorch_style.mlpackage"
    ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
               compute_precision=ct.precision.FLOAT32).save(str(path))
    return path, {k: v.astype(np.float64) for k, v in w.items()}


@pytest.mark.slow
def test_a_pytorch_style_nchw_program_scores_through_the_verifier_as_numpy_computes_it(pytorch_style, images,
                                                                                       tmp_path):
    from compress.coreml.package import program_ops
    from compress.measure.scoring import line, score

    path, w = pytorch_style
    ops = set(program_ops(path))
    assert {"conv", "conv_transpose", "upsample_bilinear", "instance_norm", "sigmoid_hard", "mul", "relu6",
            "reduce_mean", "reshape", "linear", "softmax"} <= ops, ops
    x = images[0]
    expected = pytorch_style_by_hand(np.transpose(x, (0, 3, 1, 2)).astype(np.float64), w)
    chosen = np.argmax(expected, 1)
    assert len(np.unique(chosen)) >= 3, np.unique(chosen)
    probs, reading = coreml_exec.predict(path, x, with_reading=True)
    np.testing.assert_allclose(probs, expected, atol=1e-4)
    assert np.mean(np.argmax(probs, 1) == chosen) >= 0.998
    assert "NCHW" in reading.layout and reading.output_kind == "probabilities"
    # end to end: the verifier scores it against labels that are the NumPy forward pass's answers
    np.savez(tmp_path / "hand.npz", x=np.round(x[..., 0] * 255).astype(np.uint8), y=chosen)
    result = score(path, data_file=tmp_path / "hand.npz")
    assert result["accuracy"] >= 0.998 and result["n"] == N
    assert "NCHW" in line(result) and "batched by the executor" in line(result)
