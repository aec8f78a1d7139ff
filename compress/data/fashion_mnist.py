"""Fashion-MNIST from the original IDX files: find them, read them strictly, split them.

The reader is our own so that a truncated or corrupt file is named in a clear error
instead of surfacing as a reshape failure deep inside training.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np

from compress.core.errors import DataError
from compress.data.splits import Splits, stratified_split

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
KERAS_CACHE_DIR = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / "fashion-mnist"

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
SHA256 = {
    "train_images": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train_labels": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "test_images": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "test_labels": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
COUNTS = {"train": 60_000, "test": 10_000}
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049


def read_idx(path: str | Path, kind: str, expected_count: int | None = None) -> np.ndarray:
    """Read one IDX file (gzipped or raw) of `kind` 'images' or 'labels'.

    Checks the magic number, the header's dimensions, the byte count and, for
    labels, the range 0..9; any failure raises DataError naming the file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read or decompress ({exc})") from None
    magic_expected, ndim = (IMAGE_MAGIC, 3) if kind == "images" else (LABEL_MAGIC, 1)
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated header ({len(raw)} bytes), not an IDX {kind} file")
    (magic,) = struct.unpack(">i", raw[:4])
    if magic != magic_expected:
        raise DataError(f"{path}: magic number {magic}, expected {magic_expected} for IDX {kind}")
    dims = struct.unpack(f">{ndim}i", raw[4 : 4 + 4 * ndim])
    if any(d < 0 for d in dims):
        raise DataError(f"{path}: negative dimension in header {dims}")
    if kind == "images" and dims[1:] != (28, 28):
        raise DataError(f"{path}: images are {dims[1]}x{dims[2]}, expected 28x28")
    if expected_count is not None and dims[0] != expected_count:
        raise DataError(f"{path}: header says {dims[0]} items, expected {expected_count}")
    body = raw[4 + 4 * ndim :]
    expected_bytes = int(np.prod(dims))
    if len(body) != expected_bytes:
        raise DataError(f"{path}: {len(body)} data bytes, header promises {expected_bytes} (truncated or padded)")
    array = np.frombuffer(body, dtype=np.uint8).reshape(dims)
    if kind == "labels" and array.size and array.max() >= 10:
        raise DataError(f"{path}: label {int(array.max())} out of range, allowed 0..9")
    return array


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _has_all(folder: Path) -> bool:
    return all((folder / name).is_file() for name in FILES.values())


def locate(data_dir: str | None) -> Path:
    """The folder holding the four IDX files.

    Order: `data.dir` from the config (which must then hold them), the Debian
    package's folder, Keras's cache, and last a Keras download where the network allows.
    """
    if data_dir:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise DataError(f"data.dir={data_dir}: no such folder; it must hold {', '.join(FILES.values())}")
        missing = [n for n in FILES.values() if not (folder / n).is_file()]
        if missing:
            raise DataError(f"data.dir={data_dir}: missing {', '.join(missing)}")
        return folder
    for folder in (DEBIAN_DIR, KERAS_CACHE_DIR):
        if _has_all(folder):
            return folder
    try:  # a user elsewhere may have network access; never needed here
        from compress.core.compat import keras  # heavy: TensorFlow, only for this download

        keras.datasets.fashion_mnist.load_data()
    except Exception:  # noqa: BLE001 - any failure means "not available"
        pass
    if _has_all(KERAS_CACHE_DIR):
        return KERAS_CACHE_DIR
    raise DataError(
        f"Fashion-MNIST not found: set data.dir, or install Debian's dataset-fashion-mnist "
        f"({DEBIAN_DIR}), or put the IDX files in {KERAS_CACHE_DIR}"
    )


def _checksums(folder: Path, verify: bool) -> str:
    digests = {}
    for key, name in FILES.items():
        digest = sha256_of(folder / name)
        if verify and digest != SHA256[key]:
            raise DataError(
                f"{folder / name}: sha256 {digest[:12]}… does not match Fashion-MNIST's {SHA256[key][:12]}… "
                f"(set data.verify_checksums=false to use other data)"
            )
        digests[key] = digest
    return hashlib.sha256("".join(digests[k] for k in FILES).encode()).hexdigest()


def _read_checked(folder: Path, verify_checksums: bool) -> tuple[dict[str, np.ndarray], str]:
    """The four arrays, read strictly (structure first: its errors say more than a checksum's),
    and the data's fingerprint after the sha256 check."""
    arrays = {
        key: read_idx(folder / name, "images" if key.endswith("images") else "labels",
                      COUNTS["train" if key.startswith("train") else "test"] if verify_checksums else None)
        for key, name in FILES.items()
    }
    for split in ("train", "test"):
        if len(arrays[f"{split}_images"]) != len(arrays[f"{split}_labels"]):
            raise DataError(f"{folder}: {split} images and labels differ in count")
    return arrays, _checksums(folder, verify_checksums)


def check_files(data_dir: str | None = None, verify_checksums: bool = True) -> Path:
    """Locate the four files and read and checksum them: every data fault is found here,
    before a study starts."""
    folder = locate(data_dir)
    _read_checked(folder, verify_checksums)
    return folder


def load(data_dir: str | None = None, val_size: int = 5000, seed: int = 0, verify_checksums: bool = True) -> Splits:
    """Locate, verify, read and split Fashion-MNIST."""
    folder = locate(data_dir)
    arrays, fingerprint = _read_checked(folder, verify_checksums)
    train_idx, val_idx = stratified_split(arrays["train_labels"], val_size, seed)

    x_all, y_all = arrays["train_images"][..., None], arrays["train_labels"].astype(np.int64)  # uint8 pixels
    return Splits(
        x_all[train_idx], y_all[train_idx], x_all[val_idx], y_all[val_idx],
        arrays["test_images"][..., None], arrays["test_labels"].astype(np.int64),
        train_idx, val_idx, fingerprint, str(folder), CLASS_NAMES, "fashion_mnist",
    )


def load_from_config(data_cfg) -> Splits:
    """`load` with the `data` config group's fields, then the smoke slice if asked."""
    splits = load(data_cfg.dir, int(data_cfg.val_size), int(data_cfg.split_seed), bool(data_cfg.verify_checksums))
    return splits.sliced(float(data_cfg.fraction))
