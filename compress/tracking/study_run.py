"""The study as a live MLflow run: it starts with the sweep, carries the study's progress as
metrics by step (trials done, front size, hypervolume, best validation accuracy per size class),
ends when the sweep ends, and holds the front table and the Pareto figure as artifacts.

Built by the sweeper (`hydra.sweeper.callbacks`) in the main sweep process; every trial's run
is nested under it (`compress.tracking.runs.study_parent_run` finds it).
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from pathlib import Path

import optuna
import pandas as pd
from optuna.trial import TrialState

from compress.core import metrics as M
from compress.core.hypervolume import hypervolume, to_space
from compress.tracking import runs as tracking

log = logging.getLogger(__name__)


def study_metrics(study: optuna.Study, size_classes=()) -> dict[str, float]:
    """Where the study stands, from its stored trials (every worker's); the best validation accuracy
    at or under each of `size_classes` (bytes: `best_val_accuracy_16kb` for 16,384) and at any size."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    out = {"trials_complete": len(complete), "trials_failed": sum(t.state == TrialState.FAIL for t in trials),
           "trials_pruned": sum(t.state == TrialState.PRUNED for t in trials)}
    if complete and len(study.directions) > 1:
        out["front_size"] = len(study.best_trials)
    measured = [t for t in complete if all(k in t.user_attrs for k in (M.VAL_ACCURACY, M.SIZE_BYTES, M.LATENCY_RATIO))]
    if measured:
        out["hypervolume"] = hypervolume([to_space(t.user_attrs[M.VAL_ACCURACY], t.user_attrs[M.SIZE_BYTES],
                                                   t.user_attrs[M.LATENCY_RATIO]) for t in measured])
        classes = {f"{int(limit) // 1024}kb": int(limit) for limit in size_classes}
        for name, limit in {**classes, "any": math.inf}.items():
            fits = [t.user_attrs[M.VAL_ACCURACY] for t in measured if t.user_attrs[M.SIZE_BYTES] <= limit]
            if fits:
                out[f"best_val_accuracy_{name}"] = max(fits)
    return out


def front_table(study: optuna.Study):
    """The study's front (or best trial) as a table: number, parameters, every reported figure."""
    best = study.best_trials if len(study.directions) > 1 else [study.best_trial]
    rows = [{"trial": t.number, **t.params, **{k: v for k, v in t.user_attrs.items()
                                                if isinstance(v, (int, float, str, bool))}} for t in best]
    return pd.DataFrame(rows).sort_values(M.SIZE_BYTES if rows and M.SIZE_BYTES in rows[0] else "trial")


def pareto_png(study: optuna.Study, path: Path, size_classes=()) -> Path | None:
    """Validation accuracy against file size, every complete trial, the front marked, the app's
    `size_classes` as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if M.SIZE_BYTES in t.user_attrs and M.VAL_ACCURACY in t.user_attrs]
    if not complete:
        return None
    front = {t.number for t in (study.best_trials if len(study.directions) > 1 else [study.best_trial])}
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for on_front, style in ((False, {"color": "0.7", "label": "trial"}),
                            (True, {"color": "tab:red", "label": "on the front (3 objectives)"})):
        pts = [t for t in complete if (t.number in front) == on_front]
        ax.scatter([t.user_attrs[M.SIZE_BYTES] for t in pts], [100 * t.user_attrs[M.VAL_ACCURACY] for t in pts],
                   s=22, **style)
    for limit in size_classes:
        ax.axvline(limit, color="0.5", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel(".tflite bytes (log scale)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"study {study.study_name}: {len(complete)} complete trials")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


class StudyRun:
    """The sweeper callback (see the module docstring)."""

    def __init__(self, config):
        self.cfg = config
        self.run_id = None
        self.client = None
        self.logged_step = None  # the study's metrics are logged once per step

    def on_study_start(self, study: optuna.Study) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        if not self.cfg.tracking.enabled:
            return
        experiment_id = tracking.connect(self.cfg.tracking)
        self.client = MlflowClient()
        self.experiment_id = experiment_id
        self.run_id = tracking.study_parent_run(experiment_id, study.study_name, keep_running=True)
        sweeper = self.cfg.hydra.sweeper
        params = {"n_trials": sweeper.n_trials, "sampler": str(sweeper.sampler.get("_target_", "")),
                  "objectives": ",".join(sweeper.objectives or []), "directions": ",".join(
                      [sweeper.direction] if isinstance(sweeper.direction, str) else list(sweeper.direction)),
                  "storage": str(sweeper.storage)}
        params.update({f"space.{k}": str(v)[:500] for k, v in (sweeper.params or {}).items()})
        existing = self.client.get_run(self.run_id).data.params
        self.client.log_batch(self.run_id, params=[
            Param(k, str(v)) for k, v in params.items() if k not in existing])
        self._log(study)

    def _log(self, study: optuna.Study) -> None:
        from mlflow.entities import Metric

        values = study_metrics(study, list(self.cfg.targets.size_classes))
        step = values["trials_complete"] + values["trials_failed"] + values["trials_pruned"]
        if step == self.logged_step:  # the study's end right after its last trial: nothing new
            return
        self.logged_step = step
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in values.items()])

    def on_trial_end(self, study: optuna.Study, trial) -> None:
        if self.run_id:
            self._log(study)

    def on_study_end(self, study: optuna.Study, error: BaseException | None) -> None:
        if not self.run_id:
            return
        self._log(study)
        # a trial lost with its process (found by its heartbeat, or stopped by Ctrl-C) leaves no run RUNNING
        closed = tracking.close_orphaned_runs(self.experiment_id, study.study_name, self.cfg.hydra.sweeper.storage)
        if closed:
            log.info("MLflow: %d run(s) of trials lost with their process marked KILLED", closed)
        if study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            with tempfile.TemporaryDirectory() as tmp:
                table = Path(tmp) / "front.csv"
                front_table(study).to_csv(table, index=False)
                self.client.log_artifact(self.run_id, str(table))
                png = pareto_png(study, Path(tmp) / "pareto.png", list(self.cfg.targets.size_classes))
                if png is not None:
                    self.client.log_artifact(self.run_id, str(png))
        status = "FINISHED" if error is None else ("KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        self.client.set_terminated(self.run_id, status)
