"""The ask / launch / tell loop. The rest has a module each: the grammar and search space (`grammar`),
the storage (`storage`), the sampler (`samplers`), the sweeper's settings (`settings`), the
preflight (`preflight`), the other processes (`workers`), trials at once through a launcher
(`launchers`), trials run again (`retries`), Ctrl-C (`interrupts`), what a finished job means for
its trial (`outcomes`), the callbacks (`callbacks`) and the console (`console`).

Differences from the released hydra-optuna-sweeper, each asked for by its users:
- runs on Optuna 5 and SQLAlchemy 2;
- `n_trials` is the study's total, so re-running the same command continues the study,
  and job numbers are Optuna trial numbers, so output folders never collide on resume;
- a job that raises is told to Optuna as FAIL (with its error kept on the trial) and the
  study goes on, until the share of failures passes `max_failure_rate`;
- the job sees its study and trial through `${optuna:study_name}`, `${optuna:trial_number}` and
  `${optuna:storage}` (environment variables set for the job: no node needed in the app's config);
- the Pareto front / best trial is written to `optimization_results.yaml` in the sweep folder;
- `n_jobs` trials run at once through any launcher (the released plugin's batches wait for their
  slowest job and lose every result when one job dies), and a kill or Ctrl-C never shortens a study.
"""

from __future__ import annotations

import logging
import sys
import threading
import warnings
from pathlib import Path
from typing import Any, Dict, List, MutableMapping, Optional, Sequence

