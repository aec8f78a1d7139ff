"""A NumPy reference executor for saved Core ML ML Programs, so an .mlpackage can be scored
on Linux, where Core ML itself does not run (coremltools issues 2658, 1412).

The program and its weights are read with coremltools' own spec and MIL loading code;
the ops are ours (`compress/coreml/ops/`, one registry, grouped by kind), written from Core ML's
documented semantics, and run batched along the leading dimension.  Each op's result is rounded
to the dtype the program declares for it (fp16 programs compute in half precision on the device).
A program with ops outside the registry is refused before it runs, with every missing op named,
never a silent wrong answer.  On macOS `predict` uses Core ML, which runs every op, so nothing
is refused there; float16 activations are the executor's emulation and not offered there.
"""

from __future__ import annotations

import logging
import platform
from pathlib import Path

import numpy as np

from compress.coreml import interface as coreml_interface
from compress.coreml.ops import OPS, UnsupportedOpError
from compress.coreml.output_scores import class_scores
from compress.coreml.package import load_program

__all__ = ["OPS", "Program", "UnsupportedOpError", "predict"]

log = logging.getLogger(__name__)


def _np_dtype(mil_type) -> np.dtype | None:
    from coremltools.converters.mil.mil import types

    table = {types.fp16: np.float16, types.fp32: np.float32, types.int32: np.int32, types.int8: np.int8,
             types.uint8: np.uint8, types.bool: np.bool_}
    for key, value in table.items():
        if mil_type == key:
            return np.dtype(value)
    return None


class Program:
    """A loaded ML Program: its main function's ops, ready to run on NumPy batches."""

    def __init__(self, path: str | Path, strict: bool = True):
        """`strict=False` (Core ML will run it) reads a program with ops the executor lacks:
        `unknown` names them, and `run_all` is then not to be called."""
        spec, program = load_program(path)
        if program is None:
            raise UnsupportedOpError(f"{path}: not an ML Program (a {spec.WhichOneof('Type')} model)")
        self.spec, self.program = spec, program
        self.function = program.functions["main"]
        unknown = sorted({op.op_type for op in self.function.operations} - set(OPS) - {"const", "classify"})
        self.unknown = unknown
        if unknown and strict:
            raise UnsupportedOpError(f"{path}: op(s) {', '.join(unknown)} not implemented by the NumPy executor "
                                     f"({len(OPS)} ops are: see the README's table)")
        self.input_names = list(self.function.inputs)
        self.input_name = self.input_names[0]
        self.output_names = [v.name for v in self.function.outputs]

    def run_all(self, feeds: dict[str, np.ndarray], precision: str = "fp32") -> dict[str, np.ndarray]:
        """Every output of the program (by name) for `feeds` (name -> batch-first array); with
        `precision='fp16'` every activation is rounded to float16, as Core ML computes on the GPU
        and Neural Engine. A classifier's `classify` op gives its probabilities under the name
        `__probabilities__`."""
        half = precision == "fp16"
        env: dict[str, object] = {k: np.asarray(v, np.float16 if half else np.float32) for k, v in feeds.items()}
        for op in self.function.operations:
            if op.op_type == "const":
                env[op.outputs[0].name] = op.outputs[0].val
                continue
            args = {}
            for key, var in op.inputs.items():
                if isinstance(var, (list, tuple)):
                    args[key] = [env[v.name] if v.name in env else v.val for v in var]
                else:
                    args[key] = env[var.name] if var.name in env else var.val
            if op.op_type == "classify":
                env["__probabilities__"] = np.asarray(args["probabilities"], np.float32)
                continue
            result = OPS[op.op_type](**args)
            results = result if isinstance(result, tuple) else (result,)
            for var, value in zip(op.outputs, results):
                dtype = _np_dtype(var.dtype)
                if half and dtype == np.float32 and not op.op_type.startswith("constexpr_"):
                    dtype = np.dtype(np.float16)
                env[var.name] = np.asarray(value).astype(dtype) if dtype is not None else value
        out = {name: np.asarray(env[name]) for name in self.output_names if name in env}
        if "__probabilities__" in env:
            out["__probabilities__"] = env["__probabilities__"]
        return out

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities (or the first output) for a batch shaped like the program's input."""
        outputs = self.run_all({self.input_name: batch})
        probs = outputs["__probabilities__"] if "__probabilities__" in outputs else outputs[self.output_names[0]]
        return np.asarray(probs, np.float32).reshape(len(batch), -1)


