"""`data=image_folder data.path=DIR`: `DIR/train/<class>/*` and `DIR/test/<class>/*` (optionally
`DIR/val/<class>/*`, else the seeded, stratified validation split carved from train), PNG or JPEG.

Classes are the folder names in sorted order, as Keras and torchvision read them. Colour is read from
the files (all grayscale: one channel; else RGB) unless `data.channels` forces it. Every image must
have the first image's size unless `data.image_size` is given, to which all are resized. The folder
is decoded once into an on-disk uint8 cache named by a digest of its files' paths and bytes, so a
second run skips decoding, and a changed folder is decoded again (the console says which)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np

from compress.core.atomic import write_whole
from compress.core.errors import DataError
from compress.data.arrays import split_rows
from compress.data.splits import Splits, stratified_split

log = logging.getLogger(__name__)
SUFFIXES = (".png", ".jpg", ".jpeg")
SPLITS = ("train", "val", "test")
MAX_PIXELS = 32 * 1024 * 1024  # an image whose header claims more is refused before it is decoded
CACHE_VERSION = 1


def files_of(root: Path) -> dict[str, dict[str, list[Path]]]:
    """{split: {class: [image files]}} for the splits present; one line for an empty folder or class,
    a missing train or test, or train and test with different classes."""
    if not root.is_dir():
        raise DataError(f"data.path={root}: no such folder (expected {root}/train/<class>/ and {root}/test/<class>/)")
    found: dict[str, dict[str, list[Path]]] = {}
    for split in SPLITS:
        folder = root / split
        if not folder.is_dir():
            if split != "val":
                raise DataError(f"data.path={root}: no {split}/ folder (expected {root}/{split}/<class>/ images)")
            continue
        classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
        if not classes:
            raise DataError(f"{folder}: no class folders (expected {folder}/<class>/ images)")
        found[split] = {}
        for name in classes:
            images = sorted(p for p in (folder / name).iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
            if not images:
                raise DataError(f"{folder / name}: no PNG or JPEG images in this class")
            found[split][name] = images
    train = list(found["train"])
    for split in ("val", "test"):
        if split in found and list(found[split]) != train:
            only = sorted(set(found[split]) ^ set(train))
            raise DataError(f"data.path={root}: {split}/ and train/ have different classes (not in both: "
                            f"{', '.join(only)})")
    if len(train) < 2:
        raise DataError(f"data.path={root}: {len(train)} class ({train[0]}); a classifier needs at least 2")
    return found


def digest_of(root: Path, found: dict[str, dict[str, list[Path]]]) -> str:
    """sha256 over every image's path (relative to the folder) and bytes: the data's fingerprint."""
    h = hashlib.sha256()
    for split, classes in found.items():
        for name, paths in classes.items():
            for path in paths:
                h.update(str(path.relative_to(root)).encode() + b"\0")
                h.update(path.read_bytes())
    return h.hexdigest()


def _opened(path: Path):
    """The image at `path`, opened lazily (its header read, no pixel decoded); one line for a file that
    is not an image or whose header claims more than MAX_PIXELS (a decompression bomb)."""
    from PIL import Image, UnidentifiedImageError

    bomb = DataError(f"{path}: its header claims more than {MAX_PIXELS:,} pixels: refused before decoding "
                     f"(a decompression bomb?)")
    try:
        im = Image.open(path)
    except Image.DecompressionBombError:
        raise bomb from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable image ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
    if im.size[0] * im.size[1] > MAX_PIXELS:
        im.close()
        raise bomb
    return im


def _colour_channels(found) -> int:
    """1 when every image is grayscale, else 3 (read from the files' headers)."""
    for classes in found.values():
        for paths in classes.values():
            for path in paths:
                with _opened(path) as im:
                    if im.mode not in ("1", "L", "LA", "I", "I;16", "F"):
                        return 3
    return 1


def _decode(path: Path, channels: int, size: tuple[int, int] | None, first: list) -> np.ndarray:
    """One image as uint8 (H, W, C); `first` holds the first image's (size, path) once read."""
    from PIL import Image

    with _opened(path) as im:
        try:
            im = im.convert("L" if channels == 1 else "RGB")
        except (OSError, ValueError) as exc:  # a truncated or corrupt body under a good header
            raise DataError(f"{path}: not a readable image ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
        if size is not None and im.size != (size[1], size[0]):
            im = im.resize((size[1], size[0]), Image.BILINEAR)
        elif size is None:
            if not first:
                first.extend([im.size, path])
            elif im.size != first[0]:
                raise DataError(f"{path}: {im.size[0]}x{im.size[1]} pixels, but {first[1]} is "
                                f"{first[0][0]}x{first[0][1]}: set data.image_size=[H,W] to resize every image")
        pixels = np.asarray(im, dtype=np.uint8)
    return pixels[..., None] if pixels.ndim == 2 else pixels


def decode(root: Path, found, channels: int | None, size) -> tuple[dict[str, np.ndarray], int]:
    """Every split as uint8 images and int64 labels, with a progress line every 10 seconds."""
    channels = channels or _colour_channels(found)
    total = sum(len(p) for classes in found.values() for p in classes.values())
    first: list = []
    out, done, said = {}, 0, time.monotonic()
    names = list(found["train"])
    for split, classes in found.items():
        xs, ys = [], []
        for label, name in enumerate(names):
            for path in classes[name]:
                xs.append(_decode(path, channels, size, first))
                ys.append(label)
                done += 1
                if time.monotonic() - said > 10:
                    log.info("data: decoding %s: %d of %d images", root, done, total)
                    said = time.monotonic()
        out[f"x_{split}"], out[f"y_{split}"] = np.stack(xs), np.asarray(ys, dtype=np.int64)
    return out, channels


def load(path: str | Path, val_size: int | float, seed: int, cache_dir: str | Path, channels: int | None = None,
         image_size=None) -> Splits:
    """The splits of the folder at `path` (decoded once, then read from the cache)."""
    root = Path(path)
    if channels not in (None, 1, 3):
        raise DataError(f"data.channels={channels}: allowed null (read from the files), 1 or 3")
    size = tuple(int(s) for s in image_size) if image_size else None
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise DataError(f"data.image_size={list(size)}: allowed [H, W], both >= 1")
    found = files_of(root)
    digest = digest_of(root, found)
    key = f"{digest[:16]}_c{channels or 'auto'}_s{'x'.join(map(str, size)) if size else 'own'}"
    cache = Path(cache_dir) / "data" / f"image_folder_{key}.npz"
    folder_key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    pointer = Path(cache_dir) / "data" / f"image_folder_{folder_key}.json"  # which cache this folder had last
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as held:
            arrays = {k: held[k] for k in held.files}
        if str(arrays.pop("digest")) != digest or int(arrays.pop("version")) != CACHE_VERSION:
            raise DataError(f"{cache}: holds another dataset or version than {root}; delete it to decode again")
        log.info("data: %s from its cache %s", root, cache)
    else:
        if pointer.is_file() and json.loads(pointer.read_text()).get("digest") != digest:
            log.info("data: %s changed since it was cached (%s): decoding it again", root,
                     json.loads(pointer.read_text()).get("cache"))
        started = time.perf_counter()
        arrays, _ = decode(root, found, channels, size)
        write_whole(cache, lambda tmp: np.savez(tmp, digest=np.asarray(digest), version=np.asarray(CACHE_VERSION),
                                                **arrays), suffix=".npz")
        write_whole(pointer, lambda tmp: tmp.write_text(json.dumps({"digest": digest, "cache": str(cache)}) + "\n"))
        log.info("data: decoded %s in %.1f s -> %s", root, time.perf_counter() - started, cache)
    names = tuple(found["train"])
    y_train = arrays["y_train"]
    if "x_val" in arrays:
        train_idx, val_idx = np.arange(len(y_train)), np.arange(len(arrays["y_val"]))
        x_train, x_val, y_val = arrays["x_train"], arrays["x_val"], arrays["y_val"]
    else:
        count = int(round(val_size * len(y_train))) if val_size < 1 else int(val_size)
        train_idx, val_idx = stratified_split(y_train, count, seed)
        x_val, y_val = arrays["x_train"][val_idx], y_train[val_idx]
        x_train = split_rows(arrays["x_train"], train_idx)
        y_train = y_train[train_idx]
    return Splits(x_train, y_train, x_val, y_val, arrays["x_test"], arrays["y_test"],  # uint8 pixels, as decoded
                  train_idx, val_idx, digest, str(root), names, "image_folder")
