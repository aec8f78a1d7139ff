"""How a Core ML model's input takes the test images: an image input (its colour space, size and
the scale and bias its program applies) or a multiarray (shape, data type, where the batch and
channel axes are). `compress.coreml.interface.read` puts these together with the output's reading."""

from __future__ import annotations

import numpy as np

from compress.core.errors import InterfaceError

COLOR = {10: "grayscale", 20: "RGB", 30: "BGR"}
ARRAY_DTYPE = {65568: "float32", 65552: "float16", 65600: "float64", 131104: "int32", 131080: "int8"}


def array_shape(feature) -> tuple[list[int], str]:
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


def array_feed(shape: list[int], image_hw: tuple[int, int], channels_data: int, input_range: str):
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


def image_feed(c: int, channels: int, flip: bool):
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
