"""Export a Keras student to a Core ML ML Program (.mlpackage) an iOS developer can use.

The package takes a named 28x28 grayscale image (pixels 0-255, scaled to [0, 1] inside
the model, as in training), returns the ten Fashion-MNIST class labels with their
probabilities, states its minimum deployment target and carries metadata.  Weights are
compressed with coremltools' own passes (sparse, linear int8, palettized) instead of
shipping float weights where the trial pruned or quantized.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from compress.core.compat import keras
from compress.core.options import check_coreml_compression
from compress.core.quiet import native_quiet
from compress.coreml.package import coremltools_quietly, load_program
from compress.data.fashion_mnist import CLASS_NAMES

log = logging.getLogger(__name__)

DEPLOYMENT_TARGET = "iOS16"
INPUT_NAME = "image"


@dataclass(frozen=True)
class PackageExport:
    """Whether a trial makes a Core ML package beside its .tflite, and how the package's weights are
    compressed (the `coreml` group)."""

    enabled: bool
    compression: str

    @classmethod
    def of(cls, coreml_cfg) -> PackageExport:
        return cls(bool(coreml_cfg.enabled), str(coreml_cfg.compression))


def compress_weights(mlmodel, compression: str, sparsity: float = 0.0):
    """Apply one of options.COREML_COMPRESSIONS; a pruned model keeps its zeros as sparse weights first."""
    check_coreml_compression(compression)
    from coremltools.optimize import coreml as opt

    small = {"weight_threshold": 0}  # our students' tensors are small: compress them all
    if compression == "sparse" or (sparsity > 0 and compression == "none"):
        return opt.prune_weights(mlmodel, opt.OptimizationConfig(
            global_config=opt.OpThresholdPrunerConfig(threshold=1e-12, minimum_sparsity_percentile=0.3, **small)))
    if compression == "linear8":
        return opt.linear_quantize_weights(mlmodel, opt.OptimizationConfig(
            global_config=opt.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", **small)))
    if compression.startswith("palettize"):
        nbits = int(compression[len("palettize"):])
        # a tensor smaller than four lookup tables gains nothing from one; and coremltools 9's
        # 8-bit k-means returned wrong weights for such a tensor (72 weights: error larger
        # than the weights themselves), which the executor showed
        return opt.palettize_weights(mlmodel, opt.OptimizationConfig(
            global_config=opt.OpPalettizerConfig(nbits=nbits, mode="kmeans", weight_threshold=4 * 2**nbits)))
    return mlmodel


def to_mlpackage(model: keras.Model, path: str | Path, compression: str = "none", sparsity: float = 0.0,
                 metadata: Mapping[str, str] | None = None, description: str = "",
                 class_names: Sequence[str] | None = None) -> Path:
    """Convert a logits-output Keras model to `path` (.mlpackage), written atomically: an image input of
    the model's own size and colour (one channel: grayscale, three: RGB), the classifier's labels
    `class_names` (None: Fashion-MNIST's, the committed study's data)."""
    ct = coremltools_quietly()
    path = Path(path)
    height, width, channels = (int(d) for d in model.inputs[0].shape[1:])
    names = list(class_names) if class_names is not None else list(CLASS_NAMES)
    colour = "grayscale" if channels == 1 else "RGB"
    image_in = keras.Input((height, width, channels), name=INPUT_NAME)  # whatever the Keras model named its input
    probs = keras.Model(image_in, keras.layers.Softmax(name="probabilities")(model(image_in)))
    image = ct.ImageType(name=INPUT_NAME, shape=(1, height, width, channels), scale=1 / 255.0,
                         color_layout=ct.colorlayout.GRAYSCALE if channels == 1 else ct.colorlayout.RGB)
    with native_quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlmodel = ct.convert(
            probs, source="tensorflow", inputs=[image], convert_to="mlprogram",
            classifier_config=ct.ClassifierConfig(names),
            minimum_deployment_target=getattr(ct.target, DEPLOYMENT_TARGET),
        )
        mlmodel = compress_weights(mlmodel, compression, sparsity)
    if class_names is None:  # the committed study's data, described as it always was
        mlmodel.author = "compress (Fashion-MNIST compression sweep)"
        mlmodel.short_description = description or (
            "Fashion-MNIST clothing classifier distilled from a 1.62 M-parameter CNN. Input: a 28x28 grayscale "
            "image, white garment on black as in Fashion-MNIST. Output: the class label and its probabilities."
        )
    else:
        mlmodel.author = "compress (compression sweep)"
        mlmodel.short_description = description or (
            f"Image classifier of {len(names)} classes distilled from the user's teacher. Input: a {height}x{width} "
            f"{colour} image. Output: the class label and its probabilities.")
    mlmodel.version = "1"
    mlmodel.input_description[INPUT_NAME] = (f"{height}x{width} {colour} image, pixel values 0-255 "
                                             f"(scaled to 0-1 inside)")
    meta = {"minimum_deployment_target": DEPLOYMENT_TARGET, "compression": compression,
            "class_labels": ",".join(names), **{k: str(v) for k, v in (metadata or {}).items()}}
    mlmodel.user_defined_metadata.update(meta)
    tmp = path.with_name(path.stem + ".partial.mlpackage")
    if tmp.exists():
        shutil.rmtree(tmp)
    with native_quiet():
        mlmodel.save(str(tmp))
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return path


def keras_carrying(model: keras.Model, package: str | Path) -> keras.Model:
    """A copy of the Keras `model` whose conv and dense kernels are the package's weights, as
    coremltools itself decompresses them (`decompress_weights`): the float model the compressed
    package stands for, so that an executor's answers on the package can be held to Keras'
    exactly, compression error and all. The converter folds a BatchNorm into the conv before it
    (kernel times gamma / sqrt(var + eps)); that factor is divided back out, the BatchNorm kept.
    The package's conv and linear/matmul ops map in order onto the model's Conv2D,
    DepthwiseConv2D and Dense layers; a package that does not match is refused in one line."""
    ct = coremltools_quietly()
    from coremltools.optimize.coreml import decompress_weights

    with tempfile.TemporaryDirectory() as tmp, native_quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dense = decompress_weights(ct.models.MLModel(str(package), skip_model_load=True))
        dense.save(str(Path(tmp) / "dense.mlpackage"))
        _, program = load_program(Path(tmp) / "dense.mlpackage")
    found = []
    for op in program.functions["main"].operations:
        if op.op_type == "conv":
            found.append(np.asarray(op.weight.val, np.float32).transpose(2, 3, 1, 0))  # (kh, kw, in/groups, out)
        elif op.op_type == "linear":
            found.append(np.asarray(op.weight.val, np.float32).T)
        elif op.op_type == "matmul" and op.inputs["y"].val is not None:
            y = np.asarray(op.inputs["y"].val, np.float32)
            found.append(y.T if bool(op.inputs["transpose_y"].val) else y)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())

    def leaves(m):  # nested models' layers in place, in order
        return [leaf for layer in m.layers for leaf in (leaves(layer) if isinstance(layer, keras.Model) else [layer])]

    layers = leaves(copy)
    kernels = [i for i, layer in enumerate(layers)
               if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense))]
    if len(kernels) != len(found):
        raise ValueError(f"{package}: {len(found)} conv/linear weights for {len(kernels)} Keras kernel layers")
    for i, weight in zip(kernels, found):
        layer = layers[i]
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            weight = weight.transpose(0, 1, 3, 2)  # (kh, kw, 1, C) -> Keras' (kh, kw, C, 1)
        following = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(following, keras.layers.BatchNormalization) and not isinstance(layer, keras.layers.Dense):
            gamma = following.gamma.numpy() if following.scale else 1.0
            factor = gamma / np.sqrt(following.moving_variance.numpy() + following.epsilon)
            weight = weight / (factor.reshape(1, 1, -1, 1) if isinstance(layer, keras.layers.DepthwiseConv2D)
                               else factor)
        kernel = layer.depthwise_kernel if isinstance(layer, keras.layers.DepthwiseConv2D) else layer.kernel
        if tuple(weight.shape) != tuple(kernel.shape):
            raise ValueError(f"{package}: weight {weight.shape} for {layer.name} {tuple(kernel.shape)}")
        kernel.assign(weight)
    return copy
