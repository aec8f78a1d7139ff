"""remeasure_coreml redoes a stale run's Core ML branch only where its student.keras is the
network its .tflite carries."""

from __future__ import annotations

import subprocess

import pytest

from compress.config.cli import ROOT
from compress.remeasure_coreml import QAT_WEIGHTS_FIX, not_redoable


def _rev(name: str) -> str | None:
    done = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"], cwd=ROOT,
                          capture_output=True, text=True)
    return done.stdout.strip() or None


def test_a_qat_run_logged_before_the_float_twin_fix_is_left_as_logged():
    fix, before = _rev(QAT_WEIGHTS_FIX), _rev(f"{QAT_WEIGHTS_FIX}~1")
    if not (fix and before):
        pytest.skip(f"this clone lacks the history around {QAT_WEIGHTS_FIX} (a shallow clone)")
    why = not_redoable({"quant.mode": "qat"}, before)
    assert why and "retrain" in why and QAT_WEIGHTS_FIX in why
    assert not_redoable({"quant.mode": "qat"}, fix + "-dirty") is None  # from the fix on, student.keras is right
    assert not_redoable({"quant.mode": "int8"}, before) is None  # post-training modes never had the problem
