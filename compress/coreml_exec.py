"""A NumPy reference executor for saved Core ML ML Programs, so an .mlpackage can be scored
on Linux, where Core ML itself does not run (coremltools issues 2658, 1412).

The program and its weights are read with coremltools' own spec and MIL loading code;
the ops are ours, written from Core ML's documented semantics, and run batched along the
leading dimension.  Each op's result is rounded to the dtype the program declares for it
(fp16 programs compute in half precision on the device).  An op outside OPS stops the run
with an error naming it, never a silent wrong answer.  On macOS `predict` uses Core ML.
"""

from __future__ import annotations

import logging
import platform
from pathlib import Path
from typing import Callable

import numpy as np

from compress.errors import CompressError

log = logging.getLogger(__name__)


class UnsupportedOpError(CompressError):
    """The program holds an op this executor does not implement."""


def _np_dtype(mil_type) -> np.dtype | None:
    from coremltools.converters.mil.mil import types

    table = {types.fp16: np.float16, types.fp32: np.float32, types.int32: np.int32, types.int8: np.int8,
             types.uint8: np.uint8, types.bool: np.bool_}
    for key, value in table.items():
        if mil_type == key:
            return np.dtype(value)
    return None


def _unpack_bits(packed: np.ndarray, nbits: int, count: int) -> np.ndarray:
    """`count` unsigned integers of `nbits` bits each, packed least-significant bit first."""
    bits = np.unpackbits(np.asarray(packed, dtype=np.uint8).reshape(-1), bitorder="little")
    bits = bits[: count * nbits].reshape(count, nbits).astype(np.int64)
    return (bits << np.arange(nbits)).sum(axis=1)


# -- weight decompression ---------------------------------------------------------------
def constexpr_affine_dequantize(quantized_data, zero_point, scale, axis):
    q = np.asarray(quantized_data).astype(np.float32)
    shape = [1] * q.ndim
    zp, sc = np.asarray(zero_point, np.float32), np.asarray(scale, np.float32)
    if zp.ndim:
        shape[int(axis)] = -1
        zp = zp.reshape(shape)
    if sc.ndim:
        shape[int(axis)] = -1
        sc = sc.reshape(shape)
    return (q - zp) * sc


def constexpr_lut_to_dense(lut, indices, shape):
    lut = np.asarray(lut)
    nbits = int(np.log2(lut.size))
    count = int(np.prod(shape))
    return lut.reshape(-1)[_unpack_bits(indices, nbits, count)].reshape(tuple(int(s) for s in shape))


def constexpr_sparse_to_dense(nonzero_data, mask, shape):
    count = int(np.prod(shape))
    flat_mask = _unpack_bits(mask, 1, count).astype(bool)
    dense = np.zeros(count, dtype=np.asarray(nonzero_data).dtype)
    dense[flat_mask] = np.asarray(nonzero_data).reshape(-1)
    return dense.reshape(tuple(int(s) for s in shape))


# -- compute ops ----------------------------------------------------------------------------
def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + (kernel - 1) * dilation + 1 - size)
    return total // 2, total - total // 2


def _pads(x_shape, kernel, strides, dilations, pad_type, pad) -> list[tuple[int, int]]:
    spatial = x_shape[2:]
    if pad_type == "valid":
        return [(0, 0)] * len(spatial)
    if pad_type in ("same", "same_lower"):
        pads = [_same_pads(s, k, st, d) for s, k, st, d in zip(spatial, kernel, strides, dilations)]
        return [(b, a) for a, b in pads] if pad_type == "same_lower" else pads
    if pad_type == "custom":
        p = [int(v) for v in pad]
        return [(p[2 * i], p[2 * i + 1]) for i in range(len(spatial))]
    raise UnsupportedOpError(f"pad_type {pad_type!r}")


def _windows(x: np.ndarray, kernel, strides, dilations) -> np.ndarray:
    """(N, C, OH, OW, KH, KW) strided view of a padded NCHW tensor."""
    n, c, h, w = x.shape
    kh, kw = kernel
    sh, sw = strides
    dh, dw = dilations
    oh = (h - (kh - 1) * dh - 1) // sh + 1
    ow = (w - (kw - 1) * dw - 1) // sw + 1
    s = x.strides
    return np.lib.stride_tricks.as_strided(
        x, (n, c, oh, ow, kh, kw), (s[0], s[1], s[2] * sh, s[3] * sw, s[2] * dh, s[3] * dw), writeable=False)


