"""MLflow's store: connecting, the study's parent run, whether a run is in this store, and the
trial runs a dead process left open (what each run holds: run_logging.py).

The default store is SQLite under mlruns/ with artifacts beside it (MLflow 3 refuses a
bare file store), so `mlflow ui` shows every trial without a server to start.
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
from pathlib import Path

from compress.config.cli import ROOT as root
from compress.core import metrics as M
from compress.core.errors import StoreError

log = logging.getLogger(__name__)
# MLflow 3's UI opens an experiment as GenAI traces unless it is marked as model training
EXPERIMENT_KIND, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


@functools.cache
def git_commit() -> str:
    """The checkout's commit, with '-dirty' when files differ from it; 'unknown' outside git.

    Read once per process (at its first trial), so that a commit made while a study runs is
    not credited with trials that still run the code loaded before it."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def connect(tracking_cfg) -> str:
    """Point MLflow at the configured store and return the experiment id (created on first use)."""
    import mlflow

    uri = str(tracking_cfg.uri)
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.get_experiment_by_name(tracking_cfg.experiment)
        if experiment is not None:
            if experiment.tags.get(EXPERIMENT_KIND) != MODEL_TRAINING:
                mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)
            return experiment.experiment_id
        artifact_location = None
        if not uri.startswith(("http://", "https://", "databricks")) and tracking_cfg.artifact_root:
            artifact_location = Path(tracking_cfg.artifact_root).resolve().as_uri()
        return mlflow.create_experiment(tracking_cfg.experiment, artifact_location=artifact_location,
                                        tags={EXPERIMENT_KIND: MODEL_TRAINING})
    except Exception as exc:  # noqa: BLE001 - any failure here means the store is unusable
        raise StoreError(f"tracking.uri={uri}: cannot reach the MLflow store ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200]})") from None


def run_in_store(run_id) -> bool:
    """Whether `run_id` names a run of the store MLflow points at. The committed tables carry run ids
    from the store of the machine that trained them: a reference, never a handle, on any other."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if not isinstance(run_id, str) or not run_id:
        return False
    try:
        return MlflowClient().get_run(run_id).info.lifecycle_stage == "active"
    except MlflowException:
        return False


def study_parent_run(experiment_id: str, study_name: str, keep_running: bool = False) -> str:
    """The id of the study's parent run, created on the first trial and found again on resume.

    With `keep_running` (the sweep's own StudyRun) the run is RUNNING until the sweep ends it;
    a run created by a trial alone (no StudyRun callback) is closed at once."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()

    def earliest_parent():
        found = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{M.TAG_ROLE}` = 'study' and tags.`{M.TAG_STUDY}` = '{study_name}'",
            max_results=1, order_by=["attributes.start_time ASC"],
        )
        return found[0].info.run_id if found else None

    found = earliest_parent()
    if found:
        if keep_running:
            client.update_run(found, status="RUNNING")
        return found
    run = client.create_run(experiment_id, run_name=f"study-{study_name}",
                            tags={M.TAG_ROLE: "study", M.TAG_STUDY: study_name})
    if not keep_running:
        client.set_terminated(run.info.run_id, "FINISHED")
    # two workers may have raced here: all keep the earliest parent, the later one is removed
    earliest = earliest_parent()
    if earliest != run.info.run_id:
        client.delete_run(run.info.run_id)
    return earliest


def close_orphaned_runs(experiment_id: str, study_name: str, storage_url: str | None) -> int:
    """Mark KILLED the study's trial runs still RUNNING whose Optuna trial is no longer running
    (their process died); returns how many were closed."""
    from mlflow.tracking import MlflowClient

    if not storage_url:
        return 0
    client = MlflowClient()
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{M.TAG_ROLE}` = 'trial' and tags.`{M.TAG_STUDY}` = '{study_name}' "
                      f"and attributes.status = 'RUNNING'",
    )
    if not runs:
        return 0
    import optuna
    from hydra_plugins.compress_optuna_sweeper.storage import make_storage

    study = optuna.load_study(study_name=study_name, storage=make_storage(storage_url))
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    closed = 0
    for run in runs:
        number = int(run.data.tags.get(M.TAG_TRIAL, -1))
        if states.get(number) != optuna.trial.TrialState.RUNNING:
            client.set_tag(run.info.run_id, "error_message", "the trial's process died before it finished")
            client.set_terminated(run.info.run_id, "KILLED")
            closed += 1
    return closed
