"""What the sweep says on the console: short, rounded, and where the study stands.

The search space in one line (`student.width: 0.0625..0.5`, `quant.mode: {int8, qat}`), each
trial as "trial N of M" with its parameters rounded (not Hydra's launch line with the internal
overrides), and after each trial its result, the running best per size class when the study
measures bytes, and an estimate of the time left.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any, Dict, Sequence

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

log = logging.getLogger(__name__)
HYDRA_LAUNCH_LOGGER = "hydra._internal.core_plugins.basic_launcher"


def number(value: Any) -> str:
    """A figure rounded for reading: 4 significant digits, integers with thousands separators."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    return f"{value:.4g}"


def distribution(dist: BaseDistribution) -> str:
    if isinstance(dist, CategoricalDistribution):
        return "{" + ", ".join(str(c) for c in dist.choices) + "}"
    if isinstance(dist, (FloatDistribution, IntDistribution)):
        text = f"{number(dist.low)}..{number(dist.high)}"
        if dist.step not in (None, 1) or (isinstance(dist, FloatDistribution) and dist.step):
            text += f" step {number(dist.step)}"
        return text + (" (log)" if dist.log else "")
    return type(dist).__name__


def space_line(space: Dict[str, BaseDistribution]) -> str:
    return "; ".join(f"{k}: {distribution(d)}" for k, d in space.items())


def params_line(params: Dict[str, Any]) -> str:
    return " ".join(f"{k}={number(v)}" for k, v in params.items())


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def time_left(study: optuna.Study, remaining: int, n_jobs: int) -> str:
    """From the median duration of the study's finished trials; '' before the first one."""
    spans = sorted((t.datetime_complete - t.datetime_start).total_seconds()
                   for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
                   if t.datetime_complete and t.datetime_start)
    if not spans or remaining <= 0:
        return ""
    median = spans[len(spans) // 2]
    return f"about {duration(median * remaining / max(1, n_jobs))} left ({duration(median)} a trial)"


def best_by_size(study: optuna.Study, objectives: Sequence[str], directions: Sequence[str],
                 size_objective: str | None = None, size_classes: Sequence[int] = ()) -> str:
    """The best complete trial at or under each of `size_classes` (and overall), when the study
    maximizes one figure and measures `size_objective` (the sweeper's config names both); else the
    best value(s) so far."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return ""
    names = list(objectives or [f"value_{i}" for i in range(len(directions))])
    goal = next((i for i, d in enumerate(directions) if d == "maximize"), None)
    if size_objective in names and goal is not None:
        size = names.index(size_objective)
        parts = []
        for limit in (*sorted(size_classes), math.inf):
            fits = [t for t in complete if t.values[size] <= limit]
            label = "any size" if limit == math.inf else f"<= {limit // 1024} KB"
            if fits:
                best = max(fits, key=lambda t: t.values[goal])
                parts.append(f"{label} {number(best.values[goal])} (trial {best.number}, "
                             f"{number(int(best.values[size]))} B)")
            else:
                parts.append(f"{label} none yet")
        return f"best {names[goal]}: " + "; ".join(parts)
    if len(directions) == 1:
        best = study.best_trial
        return f"best {names[0]} {number(best.values[0])} (trial {best.number})"
    return f"{len(study.best_trials)} trial(s) on the front"


def result_line(values: Sequence[float], objectives: Sequence[str]) -> str:
    names = list(objectives or [f"value_{i}" for i in range(len(values))])
    return ", ".join(f"{k} {number(v)}" for k, v in zip(names, values))


class QuietLaunches(logging.Filter):
    """Drop Hydra's launch lines ("Launching 1 jobs locally", "#16 : <every override>"): the
    sweep prints its own "trial N of M" line with the searched parameters only."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Launching ") or message.lstrip().startswith("#")
                    or " is launching " in message or message.startswith(("Submitit '", "Ray is already running")))


# the launchers' own loggers (their "is launching 1 jobs" and "#N : overrides" lines)
LAUNCHER_LOGGERS = ("hydra_plugins.hydra_joblib_launcher._core", "hydra_plugins.hydra_ray_launcher._core",
                    "hydra_plugins.hydra_ray_launcher._launcher_util",
                    "hydra_plugins.hydra_submitit_launcher.submitit_launcher")


def quiet_hydra_launches() -> None:
    for name in (HYDRA_LAUNCH_LOGGER, *LAUNCHER_LOGGERS):
        logger = logging.getLogger(name)
        if not any(isinstance(f, QuietLaunches) for f in logger.filters):
            logger.addFilter(QuietLaunches())


def job_folder(config, number: int) -> str:
    """Where trial `number`'s job writes (its folder is named by the trial's number) and its log."""
    import copy
    from pathlib import Path

    from omegaconf import open_dict

    job = copy.deepcopy(config)
    with open_dict(job):
        job.hydra.job.num = number
    folder = Path(str(job.hydra.sweep.dir)) / str(job.hydra.sweep.subdir)
    return f"{folder} (log: {folder / (str(job.hydra.job.name) + '.log')})"


def elapsed(trial: optuna.trial.FrozenTrial) -> str:
    if trial.datetime_complete and trial.datetime_start:
        return duration((trial.datetime_complete - trial.datetime_start) / timedelta(seconds=1))
    return "?"


def progress(study: optuna.Study, n_trials: int, counted: int, n_jobs: int, objectives, directions,
             size_objective, size_classes) -> None:
    """Where the study stands after a trial: the running best and the time left."""
    best = best_by_size(study, objectives or [], directions, size_objective, size_classes)
    left = time_left(study, n_trials - counted, n_jobs)
    log.info("%s", "; ".join(x for x in (f"{counted} of {n_trials} trials", best, left) if x))
