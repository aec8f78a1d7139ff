"""Quantization and conversion of a Keras student to a .tflite file.

The modes and what the converter does with each are one table, `compress.core.options.QUANT`:
float weights as trained or in half precision, int8 weights with float activations, or
full-integer int8 calibrated on a representative set (int8 input and output), optionally after
quantization-aware fine-tuning (pruning-preserving when the model is sparse).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from compress.core.atomic import write_whole
from compress.core.compat import keras, tf, tflite_converter, tfmot
from compress.core.errors import ConfigError
from compress.core.options import QUANT, check_quant_mode
from compress.core.quiet import native_quiet
from compress.data import arrays
from compress.training import distill


def quantization_aware(model: keras.Model, x, targets, x_val, targets_val, distill_cfg, quant_cfg,
                       sparse: bool, seed: int, verbose: int = 0) -> tuple[keras.Model, dict]:
    """Fine-tune with fake quantization; keeps the zeros of a pruned model."""
    q = tfmot().quantization.keras
    if sparse:
        from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.prune_preserve import (
            default_8bit_prune_preserve_quantize_scheme as pqat,
        )

        qat_model = q.quantize_apply(q.quantize_annotate_model(model),
                                     pqat.Default8BitPrunePreserveQuantizeScheme())
    else:
        qat_model = q.quantize_model(model)
    history = distill.fit(qat_model, x, targets, x_val, targets_val, distill_cfg, int(quant_cfg.qat_epochs),
                          float(quant_cfg.learning_rate), seed, verbose=verbose,
                          steps_per_execution=int(distill_cfg.get("steps_per_execution", 1)),
                          label="quantization-aware training")
    return qat_model, history


def float_twin(qat_model: keras.Model, float_model: keras.Model) -> keras.Model:
    """A copy of `float_model` holding the weights quantization-aware training left in `qat_model`:
    the float model an int8 file converted from `qat_model` carries. Quantization-aware training
    fine-tunes a clone, so the model it started from keeps its earlier weights; a Core ML package
    or student.keras made from that one is another network (a one-epoch smoke trial: 52% against
    the file's 62%). Each weight is found by its layer (tfmot's wrapper is named quant_<layer>) and
    its own name; the wrapper's quantizer ranges are left out."""
    twin = keras.models.clone_model(float_model)
    for layer in float_model.layers:
        if not layer.weights:
            continue
        names = (f"quant_{layer.name}", layer.name)
        source = next((q for q in qat_model.layers if q.name in names), None)
        if source is None:
            raise ValueError(f"float_twin: the quantization-aware model has no layer {layer.name}")
        quantizers = f"{source.name}/" if source.name != layer.name else None  # the wrapper's own variables
        own = {w.name.rsplit("/", 1)[-1]: w for w in source.weights
               if quantizers is None or not w.name.startswith(quantizers)}
        values = []
        for weight in layer.weights:
            key = weight.name.rsplit("/", 1)[-1]
            if key not in own or tuple(own[key].shape) != tuple(weight.shape):
                raise ValueError(f"float_twin: {layer.name}: no weight {key} of shape {tuple(weight.shape)} in "
                                 f"the quantization-aware model")
            values.append(own[key].numpy())
        twin.get_layer(layer.name).set_weights(values)
    return twin


def convert(model: keras.Model, mode: str, representative: np.ndarray | None = None,
            granularity: str = "per_channel") -> bytes:
    """The .tflite flatbuffer of `model` in quantization `mode`; integer modes quantize conv
    weights per output channel (the converter's default) or, with `granularity="per_tensor"`,
    one scale a tensor (12 bytes a channel less, at some accuracy: see compress.training.encode)."""
    check_quant_mode(mode)
    spec = QUANT[mode]
    if spec.integer and (representative is None or not len(representative)):
        raise ConfigError(f"quant.mode={mode}: needs a representative set (quant.representative_samples > 0)")
    with tempfile.TemporaryDirectory(prefix="tflite_") as folder:
        converter = tflite_converter(model, folder)
        if spec.optimize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if spec.weights == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if spec.integer:

            def samples():
                for image in representative:
                    yield [arrays.unit(image[None])]  # held pixels as the float32 the model takes

            converter.representative_dataset = samples
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
            if granularity == "per_tensor":
                converter._experimental_disable_per_channel = True  # the converter's only switch for it
        with native_quiet():
            return converter.convert()


def write(flatbuffer: bytes, path: str | Path) -> Path:
    """Write a .tflite file atomically (no half-written file on a crash)."""
    return write_whole(path, lambda tmp: tmp.write_bytes(flatbuffer))
