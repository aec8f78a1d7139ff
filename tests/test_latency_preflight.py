"""The latency preflight: a finalist whose untrained int8 file is already too slow for the budget on this
CPU is left out before it trains (compress/finalize/latency_preflight.py), with real conversions and
real timings against a reference file built here."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf, open_dict

from compress.core.compat import keras
from compress.finalize import latency_preflight, stage
from compress.finalize.recipe import finalist_config, recipe_hash
from compress.measure import machine
from compress.training import quantize


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """Random images and, as the teacher's latency reference, a float32 network far heavier than any
    student (so the students' ratios sit well under 1)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(64, 28, 28, 1), dtype=np.uint8)
    inputs = keras.Input((28, 28, 1))
    x = inputs
    for filters in (96, 96, 96):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    outputs = keras.layers.Dense(10)(keras.layers.Flatten()(x))
    reference = quantize.write(quantize.convert(keras.Model(inputs, outputs), "float32"),
                               tmp_path_factory.mktemp("reference") / "teacher.tflite")
    splits = SimpleNamespace(num_classes=10, image_shape=(28, 28, 1), x_train=images, x_test=images)
    return SimpleNamespace(splits=splits, teacher_tflite=reference)


def recipe(small_cfg, **finalize):
    cfg = OmegaConf.merge(small_cfg, {})
    with open_dict(cfg):
        for key, value in finalize.items():  # assigned, not merged: {} leaves no instruction set's budget
            cfg.finalize[key] = value
    row = pd.Series({"trial": 7, "student.arch": "cnn", "student.width": 0.15})
    return cfg, row, finalist_config(cfg, row, 0)


def test_a_student_far_faster_than_the_budget_trains_and_one_over_it_is_left_out(small_cfg, ctx):
    cfg, row, fcfg = recipe(small_cfg, max_latency_ratio=1.0, latency_ratio_by_isa={})
    fast = latency_preflight.measure_recipe(fcfg, ctx, 7)
    assert 0 < fast.ratio < 1 and not fast.skip and "within 1.1 x the budget 1" in fast.words()
    assert (fast.cpu, fast.isa) == (machine.record()["cpu"], machine.record()["isa"])
    _, _, tight = recipe(small_cfg, max_latency_ratio=fast.ratio / 100, latency_ratio_by_isa={})
    slow = latency_preflight.measure_recipe(tight, ctx, 7)
    assert slow.skip and f"over 1.1 x the budget {fast.ratio / 100:g}" in slow.words()
    # the budget of this CPU's instruction set is the one applied
    _, _, by_isa = recipe(small_cfg, max_latency_ratio=fast.ratio / 100,
                          latency_ratio_by_isa={machine.record()["isa"]: 1.0})
    assert not latency_preflight.measure_recipe(by_isa, ctx, 7).skip


def test_a_channel_pruned_recipe_is_not_judged_before_training(small_cfg, ctx):
    _, _, fcfg = recipe(small_cfg, max_latency_ratio=1e-6)
    fcfg.prune.method, fcfg.prune.sparsity = "channel", 0.5
    assert latency_preflight.measure_recipe(fcfg, ctx, 7) is None


def test_the_stage_leaves_out_only_untrained_finalists_over_the_budget_and_says_what_it_measured(small_cfg, ctx):
    cfg, row, fcfg = recipe(small_cfg, max_latency_ratio=1e-6, latency_ratio_by_isa={})
    other = pd.Series({"trial": 8, "student.arch": "cnn", "student.width": 0.15, "distill.temperature": 3.0})
    study = str(cfg.study.study_name)
    trained = pd.DataFrame([{"study": study, "trial": 8, "seed": 0,
                             "recipe": recipe_hash(finalist_config(cfg, other, 0))}])
    kept, left_out = stage._within_latency(cfg, ctx, study, trained, [(row, 0), (other, 0)])
    assert [int(r["trial"]) for r, _ in kept] == [8]  # already trained: kept, not measured again
    assert [d["trial"] for d in left_out] == [7] and left_out[0]["ratio"] > left_out[0]["limit"] * 1.1
    off = OmegaConf.merge(cfg, {"finalize": {"latency_preflight": None}})
    assert stage._within_latency(off, ctx, study, trained, [(row, 0)]) == ([(row, 0)], [])


def test_a_verdict_recorded_under_this_cpu_s_budget_stands_and_another_budget_measures_again(small_cfg, ctx):
    """The default study's trials 5 and 6 were left out on an Intel Xeon (0.060 of the teacher) and came out
    within the budget on an AMD EPYC (0.033-0.037), both AVX-512 VNNI: a fresh clone on the EPYC then trained
    them for hours. A run keeps the verdict finalists.json recorded under the same budget."""
    cfg, row, fcfg = recipe(small_cfg, max_latency_ratio=0.9, latency_ratio_by_isa={})  # every student within
    study = str(cfg.study.study_name)
    here = machine.record()
    entry = {"trial": 7, "ratio": 1.5, "limit": 0.9, "factor": 1.1, "cpu": "Intel(R) Xeon(R) Processor",
             "isa": here["isa"]}
    kept, left_out = stage._within_latency(cfg, ctx, study, pd.DataFrame(), [(row, 0)], [entry])
    assert kept == [] and left_out == [entry]  # not measured: the record stands, written back as it was read
    for other in ({**entry, "limit": 0.1}, {**entry, "recipe": "another"}, {**entry, "trial": 8}):
        kept, left_out = stage._within_latency(cfg, ctx, study, pd.DataFrame(), [(row, 0)], [other])
        assert [int(r["trial"]) for r, _ in kept] == [7] and left_out == []  # measured here: well within 0.9
