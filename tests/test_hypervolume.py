"""Hypervolume against hand-computed boxes and a Monte Carlo estimate."""

import numpy as np
import pytest

from compress.core.hypervolume import REFERENCE, hypervolume, to_space


def test_single_point_is_its_box():
    assert hypervolume([(0.1, 5.0, 0.5)]) == pytest.approx((0.5 - 0.1) * (7.0 - 5.0) * (1.0 - 0.5))


def test_two_boxes_union_and_dominated_point_adds_nothing():
    ref = (1.0, 1.0, 1.0)
    a, b = (0.0, 0.5, 0.5), (0.5, 0.0, 0.5)
    union = 0.5 * 1.0 * 0.5 + 1.0 * 0.5 * 0.5 - 0.5 * 0.5 * 0.5
    assert hypervolume([a, b], ref) == pytest.approx(union)
    assert hypervolume([a, b, (0.6, 0.6, 0.6)], ref) == pytest.approx(union)
    assert hypervolume([a, a, b], ref) == pytest.approx(union)  # ties count once


def test_points_beyond_the_reference_and_nan_are_ignored():
    assert hypervolume([(0.6, 5.0, 0.5), (np.nan, 1.0, 0.1)]) == 0.0
    assert hypervolume([]) == 0.0


def test_matches_monte_carlo_on_random_fronts():
    rng = np.random.default_rng(3)
    pts = rng.uniform(0, 1, size=(12, 3))
    samples = rng.uniform(0, 1, size=(200_000, 3))
    dominated = np.zeros(len(samples), dtype=bool)
    for p in pts:
        dominated |= np.all(samples >= p, axis=1)
    assert hypervolume(pts, (1.0, 1.0, 1.0)) == pytest.approx(dominated.mean(), abs=0.005)


def test_space_of_a_trial():
    assert to_space(0.9, 1e4, 0.01) == pytest.approx((0.1, 4.0, 0.01))
    assert REFERENCE[0] == 0.5
