"""Measurements taken from a .tflite file on disk through LiteRT (a Keras model is counted in model_counts.py).

Latency is only meaningful beside a reference timed in the same process on the same
machine, so `latency_pair` interleaves the model with the teacher's float32 TFLite.
"""

from __future__ import annotations

import gzip
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compress.core.quiet import native_quiet
from compress.data import arrays


def interpreter(path: str | Path, threads: int = 1):
    """A LiteRT interpreter for the file (the LiteRT package, not the deprecated tf.lite one)."""
    from ai_edge_litert.interpreter import Interpreter

    with native_quiet():
        interp = Interpreter(model_path=str(path), num_threads=int(threads))
        interp.allocate_tensors()
    return interp


def image_shape(path: str | Path) -> tuple[int, int, int]:
    """(H, W, C) of the images a classifier file takes."""
    return tuple(int(v) for v in interpreter(path).get_input_details()[0]["shape"][1:])


def file_sizes(path: str | Path) -> tuple[int, int]:
    """(bytes on disk, bytes gzipped at level 9): what ships and what a download costs."""
    raw = Path(path).read_bytes()
    return len(raw), len(gzip.compress(raw, compresslevel=9, mtime=0))


def _to_input(images: np.ndarray, detail: dict) -> np.ndarray:
    """Held images (uint8 pixels or floats in [0, 1]: `arrays.unit`) as the model's input tensor type
    (quantized where it is integer)."""
    images = arrays.unit(images)
    dtype = detail["dtype"]
    if dtype in (np.int8, np.uint8):
        scale, zero = detail["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(images / scale + zero), info.min, info.max).astype(dtype)
    return images.astype(dtype)


def predict(path: str | Path, images: np.ndarray, batch: int = 500, threads: int = 1) -> np.ndarray:
    """Raw outputs (dequantized to float) of the .tflite model on `images`."""
    interp = interpreter(path, threads)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    batch = max(1, min(batch, len(images)))
    interp.resize_tensor_input(inp["index"], [batch, *images.shape[1:]])
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    outputs = []
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        n = len(chunk)
        if n < batch:  # pad the last chunk rather than re-allocating
            chunk = np.concatenate([chunk, np.zeros((batch - n, *chunk.shape[1:]), chunk.dtype)])
        interp.set_tensor(inp["index"], _to_input(chunk, inp))
        interp.invoke()
        result = interp.get_tensor(out["index"])[:n]
        if out["dtype"] in (np.int8, np.uint8):
            scale, zero = out["quantization"]
            result = (result.astype(np.float32) - zero) * scale
        outputs.append(result.astype(np.float32))
    return np.concatenate(outputs)


def accuracy(path: str | Path, images: np.ndarray, labels: np.ndarray, batch: int = 500, threads: int = 1) -> float:
    """Top-1 accuracy of the .tflite file on (images, labels)."""
    if not len(images):
        return float("nan")
    return float(np.mean(np.argmax(predict(path, images, batch, threads), axis=1) == labels))


def tensor_dtypes(path: str | Path) -> dict[str, set]:
    """Input, output and all tensor dtypes of a .tflite file (names like 'int8', 'float16')."""
    interp = interpreter(path)
    return {
        "input": {np.dtype(d["dtype"]).name for d in interp.get_input_details()},
        "output": {np.dtype(d["dtype"]).name for d in interp.get_output_details()},
        "all": {np.dtype(d["dtype"]).name for d in interp.get_tensor_details()},
    }


def _single_image_runner(path: str | Path, image: np.ndarray, threads: int):
    interp = interpreter(path, threads)  # allocated for its batch-1 input
    inp = interp.get_input_details()[0]
    interp.set_tensor(inp["index"], _to_input(image[None], inp))
    return interp.invoke


def latencies(paths: list[str | Path], image: np.ndarray, runs: int = 200, warmup: int = 20, threads: int = 1,
              rounds: int = 4) -> list[float]:
    """Median single-image latency (ms) of each model, timed in alternating rounds in this
    process so that machine noise hits all of them alike."""
    invokers = [_single_image_runner(path, image, threads) for path in paths]
    for _ in range(warmup):
        for invoke in invokers:
            invoke()
    per_round = max(1, int(np.ceil(runs / rounds)))
    times: list[list[float]] = [[] for _ in invokers]
    for _ in range(rounds):
        for timed, invoke in zip(times, invokers):
            for _ in range(per_round):
                start = time.perf_counter_ns()
                invoke()
                timed.append((time.perf_counter_ns() - start) / 1e6)
    return [float(np.median(t)) for t in times]


def latency_pair(model_path: str | Path, reference_path: str | Path, image: np.ndarray, runs: int = 200,
                 warmup: int = 20, threads: int = 1, rounds: int = 4) -> tuple[float, float]:
    """Median single-image latency (ms) of a model and of its reference, timed together."""
    model_ms, reference_ms = latencies([model_path, reference_path], image, runs, warmup, threads, rounds)
    return model_ms, reference_ms


@dataclass(frozen=True)
class Measurement:
    """How a .tflite file is measured (the `measure` group): single-image invokes timed beside a
    reference, and the batch its accuracy is scored in."""

    latency_runs: int  # the defaults are the `measure` group's (config/schema.py)
    warmup: int
    threads: int
    eval_batch: int

    @classmethod
    def of(cls, measure_cfg) -> Measurement:
        m = measure_cfg
        return cls(int(m.latency_runs), int(m.warmup), int(m.threads), int(m.eval_batch))

    def file_figures(self, path: str | Path, splits, reference: str | Path) -> dict:
        """From the file: its bytes (and gzipped), its latency beside `reference`'s (ms, timed together)
        and its accuracy on `splits`' validation and test images."""
        size, size_gz = file_sizes(path)
        latency, reference_latency = latency_pair(path, reference, splits.x_test[0], self.latency_runs, self.warmup,
                                                  self.threads)
        return {"bytes": size, "gzip": size_gz, "latency": latency, "teacher_latency": reference_latency,
                "val": accuracy(path, splits.x_val, splits.y_val, self.eval_batch),
                "test": accuracy(path, splits.x_test, splits.y_test, self.eval_batch)}


# weight-carrying ops of a .tflite file, as TFLite names them
_TFLITE_WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def file_counts(path: str | Path) -> dict[str, int]:
    """Weights (kernel elements), biases and multiply-accumulates of one image through the conv
    and dense ops of a .tflite file, counted from the file's own tensors: what the shipped model
    really computes, whatever model it was converted from."""
    it = interpreter(path)
    shapes = {d["index"]: [int(v) for v in d["shape"]] for d in it.get_tensor_details()}
    weights = biases = macs = 0
    for op in it._get_ops_details():  # the file's ops (a delegate's node is listed apart, and skipped)
        if op["op_name"] not in _TFLITE_WEIGHT_OPS:
            continue
        weight, *bias = [shapes[i] for i in op["inputs"][1:] if i >= 0]
        out = shapes[op["outputs"][0]]
        weights += int(np.prod(weight))
        biases += sum(int(np.prod(b)) for b in bias)
        macs += int(np.prod(weight)) * (int(np.prod(out[1:-1])) if len(out) == 4 else 1)
    return {"weights": weights, "biases": biases, "macs": macs}
