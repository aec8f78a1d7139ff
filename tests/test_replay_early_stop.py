"""The early-stop replay over a finished study's table (analysis/replay_early_stop.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.replay_early_stop import replay


def row(trial, curve, size, params, final=None, time_train=40.0, time_total=50.0, sparsity=0.0, macs=1_000_000):
    return {"trial": trial, "distill.epochs": 4, "curve_val": [*curve, final if final is not None else curve[-1]],
            "prune.sparsity": sparsity, "quant.mode": "int8", "val_accuracy": final if final is not None else curve[-1],
            "size_bytes": size, "latency_ratio": 0.01, "params": params, "macs": macs, "time_train_s": time_train,
            "time_total_s": time_total, "pareto": False}


def table() -> pd.DataFrame:
    good = [0.80, 0.86, 0.88, 0.89]  # gains 0.09 / 0.03 from epochs 1 / 2 to the end
    rows = [row(t, good, 10_000, 10_000) for t in range(6)]
    # trial 6: larger than every finished trial, 0.60 after epoch 1: 0.60 + 0.09 + 0.005 < 0.89 -> stopped at epoch 1
    rows.append(row(6, [0.60, 0.70, 0.75, 0.78], 20_000, 20_000, sparsity=0.5))  # 5 epochs: 4 + 1 pruning
    # trial 7: just as poor, but smaller than every finished trial: no rival at its size, so it runs on
    rows.append(row(7, [0.60, 0.70, 0.75, 0.78], 5_000, 5_000))
    return pd.DataFrame(rows)


def test_a_hopeless_trial_is_stopped_and_charged_up_to_its_epoch():
    out = replay(table(), [1, 2], 0.005, 6)
    stopped = {o["trial"]: o["stopped_at_epoch"] for o in out["outcomes"]}
    assert stopped == {0: None, 1: None, 2: None, 3: None, 4: None, 5: None, 6: 1, 7: None}
    assert out["stopped"] == 1
    assert out["epochs_saved_share"] == pytest.approx((5 - 1) / 40)  # 8 trials x 5 epochs
    assert out["time_saved_share"] == pytest.approx((50.0 - 40.0 * 1 / 4) / 400.0)


def test_nothing_is_stopped_before_min_completed_trials():
    out = replay(table(), [1, 2], 0.005, 7)  # trial 6 sees only six finished trials
    assert out["stopped"] == 0 and out["epochs_saved_share"] == 0.0
    assert out["hypervolume_kept"] == pytest.approx(out["hypervolume_all"])


def test_a_stopped_trial_leaves_the_references():
    t = table()
    # in truth trial 6 would have ended at 0.95 (a late bloomer the rule stops all the same)
    t.loc[t.trial == 6, "val_accuracy"] = 0.95
    # trial 8: larger than trial 6, 0.80 after epoch 1; against the six good trials (0.89) it may still
    # get there (0.80 + 0.09 + 0.005 >= 0.89), against a trial 6 that had finished (0.95) it could not
    t = pd.concat([t, pd.DataFrame([row(8, [0.80, 0.85, 0.87, 0.88], 30_000, 30_000)])], ignore_index=True)
    out = replay(t, [1, 2], 0.005, 6)
    stopped = {o["trial"]: o["stopped_at_epoch"] for o in out["outcomes"]}
    assert stopped[6] == 1 and stopped[8] is None
    assert out["hypervolume_kept"] < out["hypervolume_all"]  # trial 6's 0.95 is lost to the front
