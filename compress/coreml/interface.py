"""A Core ML model's interface, read from the model itself, and the test images fed the way it
asks for them.

Inputs: an image (grayscale, RGB or BGR, its size; the image's scale and bias are the model's
own preprocessing, inside the program, read back from it and printed; RGB data reach a BGR model
with their channels reversed) or a multiarray (shape, data type, which axis is the batch, where
the channels are, fixed, ranged or enumerated shapes). Outputs: a classifier (its class labels,
in the model's order) or a probabilities / logits tensor (the class axis is the one with one
entry per class; with several outputs, the one used is named). The number of classes is the
model's (its labels, or its output's class axis), never guessed from the data's labels. Where
the model cannot say how its floats are scaled, the Keras convention holds (floats in [0, 1])
unless `input_range` says otherwise. `Reading.describe()` says which interpretation was used; data that
cannot fit the input at all gets one line saying what the model wants and what the data is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from compress.plumbing.errors import CompressError

COLOR = {10: "grayscale", 20: "RGB", 30: "BGR"}
ARRAY_DTYPE = {65568: "float32", 65552: "float16", 65600: "float64", 131104: "int32", 131080: "int8"}


class InterfaceError(CompressError):
    """The data cannot be fed to the model, or its outputs cannot be read as class scores."""


@dataclass
class Reading:
    """How the data is fed and the outputs read (what `describe` prints)."""

    input_name: str
    input_kind: str  # image | array
    layout: str  # e.g. "image 28x28 grayscale", "array (1, 28, 28, 1) NHWC float32"
    scale: str  # e.g. "pixels 0-255 (the model scales them)", "floats in [0, 1] (Keras convention)"
    output_name: str
    output_kind: str  # classifier | probabilities | logits
    labels: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    feed: object = None  # images (n, H, W, C) float pixels 0-255 -> the model's input array
    n_classes: int = 0  # the model's own: its labels, or its output's class axis
    reversed_channels: bool = False  # RGB data fed to a BGR image input (the executor reverses them)

    def describe(self) -> str:
        text = (f"input {self.input_name!r}: {self.layout}, {self.scale}; output {self.output_name!r}: "
                f"{self.output_kind}")
        if self.labels:
            text += f" ({len(self.labels)} classes, the model's order)"
        elif self.n_classes:
            text += f" ({self.n_classes} classes)"
        return text + "".join(f"; {n}" for n in self.notes)


def _array_shape(feature) -> tuple[list[int], str]:
    """The multiarray's default shape and how flexible it is."""
    t = feature.type.multiArrayType
    shape = [int(v) for v in t.shape]
    kind = t.WhichOneof("ShapeFlexibility")
    if kind == "shapeRange":
        ranges = t.shapeRange.sizeRanges
        flexible = ["*" if r.upperBound != r.lowerBound else str(r.lowerBound) for r in ranges]
        return shape, f"ranged ({', '.join(flexible)})"
    if kind == "enumeratedShapes":
        return shape, f"{len(t.enumeratedShapes.shapes)} enumerated shapes"
    return shape, "fixed"


def _array_feed(shape: list[int], image_hw: tuple[int, int], channels_data: int, input_range: str):
    """(layout words, a function images (n, H, W, C) pixels 0-255 -> batch array) for a multiarray
    input of `shape`, or an InterfaceError naming what the model wants."""
    h, w = image_hw
    dims = list(shape)
    batch = len(dims) >= 2 and dims[0] in (1, -1)
    body = dims[1:] if batch else dims
    scale = 255.0 if input_range == "0-255" else 1.0

    def cast(x):
        return (x / 255.0 * scale).astype(np.float32)

    def gray_to(c):
        return (lambda x: np.repeat(x, c, axis=-1)) if c != channels_data else (lambda x: x)

    if body == [h, w, 1] or body == [h, w, 3]:
        rep = gray_to(body[-1])
        return "NHWC", lambda x: cast(rep(x))
    if body == [1, h, w] or body == [3, h, w]:
        rep = gray_to(body[0])
        return "NCHW", lambda x: cast(np.transpose(rep(x), (0, 3, 1, 2)))
    if body == [h, w]:
        return "NHW", lambda x: cast(x[..., 0])
    if body == [h * w]:
        return "N(H*W), flattened row by row", lambda x: cast(x.reshape(len(x), -1))
    if not batch and dims in ([h, w, 1], [1, h, w]):
        raise InterfaceError(f"the model's input has no batch axis (shape {dims})")
    raise InterfaceError(f"the model wants a multiarray of shape {dims}; the data is {h}x{w} images with "
                         f"{channels_data} channel(s), which fit none of (1, {h}, {w}, 1|3), (1, 1|3, {h}, {w}), "
                         f"(1, {h}, {w}), (1, {h * w})")


