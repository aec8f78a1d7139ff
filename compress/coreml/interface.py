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

import numpy as np

from compress.core.errors import InterfaceError
from compress.coreml.input_feed import ARRAY_DTYPE, COLOR, array_feed, array_shape, image_feed, image_preprocessing
from compress.coreml.output_scores import class_output
from compress.coreml.reading import Reading


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
        feed = image_feed(c, channels, flip)
        scale = f"pixels 0-255, then the model's own {image_preprocessing(program, feature.name)}"
        input_kind = "image"
    elif kind == "multiArrayType":
        shape, flexibility = array_shape(feature)
        dtype = ARRAY_DTYPE.get(feature.type.multiArrayType.dataType, "float32")
        order, feed = array_feed(shape, tuple(image_hw), channels, input_range)
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
    out_name, out_kind, labels, classes = class_output(spec, program, n_classes, output, notes)
    return Reading(feature.name, input_kind, layout, scale, out_name, out_kind, labels, notes, feed, classes, flip)
