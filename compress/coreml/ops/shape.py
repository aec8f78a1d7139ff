"""Shape and data movement: reshape, transpose, squeeze/expand, concat/stack/split, slicing,
padding, gather, tile."""

from __future__ import annotations

import numpy as np

from compress.coreml.ops import UnsupportedOpError, op


def _ints(values):
    return [int(v) for v in np.atleast_1d(values)]


@op()
def reshape(x, shape):
    shape = _ints(shape)
    if shape and shape[0] == 1 and np.shape(x)[0] != 1:  # the program was traced with batch 1
        shape[0] = np.shape(x)[0]
    return np.reshape(x, shape)


@op()
def transpose(x, perm):
    return np.transpose(x, _ints(perm))


@op()
def squeeze(x, axes=None):
    return np.squeeze(x, None if axes is None else tuple(_ints(axes)))


@op()
def expand_dims(x, axes):
    return np.expand_dims(x, tuple(_ints(axes)))


@op()
def concat(values, axis, interleave=False):
    if bool(interleave):
        raise UnsupportedOpError("concat with interleave=True")
    return np.concatenate([np.asarray(v) for v in values], axis=int(axis))


@op()
def stack(values, axis):
    return np.stack([np.asarray(v) for v in values], axis=int(axis))


@op()
def split(x, num_splits=None, split_sizes=None, axis=0):
    """Several outputs: a tuple, in order."""
    axis = int(axis)
    if split_sizes is not None:
        cuts = np.cumsum(_ints(split_sizes))[:-1]
        return tuple(np.split(x, cuts, axis=axis))
    return tuple(np.split(x, int(num_splits), axis=axis))


@op()
def slice_by_index(x, begin, end, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None):
    x = np.asarray(x)
    rank = x.ndim
    begin, end = _ints(begin), _ints(end)
    stride = _ints(stride) if stride is not None else [1] * rank
    bm = [bool(v) for v in np.atleast_1d(begin_mask)] if begin_mask is not None else [False] * rank
    em = [bool(v) for v in np.atleast_1d(end_mask)] if end_mask is not None else [False] * rank
    sm = [bool(v) for v in np.atleast_1d(squeeze_mask)] if squeeze_mask is not None else [False] * rank
    index = []
    for i in range(rank):
        if sm[i]:
            index.append(begin[i])
            continue
        index.append(slice(None if bm[i] else begin[i], None if em[i] else end[i], stride[i]))
    return x[tuple(index)]


@op()
def slice_by_size(x, begin, size):
    x = np.asarray(x)
    index = tuple(slice(b, None if s == -1 else b + s) for b, s in zip(_ints(begin), _ints(size)))
    return x[index]


@op()
def pad(x, pad, mode="constant", constant_val=0.0):
    x = np.asarray(x)
    p = _ints(pad)
    pairs = [(0, 0)] * (x.ndim - len(p) // 2) + [(p[2 * i], p[2 * i + 1]) for i in range(len(p) // 2)]
    if mode == "constant":
        return np.pad(x, pairs, mode="constant", constant_values=float(constant_val))
    if mode in ("reflect", "replicate"):
        return np.pad(x, pairs, mode="reflect" if mode == "reflect" else "edge")
    raise UnsupportedOpError(f"pad mode {mode!r}")


@op()
def gather(x, indices, axis=0, batch_dims=0, validate_indices=False):
    if int(batch_dims):
        raise UnsupportedOpError("gather with batch_dims > 0")
    x = np.asarray(x)
    idx = np.asarray(indices).astype(np.int64)
    idx = np.where(idx < 0, idx + x.shape[int(axis)], idx)
    return np.take(x, idx, axis=int(axis))


@op()
def gather_along_axis(x, indices, axis=0, validate_indices=False):
    return np.take_along_axis(np.asarray(x), np.asarray(indices).astype(np.int64), axis=int(axis))


@op()
def tile(x, reps):
    return np.tile(np.asarray(x), _ints(reps))


@op()
def flatten2d(x, axis=1):
    x = np.asarray(x)
    axis = int(axis)
    return x.reshape(int(np.prod(x.shape[:axis])), -1)
