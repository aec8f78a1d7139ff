"""The ask / launch / tell loop (the grammar is in `grammar`, the storage in `storage`, the other
processes in `workers`, what a finished job means for its trial in `outcomes`).

Differences from the released hydra-optuna-sweeper, each asked for by its users:
- runs on Optuna 5 and SQLAlchemy 2;
- `n_trials` is the study's total, so re-running the same command continues the study,
  and job numbers are Optuna trial numbers, so output folders never collide on resume;
- a job that raises is told to Optuna as FAIL (with its error kept on the trial) and the
  study goes on, until the share of failures passes `max_failure_rate`;
- the job sees its study and trial through `${optuna:study_name}`, `${optuna:trial_number}` and
  `${optuna:storage}` (environment variables set for the job: no node needed in the app's config);
- the Pareto front / best trial is written to `optimization_results.yaml` in the sweep folder.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from pathlib import Path
from typing import Any, Dict, List, MutableMapping, Optional, Sequence

import numpy as np
import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from hydra_plugins.compress_optuna_sweeper.grammar import (  # noqa: F401 - re-exported
    SweeperError,
    _format_value,
    distribution_from_config,
    distribution_from_override,
)
from hydra_plugins.compress_optuna_sweeper.outcomes import check_failure_rate, fail, record, write_results
from hydra_plugins.compress_optuna_sweeper.storage import (  # noqa: F401 - re-exported
    FINISHED,
    counted_trials,
    make_storage,
    open_study,
    retried_numbers,
    tell,
)
from hydra_plugins.compress_optuna_sweeper.workers import WORKER_ENV, fail_stale, identity_overrides, start_workers
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages._heartbeat import get_heartbeat_thread

log = logging.getLogger(__name__)
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
        heartbeat_interval: int = 0,
        grace_period: int = 0,
        max_retry: int = 0,
        preflight: Optional[str] = None,
        trials_table: Optional[str] = None,
        callbacks: Optional[Sequence[str]] = None,
        search_space: Optional[MutableMapping[str, Any]] = None,
        custom_search_space: Optional[str] = None,
        pruner: Optional[Any] = None,
        n_trials_scope: str = "study",
        skip_repeats: bool = False,
        size_objective: Optional[str] = None,
        size_classes: Optional[Sequence[int]] = None,
    ) -> None:
        self.sampler_cfg = sampler
        self.directions = [direction] if isinstance(direction, str) else list(direction)
        self.storage_url = storage
        self.study_name = study_name
        self.n_trials = int(n_trials)
        self.n_jobs_given = int(n_jobs)
        self.n_jobs = max(1, int(n_jobs))
        self.params = dict(params or {})
        self.objectives = list(objectives) if objectives else None
        self.max_failure_rate = float(max_failure_rate)
        self.min_trials_for_rate = int(min_trials_for_rate)
        self.heartbeat = (int(heartbeat_interval), int(grace_period), int(max_retry))
        self.preflight = preflight
        self.trials_table = trials_table
        self.callback_paths = list(callbacks or [])
        self.callbacks: List[Any] = []
        self.search_space_cfg = search_space
        self.custom_search_space = None
        if custom_search_space:
            from hydra.utils import get_method

            self.custom_search_space = get_method(custom_search_space)
        self.pruner_cfg = pruner
        self.n_trials_scope = str(n_trials_scope)
        self.skip_repeats = bool(skip_repeats)
        self.size_objective = size_objective
        self.size_classes = [int(c) for c in (size_classes or [])]
        self.check_settings()
        if self.objectives and len(self.objectives) != len(self.directions):
            raise SweeperError(
                f"hydra.sweeper.objectives has {len(self.objectives)} names but direction has {len(self.directions)}"
            )

    def check_settings(self) -> None:
        """Refuse a setting out of range before any store is written: one line, exit 2."""
        import sys

        checks = [
            ("n_trials", self.n_trials, self.n_trials >= 1, "an integer >= 1 (the study's total)"),
            ("n_jobs", self.n_jobs_given, self.n_jobs_given >= 1, "an integer >= 1"),
            ("max_failure_rate", self.max_failure_rate, 0.0 <= self.max_failure_rate <= 1.0, "between 0 and 1"),
            ("min_trials_for_rate", self.min_trials_for_rate, self.min_trials_for_rate >= 1, "an integer >= 1"),
            ("heartbeat_interval", self.heartbeat[0], self.heartbeat[0] >= 0, ">= 0 seconds (0: no heartbeat)"),
            ("grace_period", self.heartbeat[1], self.heartbeat[1] >= 0, ">= 0 seconds"),
            ("max_retry", self.heartbeat[2], self.heartbeat[2] >= 0, "an integer >= 0"),
        ]
        for key, value, ok, allowed in checks:
            if not ok:
                print(f"error: hydra.sweeper.{key}={value}: must be {allowed}", file=sys.stderr)
                raise SystemExit(2)
        if self.n_trials_scope not in ("study", "run"):
            print(f"error: hydra.sweeper.n_trials_scope={self.n_trials_scope}: must be study (n_trials is the study's "
                  f"total) or run (n_trials more trials each run, as the released plugin)", file=sys.stderr)
            raise SystemExit(2)
        if self.pruner_cfg and len(self.directions) > 1:
            print("error: hydra.sweeper.pruner: Optuna prunes single-objective studies only "
                  f"(this one has {len(self.directions)} directions)", file=sys.stderr)
            raise SystemExit(2)
        if self.directions and any(d not in ("minimize", "maximize") for d in self.directions):
            print(f"error: hydra.sweeper.direction={self.directions}: each must be minimize or maximize",
                  file=sys.stderr)
            raise SystemExit(2)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )
        self.sweep_dir = Path(str(config.hydra.sweep.dir))

    # -- search space -------------------------------------------------------------------
    def search_space(self, arguments: List[str]) -> tuple[Dict[str, BaseDistribution], List[str]]:
        """Distributions from `params` (or the deprecated `search_space`) and command-line sweeps;
        plain values (in `params` or on the command line) are fixed for every trial, and a fixed
        value on the command line wins over a sweep of the same key."""
        parser = OverridesParser.create()
        space: Dict[str, BaseDistribution] = {}
        if self.search_space_cfg is not None and self.params:
            warnings.warn("Both hydra.sweeper.params and hydra.sweeper.search_space are configured.\n"
                          "Hydra will use hydra.sweeper.params for defining search space.", UserWarning)
        elif self.search_space_cfg is not None:
            warnings.warn("`hydra.sweeper.search_space` is deprecated and will be removed in the next major release. "
                          "Please configure with `hydra.sweeper.params`.", UserWarning)
            for key, spec in dict(self.search_space_cfg).items():
                space[str(key)] = distribution_from_config(str(key), spec)
        fixed: List[str] = []
        for key, text in self.params.items():
            (override,) = parser.parse_overrides([f"{key}={text}"])
            if override.is_sweep_override():
                space[override.get_key_element()] = distribution_from_override(override)
            else:  # a plain value in params is fixed for every trial, as in the released plugin
                fixed.append(override.input_line)
                space.pop(override.get_key_element(), None)
        for override in parser.parse_overrides(arguments):
            if override.is_sweep_override():
                space[override.get_key_element()] = distribution_from_override(override)
            else:
                fixed.append(override.input_line)
                space.pop(override.get_key_element(), None)  # a fixed value on the command line wins
        return space, fixed

    def make_sampler(self, n_existing: int) -> Optional[optuna.samplers.BaseSampler]:
        """The configured sampler; on a resumed study its seed is offset by the number of
        trials already there, so a seeded sampler does not replay the first run's draws."""
        if not self.sampler_cfg:
            return None
        cfg = OmegaConf.create(OmegaConf.to_container(self.sampler_cfg, resolve=True)
                               if isinstance(self.sampler_cfg, DictConfig) else dict(self.sampler_cfg))
        if n_existing and cfg.get("seed") is not None:
            cfg.seed = int(cfg.seed) + n_existing
        cfg = self._without_group_leftovers(cfg)
        sampler = instantiate(cfg)
        if callable(sampler) and not isinstance(sampler, optuna.samplers.BaseSampler):  # grid: a partial
            sampler = sampler(self.grid)
        return sampler

    @staticmethod
    def _without_group_leftovers(cfg: DictConfig) -> DictConfig:
        """A sampler written out with its own `_target_` is merged over the group's default (tpe):
        drop the keys the target does not take that still hold the tpe default's values (a key the
        user set, a typo included, stays and fails loudly)."""
        import inspect

        from hydra.utils import get_class
        from hydra_plugins.compress_optuna_sweeper.config import SAMPLERS

        try:
            accepted = set(inspect.signature(get_class(str(cfg._target_)).__init__).parameters)
        except Exception:  # noqa: BLE001 - instantiate will say what is wrong
            return cfg
        tpe = SAMPLERS["tpe"]
        keep = {k: v for k, v in cfg.items() if k.startswith("_") or k in accepted
                or not (k in tpe and v == tpe[k])}
        return OmegaConf.create(keep)

    @staticmethod
    def grid_of(space: Dict[str, BaseDistribution]) -> Dict[str, List[Any]]:
        """The grid a GridSampler walks, as the released plugin builds it: a categorical's choices, a
        stepped range's values from low, stop excluded; anything continuous is refused."""
        grid: Dict[str, List[Any]] = {}
        for key, dist in space.items():
            if isinstance(dist, CategoricalDistribution):
                grid[key] = list(dist.choices)
            elif isinstance(dist, (IntDistribution, FloatDistribution)) and dist.step is not None and not dist.log:
                count = int((dist.high - dist.low) // dist.step)
                grid[key] = [dist.low + i * dist.step for i in range(count)]
            else:
                raise SweeperError(f"{key}: GridSampler only supports discrete distributions (choice, range)")
        return grid

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
    def corner_overrides(self, space: Dict[str, BaseDistribution], fixed: List[str]) -> List[List[str]]:
        """Override lists that put each parameter, in turn, at each end (or each choice) of its
        range, the others at their first value: enough to find any out-of-range bound."""
        def ends(dist: BaseDistribution) -> List[Any]:
            if isinstance(dist, CategoricalDistribution):
                return list(dist.choices)
            return [dist.low, dist.high]

        base = {k: ends(d)[0] for k, d in space.items()}
        batches = [dict(base)]
        for key, dist in space.items():
            for value in ends(dist)[1:]:
                batches.append({**base, key: value})
        return [fixed + [f"{k}={_format_value(v)}" for k, v in b.items()] for b in batches]

    def run_preflight(self, space: Dict[str, BaseDistribution], fixed: List[str]) -> None:
        """Compose and check the jobs' configs before anything is stored; exit 2 on a bad value."""
        if not self.preflight:
            return
        module_name, _, func_name = self.preflight.rpartition(".")
        import importlib
        import sys

        check = getattr(importlib.import_module(module_name), func_name)
        for overrides in self.corner_overrides(space, fixed):
            job_cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            try:
                check(job_cfg)
            except Exception as exc:  # noqa: BLE001 - the check decides what is wrong
                print(f"error: {exc}".splitlines()[0], file=sys.stderr)
                raise SystemExit(2) from None

    def sweep(self, arguments: List[str]) -> List[Any]:
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say where the study is
        space, fixed = self.search_space(arguments)
        self.grid = None
        if self._is_grid():
            self.grid = self.grid_of(space)
            size = int(np.prod([len(v) for v in self.grid.values()])) if self.grid else 1
            if self.n_trials > size:
                log.info("Updating num of trials to %d due to using GridSampler.", size)
                self.n_trials = size
        self.run_preflight(space, fixed)
        try:
            study = open_study(self.study_name, lambda: make_storage(self.storage_url, *self.heartbeat), self.directions)
        except Exception as exc:  # noqa: BLE001 - an unreachable or unusable storage
            import sys

            detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            print(f"error: hydra.sweeper.storage={self.storage_url}: cannot open the study ({detail})",
                  file=sys.stderr)
            raise SystemExit(2) from None
        if self.trials_table and not study.get_trials(deepcopy=False) and Path(self.trials_table).is_file():
            from hydra_plugins.compress_optuna_sweeper.table_resume import seed_study

            seed_study(study, self.trials_table, space, self.objectives)
        study.sampler = self.make_sampler(len(study.get_trials(deepcopy=False)))
        if self.pruner_cfg:
            study.pruner = instantiate(OmegaConf.create(OmegaConf.to_container(self.pruner_cfg, resolve=True)
                                                        if isinstance(self.pruner_cfg, DictConfig)
                                                        else dict(self.pruner_cfg)))
        if self.n_trials_scope == "run":  # the released plugin's count: n_trials more on every run
            self.n_trials += counted_trials(study)
        if self.objectives:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(self.objectives)
        workers = start_workers(self.n_jobs, self.storage_url, self.sweep_dir)
        fail_stale(study)
        self._start_callbacks(study)
        from hydra_plugins.compress_optuna_sweeper import console

        console.quiet_hydra_launches()
        log.info("study %s (%s): %d of %d trials done or running", study.study_name,
                 self.storage_url or "in memory", counted_trials(study), self.n_trials)
        log.info("space: %s", console.space_line(space))
        if fixed:
            log.info("fixed: %s", " ".join(fixed))
        returns: List[Any] = []
        try:
            self._loop(study, space, fixed, returns)
        except BaseException as exc:
            self._call("on_study_end", study, exc)
            raise
        failed_workers = [w.pid for w in workers if w.wait() != 0]
        write_results(study, self.directions, self.objectives, self.sweep_dir)
        self._call("on_study_end", study, None)
        if failed_workers:
            raise SweeperError(f"worker process(es) {failed_workers} ended with an error; see their logs in "
                               f"{self.sweep_dir}")
        return returns

    def _start_callbacks(self, study: optuna.Study) -> None:
        """Build the configured callbacks (main process only: workers share its study)."""
        import importlib
        import os

        if os.environ.get(WORKER_ENV):
            return
        for path in self.callback_paths:
            module_name, _, name = path.rpartition(".")
            self.callbacks.append(getattr(importlib.import_module(module_name), name)(self.config))
        self._call("on_study_start", study)

    def _call(self, hook: str, *args: Any) -> None:
        """A callback's failure is logged, never the end of the study."""
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is None:
                continue
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - bookkeeping must not stop the trials
                log.warning("%s.%s failed: %s", type(cb).__name__, hook, f"{type(exc).__name__}: {exc}"[:300])

    def _loop(self, study: optuna.Study, space: Dict[str, BaseDistribution], fixed: List[str],
              returns: List[Any]) -> None:
        from hydra_plugins.compress_optuna_sweeper import console

        while counted_trials(study) < self.n_trials:
            with warnings.catch_warnings():  # heartbeats work with ask/tell too: we run the thread ourselves
                warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
                trial = study.ask(fixed_distributions=space)
            if self.custom_search_space is not None:
                self._extend(trial, fixed)
            if self.skip_repeats and self._told_as_repeat(study, trial):
                continue
            overrides = fixed + [f"{k}={_format_value(v)}" for k, v in trial.params.items()] + identity_overrides(
                study.study_name, trial.number, self.storage_url)
            log.info("trial %d (%d of %d): %s", trial.number, counted_trials(study), self.n_trials,
                     console.params_line(trial.params))
            if self.pruner_cfg:
                from hydra_plugins.compress_optuna_sweeper.trial_report import PRUNER_ENV, activate

                activate(study, trial)
                pruner_json = json.dumps(OmegaConf.to_container(OmegaConf.create(self.pruner_cfg), resolve=True))
                overrides.append(f"++hydra.job.env_set.{PRUNER_ENV}='{pruner_json}'")
            try:
                with get_heartbeat_thread(trial._trial_id, study._storage):
                    (ret,) = self.launcher.launch([tuple(overrides)], initial_job_idx=trial.number)
            except Exception as exc:  # noqa: BLE001 - the job never ran (e.g. its config no longer composes)
                fail(study, trial, exc)
                self._check_failure_rate(study)
                continue
            returns.append(ret)
            record(study, trial, ret, self._objective_values, self.objectives)
            self._progress(study)
            self._call("on_trial_end", study, study._storage.get_trial(trial._trial_id))
            self._check_failure_rate(study)
            fail_stale(study)  # before the next trial is asked for

    def _told_as_repeat(self, study: optuna.Study, trial: optuna.Trial) -> bool:
        """`skip_repeats`: tell `trial` the outcome of an earlier finished or stopped trial with the
        same parameters (the lowest-numbered one), without running a job; False when there is none."""
        from optuna.trial import TrialState

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
        self._progress(study)
        return True

    def _is_grid(self) -> bool:
        target = str((self.sampler_cfg or {}).get("_target_", ""))
        return target.endswith("GridSampler")

    def _extend(self, trial: optuna.Trial, fixed: List[str]) -> None:
        """`custom_search_space(cfg, trial)`: the user's function suggests more parameters (a key new
        to the app's config as '+key'); a parameter also fixed on the command line is an error."""
        for line in fixed:
            key = line.split("=", 1)[0]
            trial.set_user_attr(key, line.split("=", 1)[1] if "=" in line else None)
        self.custom_search_space(self.config, trial)
        overlap = set(trial.params) & {line.split("=", 1)[0] for line in fixed}
        if overlap:
            raise SweeperError(f"Overlapping fixed parameters and search space parameters found! {sorted(overlap)}")

    def _check_failure_rate(self, study: optuna.Study) -> None:
        check_failure_rate(study, self.max_failure_rate, self.min_trials_for_rate)

    def _progress(self, study: optuna.Study) -> None:
        """Where the study stands after a trial: the running best and the time left."""
        from hydra_plugins.compress_optuna_sweeper import console

        best = console.best_by_size(study, self.objectives or [], self.directions, self.size_objective,
                                    self.size_classes)
        left = console.time_left(study, self.n_trials - counted_trials(study), self.n_jobs)
        line = "; ".join(x for x in (f"{counted_trials(study)} of {self.n_trials} trials", best, left) if x)
        log.info("%s", line)
