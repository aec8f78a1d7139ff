"""McNemar's exact test (compress/core/stats.py): the p-value from the discordant images alone."""

from __future__ import annotations

import numpy as np
import pytest

from compress.core.stats import mcnemar


def test_only_the_images_where_one_model_is_right_count():
    a = np.array([1, 1, 1, 0, 0, 1, 1, 0], dtype=bool)
    b = np.array([1, 0, 0, 0, 1, 1, 0, 0], dtype=bool)
    r = mcnemar(a, b)
    assert (r["only_a"], r["only_b"], r["n"]) == (3, 1, 8)
    # 4 discordant images, split 3:1: P(X <= 1) = 5/16 each tail, two-sided 10/16
    assert r["p_value"] == pytest.approx(10 / 16)


def test_a_lopsided_split_is_significant_and_a_tie_is_not():
    a = np.r_[np.ones(60, bool), np.zeros(20, bool), np.ones(920, bool)]
    b = np.r_[np.zeros(60, bool), np.ones(20, bool), np.ones(920, bool)]
    assert mcnemar(a, b)["p_value"] < 1e-5
    assert mcnemar(a, a)["p_value"] == 1.0 and mcnemar(a, a)["only_a"] == 0
    with pytest.raises(ValueError, match="same images"):
        mcnemar(a, b[:10])


def test_verify_against_another_file_states_the_paired_test(tmp_path):
    """`compress.verify A --against B` prints the discordant counts and McNemar's p, computed from the
    files' own predictions (here one file against itself: no discordant image, p = 1)."""
    from conftest import ROOT

    from compress.measure.scoring import line, score

    winner = ROOT / "winner" / "winner.tflite"
    if not winner.is_file():
        pytest.skip("no committed winner")
    rng = np.random.default_rng(0)
    data = tmp_path / "few.npz"
    np.savez(data, x=rng.integers(0, 255, (40, 28, 28), dtype=np.uint8), y=rng.integers(0, 10, 40))
    result = score(winner, against=winner, data_file=data, paired_test=True)
    assert (result["only_this_right"], result["only_against_right"], result["mcnemar_p"]) == (0, 0, 1.0)
    assert "McNemar's exact test: p = 1" in line(result)
    assert "mcnemar_p" not in score(winner, against=winner, data_file=data)  # exports keep their fields
