"""The early-stop rule on hand-made studies, and the callback against a real Optuna storage."""

from __future__ import annotations

import pickle

import optuna
import pytest

from compress.config.cli import compose
from compress.search.early_stop import CURVE_ATTR, EarlyStopCheck, Reference, StoppedEarly, StopRule, hopeless

# completed trials: final accuracy, bytes, MACs, per-epoch validation curve
REFS = [Reference(0.90, 30_000, 1e6, (0.85, 0.88)), Reference(0.92, 200_000, 5e6, (0.89, 0.91)),
        Reference(0.88, 10_000, 3e5, (0.80, 0.86))]


def test_a_trial_far_below_a_smaller_lighter_rival_is_stopped():
    # 40,000 int8 params (<= 40 KB), 2e6 MACs: the 30 KB / 1e6 MAC trial (0.90) is its rival;
    # best gain seen from epoch 1 is 0.08 (0.80 -> 0.88): 0.80 + 0.08 + 0.005 < 0.90
    reason = hopeless(0.80, 1, 40_000, "int8", 2_000_000, REFS, slack=0.005, min_completed=3)
    assert reason and "0.9000" in reason and "epoch 1" in reason


def test_a_trial_that_could_still_catch_up_goes_on():
    assert hopeless(0.82, 1, 40_000, "int8", 2_000_000, REFS, slack=0.005, min_completed=3) is None


def test_no_rival_at_its_size_or_speed_means_no_stop():
    # 8,000 int8 params: every completed trial is larger
    assert hopeless(0.10, 1, 8_000, "int8", 2_000_000, REFS, slack=0.0, min_completed=1) is None
    # same size bound as float32 is 4x larger, but fewer MACs than every rival
    assert hopeless(0.10, 1, 40_000, "float32", 100_000, REFS, slack=0.0, min_completed=1) is None


def test_nothing_is_stopped_before_enough_trials_completed():
    assert hopeless(0.10, 1, 400_000, "float32", 10**8, REFS, slack=0.0, min_completed=4) is None
    assert hopeless(0.10, 1, 400_000, "float32", 10**8, REFS, slack=0.0, min_completed=3) is not None


def stored_study(tmp_path) -> str:
    """A study in SQLite whose completed trials are REFS, as the sweeper stores them; its URL."""
    storage = f"sqlite:///{tmp_path}/s.db"
    study = optuna.create_study(study_name="s", storage=storage, directions=["maximize", "minimize"])
    for ref in REFS:
        trial = study.ask()
        for key, value in (("val_accuracy", ref.val_accuracy), ("size_bytes", ref.size_bytes), ("macs", ref.macs),
                           (CURVE_ATTR, list(ref.curve))):
            trial.set_user_attr(key, value)
        study.tell(trial, [ref.val_accuracy, ref.size_bytes])
    return storage


def study_config(storage: str, check_epochs: str):
    """The project's composed config as a trial of study "s" in `storage` has it (the sweeper fills `study`)."""
    return compose([f"early_stop.check_epochs={check_epochs}", "early_stop.slack=0.005", "early_stop.min_completed=3",
                    "study.study_name=s", f"study.storage={storage}", "quant.mode=int8", "prune.sparsity=0.0"])


def test_the_rule_is_read_from_the_trial_s_config_and_is_off_outside_a_stored_study(tmp_path):
    rule = StopRule.of(study_config(f"sqlite:///{tmp_path}/s.db", "[2,3]"))
    assert rule == StopRule((2, 3), 0.005, 3, "s", f"sqlite:///{tmp_path}/s.db", "int8", 0.0)
    assert StopRule.of(compose([])) is None  # a single trial: no study to compare with
    assert StopRule.of(compose(["early_stop.enabled=false", "study.study_name=s",
                                f"study.storage=sqlite:///{tmp_path}/s.db"])) is None


def test_callback_reads_the_study_and_raises_trial_pruned(tmp_path):
    storage = stored_study(tmp_path)
    cfg = study_config(storage, "[1,2]")
    check = EarlyStopCheck(StopRule.of(cfg), params=40_000, macs=2_000_000)
    check.on_epoch_end(0, {"val_accuracy": 0.85})  # could still reach 0.90: goes on
    with pytest.raises(optuna.TrialPruned, match="epoch 2"):
        check.on_epoch_end(1, {"val_accuracy": 0.80})


