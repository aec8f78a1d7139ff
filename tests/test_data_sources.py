"""Data sources other than Fashion-MNIST (`data=npz`, `data=image_folder`): each yields the same Splits
(images, labels, class names in label order, a fingerprint), an image folder is decoded once into a
cache keyed by its content, and every bad input is one line naming what is wrong, nothing written."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, compose_config
from omegaconf import OmegaConf

from compress.core.errors import DataError
from compress.data import image_folder, npz, sources
from compress.data.arrays import unit

CLASSES = ("apple", "beetle", "cloud")  # folder names, sorted as a reader lists them
COLOURS = {"apple": (200, 30, 30), "beetle": (30, 160, 40), "cloud": (40, 60, 210)}


def write_folder(root: Path, per_class: dict[str, int] | None = None, size=(12, 10), mode="RGB", seed=0) -> Path:
    """train/ and test/ of three classes of noisy colour patches (H x W = size), PNG and JPEG mixed."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    counts = per_class or {"train": 20, "test": 6}
    for split, n in counts.items():
        for name in CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                base = np.array(COLOURS[name], dtype=float)
                pixels = np.clip(base + rng.normal(0, 25, (*size, 3)), 0, 255).astype(np.uint8)
                image = Image.fromarray(pixels).convert(mode)
                image.save(folder / f"{i:03d}.{'png' if i % 3 else 'jpg'}")
    return root


def load(root: Path, cache: Path, **options):
    return image_folder.load(root, 0.2, 0, cache, options.get("channels"), options.get("image_size"))


def test_an_image_folder_reads_as_splits_with_its_classes_shape_and_colour(tmp_path):
    splits = load(write_folder(tmp_path / "pets"), tmp_path / "cache")
    assert splits.class_names == CLASSES and splits.num_classes == 3 and splits.kind == "image_folder"
    assert splits.image_shape == (12, 10, 3) and splits.x_train.dtype == np.uint8  # held as decoded
    assert len(splits.y_train) + len(splits.y_val) == 60 and len(splits.y_test) == 18
    assert sorted(np.bincount(splits.y_val)) == [4, 4, 4]  # stratified: a fifth of each class
    # the labels follow the folders: each class's mean colour is its own
    reds = splits.x_test[splits.y_test == 0][..., 0].mean()
    assert reds > splits.x_test[splits.y_test == 2][..., 0].mean() + 0.3 * 255
    gray = load(tmp_path / "pets", tmp_path / "cache", channels=1)
    assert gray.image_shape == (12, 10, 1) and gray.fingerprint == splits.fingerprint


def test_a_grayscale_folder_reads_as_one_channel_and_image_size_resizes(tmp_path):
    root = write_folder(tmp_path / "gray", size=(9, 9), mode="L")
    assert load(root, tmp_path / "cache").image_shape == (9, 9, 1)
    assert load(root, tmp_path / "cache", image_size=[16, 14]).image_shape == (16, 14, 1)


def test_the_folder_is_decoded_once_and_again_when_it_changes(tmp_path, caplog):
    import logging

    root = write_folder(tmp_path / "pets")
    caplog.set_level(logging.INFO, logger="compress.data.image_folder")
    first = load(root, tmp_path / "cache")
    assert "data: decoded " in caplog.text
    caplog.clear()
    again = load(root, tmp_path / "cache")
    assert "from its cache" in caplog.text and "data: decoded " not in caplog.text
    assert np.array_equal(first.x_train, again.x_train) and first.fingerprint == again.fingerprint
    write_folder(root, {"train": 1}, seed=7)  # one image of each class rewritten
    caplog.clear()
    changed = load(root, tmp_path / "cache")
    assert "changed since it was cached" in caplog.text and changed.fingerprint != first.fingerprint


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR that claims `width` x `height` pixels (and no image data)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + chunk + end


