"""Paired comparison of two classifiers on the same test images: McNemar's exact test.

Two models scored on one test set are not independent samples; what tells them apart is the images
where exactly one of them is right. Under "equally accurate", each such image is a fair coin."""

from __future__ import annotations

from math import comb

import numpy as np


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """Exact two-sided McNemar test of A against B from per-image correctness (booleans, same images):
    `only_a` images A gets right and B wrong, `only_b` the reverse, and the p-value of a difference at
    least that lopsided if both were equally accurate (binomial, n = only_a + only_b, p = 1/2)."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"McNemar needs the same images: {a.shape} against {b.shape}")
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = only_a + only_b
    tail = sum(comb(n, k) for k in range(min(only_a, only_b) + 1))
    p = 1.0 if n == 0 else min(1.0, 2 * tail / 2 ** n)
    return {"n": int(a.size), "accuracy_a": float(a.mean()), "accuracy_b": float(b.mean()),
            "only_a": only_a, "only_b": only_b, "p_value": float(p)}
