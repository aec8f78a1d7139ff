"""Hypervolume of a study's front: the one number the sampler and early-stop comparisons use.

Space (all minimised): validation error (1 - val_accuracy), log10 of the .tflite bytes, and
latency as a ratio to the teacher's float32 TFLite timed in the same trial (a ratio, so
machine noise between trials cancels).  Reference point `REFERENCE`: error 0.5, 10 MB,
the teacher's latency; a trial worse than it on any axis adds nothing.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

REFERENCE = (0.5, 7.0, 1.0)


def to_space(val_accuracy: float, size_bytes: float, latency_ratio: float) -> tuple[float, float, float]:
    """A trial's figures as a point of the minimised space."""
    return 1.0 - float(val_accuracy), float(np.log10(size_bytes)), float(latency_ratio)


def _area_2d(points: np.ndarray, ref: np.ndarray) -> float:
    """Area dominated by 2-D points (minimised) up to `ref`."""
    pts = points[np.all(points < ref, axis=1)]
    if not len(pts):
        return 0.0
    pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]
    area, best_y = 0.0, ref[1]
    for x, y in pts:
        if y < best_y:
            area += (ref[0] - x) * (best_y - y)
            best_y = y
    return float(area)


def hypervolume(points: Iterable[Iterable[float]], ref: Iterable[float] = REFERENCE) -> float:
    """Exact 3-D hypervolume dominated by `points` (minimised) up to `ref`, by slicing along
    the first axis: between consecutive first coordinates the dominated cross-section is the
    2-D area of the points seen so far."""
    ref = np.asarray(tuple(ref), dtype=float)
    pts = np.asarray([tuple(p) for p in points], dtype=float).reshape(-1, 3)
    pts = pts[np.all(np.isfinite(pts), axis=1) & np.all(pts < ref, axis=1)]
    if not len(pts):
        return 0.0
    pts = pts[np.argsort(pts[:, 0], kind="stable")]
    volume = 0.0
    for i in range(len(pts)):
        upper = pts[i + 1, 0] if i + 1 < len(pts) else ref[0]
        if upper > pts[i, 0]:
            volume += (upper - pts[i, 0]) * _area_2d(pts[: i + 1, 1:], ref[1:])
    return float(volume)