@pytest.mark.parametrize("damage, message", [
    (lambda r: [p.unlink() for p in (r / "train" / "cloud").iterdir()], "cloud: no PNG or JPEG images"),
    (lambda r: (r / "test" / "cloud").rename(r / "test" / "clouds"), "different classes (not in both: cloud, clouds)"),
    (lambda r: (r / "train" / "apple" / "001.png").write_bytes(b"not an image"), "001.png: not a readable image"),
    (lambda r: (r / "train" / "apple" / "001.png").write_bytes(png_claiming(60_000, 60_000)),
     "claims more than 33,554,432 pixels: refused before decoding"),
    (lambda r: write_folder(r, {"train": 2}, size=(5, 5)), "set data.image_size"),
    (lambda r: [__import__("shutil").rmtree(r / s / c) for s in ("train", "test") for c in ("beetle", "cloud")],
     "needs at least 2"),
    (lambda r: __import__("shutil").rmtree(r / "test"), "no test/ folder"),
])
def test_a_bad_folder_is_one_line_and_leaves_no_cache(tmp_path, damage, message):
    root = write_folder(tmp_path / "pets")
    damage(root)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        load(root, tmp_path / "cache")
    assert "\n" not in str(err.value)
    assert not list((tmp_path / "cache").glob("data/*.npz"))  # nothing half-written


def test_a_cache_holding_another_dataset_is_refused(tmp_path):
    root = write_folder(tmp_path / "pets")
    load(root, tmp_path / "cache")
    (cache,) = (tmp_path / "cache" / "data").glob("image_folder_*.npz")
    with np.load(cache) as held:
        arrays = {k: held[k] for k in held.files}
    arrays["digest"] = np.asarray("0" * 64)
    np.savez(cache, **arrays)
    with pytest.raises(DataError, match="holds another dataset"):
        load(root, tmp_path / "cache")


