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
    assert splits.x_train.dtype == np.uint8 and splits.x_train.max() == 255  # held as pixels, 1 byte each
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


def test_held_pixels_become_the_same_floats_in_every_reader_and_the_pipeline_gives_the_same_batches():
    """Images are held as uint8; every reader converts a batch at a time. The tf.data pipeline's
    batches (positions shuffled, images gathered, a 256-entry table) are bit for bit those of
    shuffling the float (image, target) pairs themselves, as training did when images were held as floats."""
    from compress.core.compat import tf
    from compress.data import arrays, batches

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(300, 5, 4, 3), dtype=np.uint8)
    targets = rng.normal(size=(300, 6)).astype(np.float32)
    floats = x.astype(np.float32) / 255.0
    assert np.array_equal(arrays.unit(x).view(np.uint32), floats.view(np.uint32))
    assert np.array_equal(arrays.UNIT_TABLE[x].view(np.uint32), floats.view(np.uint32))
    assert np.array_equal(arrays.to_pixels(floats), x) and arrays.to_pixels(x) is x
    pairs = tf.data.Dataset.from_tensor_slices((floats, targets)).shuffle(300, seed=5, reshuffle_each_iteration=True)
    pairs = pairs.batch(32)
    ours = batches.distillation(x, targets, 32, 5)
    for _ in range(2):  # two epochs: reshuffled alike
        for (a, b), (c, d) in zip(pairs, ours, strict=True):
            assert np.array_equal(a.numpy().view(np.uint32), c.numpy().view(np.uint32))
            assert np.array_equal(b.numpy(), d.numpy())
    # the teacher's batches (images and class labels) likewise
    y = rng.integers(0, 6, size=300)
    before = tf.data.Dataset.from_tensor_slices((floats, y)).shuffle(300, seed=7, reshuffle_each_iteration=True)
    for (a, b), (c, d) in zip(before.batch(64), batches.labelled(x, y, 64, 7), strict=True):
        assert np.array_equal(a.numpy().view(np.uint32), c.numpy().view(np.uint32)) and np.array_equal(b, d)
    # a reader fed pixels or the floats gives the same answer (map_unit converts chunk by chunk)
    seen = []
    out = arrays.map_unit(lambda chunk: (seen.append(chunk.dtype), chunk.sum(axis=(1, 2, 3)))[1], x, chunk=128)
    assert seen == [np.float32] * 3 and np.array_equal(out, floats.sum(axis=(1, 2, 3)))


def test_a_training_split_is_carved_in_place_with_the_same_rows():
    from compress.data import arrays

    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(10_001, 3, 2, 1), dtype=np.uint8)
    keep = np.sort(rng.choice(len(x), 9_000, replace=False))
    expected = x[keep].copy()
    carved = arrays.split_rows(x, keep, chunk=700)  # 12 whole chunks and a part
    assert np.array_equal(carved, expected) and np.shares_memory(carved, x)  # no second copy of the set
    frozen = expected.copy()
    frozen.flags.writeable = False
    assert np.array_equal(arrays.split_rows(frozen, np.array([2, 0])), expected[[2, 0]])  # unsorted: a copy


def test_the_augmented_views_pipeline_gives_the_batches_of_shuffling_every_view_of_every_image():
    """batches.views gathers each batch's views by position: the same batches, bit for bit, as
    the pipeline that shuffled (views of an image, their logits, its label) together, over two epochs."""
    from compress.core.compat import tf
    from compress.data import batches

    rng = np.random.default_rng(2)
    views = rng.integers(0, 256, size=(3, 200, 4, 4, 1), dtype=np.uint8)
    logits = rng.normal(size=(3, 200, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=200)
    onehot = np.eye(5, dtype=np.float32)[labels]
    per_image = (np.moveaxis(views, 0, 1), np.moveaxis(logits, 0, 1), onehot)
    pairs = tf.data.Dataset.from_tensor_slices(per_image).shuffle(200, seed=4, reshuffle_each_iteration=True)
    draws = tf.data.Dataset.random(seed=4, rerandomize_each_iteration=True)

    def pick(batch, draw):
        images, view_logits, labels_1h = batch
        k = tf.random.stateless_uniform([tf.shape(images)[0]], seed=tf.stack([draw, tf.constant(4, tf.int64)]),
                                        maxval=3, dtype=tf.int32)
        x = tf.cast(tf.gather(images, k, batch_dims=1), tf.float32) / 255.0
        return x, tf.concat([labels_1h, tf.gather(view_logits, k, batch_dims=1)], axis=1)

    before = tf.data.Dataset.zip((pairs.batch(32), draws)).map(pick)
    ours = batches.views(views, logits, labels, 32, 4)
    for _ in range(2):
        for (a, b), (c, d) in zip(before, ours, strict=True):
            assert np.array_equal(a.numpy().view(np.uint32), c.numpy().view(np.uint32))
            assert np.array_equal(b.numpy(), d.numpy())
