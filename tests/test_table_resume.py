"""A study rebuilt from its committed trials table on a fresh storage: numbers, states, values,
params and curves as the table has them, and the next trial numbered after the last."""

from __future__ import annotations

import optuna
import pandas as pd
import pytest
from hydra_plugins.compress_optuna_sweeper.table_resume import seed_study
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

SPACE = {"student.arch": CategoricalDistribution(["cnn", "dsconv"]), "student.width": FloatDistribution(0.0625, 0.5),
         "prune.sparsity": CategoricalDistribution([0.0, 0.25, 0.5])}
OBJECTIVES = ["val_accuracy", "size_bytes", "latency_ms"]


def write_table(path):
    rows = [
        {"trial": 0, "status": "FINISHED", "student.arch": "cnn", "student.width": 0.2, "prune.sparsity": 0.25,
         "val_accuracy": 0.9, "size_bytes": 50000, "latency_ms": 0.02, "curve_val": "0.8;0.85;0.9"},
        {"trial": 1, "status": "PRUNED", "student.arch": "dsconv", "student.width": 0.3, "prune.sparsity": 0.0,
         "curve_val": "0.5"},
        {"trial": 1, "status": "KILLED", "student.arch": "dsconv", "student.width": 0.3, "prune.sparsity": 0.0},
        {"trial": 3, "status": "FINISHED", "student.arch": "dsconv", "student.width": 0.1, "prune.sparsity": 0.5,
         "val_accuracy": 0.85, "size_bytes": 9000, "latency_ms": 0.01, "curve_val": "0.84"},
        {"trial": 0, "status": "FINISHED", "student.arch": "cnn", "student.width": 0.2, "prune.sparsity": 0.25,
         "val_accuracy": 0.9, "size_bytes": 50000, "latency_ms": 0.02, "study": "other"},
    ]
    table = pd.DataFrame(rows)
    table["study"] = table["study"].fillna("s")
    table.to_csv(path, index=False)
    return path


def test_study_is_rebuilt_with_its_numbers_states_values_and_curves(tmp_path):
    storage = f"sqlite:///{tmp_path}/fresh.db"
    study = optuna.create_study(study_name="s", storage=storage, directions=["maximize", "minimize", "minimize"])
    assert seed_study(study, str(write_table(tmp_path / "trials.csv")), SPACE, OBJECTIVES) == 4
    trials = optuna.load_study(study_name="s", storage=storage).get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE]
    assert trials[0].values == pytest.approx([0.9, 50000, 0.02])
    assert trials[0].params == {"student.arch": "cnn", "student.width": 0.2, "prune.sparsity": 0.25}
    assert trials[1].user_attrs["val_curve"] == [0.5] and trials[3].user_attrs["val_curve"] == [0.84]
    assert trials[2].params == {}  # a number the table does not have: a failed placeholder keeps the numbering
    assert study.ask(fixed_distributions=SPACE).number == 4


def test_a_value_outside_the_space_is_left_out_not_invented(tmp_path):
    table = pd.DataFrame([{"study": "s", "trial": 0, "status": "FINISHED", "student.arch": "mlp",
                           "student.width": 0.9, "prune.sparsity": 0.5, "val_accuracy": 0.8, "size_bytes": 1,
                           "latency_ms": 1}])
    table.to_csv(tmp_path / "t.csv", index=False)
    study = optuna.create_study(study_name="s", directions=["maximize", "minimize", "minimize"])
    seed_study(study, str(tmp_path / "t.csv"), SPACE, OBJECTIVES)
    assert study.trials[0].params == {"prune.sparsity": 0.5}


def test_the_table_written_on_a_fresh_machine_keeps_the_committed_trials(tmp_path):
    """MLflow on a fresh machine holds only the trials run there: the committed table's other
    trials of the study stay in it (a trial in both comes from MLflow), other studies' rows do not."""
    from compress.tracking.trials_table import CURVES, read, with_committed

    committed = write_table(tmp_path / "t.csv")
    fresh = pd.DataFrame([
        {"study": "s", "trial": 3, "status": "FINISHED", "val_accuracy": 0.87, "curve_val": "0.86;0.87",
         "curve_train": ""},
        {"study": "s", "trial": 4, "status": "FINISHED", "val_accuracy": 0.88, "curve_val": "0.88", "curve_train": ""},
    ])
    merged = with_committed(fresh, committed, "s")
    assert merged["trial"].tolist() == [0, 1, 1, 3, 4]
    assert merged.loc[merged["trial"] == 3, "val_accuracy"].item() == 0.87  # MLflow's figure wins
    assert set(merged["study"]) == {"s"}
    merged.to_csv(tmp_path / "m.csv", index=False)
    assert read(tmp_path / "m.csv").loc[0, "curve_val"] == [0.8, 0.85, 0.9]
    assert set(CURVES) <= set(merged.columns)
    assert with_committed(fresh, tmp_path / "missing.csv", "s") is fresh
