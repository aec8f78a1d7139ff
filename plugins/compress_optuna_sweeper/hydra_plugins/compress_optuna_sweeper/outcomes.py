"""What a finished job means for its trial: COMPLETE with its objective values (every other
reported figure kept as a user attribute), PRUNED, or FAIL with its error kept; when the share
of failures ends the study; the front written beside the sweep's jobs; the objective values a
job returned; and a repeated trial told its earlier outcome (`skip_repeats`)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import optuna
from hydra.core.utils import JobStatus
from hydra_plugins.compress_optuna_sweeper.grammar import SweeperError
from hydra_plugins.compress_optuna_sweeper.retries import is_lost
from hydra_plugins.compress_optuna_sweeper.storage import FINISHED, tell
from omegaconf import OmegaConf
from optuna.trial import TrialState

log = logging.getLogger(__name__)


def record(study: optuna.Study, trial: optuna.Trial, ret: Any, objective_values: Callable[[Any], List[float]],
           objectives: Optional[List[str]]) -> None:
    """Tell the study how the job `ret` of `trial` ended."""
    if ret.status == JobStatus.COMPLETED:
        try:
            values = objective_values(ret.return_value)
        except SweeperError as exc:
            trial.set_user_attr("error", f"SweeperError: {exc}")
            tell(study, trial, state=TrialState.FAIL)
            log.warning("trial %d failed: %s", trial.number, exc)
            return
        for key, value in ret.return_value.items() if isinstance(ret.return_value, dict) else ():
            if isinstance(value, (int, float, str, bool, list)):
                trial.set_user_attr(str(key), value)  # every reported figure, kept on the trial
        frozen = tell(study, trial, values)
        from hydra_plugins.compress_optuna_sweeper.console import elapsed, result_line

        log.info("trial %d done in %s: %s", trial.number, elapsed(frozen), result_line(values, objectives))
        return
    error = ret._return_value  # the exception the job raised
    if isinstance(error, optuna.TrialPruned):
        trial.set_user_attr("pruned_reason", str(error)[:500])
        tell(study, trial, state=TrialState.PRUNED)
        log.info("trial %d pruned: %s", trial.number, error)
        return
    fail(study, trial, error)


def fail(study: optuna.Study, trial: optuna.Trial, error: BaseException) -> None:
    message = f"{type(error).__name__}: {error}".splitlines()[0][:500]
    trial.set_user_attr("error", message)
    tell(study, trial, state=TrialState.FAIL)
    log.warning("trial %d failed: %s", trial.number, message)


def check_failure_rate(study: optuna.Study, max_failure_rate: float, min_trials_for_rate: int) -> None:
    """Raise once more than `max_failure_rate` of the finished trials failed (counted from
    `min_trials_for_rate` finished trials on, or from the first failure when the rate is 0). A trial
    lost with its process (`retries.LOST`) did not fail: it is run again and not counted."""
    finished = [t for t in study.get_trials(deepcopy=False) if t.state in FINISHED and not is_lost(t)]
    failed = sum(t.state == TrialState.FAIL for t in finished)
    enough = len(finished) >= min_trials_for_rate or max_failure_rate == 0.0
    if failed and enough and failed / len(finished) > max_failure_rate:
        raise SweeperError(
            f"study {study.study_name}: {failed} of {len(finished)} trials failed, more than "
            f"max_failure_rate={max_failure_rate}; last error: "
            f"{[t for t in finished if t.state == TrialState.FAIL][-1].user_attrs.get('error')}"
        )


def write_results(study: optuna.Study, directions: List[str], objectives: Optional[List[str]],
                  sweep_dir: Path) -> None:
    """optimization_results.yaml: the front (or best trial), with the released plugin's keys too."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    results: Dict[str, Any] = {"name": "optuna", "study_name": study.study_name, "n_complete": len(complete)}
    if complete:
        best = study.best_trials if len(directions) > 1 else [study.best_trial]
        names = objectives or [f"value_{i}" for i in range(len(directions))]
        results["best_trials"] = [
            {"number": t.number, "params": dict(t.params), "values": dict(zip(names, t.values))} for t in best
        ]
        if len(directions) > 1:  # the released plugin's keys, beside ours
            results["solutions"] = [{"params": dict(t.params), "values": list(t.values)} for t in best]
        else:
            results["best_params"] = dict(best[0].params)
            results["best_value"] = best[0].values[0]
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
    log.info("%d trials on the front; written to %s", len(results.get("best_trials", [])),
             sweep_dir / "optimization_results.yaml")


def objective_values(value: Any, objectives: Optional[Sequence[str]], directions: Sequence[str]) -> List[float]:
    """The objective values a job returned: its dict's `objectives` in order, or its float(s)."""
    if objectives:
        if not isinstance(value, dict):
            raise SweeperError(f"the task returned {type(value).__name__}, objectives need a dict of metrics")
        missing = [k for k in objectives if k not in value]
        if missing:
            raise SweeperError(f"the task's metrics lack {missing}")
        values = [float(value[k]) for k in objectives]
    elif isinstance(value, (int, float)):
        values = [float(value)]
    else:
        values = [float(v) for v in value]
    if len(values) != len(directions):
        raise SweeperError(f"{len(values)} objective values for {len(directions)} directions")
    if not all(math.isfinite(v) for v in values):
        raise SweeperError(f"non-finite objective values {values}")
    return values


def told_as_repeat(study: optuna.Study, trial: optuna.Trial) -> bool:
    """`skip_repeats`: tell `trial` the outcome of an earlier finished or stopped trial with the
    same parameters (the lowest-numbered one), without running a job; False when there is none."""
    earlier = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
               if t.number != trial.number and t.params == trial.params]
    if not earlier:
        return False
    first = min(earlier, key=lambda t: t.number)
    trial.set_user_attr("repeat_of", first.number)
    if first.state == TrialState.COMPLETE:
        tell(study, trial, first.values)
    else:
        tell(study, trial, state=TrialState.PRUNED)
    log.info("trial %d repeats trial %d's parameters: told its outcome (%s), no job run", trial.number,
             first.number, first.state.name.lower())
    return True
