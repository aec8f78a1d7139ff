"""Hydra override grammar -> Optuna distributions, and the ask / launch / tell loop.

Differences from the released hydra-optuna-sweeper, each asked for by its users:
- runs on Optuna 5 and SQLAlchemy 2;
- `n_trials` is the study's total, so re-running the same command continues the study,
  and job numbers are Optuna trial numbers, so output folders never collide on resume;
- a job that raises is told to Optuna as FAIL (with its error kept on the trial) and the
  study goes on, until the share of failures passes `max_failure_rate`;
- the job sees its study and trial (`study.study_name`, `study.trial_number`, `study.storage`);
- the Pareto front / best trial is written to `optimization_results.yaml` in the sweep folder.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path
from typing import Any, Dict, List, MutableMapping, Optional, Sequence

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep, Transformer
from hydra.core.plugins import Plugins
from hydra.core.utils import JobStatus
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

log = logging.getLogger(__name__)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class SweeperError(Exception):
    """The sweep cannot go on (bad search space, too many failed trials)."""


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def distribution_from_override(override: Override) -> BaseDistribution:
    """choice / range / interval (optionally tagged log) as an Optuna distribution."""
    value = override.value()
    key = override.get_key_element()
    if not override.is_sweep_override():
        raise SweeperError(f"{key}: '{override.input_line}' is not a sweep (use choice, range or interval)")
    if override.is_choice_sweep():
        assert isinstance(value, ChoiceSweep)
        choices = [x for x in override.sweep_iterator(transformer=Transformer.encode)]
        return CategoricalDistribution(choices)
    if override.is_range_sweep():
        assert isinstance(value, RangeSweep)
        if value.shuffle:
            raise SweeperError(f"{key}: shuffle is not supported in a range sweep")
        if all(_is_int(x) for x in (value.start, value.stop, value.step)):
            return IntDistribution(int(value.start), int(value.stop) - int(value.step), step=int(value.step))
        return FloatDistribution(float(value.start), float(value.stop) - float(value.step), step=float(value.step))
    if override.is_interval_sweep():
        assert isinstance(value, IntervalSweep)
        log_scale = "log" in value.tags
        if "int" in value.tags:  # Hydra's interval() always yields floats; tag(int, ...) asks for ints
            return IntDistribution(int(value.start), int(value.end), log=log_scale)
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise SweeperError(f"{key}: unsupported sweep '{override.input_line}'")


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return repr(round(value, 10))
    return str(value)


def make_storage(url: Optional[str]) -> Any:
    """An Optuna storage from a URL: journal:///path.log for a journal file, else an RDB URL."""
    if url is None:
        return None
    if url.startswith("journal://"):
        path = Path(url[len("journal://"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True} if not url.startswith("sqlite") else None)


class OptunaSweeperImpl:
    def __init__(
        self,
        sampler: Any,
        direction: Any,
        storage: Optional[str],
        study_name: Optional[str],
        n_trials: int,
        n_jobs: int,
        params: Optional[MutableMapping[str, str]],
        objectives: Optional[Sequence[str]] = None,
        max_failure_rate: float = 1.0,
        min_trials_for_rate: int = 4,
    ) -> None:
        self.sampler_cfg = sampler
        self.directions = [direction] if isinstance(direction, str) else list(direction)
        self.storage_url = storage
        self.study_name = study_name
        self.n_trials = int(n_trials)
        self.n_jobs = max(1, int(n_jobs))
        self.params = dict(params or {})
        self.objectives = list(objectives) if objectives else None
        self.max_failure_rate = float(max_failure_rate)
        self.min_trials_for_rate = int(min_trials_for_rate)
        if self.objectives and len(self.objectives) != len(self.directions):
            raise SweeperError(
                f"hydra.sweeper.objectives has {len(self.objectives)} names but direction has {len(self.directions)}"
            )

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )
        self.sweep_dir = Path(str(config.hydra.sweep.dir))

    # -- search space -------------------------------------------------------------------
    def search_space(self, arguments: List[str]) -> tuple[Dict[str, BaseDistribution], List[str]]:
        """Distributions from `params` and command-line sweeps; fixed overrides pass through."""
        parser = OverridesParser.create()
        space: Dict[str, BaseDistribution] = {}
        for key, text in self.params.items():
            (override,) = parser.parse_overrides([f"{key}={text}"])
            space[override.get_key_element()] = distribution_from_override(override)
        fixed: List[str] = []
        for override in parser.parse_overrides(arguments):
            if override.is_sweep_override():
                space[override.get_key_element()] = distribution_from_override(override)
            else:
                fixed.append(override.input_line)
                space.pop(override.get_key_element(), None)  # a fixed value on the command line wins
        return space, fixed

    def _objective_values(self, value: Any) -> List[float]:
        if self.objectives:
            if not isinstance(value, dict):
                raise SweeperError(f"the task returned {type(value).__name__}, objectives need a dict of metrics")
            missing = [k for k in self.objectives if k not in value]
            if missing:
                raise SweeperError(f"the task's metrics lack {missing}")
            values = [float(value[k]) for k in self.objectives]
        elif isinstance(value, (int, float)):
            values = [float(value)]
        else:
            values = [float(v) for v in value]
        if len(values) != len(self.directions):
            raise SweeperError(f"{len(values)} objective values for {len(self.directions)} directions")
        if not all(math.isfinite(v) for v in values):
            raise SweeperError(f"non-finite objective values {values}")
        return values

    # -- the loop -------------------------------------------------------------------------
    def sweep(self, arguments: List[str]) -> List[Any]:
        space, fixed = self.search_space(arguments)
        sampler = self.sampler_cfg  # Hydra instantiates nested _target_ configs itself
        if sampler is not None and not isinstance(sampler, optuna.samplers.BaseSampler):
            sampler = instantiate(sampler)
        study = optuna.create_study(
            study_name=self.study_name,
            storage=make_storage(self.storage_url),
            sampler=sampler,
            directions=self.directions,
            load_if_exists=True,
        )
        if self.objectives:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(self.objectives)
        done = sum(t.state in FINISHED for t in study.get_trials(deepcopy=False))
        remaining = max(0, self.n_trials - done)
        log.info(
            "Study %s (%s): %d trials finished, %d to run; space: %s",
            study.study_name, self.storage_url or "in memory", done, remaining,
            ", ".join(f"{k}={v}" for k, v in space.items()),
        )
        returns: List[Any] = []
        while remaining > 0:
            batch = min(self.n_jobs, remaining)
            trials = [study.ask(fixed_distributions=space) for _ in range(batch)]
            for trial in trials:
                overrides = fixed + [f"{k}={_format_value(v)}" for k, v in trial.params.items()] + [
                    f"study.study_name={study.study_name}",
                    f"study.trial_number={trial.number}",
                ]
                if self.storage_url:
                    overrides.append(f"study.storage='{self.storage_url}'")
                (ret,) = self.launcher.launch([tuple(overrides)], initial_job_idx=trial.number)
                returns.append(ret)
                self._tell(study, trial, ret)
            remaining -= batch
            self._check_failure_rate(study)
        self._write_results(study)
        return returns

    def _tell(self, study: optuna.Study, trial: optuna.Trial, ret: Any) -> None:
        if ret.status == JobStatus.COMPLETED:
            try:
                values = self._objective_values(ret.return_value)
            except SweeperError as exc:
                trial.set_user_attr("error", f"SweeperError: {exc}")
                study.tell(trial, state=TrialState.FAIL)
                log.warning("trial %d failed: %s", trial.number, exc)
                return
            study.tell(trial, values)
            log.info("trial %d: %s", trial.number, dict(zip(self.objectives or ["value"] * len(values), values)))
            return
        error = ret._return_value  # the exception the job raised
        message = f"{type(error).__name__}: {error}".splitlines()[0][:500]
        trial.set_user_attr("error", message)
        study.tell(trial, state=TrialState.FAIL)
        log.warning("trial %d failed: %s", trial.number, message)

    def _check_failure_rate(self, study: optuna.Study) -> None:
        finished = [t for t in study.get_trials(deepcopy=False) if t.state in FINISHED]
        failed = sum(t.state == TrialState.FAIL for t in finished)
        if len(finished) >= self.min_trials_for_rate and failed / len(finished) > self.max_failure_rate:
            raise SweeperError(
                f"study {study.study_name}: {failed} of {len(finished)} trials failed, more than "
                f"max_failure_rate={self.max_failure_rate}; last error: "
                f"{[t for t in finished if t.state == TrialState.FAIL][-1].user_attrs.get('error')}"
            )

    def _write_results(self, study: optuna.Study) -> None:
        complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
        results: Dict[str, Any] = {"name": "optuna", "study_name": study.study_name, "n_complete": len(complete)}
        if complete:
            best = study.best_trials if len(self.directions) > 1 else [study.best_trial]
            names = self.objectives or [f"value_{i}" for i in range(len(self.directions))]
            results["best_trials"] = [
                {"number": t.number, "params": dict(t.params), "values": dict(zip(names, t.values))} for t in best
            ]
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(results), self.sweep_dir / "optimization_results.yaml")
        log.info("%d trials on the front; written to %s", len(results.get("best_trials", [])),
                 self.sweep_dir / "optimization_results.yaml")
