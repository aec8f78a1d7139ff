"""Matrix products."""

from __future__ import annotations

import numpy as np

from compress.coreml.ops import op


@op()
def matmul(x, y, transpose_x=False, transpose_y=False):
    x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
    if transpose_x:
        x = np.swapaxes(x, -1, -2)
    if transpose_y:
        y = np.swapaxes(y, -1, -2)
    return x @ y


@op()
def linear(x, weight, bias=None):
    out = np.asarray(x, np.float32) @ np.asarray(weight, np.float32).T
    return out if bias is None else out + np.asarray(bias, np.float32)