import optuna
from hydra.core.plugins import Plugins
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.compress_optuna_sweeper import launchers
from hydra_plugins.compress_optuna_sweeper.callbacks import Callbacks
from hydra_plugins.compress_optuna_sweeper.grammar import SweeperError, _format_value, extend, search_space
from hydra_plugins.compress_optuna_sweeper.interrupts import stop_everything
from hydra_plugins.compress_optuna_sweeper.outcomes import (
    check_failure_rate,
    fail,
    objective_values,
    record,
    told_as_repeat,
    write_results,
)
from hydra_plugins.compress_optuna_sweeper.preflight import run_preflight
from hydra_plugins.compress_optuna_sweeper.retries import fail_stale, retry_failure, wait_for_running
from hydra_plugins.compress_optuna_sweeper.samplers import grid_and_size, make_pruner, make_sampler
from hydra_plugins.compress_optuna_sweeper.settings import check_settings
from hydra_plugins.compress_optuna_sweeper.storage import counted_trials, open_study_or_exit
from hydra_plugins.compress_optuna_sweeper.workers import identity_overrides, start_workers
from omegaconf import DictConfig
from optuna.distributions import BaseDistribution
from optuna.storages._heartbeat import get_heartbeat_thread
from optuna.trial import TrialState

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
        preflight: Optional[Any] = None,  # a dotted path, or a list of them (preflight.py)
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
        self.callbacks = Callbacks(list(callbacks or []))
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
        check_settings(self.n_trials, self.n_jobs_given, self.max_failure_rate, self.min_trials_for_rate,
                       self.heartbeat, self.n_trials_scope, self.pruner_cfg, self.directions)
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

    # -- the loop -------------------------------------------------------------------------
    def sweep(self, arguments: List[str]) -> List[Any]:
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say where the study is
        self.parallel = not launchers.is_basic(self.launcher)
        if self.parallel:  # before any store is written
            launchers.check(self.launcher, self.storage_url)
        space, fixed = search_space(self.params, self.search_space_cfg, arguments)
        self.grid, self.n_trials = grid_and_size(space, self.sampler_cfg, self.n_trials)
        run_preflight(self.preflight, lambda overrides: self.hydra_context.config_loader.load_sweep_config(
            self.config, overrides), space, fixed)
        study = open_study_or_exit(self.study_name, self.storage_url, self.heartbeat[:2], self.directions)
        if self.trials_table and not study.get_trials(deepcopy=False) and Path(self.trials_table).is_file():
            from hydra_plugins.compress_optuna_sweeper.table_resume import seed_study

            seed_study(study, self.trials_table, space, self.objectives)
        study.sampler = make_sampler(self.sampler_cfg, len(study.get_trials(deepcopy=False)), self.grid)
        if self.pruner_cfg:
            study.pruner = make_pruner(self.pruner_cfg)
        if self.n_trials_scope == "run":  # the released plugin's count: n_trials more on every run
            self.n_trials += counted_trials(study)
        if self.objectives:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(self.objectives)
        if self.parallel:
            launchers.prepare(self.launcher, self.n_jobs)
        workers = [] if self.parallel else start_workers(self.n_jobs, self.storage_url, self.sweep_dir)
        fail_stale(study)
        self.callbacks.start(study, self.config)
        from hydra_plugins.compress_optuna_sweeper import console

        console.quiet_hydra_launches()
        log.info("study %s (%s): %d of %d trials done or running", study.study_name,
                 self.storage_url or "in memory", counted_trials(study), self.n_trials)
        log.info("space: %s", console.space_line(space))
        if fixed:
            log.info("fixed: %s", " ".join(fixed))
        returns: List[Any] = []
        self.own: set = set()  # the trials this process is running (its threads' included)
        self.ask_lock, self.stop = threading.Lock(), threading.Event()
        try:
            if self.parallel and self.n_jobs > 1:  # n_jobs slots, each asking, launching one job and telling
                launchers.run_slots(self.n_jobs, lambda: self._loop(study, space, fixed, returns), self.stop)
            else:
                self._loop(study, space, fixed, returns)
        except KeyboardInterrupt as exc:
            stop_everything(study, self.own, workers, self.launcher if self.parallel else None, self.stop)
            self.callbacks.call("on_study_end", study, exc)
            print("error: interrupted: the running trials are marked lost and run again on the next run",
                  file=sys.stderr)
            raise SystemExit(130) from None
        except BaseException as exc:
            self.callbacks.call("on_study_end", study, exc)
            raise
        failed_workers = [w.pid for w in workers if w.wait() != 0]
        write_results(study, self.directions, self.objectives, self.sweep_dir)
        self.callbacks.call("on_study_end", study, None)
        if failed_workers:
            raise SweeperError(f"worker process(es) {failed_workers} ended with an error; see their logs in "
                               f"{self.sweep_dir}")
        return returns

    def _loop(self, study: optuna.Study, space: Dict[str, BaseDistribution], fixed: List[str],
              returns: List[Any]) -> None:
        """Trials until the study's count is reached and no trial it counts runs elsewhere."""
        poll = min(5.0, max(0.5, self.heartbeat[0] / 2))
        while not self.stop.is_set():
            while not self.stop.is_set():
                with self.ask_lock:  # the count and the ask together: threads never start one too many
                    if counted_trials(study) >= self.n_trials:
                        break
                    with warnings.catch_warnings():  # heartbeats work with ask/tell: we run the thread ourselves
                        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
                        trial = study.ask(fixed_distributions=space)
                    self.own.add(trial.number)
                self._trial(study, trial, fixed, returns)
                self.own.discard(trial.number)  # kept on an interrupt: the handler marks it lost
            if self.stop.is_set() or not wait_for_running(study, self.own, poll, self.heartbeat[1]):
                return

    def _trial(self, study: optuna.Study, trial: optuna.Trial, fixed: List[str], returns: List[Any]) -> None:
        from hydra_plugins.compress_optuna_sweeper import console

        if self.custom_search_space is not None:
            extend(trial, fixed, self.custom_search_space, self.config)
        if self.skip_repeats and told_as_repeat(study, trial):
            self._progress(study)
            return
        overrides = fixed + [f"{k}={_format_value(v)}" for k, v in trial.params.items()] + identity_overrides(
            study.study_name, trial.number, self.storage_url)
        log.info("trial %d (%d of %d): %s", trial.number, counted_trials(study), self.n_trials,
                 console.params_line(trial.params))
        if self.parallel:
            log.info("trial %d: job folder %s", trial.number, console.job_folder(self.config, trial.number))
        if self.pruner_cfg:
            from hydra_plugins.compress_optuna_sweeper.trial_report import pruner_override

            overrides.append(pruner_override(study, trial, self.pruner_cfg))
        try:
            with get_heartbeat_thread(trial._trial_id, study._storage):
                (ret,) = self.launcher.launch([tuple(overrides)], initial_job_idx=trial.number)
        except Exception as exc:  # noqa: BLE001 - the job never ran, or its process died (a launcher's job)
            fail(study, trial, exc)
        else:
            returns.append(ret)
            record(study, trial, ret, lambda value: objective_values(value, self.objectives, self.directions),
                   self.objectives)
            self._progress(study)
            self.callbacks.call("on_trial_end", study, study._storage.get_trial(trial._trial_id))
        frozen = study._storage.get_trial(trial._trial_id)
        if frozen.state == TrialState.FAIL:
            retry_failure(study, frozen, self.heartbeat[2])
        self._check_failure_rate(study)
        fail_stale(study)  # before the next trial is asked for

    def _check_failure_rate(self, study: optuna.Study) -> None:
        check_failure_rate(study, self.max_failure_rate, self.min_trials_for_rate)

    def _progress(self, study: optuna.Study) -> None:
        from hydra_plugins.compress_optuna_sweeper import console

        console.progress(study, self.n_trials, counted_trials(study), self.n_jobs, self.objectives, self.directions,
                         self.size_objective, self.size_classes)