def conv(x, weight, bias=None, strides=None, pad_type="valid", pad=None, dilations=None, groups=1):
    x = np.asarray(x, np.float32)
    weight = np.asarray(weight, np.float32)
    if x.ndim != 4:
        raise UnsupportedOpError(f"conv on a {x.ndim}-d input (only 2-d convolution is implemented)")
    kernel = weight.shape[2:]
    strides = [1, 1] if strides is None else [int(v) for v in strides]
    dilations = [1, 1] if dilations is None else [int(v) for v in dilations]
    pads = _pads(x.shape, kernel, strides, dilations, pad_type, pad)
    x = np.pad(x, [(0, 0), (0, 0), *pads])
    groups = int(groups)
    cout, cin_g = weight.shape[:2]
    outs = []
    for g in range(groups):
        win = _windows(np.ascontiguousarray(x[:, g * cin_g:(g + 1) * cin_g]), kernel, strides, dilations)
        w = weight[g * (cout // groups):(g + 1) * (cout // groups)]
        outs.append(np.einsum("nchwij,ocij->nohw", win, w, optimize=True))
    out = np.concatenate(outs, axis=1)
    if bias is not None:
        out = out + np.asarray(bias, np.float32).reshape(1, -1, 1, 1)
    return out


def _pool(x, kernel_sizes, strides, pad_type, pad, reduce, pad_value):
    x = np.asarray(x, np.float32)
    kernel = [int(v) for v in kernel_sizes]
    strides = [int(v) for v in strides]
    pads = _pads(x.shape, kernel, strides, [1, 1], pad_type, pad)
    x = np.pad(x, [(0, 0), (0, 0), *pads], constant_values=pad_value)
    return reduce(_windows(np.ascontiguousarray(x), kernel, strides, [1, 1]), axis=(4, 5))


def max_pool(x, kernel_sizes, strides, pad_type, pad=None, ceil_mode=False):
    if bool(ceil_mode):
        raise UnsupportedOpError("max_pool with ceil_mode=True")
    return _pool(x, kernel_sizes, strides, pad_type, pad, np.max, -np.inf)


def avg_pool(x, kernel_sizes, strides, pad_type, pad=None, exclude_padding_from_average=False, ceil_mode=False):
    if bool(ceil_mode) or (bool(exclude_padding_from_average) and pad_type != "valid"):
        raise UnsupportedOpError("avg_pool with ceil_mode or excluded padding")
    return _pool(x, kernel_sizes, strides, pad_type, pad, np.mean, 0.0)


def batch_norm(x, mean, variance, gamma=None, beta=None, epsilon=1e-5):
    shape = [1, -1] + [1] * (np.ndim(x) - 2)
    out = (x - np.reshape(mean, shape)) / np.sqrt(np.reshape(variance, shape) + float(epsilon))
    if gamma is not None:
        out = out * np.reshape(gamma, shape)
    if beta is not None:
        out = out + np.reshape(beta, shape)
    return out


def matmul(x, y, transpose_x=False, transpose_y=False):
    x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
    if transpose_x:
        x = np.swapaxes(x, -1, -2)
    if transpose_y:
        y = np.swapaxes(y, -1, -2)
    return x @ y


def linear(x, weight, bias=None):
    out = np.asarray(x, np.float32) @ np.asarray(weight, np.float32).T
    return out if bias is None else out + np.asarray(bias, np.float32)


def reshape(x, shape):
    shape = [int(v) for v in shape]
    if shape and shape[0] == 1 and x.shape[0] != 1:  # the program was traced with batch 1
        shape[0] = x.shape[0]
    return np.reshape(x, shape)


def softmax(x, axis=-1):
    z = np.asarray(x, np.float32)
    z = z - z.max(axis=int(axis), keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=int(axis), keepdims=True)


def _reduce(fn):
    def op(x, axes=None, keep_dims=False):
        return fn(x, axis=None if axes is None else tuple(int(a) for a in axes), keepdims=bool(keep_dims))

    return op


def _cast(x, dtype):
    table = {"fp16": np.float16, "fp32": np.float32, "int32": np.int32, "int8": np.int8, "uint8": np.uint8,
             "bool": np.bool_}
    if dtype not in table:
        raise UnsupportedOpError(f"cast to {dtype!r}")
    return np.asarray(x).astype(table[dtype])


OPS: dict[str, Callable] = {
    "constexpr_affine_dequantize": constexpr_affine_dequantize,
    "constexpr_lut_to_dense": constexpr_lut_to_dense,
    "constexpr_sparse_to_dense": constexpr_sparse_to_dense,
    "conv": conv,
    "max_pool": max_pool,
    "avg_pool": avg_pool,
    "batch_norm": batch_norm,
    "matmul": matmul,
    "linear": linear,
    "reshape": reshape,
    "transpose": lambda x, perm: np.transpose(x, [int(p) for p in perm]),
    "squeeze": lambda x, axes=None: np.squeeze(x, None if axes is None else tuple(int(a) for a in axes)),
    "expand_dims": lambda x, axes: np.expand_dims(x, tuple(int(a) for a in axes)),
    "softmax": softmax,
    "reduce_mean": _reduce(np.mean),
    "reduce_max": _reduce(np.max),
    "reduce_sum": _reduce(np.sum),
    "relu": lambda x: np.maximum(x, 0),
    "relu6": lambda x: np.clip(x, 0, 6),
    "elu": lambda x, alpha=1.0: np.where(x > 0, x, float(alpha) * (np.exp(np.minimum(x, 0)) - 1)),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": lambda x: np.tanh(x),
    "add": lambda x, y: np.add(x, y),
    "sub": lambda x, y: np.subtract(x, y),
    "mul": lambda x, y: np.multiply(x, y),
    "real_div": lambda x, y: np.divide(x, y),
    "maximum": lambda x, y: np.maximum(x, y),
    "minimum": lambda x, y: np.minimum(x, y),
    "cast": _cast,
}


class Program:
    """A loaded ML Program: its main function's ops, ready to run on NumPy batches."""

    def __init__(self, path: str | Path):
        from compress.coreml import load_program

        spec, program = load_program(path)
        if program is None:
            raise UnsupportedOpError(f"{path}: not an ML Program (a {spec.WhichOneof('Type')} model)")
        self.function = program.functions["main"]
        unknown = sorted({op.op_type for op in self.function.operations} - set(OPS) - {"const", "classify"})
        if unknown:
            raise UnsupportedOpError(f"{path}: op(s) {', '.join(unknown)} not implemented by the NumPy executor")
        self.input_name = next(iter(self.function.inputs))

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities for a batch shaped like the program's input, batch first."""
        env: dict[str, np.ndarray] = {self.input_name: np.asarray(batch, np.float32)}
        probs = None
        for op in self.function.operations:
            if op.op_type == "const":
                env[op.outputs[0].name] = op.outputs[0].val
                continue
            args = {}
            for key, var in op.inputs.items():
                if isinstance(var, (list, tuple)):
                    raise UnsupportedOpError(f"op {op.op_type} ({op.name}) takes a list input {key!r}")
                args[key] = env[var.name] if var.name in env else var.val
            if op.op_type == "classify":
                probs = np.asarray(args["probabilities"], np.float32)
                continue
            result = OPS[op.op_type](**args)
            dtype = _np_dtype(op.outputs[0].dtype)
            env[op.outputs[0].name] = np.asarray(result).astype(dtype) if dtype is not None else result
        if probs is None:
            probs = env[self.function.outputs[0].name]
        return np.asarray(probs, np.float32).reshape(len(batch), -1)


def predict(path: str | Path, images: np.ndarray, batch: int = 500) -> np.ndarray:
    """Class probabilities of an image-input .mlpackage for images in [0, 1], shape (n, 28, 28, 1).

    On macOS the real Core ML runs the model; elsewhere the NumPy executor does.
    """
    pixels = np.clip(np.round(images * 255.0), 0, 255).astype(np.float32)
    if platform.system() == "Darwin":  # pragma: no cover - exercised on macOS only
        return _predict_coreml(path, pixels)
    program = Program(path)
    nchw = np.transpose(pixels, (0, 3, 1, 2))
    return np.concatenate([program.run(nchw[i:i + batch]) for i in range(0, len(nchw), batch)])


def _predict_coreml(path: str | Path, pixels: np.ndarray) -> np.ndarray:  # pragma: no cover - macOS
    import coremltools as ct
    from PIL import Image

    from compress.data import CLASS_NAMES

    model = ct.models.MLModel(str(path))
    out = []
    for image in pixels[..., 0].astype(np.uint8):
        probs = model.predict({"image": Image.fromarray(image, mode="L")})["classLabel_probs"]
        out.append([probs[name] for name in CLASS_NAMES])
    return np.asarray(out, np.float32)
