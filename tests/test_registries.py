"""One definition per fact: a quantization mode or a student family added to its table in
compress/core/options.py reaches every reader in code (validation, the converter, early stopping's
size bound, quantization-aware training's switch, the builder, the finalists' size estimate) with
no other edit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import student_group

from compress.core import options
from compress.core.errors import ConfigError
from compress.core.metrics import PARAMS
from compress.core.options import FAMILIES, QUANT, QuantMode, StudentFamily


def tiny_model():
    from compress.core.compat import keras

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))


def test_a_quantization_mode_added_to_the_table_reaches_every_reader(monkeypatch):
    from compress.config.cli import compose
    from compress.search.early_stop import Reference, hopeless
    from compress.training import quantize

    with pytest.raises(ConfigError, match="quant.mode=w8"):
        options.check_quant_mode("w8")
    monkeypatch.setitem(QUANT, "w8", QuantMode("w8", 1.0, "int8", False, False, "linear8", "#000000"))
    options.check_quant_mode("w8")
    assert compose(return_hydra_config=True).hydra.sweeper.params["quant.mode"].endswith(", qat, w8)")  # searched
    assert "w8" in str(pytest.raises(ConfigError, options.check_quant_mode, "w9").value)  # the allowed list
    model = tiny_model()
    # the converter follows the mode's row: int8 weights, float activations, as `dynamic` has them
    assert quantize.convert(model, "w8") == quantize.convert(model, "dynamic")
    assert quantize.convert(model, "w8") != quantize.convert(model, "float32")
    # early stopping bounds a trial's size by the mode's bytes per parameter: a 500-parameter trial is at
    # most 500 B at 1 byte a parameter (no 1,000 B rival is its size) and up to 2,000 B at 4 (float32)
    rival = Reference(val_accuracy=0.9, size_bytes=1_000, macs=1, curve=(0.9,))
    assert hopeless(0.1, 1, 500, "w8", 1, [rival], slack=0.0, min_completed=1) is None
    assert hopeless(0.1, 1, 500, "float32", 1, [rival], slack=0.0, min_completed=1) is not None
    # a fine-tuning mode switches quantization-aware training on wherever the code asks the table
    assert [name for name, mode in QUANT.items() if mode.fine_tunes] == ["qat"]


def test_a_student_family_added_to_the_table_reaches_every_reader(monkeypatch):
    from compress.config.cli import compose
    from compress.finalize.selection import ship_estimate
    from compress.training.students import build_student

    cfg = student_group("dsconv_sp", width=0.25)
    cfg.arch = "dsconv_pool"
    with pytest.raises(ConfigError, match="student.arch=dsconv_pool"):
        options.check_student(cfg)
    monkeypatch.setitem(FAMILIES, "dsconv_pool", StudentFamily("dsconv_pool", "dsconv", "stem_pool", 7_000))
    options.check_student(cfg)
    assert compose(return_hydra_config=True).hydra.sweeper.params["student.arch"].endswith(", dsconv_pool)")
    built, twin = build_student(cfg), build_student(student_group("dsconv_sp", width=0.25))
    assert "pool_stem" in [layer.name for layer in built.layers]  # the builder read its first downsampling
    assert built.count_params() == twin.count_params()
    assert ship_estimate({"student.arch": "dsconv_pool", PARAMS: 10_000}) == 17_000
    assert np.isclose(ship_estimate({"student.arch": "dsconv_sp", PARAMS: 10_000}),
                      10_000 + options.FAMILIES["dsconv_sp"].int8_overhead_bytes)


def test_a_size_class_added_to_the_targets_reaches_every_reader():
    """conf/targets/ is read by finalize (its size classes, budget and latency budget), the sweeper's
    console, the study run's metrics, the report's finalists section and `analysis.summary`."""
    import optuna
    import pandas as pd
    from hydra_plugins.compress_optuna_sweeper.console import best_by_size
    from omegaconf import OmegaConf

    from analysis import finalists_section, summary
    from compress.config.cli import compose
    from compress.tracking.study_run import study_metrics

    cfg = compose(["targets.size_classes=[8192,16384,65536]", "targets.accuracy=[0.85,0.9,0.925]",
                   "targets.max_latency_ratio=0.1"], return_hydra_config=True)
    assert list(cfg.finalize.size_classes) == list(cfg.hydra.sweeper.size_classes) == [8192, 16384, 65536]
    assert cfg.finalize.max_latency_ratio == 0.1 and cfg.finalize.max_bytes == 65536
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    for accuracy, size in ((0.80, 6_000), (0.88, 12_000), (0.90, 50_000)):
        study.add_trial(optuna.trial.create_trial(
            values=[accuracy, size, 1.0], user_attrs={"val_accuracy": accuracy, "size_bytes": size,
                                                      "latency_ratio": 0.05}))
    line = best_by_size(study, ["val_accuracy", "size_bytes", "latency_ms"], ["maximize", "minimize", "minimize"],
                        cfg.hydra.sweeper.size_objective, cfg.hydra.sweeper.size_classes)
    assert line.startswith("best val_accuracy: <= 8 KB 0.8 (trial 0") and "<= 16 KB 0.88" in line
    metrics = study_metrics(study, list(cfg.targets.size_classes))
    assert metrics["best_val_accuracy_8kb"] == 0.80 and metrics["best_val_accuracy_64kb"] == 0.90
    assert "best_val_accuracy_32kb" not in metrics
    targets = OmegaConf.create(OmegaConf.to_container(cfg.targets, resolve=True))
    assert [t["bytes"] for t in _section_targets(finalists_section, targets)] == [8192, 16384, 65536]
    table = pd.DataFrame([{"trial": t.number, **t.user_attrs, "test_accuracy": t.user_attrs["val_accuracy"],
                           "quant.mode": "int8", "student.width": 0.1, "prune.sparsity": 0.0} for t in study.trials])
    assert [(r["up_to_bytes"], r["trial"]) for r in summary.best_by_size(table, cfg.targets.size_classes)] == [
        (8192, 0), (16384, 1), (65536, 2), (math.inf, 2)]  # python -m analysis.summary


def _section_targets(finalists_section, targets):
    """The report's finalists section over the committed tables, with these targets."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    winner = json.loads((root / "winner" / "winner.json").read_text())
    return finalists_section.figures(root / "report", winner, 0.925, targets)["targets"]
