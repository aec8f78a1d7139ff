"""The winner policy on hand-made fronts."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from compress.core.front import pareto_mask, pick_trial


def front(rows):
    t = pd.DataFrame(rows, columns=["trial", "val_accuracy", "size_bytes", "latency_ms"])
    t["pareto"] = pareto_mask(t)
    return t


def test_smallest_model_within_the_budget_wins():
    t = front([(0, 0.93, 900_000, 0.5), (1, 0.925, 60_000, 0.05), (2, 0.924, 40_000, 0.04), (3, 0.90, 9_000, 0.01)])
    row, why = pick_trial(t, teacher_val_accuracy=0.927, budget=0.005)
    assert row.trial == 2 and "within" in why


def test_ties_in_size_go_to_the_faster_then_the_more_accurate():
    t = front([(0, 0.925, 40_000, 0.05), (1, 0.923, 40_000, 0.04), (2, 0.90, 10_000, 0.01)])
    row, _ = pick_trial(t, 0.927, 0.005)
    assert row.trial == 1


def test_falls_back_to_the_knee_when_nothing_is_close_enough():
    t = front([(0, 0.91, 1_000_000, 0.5), (1, 0.905, 50_000, 0.05), (2, 0.80, 5_000, 0.01), (3, 0.89, 30_000, 0.03)])
    row, why = pick_trial(t, teacher_val_accuracy=0.95, budget=0.005)
    assert "knee" in why and row.trial in (1, 3)
    assert pick_trial(t, 0.95, policy="knee")[0].trial == row.trial


def test_a_dominated_trial_never_wins_and_bad_policy_is_refused():
    t = front([(0, 0.93, 50_000, 0.05), (1, 0.93, 60_000, 0.06)])
    assert pick_trial(t, 0.93)[0].trial == 0
    with pytest.raises(ValueError, match="allowed smallest_within_budget, knee"):
        pick_trial(t, 0.93, policy="best")


def test_the_summary_picks_the_most_accurate_trial_at_or_under_each_size_class():
    from analysis.summary import best_by_size

    t = pd.DataFrame({"trial": [0, 1, 2, 3], "val_accuracy": [0.80, 0.85, 0.90, 0.70],
                      "test_accuracy": [0.8, 0.84, 0.9, 0.7], "size_bytes": [10_000, 15_000, 50_000, 60_000],
                      "latency_ratio": [0.01] * 4, "quant.mode": ["int8"] * 4, "student.width": [0.1] * 4,
                      "prune.sparsity": [0.0] * 4})
    rows = best_by_size(t, [65_536, 16_384])
    assert [(r["up_to_bytes"], r["trial"], r["trials"]) for r in rows] == [(16_384, 1, 2), (65_536, 2, 4),
                                                                            (math.inf, 2, 4)]
    assert best_by_size(t, [8_192])[0] == {"up_to_bytes": 8_192, "trials": 0}  # said, not left out


def test_the_core_ml_export_allows_the_gap_chance_makes_on_a_small_slice_only():
    from compress.pareto.trial_export import MAX_FORMAT_GAP, format_gap_allowed

    assert format_gap_allowed(10_000, 0.9925) == MAX_FORMAT_GAP  # a real winner: 75 images differ
    assert format_gap_allowed(10_000, 0.96) == pytest.approx(2 * 20 / 10_000)  # 400 differ: 0.4 points
    assert format_gap_allowed(600, 1.0) == pytest.approx(2 / 600)  # none differ: two images' worth
    assert format_gap_allowed(600, 1 - 16 / 600) == pytest.approx(2 * 4 / 600)  # 16 differ: 8 images
