"""Reductions over axes (None: every axis), argmax/argmin."""

from __future__ import annotations

import numpy as np

from compress.coreml.ops import op


def _axes(axes):
    return None if axes is None else tuple(int(a) for a in np.atleast_1d(axes))


def _reduce(name, fn):
    def reduce(x, axes=None, keep_dims=False):
        return fn(np.asarray(x), axis=_axes(axes), keepdims=bool(keep_dims))

    op(name)(reduce)


for _name, _fn in {
    "reduce_mean": np.mean, "reduce_sum": np.sum, "reduce_max": np.max, "reduce_min": np.min,
    "reduce_prod": np.prod,
    "reduce_l1_norm": lambda x, axis, keepdims: np.sum(np.abs(x), axis=axis, keepdims=keepdims),
    "reduce_l2_norm": lambda x, axis, keepdims: np.sqrt(np.sum(np.square(x), axis=axis, keepdims=keepdims)),
    "reduce_sum_square": lambda x, axis, keepdims: np.sum(np.square(x), axis=axis, keepdims=keepdims),
    "reduce_log_sum": lambda x, axis, keepdims: np.log(np.sum(x, axis=axis, keepdims=keepdims)),
    "reduce_log_sum_exp": lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims)),
}.items():
    _reduce(_name, _fn)


@op()
def reduce_argmax(x, axis=-1, keep_dims=False):
    out = np.argmax(x, axis=int(axis)).astype(np.int32)
    return np.expand_dims(out, int(axis)) if bool(keep_dims) else out


@op()
def reduce_argmin(x, axis=-1, keep_dims=False):
    out = np.argmin(x, axis=int(axis)).astype(np.int32)
    return np.expand_dims(out, int(axis)) if bool(keep_dims) else out
