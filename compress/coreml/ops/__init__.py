"""The NumPy executor's ops, one registry, grouped by kind (one module each).

Each op is a plain function of NumPy arrays and attribute values, named as in Core ML's MIL
(`coremltools.converters.mil.mil.ops.defs`), registered with `@op`; its semantics are written from
Core ML's documentation and tested against an independent computation (Keras or NumPy by hand).
Adding an op is one function in the module of its kind. `compress/coreml/executor.py` runs programs.
"""

from __future__ import annotations

from typing import Callable

from compress.core.errors import CompressError

OPS: dict[str, Callable] = {}


class UnsupportedOpError(CompressError):
    """The program holds an op (or an attribute value) this executor does not implement."""


def op(*names: str):
    """Register the function under its own name, or under `names`."""

    def register(fn: Callable) -> Callable:
        for name in names or (fn.__name__.rstrip("_"),):
            if name in OPS:
                raise ValueError(f"op {name} registered twice")
            OPS[name] = fn
        return fn

    return register


def covered() -> list[str]:
    return sorted(OPS)


from compress.coreml.ops import (  # noqa: E402,F401 - registers every op
    activation,
    convolution,
    decompress,
    elementwise,
    linear,
    normalization,
    reduction,
    shape,
)
