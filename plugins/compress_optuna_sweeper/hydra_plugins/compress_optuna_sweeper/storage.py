"""Where a study lives: storages from URLs (SQLite, PostgreSQL, journal files) with heartbeats, a
study opened safely by several workers at once, and the trial counts a resumed study goes by.
Public: the project (and its users) import these rather than the loop's private names."""

from __future__ import annotations

import random
import time
import warnings
from pathlib import Path
from typing import Any, List, Optional, Sequence

import optuna
from optuna.trial import TrialState

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def _creation_race(exc: Exception) -> bool:
    """Two workers creating the same tables or study at once (PostgreSQL: a unique violation)."""
    text = f"{type(exc).__name__} {exc}"
    return any(s in text for s in ("UniqueViolation", "IntegrityError", "duplicate key", "already exists"))


def open_study(name: str, storage_factory, directions: List[str], attempts: int = 5) -> optuna.Study:
    """Create or load the study; when another worker is creating the schema or the study at
    the same moment, wait a little and try again rather than fail."""
    for attempt in range(attempts):
        try:
            return optuna.create_study(
                study_name=name, storage=storage_factory(), directions=directions, load_if_exists=True,
                sampler=optuna.samplers.RandomSampler(),  # replaced by the caller once the study's size is known
            )
        except Exception as exc:  # noqa: BLE001 - re-raised unless it is the creation race
            if attempt == attempts - 1 or not _creation_race(exc):
                raise
            time.sleep(0.5 + random.random() * 2)
    raise AssertionError("unreachable")


def open_study_or_exit(name: str, url: Optional[str], heartbeat: Sequence[int], directions: List[str]) -> optuna.Study:
    """`open_study` on the storage at `url`; an unreachable or unusable storage is one line and exit 2."""
    import sys

    try:
        return open_study(name, lambda: make_storage(url, *heartbeat), directions)
    except Exception as exc:  # noqa: BLE001 - an unreachable or unusable storage
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        print(f"error: hydra.sweeper.storage={url}: cannot open the study ({detail})", file=sys.stderr)
        raise SystemExit(2) from None


def make_storage(url: Optional[str], heartbeat_interval: int = 0, grace_period: int = 0) -> Any:
    """An Optuna storage from a URL: journal:///path.log for a journal file, else an RDB URL.

    RDB storages get a heartbeat, so that a trial whose process was killed is found (no heartbeat
    for `grace_period` seconds); the sweeper marks it lost and runs it again (`retries`).
    """
    if url is None:
        return None
    if url.startswith("journal://"):
        path = Path(url[len("journal://"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    heartbeat = {}
    # SQLite: wait for a lock rather than fail with "database is locked" when workers share the file
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    with warnings.catch_warnings():  # the heartbeat API is marked experimental in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if heartbeat_interval > 0:
            heartbeat = {"heartbeat_interval": int(heartbeat_interval),
                         "grace_period": int(grace_period or 3 * heartbeat_interval)}
        return optuna.storages.RDBStorage(url, engine_kwargs=engine, **heartbeat)


def retried_numbers(trials: Sequence[optuna.trial.FrozenTrial]) -> set:
    """Numbers of failed trials that a later trial retries (they do not count against n_trials):
    every trial in a retry's history, so that a retry retried in its turn is not counted either."""
    numbers = set()
    for t in trials:
        if "failed_trial" in t.system_attrs:
            numbers.add(t.system_attrs["failed_trial"])
            numbers.update(t.system_attrs.get("retry_history", []))
    return numbers


def counted_trials(study: optuna.Study) -> int:
    """Trials that use up the budget: finished or running, less the failed ones being retried."""
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    return sum(t.state in (*FINISHED, TrialState.RUNNING) and t.number not in retried for t in trials)


def tell(study: optuna.Study, trial: optuna.Trial, *args: Any, **kwargs: Any) -> optuna.trial.FrozenTrial:
    """`study.tell`, except that a GridSampler's exhausted grid (it calls `study.stop()`, which only
    works inside `optimize`) is not an error: the trial is stored either way."""
    try:
        return study.tell(trial, *args, **kwargs)
    except RuntimeError as exc:
        if "Study.stop" not in str(exc):
            raise
        return study._storage.get_trial(trial._trial_id)
