"""The comparison's figures come from the stored trials: hypervolume of the completed ones,
time of completed and pruned ones."""

from datetime import datetime, timedelta

import optuna
import pytest

from compress.core.hypervolume import hypervolume, to_space
from compress.search.quality import summarise


def add(study, state, start, seconds, attrs=None):
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    trial = optuna.trial.create_trial(state=state, params={"x": 0.5}, distributions=dist, user_attrs=attrs or {},
                                      values=[attrs["val_accuracy"], attrs["size_bytes"], 1.0]
                                      if state == optuna.trial.TrialState.COMPLETE else None)
    trial.datetime_start, trial.datetime_complete = start, start + timedelta(seconds=seconds)
    study.add_trial(trial)


def test_summary_of_a_stored_study(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    study = optuna.create_study(study_name="arm", storage=storage, directions=["maximize", "minimize", "minimize"])
    t0 = datetime(2026, 1, 1)
    a = {"val_accuracy": 0.9, "size_bytes": 10_000, "latency_ratio": 0.01}
    b = {"val_accuracy": 0.8, "size_bytes": 5_000, "latency_ratio": 0.02}
    add(study, optuna.trial.TrialState.COMPLETE, t0, 60, a)
    add(study, optuna.trial.TrialState.COMPLETE, t0, 40, b)
    add(study, optuna.trial.TrialState.PRUNED, t0, 10, {"val_accuracy": 0.5})
    add(study, optuna.trial.TrialState.FAIL, t0, 5, {})
    s = summarise("arm", storage)
    assert (s["complete"], s["pruned"]) == (2, 1)
    assert s["trial_seconds"] == pytest.approx(110)  # the failed trial's time is not counted
    expected = hypervolume([to_space(**a), to_space(**b)])
    assert s["hypervolume"] == pytest.approx(expected) and expected > hypervolume([to_space(**a)])
    assert s["best_val_accuracy"] == 0.9
    # after its first trial: b is not in yet
    first = summarise("arm", storage, budget=1)
    assert (first["complete"], first["pruned"]) == (1, 0) and first["trial_seconds"] == pytest.approx(60)
    assert first["hypervolume"] == pytest.approx(hypervolume([to_space(**a)]))
    assert summarise("arm", storage, budget=3)["trial_seconds"] == pytest.approx(110)  # the failed one is no trial


def test_epochs_trained_by_completed_and_pruned_trials():
    from compress.search.quality import epochs_trained

    dist = {"prune.sparsity": optuna.distributions.CategoricalDistribution([0.0, 0.5]),
            "quant.mode": optuna.distributions.CategoricalDistribution(["int8", "qat"])}

    def frozen(state, params, attrs):
        return optuna.trial.create_trial(state=state, params=params, distributions=dist, user_attrs=attrs,
                                         values=[1.0] if state == optuna.trial.TrialState.COMPLETE else None)

    curve = {"val_curve": [0.8, 0.85, 0.87, 0.88]}
    assert epochs_trained(frozen(optuna.trial.TrialState.COMPLETE, {"prune.sparsity": 0.0, "quant.mode": "int8"},
                                 curve)) == 4
    assert epochs_trained(frozen(optuna.trial.TrialState.COMPLETE, {"prune.sparsity": 0.5, "quant.mode": "qat"},
                                 curve)) == 6
    assert epochs_trained(frozen(optuna.trial.TrialState.PRUNED, {"prune.sparsity": 0.5, "quant.mode": "qat"},
                                 {"pruned_reason": "epoch 2: val 0.5 + ..."})) == 2


def test_each_experiment_has_its_own_store_and_a_partial_comparison_writes_no_figures(tmp_path, capsys):
    from compress.search.quality import EXPERIMENTS, storage_of
    from compress.search_quality import main

    stores = {storage_of(e) for e in EXPERIMENTS}
    assert len(stores) == len(EXPERIMENTS)  # the full study's arms never land in the proxy's store
    assert all(s.startswith("sqlite:////") for s in stores)  # absolute: the same file from any directory
    with pytest.raises(SystemExit) as stop:
        main(["early-stop", "--arms", "with", "--json", str(tmp_path / "e.json")])
    assert stop.value.code == 2 and "--json needs both arms" in capsys.readouterr().err
    assert not (tmp_path / "e.json").exists()
