"""A Keras model counted: its parameters (all, and those not pruned to zero) and the multiply-accumulates of
one image through it. Apart from the file measurements (measure/tflite.py), which read exported files
without TensorFlow."""

from __future__ import annotations

import numpy as np

from compress.core.compat import keras


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one image through the conv and dense layers (dense count:
    TFLite's kernels do not skip zeros)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_macs(layer)
            continue
        inner = getattr(layer, "layer", layer)  # pruning / quantization wrappers
        if isinstance(inner, keras.layers.DepthwiseConv2D):
            _, h, w, c = layer.output_shape
            kh, kw = inner.kernel_size
            total += h * w * kh * kw * c
        elif isinstance(inner, keras.layers.Conv2D):
            _, h, w, c_out = layer.output_shape
            kh, kw = inner.kernel_size
            c_in = layer.input_shape[-1]
            total += h * w * kh * kw * (c_in // inner.groups) * c_out
        elif isinstance(inner, keras.layers.Dense):
            total += int(layer.input_shape[-1]) * int(inner.units)
    return int(total)


def parameter_counts(model: keras.Model) -> tuple[int, int]:
    """(all parameters, non-zero parameters) of a Keras model, BatchNorm statistics included."""
    weights = [w.numpy() for w in model.weights]
    return int(sum(w.size for w in weights)), int(sum(np.count_nonzero(w) for w in weights))
