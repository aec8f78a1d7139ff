"""Elementwise arithmetic and comparisons (NumPy broadcasting, as Core ML's), and casts."""

from __future__ import annotations

import numpy as np

from compress.coreml.ops import UnsupportedOpError, op

_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "real_div": np.divide, "maximum": np.maximum,
           "minimum": np.minimum, "pow": np.power, "floor_div": np.floor_divide, "mod": np.mod,
           "equal": np.equal, "not_equal": np.not_equal, "greater": np.greater, "greater_equal": np.greater_equal,
           "less": np.less, "less_equal": np.less_equal, "logical_and": np.logical_and,
           "logical_or": np.logical_or}
_UNARY = {"abs": np.abs, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "rsqrt": lambda v: 1 / np.sqrt(v),
          "square": np.square, "floor": np.floor, "ceil": np.ceil, "round": np.round, "sign": np.sign,
          "sin": np.sin, "cos": np.cos, "logical_not": np.logical_not, "inverse": lambda v: 1 / v}

for _name, _fn in _BINARY.items():
    op(_name)(lambda x, y, _fn=_fn: _fn(x, y))
for _name, _fn in _UNARY.items():
    op(_name)(lambda x, _fn=_fn, epsilon=None: _fn(x))

_DTYPES = {"fp16": np.float16, "fp32": np.float32, "int32": np.int32, "int16": np.int16, "int8": np.int8,
           "uint8": np.uint8, "uint16": np.uint16, "bool": np.bool_}


@op()
def cast(x, dtype):
    if dtype not in _DTYPES:
        raise UnsupportedOpError(f"cast to {dtype!r}")
    return np.asarray(x).astype(_DTYPES[dtype])


@op()
def select(cond, a, b):
    return np.where(np.asarray(cond).astype(bool), a, b)


@op()
def identity(x):
    return np.asarray(x)
