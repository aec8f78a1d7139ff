"""Weight decompression: the constexpr ops of every coremltools.optimize.coreml mode (iOS 16 and
iOS 18 opsets): affine (linear) quantization per tensor, per channel and per block, palettization
(look-up tables, per tensor or per group, scalar or vector), sparsity, and their combinations
(palettized or quantized sparse weights: iOS 18's lut_to_sparse and sparse_blockwise_shift_scale)."""

from __future__ import annotations

import numpy as np

from compress.coreml.ops import UnsupportedOpError, op


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


def _lut_lookup(lut: np.ndarray, idx: np.ndarray, vector_axis) -> np.ndarray:
    """iOS 18 palettization: `lut` of shape (groups along each axis of `idx`..., 2**nbits,
    vector size). Each axis of `idx` is cut into as many equal blocks as the table has groups
    along it, and each block reads its own table. An index stands for a vector of the table's
    last dim, laid along `vector_axis` of the output (which is that many times longer there)."""
    groups, size = lut.shape[:-2], lut.shape[-1]
    if len(groups) != idx.ndim:
        raise UnsupportedOpError(f"palettization table of rank {lut.ndim} for indices of rank {idx.ndim}")
    where = []
    for axis, (n, g) in enumerate(zip(idx.shape, groups)):
        if n % g:
            raise UnsupportedOpError(f"{g} palettization groups do not divide indices dim {n} (axis {axis})")
        shape = [1] * idx.ndim
        shape[axis] = n
        where.append((np.arange(n) // (n // g)).reshape(shape))
    values = lut[(*where, idx)]  # idx.shape + (vector size,)
    if size == 1:
        return values[..., 0]
    if vector_axis is None:
        raise UnsupportedOpError("vector palettization (vector size > 1) without a vector_axis")
    axis = int(vector_axis) % idx.ndim
    out_shape = list(idx.shape)
    out_shape[axis] *= size
    return np.moveaxis(values, -1, axis + 1).reshape(out_shape)


@op()
def constexpr_lut_to_dense(lut, indices, shape=None, vector_axis=None):
    """iOS 16: one table for the tensor, `indices` bit-packed; iOS 18: per-group tables and
    scalar or vector palettization (`_lut_lookup`)."""
    lut = np.asarray(lut)
    if shape is not None:  # the iOS 16 op
        nbits = int(np.log2(lut.size))
        count = int(np.prod(shape))
        return lut.reshape(-1)[unpack_bits(indices, nbits, count)].reshape(tuple(int(s) for s in shape))
    return _lut_lookup(lut, np.asarray(indices).astype(np.int64), vector_axis)


@op()
def constexpr_lut_to_sparse(indices_mask, indices_nonzero_data, lut, vector_axis=None):
    """iOS 18 palettization of sparse weights: the tables applied to the nonzero entries only.
    Two outputs, for a following constexpr_sparse_to_dense: the mask (stretched along
    `vector_axis` for vector palettization) and the values in the mask's row-major order."""
    lut = np.asarray(lut)
    mask = np.asarray(indices_mask).astype(bool)
    idx = np.zeros(mask.shape, dtype=np.int64)
    idx[mask] = np.asarray(indices_nonzero_data).astype(np.int64).reshape(-1)
    dense = _lut_lookup(lut, idx, vector_axis)
    if lut.shape[-1] > 1:
        mask = np.repeat(mask, lut.shape[-1], axis=int(vector_axis) % mask.ndim)
    return mask, dense[mask]


@op()
def constexpr_sparse_blockwise_shift_scale(data_mask, nonzero_data, scale, offset=None):
    """iOS 18 linear quantization of sparse weights: (data - offset) * scale on the nonzero
    entries, per tensor, channel or block of the dense layout. Two outputs: the mask and the
    values, for a following constexpr_sparse_to_dense."""
    mask = np.asarray(data_mask).astype(bool)
    dense = np.zeros(mask.shape, dtype=np.float32)
    dense[mask] = np.asarray(nonzero_data).astype(np.float32).reshape(-1)
    values = constexpr_blockwise_shift_scale(dense, scale, offset)
    return mask, values[mask]


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
