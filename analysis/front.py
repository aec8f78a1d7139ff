"""The exact non-dominated set over trial metrics (pure NumPy, no stores involved)."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

# metric -> direction; the default front: validation accuracy up, file size down, latency down
DEFAULT_OBJECTIVES: Mapping[str, str] = {"val_accuracy": "max", "size_bytes": "min", "latency_ms": "min"}
# the iPhone file's front: the package's validation accuracy (executor) up, its bytes down
COREML_OBJECTIVES: Mapping[str, str] = {"coreml_val_accuracy": "max", "coreml_size_bytes": "min"}
# the TFLite files of the same trials on the same two axes, for comparison with it
TFLITE_2D_OBJECTIVES: Mapping[str, str] = {"val_accuracy": "max", "size_bytes": "min"}


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """a dominates b: no worse in every objective and better in at least one (all minimised)."""
    return bool(np.all(a <= b) and np.any(a < b))


def pareto_mask(table: pd.DataFrame, objectives: Mapping[str, str] = DEFAULT_OBJECTIVES) -> pd.Series:
    """True for rows no other row dominates.

    Rows missing any objective (or holding NaN/inf) are never on the front and never
    dominate.  Identical rows do not dominate each other, so ties are all kept.
    """
    for direction in objectives.values():
        if direction not in ("min", "max"):
            raise ValueError(f"objective direction {direction!r}: allowed 'min' or 'max'")
    mask = pd.Series(False, index=table.index)
    missing = [k for k in objectives if k not in table.columns]
    if missing or table.empty:
        return mask
    values = table[list(objectives)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    signs = np.array([-1.0 if d == "max" else 1.0 for d in objectives.values()])
    values = values * signs
    valid = np.all(np.isfinite(values), axis=1)
    points = values[valid]
    keep = np.ones(len(points), dtype=bool)
    for i, p in enumerate(points):
        no_worse = np.all(points <= p, axis=1)
        better = np.any(points < p, axis=1)
        if np.any(no_worse & better):
            keep[i] = False
    mask.iloc[np.flatnonzero(valid)] = keep
    return mask
