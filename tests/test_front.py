"""The Pareto front on hand-made trials: dominance, ties, missing and non-finite metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compress.core.front import pareto_mask


def table(rows):
    return pd.DataFrame(rows, columns=["name", "val_accuracy", "size_bytes", "latency_ms"]).set_index("name")


def test_dominated_points_are_dropped_and_trade_offs_kept():
    t = table([
        ("big_accurate", 0.92, 60000, 0.05),
        ("small", 0.88, 15000, 0.02),
        ("dominated", 0.87, 20000, 0.03),  # worse than "small" everywhere
        ("fast", 0.85, 30000, 0.01),
    ])
    assert list(t.index[pareto_mask(t)]) == ["big_accurate", "small", "fast"]


def test_ties_are_all_kept_and_equal_in_one_objective_still_dominates():
    t = table([
        ("a", 0.90, 10000, 0.02),
        ("a_twin", 0.90, 10000, 0.02),
        ("b", 0.90, 10000, 0.03),  # equal to a except slower: dominated
    ])
    assert list(t.index[pareto_mask(t)]) == ["a", "a_twin"]


def test_missing_and_non_finite_metrics_are_left_out():
    t = table([
        ("ok", 0.80, 10000, 0.02),
        ("missing", np.nan, 100, 0.001),
        ("inf", 0.99, np.inf, 0.001),
    ])
    assert list(t.index[pareto_mask(t)]) == ["ok"]
    assert not pareto_mask(t.drop(columns=["latency_ms"])).any()


def test_matches_brute_force_on_random_points():
    rng = np.random.default_rng(0)
    t = pd.DataFrame({"val_accuracy": rng.random(60).round(2), "size_bytes": rng.integers(1, 20, 60),
                      "latency_ms": rng.random(60).round(1)})
    mask = pareto_mask(t)
    pts = np.c_[-t.val_accuracy, t.size_bytes, t.latency_ms]
    for i in range(len(t)):
        dominated = any(np.all(pts[j] <= pts[i]) and np.any(pts[j] < pts[i]) for j in range(len(t)))
        assert mask.iloc[i] == (not dominated)


def test_bad_direction_is_refused():
    with pytest.raises(ValueError, match="allowed 'min' or 'max'"):
        pareto_mask(table([("a", 1, 1, 1)]), {"val_accuracy": "up"})
