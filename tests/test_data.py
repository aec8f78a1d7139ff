"""The IDX reader on good and broken files, and the stratified split."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from conftest import needs_data

from compress.core.errors import DataError
from compress.data import fashion_mnist as data


def write_idx(path, array: np.ndarray, magic: int | None = None, compress: bool = True, count: int | None = None):
    magic = magic if magic is not None else (2051 if array.ndim == 3 else 2049)
    dims = list(array.shape)
    if count is not None:
        dims[0] = count
    raw = struct.pack(">i", magic) + struct.pack(f">{len(dims)}i", *dims) + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def test_reads_images_and_labels_gzipped_and_raw(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = np.arange(7, dtype=np.uint8)
    np.testing.assert_array_equal(data.read_idx(write_idx(tmp_path / "i.gz", images), "images", 7), images)
    np.testing.assert_array_equal(data.read_idx(write_idx(tmp_path / "l", labels, compress=False), "labels"), labels)


@pytest.mark.parametrize(
    "case, expected",
    [
        ("magic", "magic number"),
        ("truncated", "truncated or padded"),
        ("count", "header says 5 items"),
        ("label_range", "out of range"),
        ("shape", "expected 28x28"),
        ("empty", "truncated header"),
        ("bad_gzip", "cannot read or decompress"),
    ],
)
def test_broken_files_name_the_file_and_the_fault(tmp_path, case, expected):
    rng = np.random.default_rng(1)
    path = tmp_path / f"{case}.gz"
    kind, count = "images", 4
    if case == "magic":
        write_idx(path, rng.integers(0, 256, (4, 28, 28)), magic=2049)
    elif case == "truncated":
        write_idx(path, rng.integers(0, 256, (4, 28, 28)))
        path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-100]))
    elif case == "count":
        write_idx(path, rng.integers(0, 256, (5, 28, 28)))
    elif case == "label_range":
        kind = "labels"
        write_idx(path, np.array([1, 2, 10, 3]))
    elif case == "shape":
        write_idx(path, rng.integers(0, 256, (4, 32, 32)))
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "bad_gzip":
        path.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(DataError) as err:
        data.read_idx(path, kind, count)
    message = str(err.value)
    assert str(path) in message and expected in message and "\n" not in message


def test_missing_file_and_folder_are_named(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        data.read_idx(tmp_path / "nope.gz", "images")
    with pytest.raises(DataError, match=r"data.dir=.*no such folder"):
        data.locate(str(tmp_path / "absent"))
    with pytest.raises(DataError, match="missing train-images"):
        data.locate(str(tmp_path))


def test_stratified_split_is_seeded_balanced_and_disjoint():
    labels = np.repeat(np.arange(10), 600)
    train, val = data.stratified_split(labels, 500, seed=3)
    assert len(val) == 500 and len(train) == 5500
    assert not set(train) & set(val)
    assert np.all(np.bincount(labels[val]) == 50)
    again, _ = data.stratified_split(labels, 500, seed=3)
    np.testing.assert_array_equal(train, again)
    other, _ = data.stratified_split(labels, 500, seed=4)
    assert not np.array_equal(train, other)


@needs_data
def test_real_fashion_mnist_loads_with_checksums(splits):
    assert splits.x_train.shape == (55000, 28, 28, 1) and splits.x_val.shape == (5000, 28, 28, 1)
    assert splits.x_test.shape == (10000, 28, 28, 1)
    assert 0.0 <= splits.x_train.min() and splits.x_train.max() <= 1.0
    assert np.all(np.bincount(splits.y_val) == 500)
    assert np.all(np.bincount(splits.y_test) == 1000)


@needs_data
def test_wrong_checksum_is_refused(tmp_path):
    source = data.locate(None)
    for name in data.FILES.values():
        (tmp_path / name).write_bytes((source / name).read_bytes())
    labels = tmp_path / data.FILES["test_labels"]
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[-1] = (raw[-1] + 1) % 10
    labels.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="sha256 .* does not match"):
        data.load(str(tmp_path))
