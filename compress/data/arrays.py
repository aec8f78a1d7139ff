"""Images and labels handed over as arrays (an .npz, a decoded folder), checked and read one way:
images (n, H, W) or (n, H, W, C) as uint8 pixels or floats in [0, 1], labels as class indices.

Images are held as they were stored (`stored`: uint8 pixels, or float32 for a source that gave floats)
and turned into the float32 in [0, 1] that models take one batch at a time (`unit`, `map_unit`,
`UNIT_TABLE` for tf.data): a set of 500,000 32x32x3 images is 1.5 GB as pixels, 6 GB as floats."""

from __future__ import annotations

import numpy as np

from compress.core.errors import DataError

MAX_CHANNELS = 4


def images(x: np.ndarray, where: str) -> tuple[np.ndarray, str]:
    """`x` shaped (n, H, W, C) as held (`stored`), and which reading was used (said, never guessed
    silently): integer pixels 0-255, or floats already in [0, 1]. Anything else is refused in one line."""
    x, read = checked(x, where)
    return stored(x), read


def stored(x: np.ndarray) -> np.ndarray:
    """Checked images (`checked`) as held: integer pixels as uint8, floats in [0, 1] as float32."""
    return x.astype(np.float32, copy=False) if np.issubdtype(x.dtype, np.floating) else x.astype(np.uint8, copy=False)


def unit(x: np.ndarray) -> np.ndarray:
    """Held images (uint8 pixels or float32 in [0, 1]) as the float32 in [0, 1] a model takes: call it on a
    batch, not a whole set (`map_unit`)."""
    return to_unit(x) if x.dtype == np.uint8 else np.asarray(x, dtype=np.float32)


def to_pixels(x: np.ndarray) -> np.ndarray:
    """Held images as uint8 pixels (floats in [0, 1] rounded to the nearest of 256 levels)."""
    return x if x.dtype == np.uint8 else np.round(np.asarray(x, np.float32) * 255).astype(np.uint8)


PREDICT_BATCH = 1_000  # divides map_unit's chunk and the teacher's logit pieces: the same batches either way


def predict(model, x: np.ndarray) -> np.ndarray:
    """A Keras model's outputs (inference mode) over held images, in batches of PREDICT_BATCH."""
    return map_unit(lambda chunk: model.predict(chunk, batch_size=PREDICT_BATCH, verbose=0), x)


def keras_accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a Keras model (logits or probabilities, inference mode) over held images: for
    comparison with its exported file, and a teacher's or an ensemble member's own figure."""
    return float(np.mean(np.argmax(predict(model, x), axis=1) == y))


def map_unit(fn, x: np.ndarray, chunk: int = 10_000) -> np.ndarray:
    """`fn` (e.g. a model's predict at batch size 1,000, which divides `chunk`) over held images, one
    chunk converted to floats at a time; the results concatenated as if `fn` had seen the whole set."""
    if x.dtype != np.uint8 or len(x) <= chunk:
        return fn(unit(x))
    return np.concatenate([fn(unit(x[i:i + chunk])) for i in range(0, len(x), chunk)])


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


def split_rows(x: np.ndarray, keep: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """`x[keep]` for sorted, distinct `keep`, moved to the front of `x` in place, chunk by chunk: a training
    split carved from a set without a second copy of it (`x` is overwritten; the result is a view of it)."""
    if not x.flags.writeable or (len(keep) > 1 and np.any(np.diff(keep) <= 0)):
        return x[keep]
    for start in range(0, len(keep), chunk):  # row keep[i] >= i: a chunk reads rows no earlier chunk wrote
        part = keep[start:start + chunk]
        x[start:start + len(part)] = x[part]
    return x[:len(keep)]


def to_unit(pixels: np.ndarray) -> np.ndarray:
    """0-255 pixels as float32 in [0, 1], divided in place: one float32 copy at a time, not two (the
    same bits as `pixels.astype(np.float32) / 255.0`)."""
    out = pixels.astype(np.float32)
    out /= np.float32(255.0)
    return out


UNIT_TABLE = to_unit(np.arange(256, dtype=np.uint8))  # pixel -> float32 in [0, 1], the bits `to_unit` gives


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
