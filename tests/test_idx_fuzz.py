"""Fuzzing the IDX reader with hypothesis: whatever the bytes, it returns a valid array or
raises its own DataError naming the file, never anything else."""

from __future__ import annotations

import gzip
import struct
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compress.core.errors import DataError
from compress.data import fashion_mnist as data

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def read(raw: bytes, kind: str, count):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.idx"
        path.write_bytes(raw)
        try:
            array = data.read_idx(path, kind, count)
        except DataError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc)
            return None
    if kind == "images":
        assert array.ndim == 3 and array.shape[1:] == (28, 28)
    else:
        assert array.ndim == 1 and (array.size == 0 or array.max() < 10)
    assert array.dtype == np.uint8
    return array


@FUZZ
@given(raw=st.binary(max_size=4096), kind=st.sampled_from(["images", "labels"]),
       count=st.one_of(st.none(), st.integers(0, 5)), gz=st.booleans())
def test_arbitrary_bytes_never_crash_the_reader(raw, kind, count, gz):
    read(gzip.compress(raw) if gz else raw, kind, count)


@FUZZ
@given(n=st.integers(0, 4), rows=st.integers(0, 40), cols=st.integers(0, 40), extra=st.integers(-50, 50),
       magic=st.sampled_from([2049, 2051, 0, -1, 2147483647]), gz=st.booleans(), data_byte=st.integers(0, 255))
def test_plausible_headers_with_wrong_sizes_give_data_errors(n, rows, cols, extra, magic, gz, data_byte):
    header = struct.pack(">i", magic) + struct.pack(">3i", n, rows, cols)
    body = bytes([data_byte]) * max(0, n * rows * cols + extra)
    raw = header + body
    result = read(gzip.compress(raw) if gz else raw, "images", None)
    if result is not None:
        assert magic == 2051 and (rows, cols) == (28, 28) and len(body) == n * rows * cols  # n=0: extra<0 is no body


@FUZZ
@given(labels=st.lists(st.integers(0, 255), max_size=50), truncate=st.integers(0, 3))
def test_labels_out_of_range_or_truncated_are_refused(labels, truncate):
    raw = struct.pack(">ii", 2049, len(labels)) + bytes(labels)
    raw = raw[: len(raw) - truncate] if truncate else raw
    result = read(raw, "labels", None)
    if result is not None:
        assert truncate == 0 and all(v < 10 for v in labels)


def test_negative_dimensions_whose_product_fits_the_body_are_refused(tmp_path):
    path = tmp_path / "neg.idx"
    path.write_bytes(struct.pack(">i", 2051) + struct.pack(">3i", -1, 28, -28) + bytes(784))
    try:
        data.read_idx(path, "images")
    except DataError as exc:
        assert "negative dimension" in str(exc)
    else:
        raise AssertionError("a header with negative dimensions was accepted")
