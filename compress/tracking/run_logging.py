"""What a trial's and a finalist's MLflow runs hold: a run per trial (nested under its study's run),
its params, datasets, per-epoch curves, files and outcome; a run per finalist (`role=finalist`)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from omegaconf import OmegaConf

from compress.core import metrics as M
from compress.measure import machine
from compress.tracking.runs import close_orphaned_runs, connect, git_commit, run_in_store, study_parent_run

log = logging.getLogger(__name__)


def flat_params(cfg) -> dict[str, str]:
    """The resolved config as dotted keys (study bookkeeping left out)."""
    container = OmegaConf.to_container(cfg, resolve=True)
    out: dict[str, str] = {}

    def walk(prefix: str, node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        else:
            out[prefix] = str(node)[:500]

    walk("", {k: v for k, v in container.items() if k not in ("study", "hydra")})
    return out


def log_datasets(splits, fraction: float) -> None:
    """The three splits as MLflow dataset inputs of the active run (the UI's Dataset column):
    name (the data's), digest (the raw files' sha256 with the split's image indices), source folder, shapes."""
    import mlflow
    import mlflow.data

    def digest(*parts: bytes) -> str:
        h = hashlib.sha256(splits.fingerprint.encode())
        for part in parts:
            h.update(part)
        return h.hexdigest()[:16]

    index = {"train": splits.train_index, "validation": splits.val_index, "test": None}
    arrays = {"train": (splits.x_train, splits.y_train), "validation": (splits.x_val, splits.y_val),
              "test": (splits.x_test, splits.y_test)}
    contexts = {"train": "training", "validation": "validation", "test": "testing"}
    # Fashion-MNIST's names as they always were; other data is named by its kind and digest
    base = "fashion-mnist" if splits.kind == "fashion_mnist" else f"{splits.kind}-{splits.fingerprint[:8]}"
    for split, (x, y) in arrays.items():
        idx = index[split]
        key = idx.astype("int64").tobytes() if idx is not None else f"test:{len(y)}".encode()
        with warnings.catch_warnings():  # a local folder reads as two kinds of source: either is right
            warnings.simplefilter("ignore", UserWarning)
            ds = mlflow.data.from_numpy(x, source=str(splits.source), targets=y, name=f"{base}-{split}",
                                        digest=digest(key))
        mlflow.log_input(ds, context=contexts[split],
                         tags={"split": split, "images": str(len(y)), "fraction": f"{fraction:g}"})


@dataclass(frozen=True)
class TrialLog:
    """Where a trial is logged and under what, read from the config once: the tracking store (None
    with tracking off), the study and trial number the sweeper gave it, its config as flat params."""

    tracking: Any  # the tracking group, or None with tracking off
    study: str | None
    number: int | None
    storage: str | None
    params: dict[str, str]
    fraction: float

    @classmethod
    def of(cls, cfg) -> TrialLog:
        on = bool(cfg.tracking.enabled)
        return cls(cfg.tracking if on else None, cfg.study.study_name, cfg.study.trial_number, cfg.study.storage,
                   flat_params(cfg) if on else {}, float(cfg.data.fraction))

    @contextlib.contextmanager
    def run(self, teacher_sha: str, splits=None) -> Iterator[object]:
        """An MLflow run for the trial (None with tracking off): nested under its study's run when part
        of a study.

        An exception inside marks the run FAILED with the error's type and message as tags,
        then propagates (the sweeper records the Optuna trial as failed).
        """
        import mlflow
        import optuna

        if self.tracking is None:
            yield None
            return
        experiment_id = connect(self.tracking)
        study, number = self.study, self.number
        # the machine its latency ran on: int8 latency moves with the CPU's instruction set (measure/machine.py)
        tags = {M.TAG_ROLE: "trial", M.TAG_GIT: git_commit(), M.TAG_TEACHER: teacher_sha, **machine.record()}
        parent = None
        if study:
            parent = study_parent_run(experiment_id, study)
            closed = close_orphaned_runs(experiment_id, study, self.storage)
            if closed:
                log.warning("closed %d MLflow run(s) of trials whose process died", closed)
            tags.update({M.TAG_STUDY: study, M.TAG_TRIAL: str(number), "mlflow.parentRunId": parent})
        name = f"{study}-trial-{number}" if study else "single-trial"
        run = mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=tags)
        try:
            mlflow.log_params(self.params)
            if splits is not None:
                log_datasets(splits, self.fraction)
            yield run
        except BaseException as exc:
            if isinstance(exc, optuna.TrialPruned):
                mlflow.set_tags({M.TAG_OPTUNA_STATE: "PRUNED", "pruned_reason": str(exc)[:500]})
                mlflow.end_run(status="KILLED")
                raise
            mlflow.set_tags({"error_type": type(exc).__name__, "error_message": str(exc).splitlines()[0][:500]
                             if str(exc) else ""})
            mlflow.end_run(status="KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            raise
        else:
            mlflow.end_run(status="FINISHED")


def log_trial_outcome(results: dict, histories: list[dict], out_dir: Path, package: bool) -> None:
    """A finished trial's figures, per-epoch curves and files (`package`: its model.mlpackage too) in
    the active run."""
    import mlflow

    mlflow.log_metrics({k: float(v) for k, v in results.items()})
    log_history(histories)
    for name in ("model.tflite", "config.yaml", "student.keras"):
        mlflow.log_artifact(str(out_dir / name))
    if package:
        mlflow.log_artifacts(str(out_dir / "model.mlpackage"), artifact_path="model.mlpackage")


def log_stopped(epochs: tuple[dict, ...], seconds: float) -> None:
    """What a trial stopped early did: the epochs it trained and its time by phase, only training
    having run, so that its cost is in MLflow beside the finished trials'."""
    import mlflow

    times = {**dict.fromkeys(M.PHASE_TIMES, 0.0), M.TIME_TRAIN_S: seconds, M.TIME_TOTAL_S: seconds}
    mlflow.log_metrics({k: round(v, 3) for k, v in times.items()})
    log_history([{key: [e[key] for e in epochs] for key in epochs[0]}] if epochs else [])


def log_history(history: list[dict], start_step: int = 0) -> None:
    """Per-epoch curves of consecutive training phases, steps counted across phases."""
    import mlflow

    step = start_step
    for phase in history:
        for i in range(len(phase.get("loss", []))):
            values = {M.EPOCH_LOSS: phase["loss"][i]}
            if "accuracy" in phase:
                values[M.EPOCH_TRAIN_ACCURACY] = phase["accuracy"][i]
            if "val_accuracy" in phase:
                values[M.EPOCH_VAL_ACCURACY] = phase["val_accuracy"][i]
            mlflow.log_metrics(values, step=step)
            step += 1


def update_finalist(cfg, run_id, changed: dict, workdir: Path) -> None:
    """A finalist's run after its shipped file changed (`finalist_run.reship`): the new figures,
    its encoding tag and the new finalist.tflite."""
    import mlflow

    if not cfg.tracking.enabled or not isinstance(run_id, str) or not run_id:
        return
    connect(cfg.tracking)
    if not run_in_store(run_id):
        log.info("finalist run %s (from the finalists' table) is not in the store %s: its new figures are in the "
                 "table only", run_id, cfg.tracking.uri)
        return
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics({k: float(v) for k, v in changed.items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool)})
        mlflow.set_tag("ship_encoding", str(changed.get("ship_encoding")))
        mlflow.log_artifact(str(Path(workdir) / "finalist.tflite"))


def log_finalist(cfg, teacher_sha: str, study: str, search_trial: int, result: dict, histories: list[dict],
                 workdir: Path, splits=None) -> str | None:
    """A finalist as a nested run under its study's run (`role=finalist`, tagged with the search
    trial it retrained): its params, every numeric figure, its per-epoch curves and its files.
    Returns the run id (None with tracking off)."""
    import mlflow

    if not cfg.tracking.enabled:
        return None
    experiment_id = connect(cfg.tracking)
    parent = study_parent_run(experiment_id, study)
    tags = {M.TAG_ROLE: "finalist", M.TAG_STUDY: study, M.TAG_SEARCH_TRIAL: str(search_trial),
            M.TAG_TRIAL: str(search_trial), "mlflow.parentRunId": parent, M.TAG_GIT: git_commit(),
            M.TAG_TEACHER: teacher_sha, "ship_encoding": str(result.get("ship_encoding"))}
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{study}-finalist-{search_trial}-seed{cfg.seed}",
                          tags=tags) as run:
        mlflow.log_params(flat_params(cfg))
        if splits is not None:
            log_datasets(splits, float(cfg.data.fraction))
        mlflow.log_metrics({k: float(v) for k, v in result.items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool)})
        log_history(histories)
        for name in ("finalist.tflite", "model.tflite", "config.yaml", "student.keras"):
            mlflow.log_artifact(str(workdir / name))
        mlflow.log_artifacts(str(workdir / "finalist.mlpackage"), artifact_path="finalist.mlpackage")
        return run.info.run_id
