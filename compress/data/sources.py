"""The data sources, one Hydra option each (conf/data/): every one yields the same Splits (images,
labels, class names in label order, a fingerprint that keys every cache)."""

from __future__ import annotations

import dataclasses

from compress.core.errors import DataError
from compress.data import fashion_mnist, image_folder, npz
from compress.data.splits import Splits

SOURCES = ("fashion_mnist", "npz", "image_folder")
FASHION_MNIST_SHAPE = ((28, 28, 1), 10)  # its images and class count, known without reading it


def load_from_config(data_cfg, cache_dir: str = ".cache") -> Splits:
    """The configured source's splits, then `data.fraction` of each; `data.flip` says whether
    augmentation may flip its images."""
    splits = _read(data_cfg, cache_dir)
    return dataclasses.replace(splits, flips=bool(data_cfg.get("flip", True)))


def _read(data_cfg, cache_dir: str) -> Splits:
    source = str(data_cfg.get("source", "fashion_mnist"))
    if source == "fashion_mnist":
        return fashion_mnist.load_from_config(data_cfg)
    if source not in SOURCES:
        raise DataError(f"data.source={source}: allowed {', '.join(SOURCES)}")
    if not data_cfg.get("path"):
        raise DataError(f"data.path: missing; data={source} reads its data from data.path")
    val = float(data_cfg.val_share) if data_cfg.get("val_share") is not None else int(data_cfg.val_size)
    seed = int(data_cfg.split_seed)
    if source == "npz":
        splits = npz.load(data_cfg.path, val, seed)
    else:
        splits = image_folder.load(data_cfg.path, val, seed, cache_dir, data_cfg.get("channels"),
                                   data_cfg.get("image_size"))
    return splits.sampled(float(data_cfg.fraction), seed)


def check(data_cfg, cache_dir: str = ".cache") -> tuple[tuple, int, Splits | None]:
    """Every fault of the configured data, found before a study writes a store; the images' shape
    (H, W, C), the number of classes and the splits read (None for Fashion-MNIST, whose files are
    only checked here)."""
    if str(data_cfg.get("source", "fashion_mnist")) == "fashion_mnist":
        fashion_mnist.check_files(data_cfg.dir, bool(data_cfg.verify_checksums))
        return (*FASHION_MNIST_SHAPE, None)
    splits = load_from_config(data_cfg, cache_dir)
    return splits.image_shape, splits.num_classes, splits
