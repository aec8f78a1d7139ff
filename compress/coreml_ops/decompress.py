"""Weight decompression: the constexpr ops of every coremltools.optimize.coreml mode (iOS 16 and
iOS 18 opsets): affine (linear) quantization per tensor, per channel and per block, palettization
(look-up tables, per tensor or per group), sparsity, and their combinations."""

from __future__ import annotations

import numpy as np

from compress.coreml_ops import UnsupportedOpError, op


def unpack_bits(packed: np.ndarray, nbits: int, count: int) -> np.ndarray:
    """`count` unsigned integers of `nbits` bits each, packed least-significant bit first."""
    bits = np.unpackbits(np.asarray(packed, dtype=np.uint8).reshape(-1), bitorder="little")
    bits = bits[: count * nbits].reshape(count, nbits).astype(np.int64)
    return (bits << np.arange(nbits)).sum(axis=1)


@op()
def constexpr_affine_dequantize(quantized_data, zero_point, scale, axis):
    """iOS 16: per-tensor (scalar scale) or per-channel (a vector along `axis`)."""
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


def _blockwise(values: np.ndarray, param: np.ndarray) -> np.ndarray:
    """`param` (same rank as `values`, each dim dividing it) repeated up to `values`' shape: the
    per-block layout of iOS 18's blockwise ops (a dim of 1 is per-tensor along it)."""
    param = np.asarray(param)
    if param.ndim == 0:
        return param
    if param.ndim != values.ndim:
        raise UnsupportedOpError(f"block parameter of rank {param.ndim} for data of rank {values.ndim}")
    for axis, (n, p) in enumerate(zip(values.shape, param.shape)):
        if n % p:
            raise UnsupportedOpError(f"block parameter dim {p} does not divide data dim {n} (axis {axis})")
        param = np.repeat(param, n // p, axis=axis)
    return param


@op()
def constexpr_blockwise_shift_scale(data, scale, offset=None):
    """iOS 18 linear quantization, per tensor, per channel or per block: (data - offset) * scale."""
    values = np.asarray(data).astype(np.float32)
    if offset is not None:
        values = values - _blockwise(values, np.asarray(offset).astype(np.float32))
    return values * _blockwise(values, np.asarray(scale).astype(np.float32))


@op()
def constexpr_lut_to_dense(lut, indices, shape=None, vector_axis=None):
    """iOS 16: one table for the tensor, `indices` bit-packed; iOS 18: `lut` of shape
    (groups along each axis..., 2**nbits, vector size) and `indices` an n-bit tensor of the
    output's shape (per-group palettization)."""
    lut = np.asarray(lut)
    if shape is not None:  # the iOS 16 op
        nbits = int(np.log2(lut.size))
        count = int(np.prod(shape))
        return lut.reshape(-1)[unpack_bits(indices, nbits, count)].reshape(tuple(int(s) for s in shape))
    idx = np.asarray(indices).astype(np.int64)
    if lut.shape[-1] != 1:
        raise UnsupportedOpError("constexpr_lut_to_dense with vector palettization (vector size > 1)")
    groups = lut.shape[:-2]
    out = np.empty(idx.shape, dtype=lut.dtype)
    block = [n // g for n, g in zip(idx.shape, groups)]
    for group in np.ndindex(*groups):
        sl = tuple(slice(g * b, (g + 1) * b) for g, b in zip(group, block))
        out[sl] = lut[group][:, 0][idx[sl]]
    return out


@op()
def constexpr_sparse_to_dense(nonzero_data, mask, shape=None):
    """iOS 16: `mask` bit-packed with the dense `shape`; iOS 18: `mask` a boolean tensor."""
    values = np.asarray(nonzero_data).reshape(-1)
    if shape is not None:
        count = int(np.prod(shape))
        flat = unpack_bits(mask, 1, count).astype(bool)
        dense = np.zeros(count, dtype=values.dtype)
        dense[flat] = values
        return dense.reshape(tuple(int(s) for s in shape))
    m = np.asarray(mask).astype(bool)
    dense = np.zeros(m.shape, dtype=values.dtype)
    dense[m] = values
    return dense


@op()
def constexpr_cast(source_val, output_dtype):
    table = {"fp16": np.float16, "fp32": np.float32}
    return np.asarray(source_val).astype(table[str(output_dtype)])
