"""`data=npz data.path=FILE`: a dataset as one .npz of arrays `x_train, y_train, x_test, y_test`,
optionally `x_val, y_val` (else the seeded, stratified validation split carved from train) and
`class_names` (else "0", "1", ...)."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np

from compress.core.errors import DataError
from compress.data import arrays
from compress.data.fashion_mnist import sha256_of
from compress.data.splits import Splits, stratified_split

log = logging.getLogger(__name__)
REQUIRED = ("x_train", "y_train", "x_test", "y_test")


def load(path: str | Path, val_size: int | float, seed: int) -> Splits:
    """The splits of the .npz at `path`; `val_size` a count or, below 1, a share of the training set."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data.path={path}: no such .npz file")
    try:
        with np.load(path, allow_pickle=False) as found:
            held = {k: found[k] for k in found.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"data.path={path}: not a readable .npz ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
    missing = [k for k in REQUIRED if k not in held]
    if missing:
        raise DataError(f"data.path={path}: lacks arrays {', '.join(missing)}; needs {', '.join(REQUIRED)} "
                        f"(optionally x_val, y_val, class_names)")
    names = [str(n) for n in held["class_names"].reshape(-1)] if "class_names" in held else None
    x_train, read = arrays.images(held.pop("x_train"), f"{path}: x_train")  # held as stored (arrays.stored)
    x_test, _ = arrays.images(held.pop("x_test"), f"{path}: x_test")
    if x_test.shape[1:] != x_train.shape[1:]:
        raise DataError(f"{path}: x_test images are {x_test.shape[1:]}, x_train's {x_train.shape[1:]}")
    y_train = arrays.labels(held["y_train"], len(x_train), len(names) if names else None, f"{path}: y_train")
    y_test = arrays.labels(held["y_test"], len(x_test), len(names) if names else None, f"{path}: y_test")
    n_classes = len(names) if names else int(max(y_train.max(), y_test.max())) + 1
    if n_classes < 2:
        raise DataError(f"{path}: {n_classes} class; a classifier needs at least 2")
    names = names or [str(i) for i in range(n_classes)]
    if "x_val" in held or "y_val" in held:
        if not ("x_val" in held and "y_val" in held):
            raise DataError(f"{path}: has one of x_val, y_val without the other")
        x_val, _ = arrays.images(held.pop("x_val"), f"{path}: x_val")
        y_val = arrays.labels(held["y_val"], len(x_val), n_classes, f"{path}: y_val")
        train_idx, val_idx = np.arange(len(x_train)), np.arange(len(x_val))
    else:
        count = int(round(val_size * len(y_train))) if val_size < 1 else int(val_size)
        train_idx, val_idx = stratified_split(y_train, count, seed)
        x_val, y_val = x_train[val_idx], y_train[val_idx]
        x_train, y_train = arrays.split_rows(x_train, train_idx), y_train[train_idx]
    log.info("data: %s read as %s; %d classes, images %s", path, read, n_classes, "x".join(map(str, x_train.shape[1:])))
    digest = sha256_of(path)  # read in pieces: never the whole file in memory
    return Splits(x_train, y_train, x_val, y_val, x_test, y_test, train_idx, val_idx, digest, str(path),
                  tuple(names), "npz")
