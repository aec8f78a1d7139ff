"""`python -m compress.verify` on a .tflite file and a .mlpackage: one line, or one JSON object."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, group, needs_data

from compress.coreml import convert as coreml
from compress.coreml import package as coreml_package
from compress.measure import tflite as measure
from compress.training import quantize
from compress.training.students import build_student


def run_verify(*args):
    return subprocess.run([sys.executable, "-m", "compress.verify", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


@needs_data
@pytest.mark.slow
def test_verify_scores_both_formats_on_the_full_test_set(tmp_path):
    from compress.core.compat import set_seed
    from compress.data import fashion_mnist as data
    from compress.training import distill

    set_seed(0)
    s = data.load()
    model = build_student(group("student", width=0.0625, head="gap", dropout=0.0))
    targets = distill.pack_targets(s.y_train[:8000], np.zeros((8000, 10), np.float32))
    distill.fit(model, s.x_train[:8000], targets, s.x_val[:0], targets[:0],
                group("distill", temperature=1.0, alpha=1.0, batch_size=64), 2, 3e-3, 0)
    tflite = quantize.write(quantize.convert(model, "float32"), tmp_path / "m.tflite")
    package = coreml.to_mlpackage(model, tmp_path / "m.mlpackage")
    proc = run_verify(package, "--against", tflite, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["n"] == 10000 and result["size_bytes"] == coreml_package.package_bytes(package)
    assert result["against_accuracy"] == measure.accuracy(tflite, s.x_test, s.y_test)
    assert abs(result["accuracy"] - result["against_accuracy"]) <= 0.003 and result["agreement"] >= 0.99
    line = run_verify(tflite)
    assert line.returncode == 0 and line.stdout.count("\n") == 1
    assert "test accuracy" in line.stdout and "10,000 images" in line.stdout


@pytest.mark.slow
def test_verify_refuses_a_missing_or_foreign_file(tmp_path):
    missing = run_verify(tmp_path / "nope.tflite")
    assert missing.returncode == 2 and missing.stderr.strip() == f"error: {tmp_path / 'nope.tflite'}: no such file"
    (tmp_path / "model.onnx").write_bytes(b"x")
    foreign = run_verify(tmp_path / "model.onnx")
    assert foreign.returncode == 2 and "allowed .tflite, .mlpackage" in foreign.stderr


def test_verify_compares_against_a_keras_teacher_and_saves_its_json(tmp_path):
    """`--against FILE.keras` (a teacher, loaded in safe mode) on your own test set, and `--save`."""
    from compress.core.compat import keras

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(60, 28, 28, 1), dtype=np.uint8)
    y = rng.integers(0, 3, size=60)
    np.savez(tmp_path / "test.npz", x=x, y=y)
    inputs = keras.Input((28, 28, 1))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    model.save(tmp_path / "teacher.keras")
    student = tmp_path / "student.tflite"
    quantize.write(quantize.convert(model, "float32"), student)
    proc = subprocess.run([sys.executable, "-m", "compress.verify", str(student), "--against",
                           str(tmp_path / "teacher.keras"), "--data", str(tmp_path / "test.npz"),
                           "--save", str(tmp_path / "out" / "paired.json")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    saved = json.loads((tmp_path / "out" / "paired.json").read_text())
    assert saved["n"] == 60 and saved["agreement"] == 1.0  # the same network in both formats
    assert saved["only_this_right"] == saved["only_against_right"] == 0 and saved["mcnemar_p"] == 1.0
    assert saved["accuracy"] == saved["against_accuracy"]
    assert saved["sha256"] == hashlib.sha256(student.read_bytes()).hexdigest()  # which file it was measured on
    assert "McNemar's exact test: p = 1" in proc.stdout