def digits_npz(path: Path) -> Path:
    """scikit-learn's 8x8 digits (1,797 real images) as uint8 pixels, a fifth held out as test."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.round(d.images / 16 * 255).astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(x))
    test, train = order[:360], order[360:]
    np.savez(path, x_train=x[train], y_train=d.target[train], x_test=x[test], y_test=d.target[test],
             class_names=np.array([str(i) for i in range(10)]))
    return path


def test_an_npz_reads_uint8_or_float_pixels_and_says_which(tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="compress.data.npz")
    splits = npz.load(digits_npz(tmp_path / "digits.npz"), 0.1, 0)
    assert splits.image_shape == (8, 8, 1) and splits.num_classes == 10 and splits.kind == "npz"
    assert "read as uint8 pixels 0-255" in caplog.text and len(splits.y_val) == 144
    x = np.random.default_rng(0).random((40, 6, 6, 3)).astype(np.float32)
    y = np.arange(40) % 4
    np.savez(tmp_path / "floats.npz", x_train=x, y_train=y, x_test=x[:8], y_test=y[:8], x_val=x[:8], y_val=y[:8])
    floats = npz.load(tmp_path / "floats.npz", 0.1, 0)
    assert "read as floats in [0, 1]" in caplog.text and floats.class_names == ("0", "1", "2", "3")
    assert np.array_equal(floats.x_val, x[:8]) and floats.x_val.dtype == np.float32  # its own split, floats kept
    # pixels stay uint8 (a quarter of float32's bytes); a batch converted is the same bits as converting the
    # whole set, then splitting
    raw = np.load(tmp_path / "digits.npz")
    whole = raw["x_train"][..., None].astype(np.float32) / 255.0
    assert splits.x_train.dtype == np.uint8 and np.array_equal(splits.x_train, raw["x_train"][splits.train_index, ..., None])
    assert np.array_equal(unit(splits.x_train).view(np.uint32), whole[splits.train_index].view(np.uint32))
    assert np.array_equal(unit(splits.x_val).view(np.uint32), whole[splits.val_index].view(np.uint32))
    import hashlib

    assert splits.fingerprint == hashlib.sha256((tmp_path / "digits.npz").read_bytes()).hexdigest()


@pytest.mark.parametrize("arrays, message", [
    ({"y_train": np.arange(20) % 3 + 5}, "label 7 is outside the 3 classes"),
    ({"y_test": np.zeros(3, int)}, "3 labels for 6 images"),
    ({"x_train": np.full((20, 6, 6), 2.0)}, r"float pixels span 2..2; allowed \[0, 1\]"),
    ({"x_test": np.zeros((6, 5, 5), np.uint8)}, "x_test images are"),
    ({"drop": "y_test"}, "lacks arrays y_test"),
    ({"y_train": np.zeros(20, int), "y_test": np.zeros(6, int), "class_names": None}, "needs at least 2"),
])
def test_a_bad_npz_is_one_line(tmp_path, arrays, message):
    held = {"x_train": np.zeros((20, 6, 6), np.uint8), "y_train": np.arange(20) % 3,
            "x_test": np.zeros((6, 6, 6), np.uint8), "y_test": np.arange(6) % 3,
            "class_names": np.array(["a", "b", "c"])}
    for key, value in arrays.items():
        if key == "drop":
            held.pop(value)
        elif value is None:
            held.pop(key)
        else:
            held[key] = value
    np.savez(tmp_path / "bad.npz", **held)
    with pytest.raises(DataError, match=message) as err:
        npz.load(tmp_path / "bad.npz", 0.2, 0)
    assert "\n" not in str(err.value)


def test_fraction_is_a_stratified_sample_for_a_source_read_class_by_class(tmp_path):
    cfg = OmegaConf.create({"source": "image_folder", "path": str(write_folder(tmp_path / "pets")), "val_share": 0.2,
                            "val_size": 5000, "split_seed": 0, "fraction": 0.2, "channels": None, "image_size": None})
    splits = sources.load_from_config(cfg, str(tmp_path / "cache"))
    assert sorted(set(splits.y_train)) == [0, 1, 2] and sorted(set(splits.y_test)) == [0, 1, 2]


def test_new_data_keys_at_their_defaults_leave_fashion_mnist_s_recipe_hash_alone(small_cfg):
    from compress.finalize.recipe import recipe_hash

    before = recipe_hash(small_cfg)
    small_cfg.data.path = "somewhere"  # a key Fashion-MNIST ignores
    assert recipe_hash(small_cfg) == before
    small_cfg.data.source = "npz"
    assert recipe_hash(small_cfg) != before


def test_the_committed_finalists_are_found_as_trained_under_today_s_config():
    """Every finalist of the default selection has a row of the committed finalists' table under the recipe
    today's config gives its trial, or was left out untrained by the latency preflight (the committed
    summary names it): `compress.finalize` on a fresh clone trains none of them again on a CPU like the
    one that ran the preflight."""
    import json

    import pandas as pd

    from compress.finalize import selection
    from compress.finalize.plan import selected
    from compress.finalize.recipe import finalist_config, recipe_hash
    from compress.tracking import trials_table

    cfg = compose_config()
    trials = trials_table.read(ROOT / "report" / "trials.csv")
    chosen, _ = selected(cfg, trials)  # as finalize chooses and widens them
    table = pd.read_csv(ROOT / "report" / "finalists.csv")
    left_out = {int(p["trial"]) for p in json.loads((ROOT / "report" / "finalists.json").read_text()).get(
        "latency_preflight", [])}
    assert len(chosen) == 6 and left_out <= set(chosen["trial"].astype(int))
    for _, row in chosen[~chosen["trial"].astype(int).isin(left_out)].iterrows():
        recipe = recipe_hash(finalist_config(cfg, row, int(cfg.seed)))
        assert selection.done(table, str(cfg.paths.study), int(row["trial"]), int(cfg.seed), recipe), row["trial"]


@pytest.mark.slow
def test_a_trial_on_scikit_learn_s_digits_ships_an_8x8_int8_file_above_80_percent(tmp_path):
    """A second real dataset: 8x8 grayscale digits through the sweep's own entry point, with a teacher
    trained for them; the trial's int8 file is scored here by LiteRT directly."""
    from ai_edge_litert.interpreter import Interpreter

    data = digits_npz(tmp_path / "digits.npz")
    run = [sys.executable, "-m", "compress.sweep", "data=npz", f"data.path={data}", "paths.study=digits",
           "tracking.enabled=false", "teacher.train.epochs=40", "teacher.train.augment=false", "distill.epochs=30",
           "student.width=0.25", "student.bn_momentum=0.9", "quant.mode=int8", "coreml.compression=none",
           "measure.latency_runs=50", f"paths.cache_dir={tmp_path}/cache", f"hydra.run.dir={tmp_path}/run"]
    proc = subprocess.run(run, capture_output=True, text=True, cwd=ROOT, timeout=900,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Fashion" not in proc.stdout + proc.stderr
    interpreter = Interpreter(model_path=str(tmp_path / "run" / "model.tflite"))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert tuple(inp["shape"][1:]) == (8, 8, 1) and out["shape"][-1] == 10 and inp["dtype"] == np.int8
    with np.load(data) as held:
        x, y = held["x_test"], held["y_test"]
    scale, zero = inp["quantization"]
    hits = 0
    for image, label in zip(x, y):
        q = np.clip(np.round(image[None, ..., None] / 255.0 / scale + zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], q)
        interpreter.invoke()
        hits += int(np.argmax(interpreter.get_tensor(out["index"])[0]) == label)
    assert hits / len(y) >= 0.80, hits / len(y)
