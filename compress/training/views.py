"""Augmented views of the training images, and the teacher's logits for each view, cached.

Patient and consistent distillation (Beyer et al. 2022) needs the teacher's targets for the
same augmented view the student sees; FKD (Shen and Xing 2022) stores those targets once
for a fixed number of views per image so that the teacher never runs while students train.
Here view `k` of an image is a pure function of (`seed`, `k`, the image's position in the
original 60,000): a horizontal flip bit and a shift of up to `max_shift` pixels, drawn from
a counter-based hash. Only the logits are stored (views x images x 10 floats); the pixels
of a view are regenerated on demand, bit for bit. View 0 is always the image itself.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from compress.core import shared_parts
from compress.data import arrays

if TYPE_CHECKING:  # the annotation alone: views are made and read back without TensorFlow
    from compress.core.compat import keras

log = logging.getLogger(__name__)
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a well-spread 64-bit hash of each value."""
    z = values.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = (z + np.uint64(0x9E3779B97F4A7C15)) & _MASK
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK
    return z ^ (z >> np.uint64(31))


def view_params(original_index: np.ndarray, view: int, seed: int, max_shift: int = 2,
                flips: bool = True) -> tuple[np.ndarray, ...]:
    """(flip, dy, dx) of view `view` for images at `original_index`: the same numbers for the
    same image whatever slice or order it comes in. View 0 is the identity; without `flips` (data
    where a flipped image is another class) no view is flipped."""
    n = len(original_index)
    if view == 0:
        zeros = np.zeros(n, dtype=np.int64)
        return zeros.astype(bool), zeros, zeros
    key = _mix(np.uint64(seed) * np.uint64(1_000_003) + np.uint64(view))
    with np.errstate(over="ignore"):
        h = _mix(np.asarray(original_index, dtype=np.uint64) ^ key)
    span = np.uint64(2 * max_shift + 1)
    flip = (h & np.uint64(1)).astype(bool) & flips
    dy = ((h >> np.uint64(8)) % span).astype(np.int64) - max_shift
    dx = ((h >> np.uint64(24)) % span).astype(np.int64) - max_shift
    return flip, dy, dx


def make_view(images: np.ndarray, original_index: np.ndarray, view: int, seed: int, max_shift: int = 2,
              flips: bool = True) -> np.ndarray:
    """Images (n, H, W, C), as held, seen in view `view`: flipped where drawn, then shifted with
    zeros filling the uncovered border."""
    flip, dy, dx = view_params(original_index, view, seed, max_shift, flips)
    out = np.where(flip[:, None, None, None], images[:, :, ::-1], images)
    if not max_shift or view == 0:
        return np.ascontiguousarray(out)
    m = max_shift
    padded = np.pad(out, ((0, 0), (m, m), (m, m), (0, 0)))
    h, w = images.shape[1:3]
    shifted = np.empty_like(out)
    for y in range(-m, m + 1):
        for x in range(-m, m + 1):
            sel = np.flatnonzero((dy == y) & (dx == x))
            if len(sel):
                shifted[sel] = padded[sel, m - y: m - y + h, m - x: m - x + w]
    return shifted


def cache_path(cache_dir: str | Path, teacher_sha: str, data_fingerprint: str, index: np.ndarray, views: int,
               seed: int, max_shift: int, flips: bool = True) -> Path:
    """Where one teacher's logits for `views` views of one set of training images live."""
    index_hash = hashlib.sha256(np.ascontiguousarray(index, dtype=np.int64).tobytes()).hexdigest()[:12]
    name = f"{teacher_sha[:16]}_{data_fingerprint[:12]}_{index_hash}_v{views}_s{seed}_m{max_shift}"
    name += ".npy" if flips else "_noflip.npy"  # views that flip: the names they always had
    return Path(cache_dir) / "view_logits" / name


def teacher_view_logits(teacher_logits: Callable[[], keras.Model], images: np.ndarray, original_index: np.ndarray,
                        views: int, seed: int, max_shift: int, path: Path, classes: int,
                        flips: bool = True) -> np.ndarray:
    """The teacher's logits (views, n, classes) for every view of `images`, read from `path` or computed
    once in inference mode, a view at a time with progress, shared with the other processes that need
    them now (each computes the views nobody holds: compress/core/shared_parts.py) and saved atomically.
    `teacher_logits` gives the model up to its logits, called only where the file is missing or wrong."""
    expected = (views, len(images), classes)
    if path.is_file():
        logits = np.load(path, mmap_mode=None)
        if logits.shape == expected:
            return logits
        log.warning("view-logit cache %s has shape %s, expected %s: recomputing", path, logits.shape, expected)
        path.unlink(missing_ok=True)  # another process may have seen it wrong too
    logits_model = teacher_logits()

    def compute(k: int) -> np.ndarray:
        view = make_view(images, original_index, k, seed, max_shift, flips)
        return arrays.predict(logits_model, view)

    computed, waiting = shared_parts.progress(log, "teacher logits of augmented views", "view", views)
    logits = shared_parts.build(path, views, compute, computed, waiting)
    return logits.astype(np.float32, copy=False)


def all_views(images: np.ndarray, original_index: np.ndarray, views: int, seed: int, max_shift: int,
              flips: bool = True) -> np.ndarray:
    """Every view of every image as uint8 (views, n, H, W, C): 43 MB a view of 55,000 Fashion-MNIST images,
    regenerated in memory, never stored."""
    return np.stack([arrays.to_pixels(make_view(images, original_index, k, seed, max_shift, flips))
                     for k in range(views)])
