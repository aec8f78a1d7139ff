"""The shipping encoding of a .tflite file, and where its bytes go.

At a few kilobytes the file's overhead decides the size class: every per-channel quantized
tensor carries a float32 scale and an int64 zero point per channel, every tensor a name
(the Keras layer path, often fused names of several ops), and the converter adds a signature
and conversion metadata that the runtime does not need. `slim` drops the strings the runtime
never reads, keeping the input and output names an app developer calls the model by;
`breakdown` counts what is left by kind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compress.measure.tflite import interpreter

INPUT_NAME = "image"
OUTPUT_NAME = "logits"
KEEP_METADATA = (b"min_runtime_version",)  # read by the runtime to refuse a too-old interpreter
GRANULARITIES = ("per_channel", "per_tensor")


def _fu():
    from tensorflow.lite.tools import flatbuffer_utils

    return flatbuffer_utils


def slim(flatbuffer: bytes, input_name: str = INPUT_NAME, output_name: str = OUTPUT_NAME) -> bytes:
    """`flatbuffer` without tensor names (but the input's and the output's), the signature, the
    model description and the conversion metadata. The graph, weights and quantization are
    untouched, so predictions are bit-identical."""
    fu = _fu()
    model = fu.convert_bytearray_to_object(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    inputs, outputs = list(graph.inputs), list(graph.outputs)
    fu.strip_strings(model)
    for index, name in [(i, input_name) for i in inputs[:1]] + [(o, output_name) for o in outputs[:1]]:
        graph.tensors[index].name = name.encode()
    if model.metadata:
        model.metadata = [m for m in model.metadata if m.name in KEEP_METADATA]
    return bytes(fu.convert_object_to_bytearray(model))


def breakdown(path: str | Path) -> dict[str, int]:
    """Bytes of the file by kind: `weights` (constant tensor data), `quant_params` (scales and
    zero points: 4 + 8 bytes each), `names` (tensor, signature and metadata strings) and
    `structure` (the rest: operators, shapes, the flatbuffer's tables and padding)."""
    fu = _fu()
    data = Path(path).read_bytes()
    model = fu.convert_bytearray_to_object(bytearray(data))
    weights = sum(len(b.data) for b in model.buffers if b.data is not None)
    quant = names = 0
    for graph in model.subgraphs:
        names += len(graph.name or b"")
        for tensor in graph.tensors:
            names += len(tensor.name or b"")
            q = tensor.quantization
            if q is not None:
                quant += 4 * len(q.scale if q.scale is not None else []) + 8 * len(
                    q.zeroPoint if q.zeroPoint is not None else [])
    for sig in model.signatureDefs or []:
        names += len(sig.signatureKey or b"") + sum(len(t.name or b"") for t in (sig.inputs or []) + (sig.outputs or []))
    metadata = sum(len(m.name or b"") for m in model.metadata or [])
    names += metadata + len(model.description or b"")
    return {"total": len(data), "weights": int(weights), "quant_params": int(quant), "names": int(names),
            "structure": int(len(data) - weights - quant - names)}


def io_details(path: str | Path) -> dict:
    """What an app needs to call the file: input and output name, shape, dtype, scale and zero point."""
    it = interpreter(path)
    out = {}
    for key, detail in (("input", it.get_input_details()[0]), ("output", it.get_output_details()[0])):
        scale, zero = detail["quantization"]
        out[key] = {"name": detail["name"], "shape": [int(v) for v in detail["shape"]],
                    "dtype": np.dtype(detail["dtype"]).name, "scale": float(scale), "zero_point": int(zero)}
    return out
