"""A Core ML package on disk: its bytes, and its ML Program read back with coremltools' own loader (the ops
it holds, the weights and multiply-accumulates they carry). Apart from the conversion (convert.py), so that
what scores or checks an exported package (the executor, verify) reads it without TensorFlow."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from compress.core.quiet import native_quiet


def coremltools_quietly():
    """coremltools, imported once its native and Python log lines are muted (heavy: imported where used)."""
    with native_quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("coremltools").setLevel(logging.ERROR)
        import coremltools

    return coremltools


def package_bytes(path: str | Path) -> int:
    """Bytes of every file inside the .mlpackage folder."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def load_program(path: str | Path):
    """(spec, MIL program) of a saved package, read with coremltools' own loader; the
    program is None when the package holds no ML Program."""
    ct = coremltools_quietly()
    with native_quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from coremltools.converters.mil.frontend.milproto.load import load as load_mil

        mlmodel = ct.models.MLModel(str(path), skip_model_load=True)
        spec = mlmodel.get_spec()
        if spec.WhichOneof("Type") != "mlProgram":
            return spec, None
        return spec, load_mil(spec, specification_version=spec.specificationVersion,
                              file_weights_dir=mlmodel.weights_dir)


def program_ops(path: str | Path) -> list[str]:
    """The op types of the saved ML Program's main function, read back from disk."""
    _, program = load_program(path)
    return [op.op_type for op in program.functions["main"].operations]


def package_counts(path: str | Path) -> dict[str, int]:
    """Weights (kernel elements), biases and multiply-accumulates of one image through the conv,
    linear and matmul ops of a saved ML Program, counted from the program's own shapes
    (compressed weights count by their decompressed shape; coremltools drops all-zero biases)."""
    _, program = load_program(path)
    weights = biases = macs = 0
    for op in program.functions["main"].operations:
        if op.op_type not in ("conv", "linear", "matmul"):
            continue
        weight = op.inputs["y"] if op.op_type == "matmul" else op.weight
        size = int(np.prod([int(v) for v in weight.shape]))
        bias = op.inputs.get("bias")
        weights += size
        biases += int(np.prod(bias.shape)) if bias is not None else 0
        out = op.outputs[0].shape
        macs += size * (int(np.prod([int(v) for v in out[2:]])) if op.op_type == "conv" else 1)
    return {"weights": weights, "biases": biases, "macs": macs}