def test_the_callback_stops_a_real_fit(tmp_path):
    """Inside model.fit Keras sets `params` on every callback: the check must still work there."""
    import numpy as np

    from compress.core.compat import keras

    storage = stored_study(tmp_path)
    cfg = study_config(storage, "[1]")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(10)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), np.zeros(64, dtype=int)
    y_val = np.ones(32, dtype=int)  # not the class it learns: validation accuracy stays far below the rivals'
    with pytest.raises(optuna.TrialPruned, match="epoch 1") as stop:
        model.fit(x, y, validation_data=(x[:32], y_val), epochs=3, verbose=0,
                  callbacks=[EarlyStopCheck(StopRule.of(cfg), params=40_000, macs=2_000_000)])
    # the epoch it trained travels with the stop, also through a worker process's pickling
    for raised in (stop.value, pickle.loads(pickle.dumps(stop.value))):
        assert isinstance(raised, StoppedEarly) and str(raised) == str(stop.value)
        assert [sorted(e) for e in raised.epochs] == [["accuracy", "loss", "val_accuracy", "val_loss"]]
        assert f"epoch 1: val {raised.epochs[0]['val_accuracy']:.4f} +" in str(raised)  # the epoch it was judged on


def test_the_gain_is_taken_from_trials_pruned_alike():
    # two completed trials at sparsity 0.9 lost 30 points after epoch 1; others gained
    refs = [*[Reference(r.val_accuracy, r.size_bytes, r.macs, r.curve, 0.0) for r in REFS],
            Reference(0.55, 20_000, 1e6, (0.85, 0.86), 0.9), Reference(0.50, 25_000, 1e6, (0.80, 0.82), 0.9)]
    # a 0.9-sparse trial at 0.86 after epoch 1: at most 0.86 - 0.29 + 0.005 < 0.90 (the 30 KB rival)
    reason = hopeless(0.86, 1, 40_000, "int8", 2_000_000, refs, slack=0.005, min_completed=3, sparsity=0.9)
    assert reason and "at sparsity 0.9" in reason
    # the same curve on a dense trial goes on: dense trials gained up to 0.08 from epoch 1
    assert hopeless(0.86, 1, 40_000, "int8", 2_000_000, refs, slack=0.005, min_completed=3, sparsity=0.0) is None
    # a sparsity seen only once falls back to the gain of all trials
    assert hopeless(0.86, 1, 40_000, "int8", 2_000_000, refs, slack=0.005, min_completed=3, sparsity=0.5) is None


def test_a_stopped_trial_is_pruned_in_mlflow_not_taken_for_a_killed_one(tmp_path):
    from mlflow.tracking import MlflowClient

    from compress.config.cli import compose
    from compress.tracking import run_logging
    from compress.tracking.trial_runs import load_trials

    cfg = compose([f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.artifact_root={tmp_path}/artifacts"])
    epochs = ({"loss": 0.9, "accuracy": 0.70, "val_accuracy": 0.72}, {"loss": 0.7, "accuracy": 0.75, "val_accuracy": 0.74})
    trial_log = run_logging.TrialLog.of(cfg)
    with pytest.raises(optuna.TrialPruned), trial_log.run("teacher-sha") as run:
        run_logging.log_stopped(epochs, 12.3456)
        raise StoppedEarly("epoch 1: hopeless", epochs)
    client = MlflowClient(cfg.tracking.uri)
    stored = client.get_run(run.info.run_id)
    assert stored.info.status == "KILLED" and stored.data.tags["optuna_state"] == "PRUNED"
    assert stored.data.tags["pruned_reason"] == "epoch 1: hopeless"
    table = load_trials(cfg.tracking.uri, cfg.tracking.experiment, finished_only=False)
    assert list(table["status"]) == ["PRUNED"]
    # its cost and its curve are in MLflow like a finished trial's: only training ran
    assert {k: v for k, v in stored.data.metrics.items() if k.startswith("time_")} == {
        "time_train_s": 12.346, "time_prune_s": 0.0, "time_convert_s": 0.0, "time_eval_s": 0.0, "time_total_s": 12.346}
    curve = client.get_metric_history(run.info.run_id, "epoch_val_accuracy")
    assert [(m.step, m.value) for m in sorted(curve, key=lambda m: m.step)] == [(0, 0.72), (1, 0.74)]
    assert load_trials(cfg.tracking.uri, cfg.tracking.experiment).empty
