"""The exact non-dominated set over trial metrics, and one trial picked from it (pure NumPy, no stores).

Picking from the front (`pick_trial`, for `python -m compress.pareto`): policy `smallest_within_budget`
(the default): among the front's trials whose validation accuracy is within `budget` of the
teacher's, the smallest .tflite file (ties: lower latency, then higher accuracy). When no trial is
that close, or with policy `knee`, the knee of the front in (validation accuracy, log file size):
the point farthest from the straight line between the smallest and the most accurate front
trials. Selection uses validation accuracy only; test accuracy is reported, never used to choose.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from compress.core import metrics as M

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


FRONT_POLICIES = ("smallest_within_budget", "knee")


def knee(front: pd.DataFrame) -> pd.Series:
    """The front's knee in (validation accuracy, log10 size)."""
    if len(front) <= 2:
        return front.sort_values([M.VAL_ACCURACY, M.SIZE_BYTES], ascending=[False, True]).iloc[0]
    x = np.log10(front[M.SIZE_BYTES].to_numpy(float))
    y = front[M.VAL_ACCURACY].to_numpy(float)
    xn = (x - x.min()) / (np.ptp(x) or 1.0)
    yn = (y - y.min()) / (np.ptp(y) or 1.0)
    a = np.array([xn[np.argmin(x)], yn[np.argmin(x)]])
    b = np.array([xn[np.argmax(y)], yn[np.argmax(y)]])
    direction = (b - a) / (np.linalg.norm(b - a) or 1.0)
    offsets = np.c_[xn, yn] - a
    distance = np.abs(offsets[:, 0] * direction[1] - offsets[:, 1] * direction[0])
    above = direction[0] * offsets[:, 1] - direction[1] * offsets[:, 0] >= 0  # on the accurate side
    distance = np.where(above, distance, -np.inf) if above.any() else distance
    return front.iloc[int(np.argmax(distance))]


def pick_trial(table: pd.DataFrame, teacher_val_accuracy: float, budget: float = 0.005,
         policy: str = "smallest_within_budget") -> tuple[pd.Series, str]:
    """The winning trial (a row of `table`, which needs a boolean `pareto` column) and why."""
    if policy not in FRONT_POLICIES:
        raise ValueError(f"policy={policy}: allowed {', '.join(FRONT_POLICIES)}")
    front = table[table["pareto"]]
    if front.empty:
        raise ValueError("the front is empty: no finished trial with every objective")
    if policy == "smallest_within_budget":
        close = front[front[M.VAL_ACCURACY] >= teacher_val_accuracy - budget]
        if len(close):
            row = close.sort_values([M.SIZE_BYTES, M.LATENCY_MS, M.VAL_ACCURACY],
                                    ascending=[True, True, False]).iloc[0]
            return row, (f"smallest front trial within {100 * budget:.2g} points of the teacher's validation "
                         f"accuracy ({100 * teacher_val_accuracy:.2f}%)")
    reason = "knee of the front" if policy == "knee" else (
        f"no front trial within {100 * budget:.2g} points of the teacher ({100 * teacher_val_accuracy:.2f}%): "
        "knee of the front")
    return knee(front), reason