def read(spec, program, image_hw=(28, 28), channels=1, n_classes: int | None = None, input_range: str = "0-1",
         output: str | None = None) -> Reading:
    """How to feed `program` (its spec's description) images of `image_hw` and read its class
    scores; the model says how many classes it has, `n_classes` (the data's labels run up to
    n_classes - 1) only bounds it from below. `input_range` ('0-1' or '0-255') applies to float
    multiarray inputs only."""
    desc = spec.description
    if len(desc.input) != 1:
        raise InterfaceError(f"the model has {len(desc.input)} inputs ({', '.join(i.name for i in desc.input)}); "
                             f"a classifier of images has one")
    feature = desc.input[0]
    kind = feature.type.WhichOneof("Type")
    notes, flip = [], False
    if kind == "imageType":
        t = feature.type.imageType
        color = COLOR.get(t.colorSpace, str(t.colorSpace))
        if (t.height, t.width) != tuple(image_hw):
            raise InterfaceError(f"the model wants {t.width}x{t.height} {color} images; the data is "
                                 f"{image_hw[1]}x{image_hw[0]} images")
        c = 1 if color == "grayscale" else 3
        layout = f"image {t.width}x{t.height} {color}" + (" (the grayscale data repeated in 3 channels)" if c == 3
                                                         and channels == 1 else "")
        flip = color == "BGR" and channels == 3
        if flip:
            notes.append("the data's RGB channels reversed for the model's BGR input")
        feed = _image_feed(c, channels, flip)
        scale = f"pixels 0-255, then the model's own {image_preprocessing(program, feature.name)}"
        input_kind = "image"
    elif kind == "multiArrayType":
        shape, flexibility = _array_shape(feature)
        dtype = ARRAY_DTYPE.get(feature.type.multiArrayType.dataType, "float32")
        order, feed = _array_feed(shape, tuple(image_hw), channels, input_range)
        layout = f"multiarray {tuple(shape)} {dtype}, {flexibility}, read as {order}"
        if flexibility == "fixed" and shape and shape[0] == 1:
            notes.append("fixed batch of 1: run one image at a time on Core ML, batched by the executor")
        if dtype.startswith("int"):
            scale = "pixels 0-255 (an integer input)"
            inner = feed
            feed = lambda x: np.round(inner(x) * (255.0 if input_range == "0-1" else 1.0))  # noqa: E731
        else:
            scale = ("floats in [0, 1] (Keras convention; --input-range 0-255 for models that take pixels)"
                     if input_range == "0-1" else "floats in [0, 255] (--input-range 0-255)")
        input_kind = "array"
    else:
        raise InterfaceError(f"the model's input {feature.name!r} is a {kind}; images need an image or a "
                             f"multiarray input")
    out_name, out_kind, labels, classes = _output(spec, program, n_classes, output, notes)
    return Reading(feature.name, input_kind, layout, scale, out_name, out_kind, labels, notes, feed, classes, flip)


def _image_feed(c: int, channels: int, flip: bool):
    """images (n, H, W, C) pixels -> (n, c, H, W): grayscale repeated into c channels, RGB
    reversed into BGR where `flip`."""
    def feed(x):
        x = np.repeat(x, c, axis=-1) if c != channels else x
        return np.transpose(x[..., ::-1] if flip else x, (0, 3, 1, 2)).astype(np.float32)

    return feed


def image_preprocessing(program, input_name: str) -> str:
    """The image input's scale and bias as the program applies them: coremltools writes an
    ImageType's scale and bias as the program's first ops on the input (`NAME__scaled__`, a
    mul, then `NAME__biased__`, an add); "scale 1, bias 0" where it wrote none."""
    scale, bias = 1.0, 0.0
    for op in program.functions["main"].operations:
        names = [o.name for o in op.outputs]
        constant = [v.val for v in op.inputs.values() if not isinstance(v, (list, tuple)) and v.val is not None]
        if f"{input_name}__scaled__" in names and op.op_type == "mul" and constant:
            scale = np.asarray(constant[0], np.float64).reshape(-1)
        elif f"{input_name}__biased__" in names and op.op_type == "add" and constant:
            bias = np.asarray(constant[0], np.float64).reshape(-1)
    return f"image scale {_figures(scale)}, bias {_figures(bias)}"


