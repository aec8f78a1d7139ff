"""Images and labels handed over as arrays (an .npz, a decoded folder), checked and read one way:
images (n, H, W) or (n, H, W, C) as uint8 pixels or floats in [0, 1], labels as class indices."""

from __future__ import annotations

import numpy as np

from compress.core.errors import DataError

MAX_CHANNELS = 4


def images(x: np.ndarray, where: str) -> tuple[np.ndarray, str]:
    """`x` as float32 in [0, 1] shaped (n, H, W, C), and which reading was used (said, never guessed
    silently): integer pixels 0-255, or floats already in [0, 1]. Anything else is refused in one line."""
    x, read = checked(x, where)
    return as_unit(x), read


def as_unit(x: np.ndarray) -> np.ndarray:
    """Checked images (`checked`) as float32 in [0, 1]."""
    return x.astype(np.float32) if np.issubdtype(x.dtype, np.floating) else to_unit(x)


def checked(x: np.ndarray, where: str) -> tuple[np.ndarray, str]:
    """`x` shaped (n, H, W, C) as it was stored (pixels stay pixels: convert after splitting), and which
    reading applies: integer pixels 0-255, or floats already in [0, 1]. Anything else is one line."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or not len(x) or not 1 <= x.shape[-1] <= MAX_CHANNELS:
        raise DataError(f"{where}: images of shape {x.shape}; expected (n, H, W) or (n, H, W, C) with C 1..4")
    if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
        if x.min() < 0 or x.max() > 255:
            raise DataError(f"{where}: integer pixels span {x.min()}..{x.max()}; allowed 0..255")
        return x, "uint8 pixels 0-255"
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{where}: images of dtype {x.dtype}; allowed uint8 pixels or floats in [0, 1]")
    if not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1:
        raise DataError(f"{where}: float pixels span {np.nanmin(x):.3g}..{np.nanmax(x):.3g}; allowed [0, 1] "
                        f"(store 0-255 pixels as uint8 instead)")
    return x, "floats in [0, 1]"


def to_unit(pixels: np.ndarray) -> np.ndarray:
    """0-255 pixels as float32 in [0, 1], divided in place: one float32 copy at a time, not two (the
    same bits as `pixels.astype(np.float32) / 255.0`)."""
    out = pixels.astype(np.float32)
    out /= np.float32(255.0)
    return out


def labels(y: np.ndarray, n_images: int, n_classes: int | None, where: str) -> np.ndarray:
    """`y` as int64 class indices, one per image, each below `n_classes` (when known)."""
    y = np.asarray(y).reshape(-1)
    if len(y) != n_images:
        raise DataError(f"{where}: {len(y)} labels for {n_images} images")
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
            y = y.astype(np.int64)
        else:
            raise DataError(f"{where}: labels of dtype {y.dtype}; allowed class indices 0..k-1")
    if len(y) and y.min() < 0:
        raise DataError(f"{where}: label {int(y.min())}; allowed class indices 0..k-1")
    if n_classes is not None and len(y) and y.max() >= n_classes:
        raise DataError(f"{where}: label {int(y.max())} is outside the {n_classes} classes (0..{n_classes - 1})")
    return y.astype(np.int64)