def predict(path: str | Path, images: np.ndarray, batch: int = 500, input_range: str = "0-1",
            output: str | None = None, precision: str = "fp32", n_classes: int | None = None,
            with_reading: bool = False, class_names=None):
    """Class scores (n, the model's classes), in the data's class order, of a .mlpackage for
    `images` as uint8 pixels or floats in [0, 1] shaped (n, H, W, C), fed the way the model's own interface asks
    (`compress.coreml.interface`); with `with_reading`, also the Reading that says how.
    `n_classes`: the data's labels run up to n_classes - 1 (the model must have that many);
    `class_names`: the data's, in label order, that a classifier's labels are matched to.

    On macOS the real Core ML runs the model; elsewhere the NumPy executor does (`precision`
    'fp16' rounds every activation to float16, as the GPU and Neural Engine compute).
    """
    if getattr(images, "dtype", None) == np.uint8:  # held pixels (compress.data.arrays)
        pixels = images.astype(np.float32)
    else:
        pixels = np.clip(np.round(np.asarray(images, np.float32) * 255.0), 0, 255).astype(np.float32)
    if pixels.ndim == 3:
        pixels = pixels[..., None]
    on_core_ml = platform.system() == "Darwin"
    if on_core_ml and precision == "fp16":  # pragma: no cover - macOS
        raise UnsupportedOpError("--precision fp16 is the NumPy executor's float16 emulation; on macOS Core ML "
                                 "runs the model and picks its own compute unit: run without it")
    program = Program(path, strict=not on_core_ml)
    reading = coreml_interface.read(program.spec, program.program, pixels.shape[1:3], pixels.shape[3], n_classes,
                                    input_range, output)
    reading.data_class_names = tuple(class_names or ())
    if on_core_ml:  # pragma: no cover - exercised on macOS only
        if program.unknown:
            reading.notes.append(f"run by Core ML (op(s) {', '.join(program.unknown)} are not in the NumPy executor)")
        scores = _predict_coreml(path, pixels, reading)
    else:
        def scores_of(chunk):
            outputs = program.run_all({reading.input_name: reading.feed(chunk)}, precision)
            return class_scores(reading, outputs)

        if not batches_agree(scores_of, pixels[:8]):
            batch = 1
            reading.notes.append("the program holds only for one image at a time (traced with batch 1): "
                                 "run image by image")
        scores = np.concatenate([scores_of(pixels[i:i + batch]) for i in range(0, len(pixels), batch)])
    return (scores, reading) if with_reading else scores


def batches_agree(scores_of, sample: np.ndarray) -> bool:
    """Whether running `sample` as one batch gives what running it image by image gives: a
    program traced with a fixed batch of 1 may fold the batch into a reshape (TensorFlow's layer
    normalization does), and must then run one image at a time."""
    if len(sample) < 2:
        return True
    try:
        together = scores_of(sample)
    except (ValueError, IndexError):  # shapes that only hold for one image
        return False
    alone = np.concatenate([scores_of(sample[i:i + 1]) for i in range(len(sample))])
    scale = max(1e-6, float(np.abs(alone).max()))
    return bool(np.abs(together - alone).max() <= 1e-3 * scale)


def _predict_coreml(path, pixels, reading) -> np.ndarray:  # pragma: no cover - macOS
    """The same reading of the interface, run by Core ML itself, one image at a time. An image
    goes in as an RGB (or grayscale) picture: Core ML reorders it for a BGR model itself."""
    import coremltools as ct
    from PIL import Image

    model = ct.models.MLModel(str(path))
    out = []
    for i in range(len(pixels)):
        if reading.input_kind == "image":
            chw = reading.feed(pixels[i:i + 1])[0]
            chw = chw[::-1] if reading.reversed_channels else chw  # back to RGB: Core ML makes it BGR
            mode = "L" if chw.shape[0] == 1 else "RGB"
            image = Image.fromarray(np.transpose(chw, (1, 2, 0)).squeeze().astype(np.uint8), mode=mode)
            result = model.predict({reading.input_name: image})
        else:
            result = model.predict({reading.input_name: reading.feed(pixels[i:i + 1])})
        if reading.output_kind == "classifier":
            probs = result[reading.output_name]
            result = {"__probabilities__": np.asarray([[probs[label] for label in reading.labels]], np.float32)}
        out.append(class_scores(reading, result))
    return np.concatenate(out)
