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
import warnings
from pathlib import Path
from typing import Mapping

import numpy as np

from compress.compat import keras, native_quiet
from compress.data import CLASS_NAMES
from compress.validate import check_coreml_compression

log = logging.getLogger(__name__)

DEPLOYMENT_TARGET = "iOS16"
INPUT_NAME = "image"


def _coremltools():
    with native_quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("coremltools").setLevel(logging.ERROR)
        import coremltools

    return coremltools


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
                 metadata: Mapping[str, str] | None = None, description: str = "") -> Path:
    """Convert a logits-output Keras model to `path` (.mlpackage), written atomically."""
    ct = _coremltools()
    path = Path(path)
    image_in = keras.Input((28, 28, 1), name=INPUT_NAME)  # whatever the Keras model named its input
    probs = keras.Model(image_in, keras.layers.Softmax(name="probabilities")(model(image_in)))
    image = ct.ImageType(name=INPUT_NAME, shape=(1, 28, 28, 1), scale=1 / 255.0,
                         color_layout=ct.colorlayout.GRAYSCALE)
    with native_quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlmodel = ct.convert(
            probs, source="tensorflow", inputs=[image], convert_to="mlprogram",
            classifier_config=ct.ClassifierConfig(list(CLASS_NAMES)),
            minimum_deployment_target=getattr(ct.target, DEPLOYMENT_TARGET),
        )
        mlmodel = compress_weights(mlmodel, compression, sparsity)
    mlmodel.author = "compress (Fashion-MNIST compression sweep)"
    mlmodel.short_description = description or (
        "Fashion-MNIST clothing classifier distilled from a 1.62 M-parameter CNN. Input: a 28x28 grayscale "
        "image, white garment on black as in Fashion-MNIST. Output: the class label and its probabilities."
    )
    mlmodel.version = "1"
    mlmodel.input_description[INPUT_NAME] = "28x28 grayscale image, pixel values 0-255 (scaled to 0-1 inside)"
    meta = {"minimum_deployment_target": DEPLOYMENT_TARGET, "compression": compression,
            "class_labels": ",".join(CLASS_NAMES), **{k: str(v) for k, v in (metadata or {}).items()}}
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


def package_bytes(path: str | Path) -> int:
    """Bytes of every file inside the .mlpackage folder."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def load_program(path: str | Path):
    """(spec, MIL program) of a saved package, read with coremltools' own loader; the
    program is None when the package holds no ML Program."""
    ct = _coremltools()
    with native_quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from coremltools.converters.mil.frontend.milproto.load import load as load_mil

        mlmodel = ct.models.MLModel(str(path), skip_model_load=True)
        spec = mlmodel.get_spec()
        if spec.WhichOneof("Type") != "mlProgram":
            return spec, None
        return spec, load_mil(spec, specification_version=spec.specificationVersion,
                              file_weights_dir=mlmodel.weights_dir)


def program_ops(path: str | Path) -> list[str]:
    """The op types of the saved ML Program's main function, read back from disk."""
    _, program = load_program(path)
    return [op.op_type for op in program.functions["main"].operations]


def package_counts(path: str | Path) -> dict[str, int]:
    """Weights (kernel elements), biases and multiply-accumulates of one image through the conv,
    linear and matmul ops of a saved ML Program, counted from the program's own shapes
    (compressed weights count by their decompressed shape; coremltools drops all-zero biases)."""
    _, program = load_program(path)
    weights = biases = macs = 0
    for op in program.functions["main"].operations:
        if op.op_type not in ("conv", "linear", "matmul"):
            continue
        weight = op.inputs["y"] if op.op_type == "matmul" else op.weight
        size = int(np.prod([int(v) for v in weight.shape]))
        bias = op.inputs.get("bias")
        weights += size
        biases += int(np.prod(bias.shape)) if bias is not None else 0
        out = op.outputs[0].shape
        macs += size * (int(np.prod([int(v) for v in out[2:]])) if op.op_type == "conv" else 1)
    return {"weights": weights, "biases": biases, "macs": macs}
