"""What every data source yields: train / validation / test images shaped (n, H, W, C) as held (uint8
pixels, or float32 in [0, 1] for a source that gave floats; `arrays.unit` turns a batch into what a
model takes), integer labels, the class names in label order, and a fingerprint of the raw data that
keys every cache; and the seeded, stratified ways of carving a validation split and a sample."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compress.core.errors import DataError


@dataclass(frozen=True)
class Splits:
    """Images with shape (n, H, W, C) as held: uint8 pixels 0-255, or float32 in [0, 1] where the source
    gave floats (never fed to a model as they are: `arrays.unit` per batch). Labels as int64 in
    0..len(class_names)-1."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train_index: np.ndarray  # positions of the train split in the source's training images
    val_index: np.ndarray
    fingerprint: str  # identifies the raw data (a digest of the source's files or arrays)
    source: str  # where it was read (a folder or a file)
    class_names: tuple[str, ...]
    kind: str  # which source read it: fashion_mnist, npz or image_folder (conf/data/)
    flips: bool = True  # a horizontally flipped image is the same class, so augmentation may flip (data.flip)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def export_class_names(self) -> tuple[str, ...] | None:
        """The class names a Core ML export carries and is scored against; None for Fashion-MNIST,
        whose packages keep the labels and description they always had."""
        return None if self.kind == "fashion_mnist" else self.class_names

    def sliced(self, fraction: float) -> "Splits":
        """A stratification-free head slice of every split, for smoke runs (Fashion-MNIST's files are
        shuffled: a head slice holds every class)."""
        if fraction >= 1.0:
            return self

        def cut(a: np.ndarray) -> np.ndarray:
            return a[: max(1, int(round(len(a) * fraction)))]

        return Splits(
            cut(self.x_train), cut(self.y_train), cut(self.x_val), cut(self.y_val),
            cut(self.x_test), cut(self.y_test), cut(self.train_index), cut(self.val_index),
            self.fingerprint, self.source, self.class_names, self.kind, self.flips,
        )

    def sampled(self, fraction: float, seed: int) -> "Splits":
        """A seeded, stratified `fraction` of every split (every class keeps its share, at least one
        image): a source read class by class must not give a smoke run one class."""
        if fraction >= 1.0:
            return self

        def pick(y: np.ndarray) -> np.ndarray:
            return stratified_sample(y, fraction, seed)

        tr, va, te = pick(self.y_train), pick(self.y_val), pick(self.y_test)
        return Splits(
            self.x_train[tr], self.y_train[tr], self.x_val[va], self.y_val[va], self.x_test[te], self.y_test[te],
            self.train_index[tr], self.val_index[va], self.fingerprint, self.source, self.class_names,
            self.kind, self.flips,
        )


def stratified_split(labels: np.ndarray, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) with `val_size` validation items spread evenly over classes."""
    if not 0 < val_size < len(labels):
        raise DataError(f"data.val_size={val_size}: allowed 1..{len(labels) - 1}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.floor(counts / counts.sum() * val_size).astype(int)
    for i in np.argsort(-(counts / counts.sum() * val_size - quota))[: val_size - quota.sum()]:
        quota[i] += 1
    val = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota)])
    val.sort()
    train = np.setdiff1d(np.arange(len(labels)), val)
    return train, val


def stratified_sample(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a seeded sample of `fraction` of each class (at least one of each)."""
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(labels == c))[: max(1, int(round(np.sum(labels == c) * fraction)))]
            for c in np.unique(labels)]
    return np.sort(np.concatenate(keep))
