"""The ask / launch / tell loop. The rest has a module each: the grammar and search space (`grammar`),
the storage (`storage`), the sampler (`samplers`), the sweeper's settings (`settings`), the
preflight (`preflight`), the other processes (`workers`), what a finished job means for its trial
(`outcomes`), the callbacks (`callbacks`) and the console (`console`).

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
import sys
import threading
import warnings
from pathlib import Path
from typing import Any, Dict, List, MutableMapping, Optional, Sequence

import numpy as np
import optuna
from hydra.core.plugins import Plugins
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from hydra_plugins.compress_optuna_sweeper import launchers
from hydra_plugins.compress_optuna_sweeper.callbacks import Callbacks
from hydra_plugins.compress_optuna_sweeper.grammar import (  # noqa: F401 - re-exported
    SweeperError,
    _format_value,
    distribution_from_config,
    distribution_from_override,
    extend,
    search_space,
)
from hydra_plugins.compress_optuna_sweeper.outcomes import (
    check_failure_rate,
    fail,
    objective_values,
    record,
    told_as_repeat,
    write_results,
)
from hydra_plugins.compress_optuna_sweeper.preflight import run_preflight
from hydra_plugins.compress_optuna_sweeper.retries import fail_stale, mark_lost, retry_failure, wait_for_running
from hydra_plugins.compress_optuna_sweeper.samplers import grid_of, make_sampler
from hydra_plugins.compress_optuna_sweeper.settings import check_settings
from hydra_plugins.compress_optuna_sweeper.storage import (  # noqa: F401 - re-exported
    FINISHED,
    counted_trials,
    make_storage,
    open_study,
    retried_numbers,
    tell,
)
from hydra_plugins.compress_optuna_sweeper.workers import identity_overrides, start_workers
from omegaconf import DictConfig, OmegaConf
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
        space, fixed = search_space(self.params, self.search_space_cfg, arguments)
        self.grid = None
        if self._is_grid():
            self.grid = grid_of(space)
            size = int(np.prod([len(v) for v in self.grid.values()])) if self.grid else 1
            if self.n_trials > size:
                log.info("Updating num of trials to %d due to using GridSampler.", size)
                self.n_trials = size
        run_preflight(self.preflight, lambda overrides: self.hydra_context.config_loader.load_sweep_config(
            self.config, overrides), space, fixed)
        try:
            study = open_study(self.study_name, lambda: make_storage(self.storage_url, *self.heartbeat[:2]),
                               self.directions)
        except Exception as exc:  # noqa: BLE001 - an unreachable or unusable storage
            detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            print(f"error: hydra.sweeper.storage={self.storage_url}: cannot open the study ({detail})",
                  file=sys.stderr)
            raise SystemExit(2) from None
        if self.trials_table and not study.get_trials(deepcopy=False) and Path(self.trials_table).is_file():
            from hydra_plugins.compress_optuna_sweeper.table_resume import seed_study

            seed_study(study, self.trials_table, space, self.objectives)
        study.sampler = make_sampler(self.sampler_cfg, len(study.get_trials(deepcopy=False)), self.grid)
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
        self.parallel = not launchers.is_basic(self.launcher)
        if self.parallel:
            launchers.check_storage(self.launcher, self.storage_url)
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
            if self.parallel and self.n_jobs > 1:
                self._threads(study, space, fixed, returns)
            else:
                self._loop(study, space, fixed, returns)
        except KeyboardInterrupt as exc:
            self._interrupted(study, workers)
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

    def _threads(self, study: optuna.Study, space: Dict[str, BaseDistribution], fixed: List[str],
                 returns: List[Any]) -> None:
        """n_jobs trials at once through the launcher: each thread asks, launches one job and tells."""
        errors: List[BaseException] = []

        def run() -> None:
            try:
                self._loop(study, space, fixed, returns)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                errors.append(exc)
                self.stop.set()

        threads = [threading.Thread(target=run, name=f"trial-slot-{i}", daemon=True) for i in range(self.n_jobs)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):  # joined in steps, so that Ctrl-C reaches this thread
            for t in threads:
                t.join(timeout=0.5)
        if errors:
            raise errors[0]

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
            from hydra_plugins.compress_optuna_sweeper.trial_report import PRUNER_ENV, activate

            activate(study, trial)
            pruner_json = json.dumps(OmegaConf.to_container(OmegaConf.create(self.pruner_cfg), resolve=True))
            overrides.append(f"++hydra.job.env_set.{PRUNER_ENV}='{pruner_json}'")
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

    def _interrupted(self, study: optuna.Study, workers: list) -> None:
        """Ctrl-C: stop the workers and jobs; their trials are marked lost at once (no heartbeat wait)."""
        import signal
        import time

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # one Ctrl-C is enough: a second must not cut this short
        self.stop.set()
        deadline = time.time() + 2  # workers in this terminal got the same Ctrl-C: a moment to act on it
        while time.time() < deadline and any(w.poll() is None for w in workers):
            time.sleep(0.1)
        for w in workers:
            if w.poll() is None:  # started elsewhere (a service), or deaf to the terminal's signal
                w.send_signal(signal.SIGINT)
        if self.parallel:
            launchers.stop_jobs(self.launcher)
        for number in sorted(self.own):
            trial = study.get_trials(deepcopy=False)[number]
            mark_lost(study, trial._trial_id, number, "interrupted")
        for w in workers:
            try:
                w.wait(timeout=15)
            except Exception:  # noqa: BLE001 - a worker that does not stop is killed; its trial goes stale
                w.kill()

    def _is_grid(self) -> bool:
        target = str((self.sampler_cfg or {}).get("_target_", ""))
        return target.endswith("GridSampler")

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