def _figures(value) -> str:
    """One figure, or a per-channel list where the channels differ."""
    values = np.atleast_1d(np.asarray(value, np.float64))
    shown = values[:1] if np.all(values == values[0]) else values
    return ", ".join(f"{v:.6g}" for v in shown).join("[]" if len(shown) > 1 else ("", ""))


def _classify_labels(program) -> list:
    for op in program.functions["main"].operations:
        if op.op_type == "classify":
            classes = op.inputs["classes"].val
            return [c.item() if hasattr(c, "item") else c for c in np.asarray(classes).reshape(-1)]
    return []


def _class_count(shape) -> int | None:
    """The class axis of an output shaped (batch, ...): its last axis of more than one entry."""
    dims = [int(d) for d in list(shape)[1:] if isinstance(d, (int, np.integer)) and int(d) > 1]
    return dims[-1] if dims else None


def _output(spec, program, least: int | None, wanted: str | None, notes: list) -> tuple[str, str, list, int]:
    """(output name, kind, classifier labels, the model's number of classes); `least`: the data's
    labels run up to least - 1, so the model must have at least that many classes."""
    desc = spec.description
    names = [o.name for o in desc.output]
    least = int(least or 1)
    if desc.predictedFeatureName:  # a classifier
        labels = _classify_labels(program)
        if len(labels) < least:
            raise InterfaceError(f"the classifier has {len(labels)} classes; the data's labels go up to {least - 1}")
        return desc.predictedProbabilitiesName or desc.predictedFeatureName, "classifier", labels, len(labels)
    program_shapes = {v.name: v.shape for v in program.functions["main"].outputs}
    counts = {}
    for o in desc.output:
        if o.type.WhichOneof("Type") == "multiArrayType":
            counts[o.name] = _class_count(o.type.multiArrayType.shape) or _class_count(program_shapes.get(o.name, ()))
    if wanted:
        if wanted not in counts:
            raise InterfaceError(f"--output {wanted}: the model's outputs are {', '.join(names)}")
        chosen = [wanted]
    else:  # the outputs with a class axis that holds every label, the smallest first
        chosen = sorted((n for n, k in counts.items() if k and k >= least), key=lambda n: counts[n])
    if not chosen or not counts[chosen[0]]:
        raise InterfaceError(f"no output holds scores for {least} or more classes (outputs: "
                             f"{', '.join(f'{n} {program_shapes.get(n)}' for n in names)})")
    if len(counts) > 1 or len(names) > 1:
        notes.append(f"of the outputs {', '.join(names)}, {chosen[0]!r} was used (--output to pick another)")
    if counts[chosen[0]] < least:
        raise InterfaceError(f"output {chosen[0]!r} has {counts[chosen[0]]} classes; the data's labels go up to "
                             f"{least - 1}")
    return chosen[0], "scores", [], counts[chosen[0]]


def class_scores(reading: Reading, outputs: dict) -> np.ndarray:
    """(n, the model's classes) scores in the data's class order from the program's outputs;
    labels of a classifier must be the class indices 0..n-1 or the data's class names."""
    from compress.pipeline.data import CLASS_NAMES

    n_classes = reading.n_classes

    if reading.output_kind == "classifier":
        probs = np.asarray(outputs["__probabilities__"], np.float32).reshape(-1, n_classes)
        labels = reading.labels
        if all(isinstance(v, (int, np.integer)) for v in labels):
            order = [int(v) for v in labels]
        elif n_classes == len(CLASS_NAMES) and set(map(str, labels)) == set(CLASS_NAMES):
            order = [list(CLASS_NAMES).index(str(v)) for v in labels]
        else:
            raise InterfaceError(f"the classifier's labels {labels[:4]}... are neither 0..{n_classes - 1} nor the "
                                 f"data's class names")
        out = np.zeros_like(probs)
        out[:, order] = probs
        return out
    value = np.asarray(outputs[reading.output_name], np.float32)
    axes = [i for i, d in enumerate(value.shape) if d == n_classes and i > 0]
    if not axes:
        raise InterfaceError(f"output {reading.output_name!r} has shape {value.shape}: no axis of {n_classes} "
                             f"classes")
    scores = np.moveaxis(value, axes[-1], -1).reshape(len(value), -1, n_classes)[:, 0]
    probabilities = bool(np.all(scores >= -1e-6) and np.allclose(scores.sum(-1), 1, atol=1e-2))
    reading.output_kind = "probabilities" if probabilities else "logits (or other unnormalized scores)"
    return scores
