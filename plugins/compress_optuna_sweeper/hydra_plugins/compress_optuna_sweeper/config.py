"""The sweeper's config schema: the released plugin's keys, plus objectives and a failure budget."""


from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

# The trial's identity reaches every job, whatever the app's config: the sweeper sets these
# environment variables for the job (hydra.job.env_set), and `${optuna:trial_number}`,
# `${optuna:study_name}`, `${optuna:storage}` read them (None outside a sweep).
TRIAL_ENV = {"study_name": "OPTUNA_STUDY_NAME", "trial_number": "OPTUNA_TRIAL_NUMBER", "storage": "OPTUNA_STORAGE"}


def _optuna_resolver(key: str):
    import os

    if key not in TRIAL_ENV:
        raise ValueError(f"${{optuna:{key}}}: allowed {', '.join(TRIAL_ENV)}")
    value = os.environ.get(TRIAL_ENV[key]) or None
    return int(value) if key == "trial_number" and value is not None else value


if not OmegaConf.has_resolver("optuna"):
    OmegaConf.register_new_resolver("optuna", _optuna_resolver)


@dataclass
class CompressOptunaSweeperConf:
    # the sampler group, as the released plugin's: `override hydra/sweeper/sampler: grid` (tpe by default)
    defaults: List[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])
    _target_: str = "hydra_plugins.compress_optuna_sweeper.sweeper.CompressOptunaSweeper"
    _recursive_: bool = False  # the sweeper instantiates the sampler itself (it reseeds it on resume)
    # a sampler config with _target_ (optuna.samplers.NSGAIISampler, TPESampler, RandomSampler ...), from the
    # hydra/sweeper/sampler group or written out
    sampler: Dict[str, Any] = field(default_factory=dict)
    # "minimize" / "maximize", or a list with one entry per objective
    direction: Any = "minimize"
    storage: Optional[str] = None  # sqlite:///..., postgresql://..., or journal:///path.log
    study_name: Optional[str] = None
    n_trials: int = 20  # total trials of the study, counting those of earlier runs (n_trials_scope)
    # study: n_trials is the study's total, a re-run continues it; run: n_trials more on each run (released)
    n_trials_scope: str = "study"
    # > 1 with a storage: that many processes share the study, each starting a trial when it is free;
    # without a storage: trials run one after another in this process (the released plugin's batches)
    n_jobs: int = 2
    # metric names picked from a task's returned dict, in the order of `direction`;
    # None when the task returns a float or a list of floats
    objectives: Optional[List[str]] = None
    # stop the study when more than this share of its finished trials failed (after min_trials_for_rate;
    # 0.0, the released default: at the first failure)
    max_failure_rate: float = 0.0
    min_trials_for_rate: int = 4
    # RDB storages: seconds between a running trial's heartbeats (0: none), how long without one
    # before the trial counts as dead (0: 3 intervals; a dead trial always runs again, uncounted),
    # and how often a trial that failed on its own runs again
    heartbeat_interval: int = 0
    grace_period: int = 0
    max_retry: int = 0
    # dotted path of a function called with each composed job config at the search space's
    # corners before the study is created or any job runs, or a list of them, cheapest first: each
    # runs over every corner before the next starts. An exception one raises ends the sweep with its
    # message on one line and exit status 2
    preflight: Optional[Any] = None
    # a table of this study's trials (a CSV with analysis.table's columns, committed as the study
    # grows): when the storage holds no trial of the study (a fresh machine), its trials are added
    # first, numbers kept, so that the study resumes where the table ends
    trials_table: Optional[str] = None
    # a sampled trial whose parameters equal a finished (or stopped) trial's is not run again: it is told
    # that trial's outcome, with user attribute repeat_of (samplers that breed from a population, such as
    # NSGA-II over mostly categorical spaces, re-draw a parent now and then). False: the released behaviour
    skip_repeats: bool = False
    # the console's running best per size class: the objective that is a file's size (None: no size
    # classes, the best value(s) only) and the classes' limits, in that objective's unit
    size_objective: Optional[str] = None
    size_classes: List[int] = field(default_factory=list)
    # dotted paths of classes built with the sweep's composed config; each may define
    # on_study_start(study), on_trial_end(study, trial) and on_study_end(study, error), called by the
    # main sweep process (e.g. compress.tracking.study_run.StudyRun: the study as a live MLflow run)
    callbacks: List[str] = field(default_factory=list)
    # key: override-grammar sweep, e.g. "interval(0.1, 1)", "choice(a, b)", "tag(log, interval(1e-4, 1))"
    params: Optional[Dict[str, str]] = None
    # deprecated (the released plugin's): {name: {type: int|float|categorical, low, high, step, log, choices}}
    search_space: Optional[Dict[str, Any]] = None
    # dotted path of fn(cfg, trial) called after each trial's suggestions: it may suggest more ('+key' for a key
    # new to the app's config), e.g. a bound that depends on another parameter
    custom_search_space: Optional[str] = None
    # single-objective studies: an Optuna pruner config (_target_: optuna.pruners.MedianPruner ...); jobs report
    # with hydra_plugins.compress_optuna_sweeper.report(value, step), which raises TrialPruned when told to
    pruner: Dict[str, Any] = field(default_factory=dict)  # empty: no pruner


ConfigStore.instance().store(
    group="hydra/sweeper", name="compress_optuna", node=CompressOptunaSweeperConf, provider="compress"
)

# the released plugin's sampler group: `override hydra/sweeper/sampler: grid`, or hydra/sweeper/sampler=random
# (Optuna 5 has no MOTPESampler: its TPESampler handles several objectives, so motpe is TPE)
SAMPLERS = {
    # Optuna 5 deprecates consider_prior, prior_weight, consider_magic_clip, consider_endpoints and
    # warn_independent_sampling, and changed multivariate's default: all left to Optuna, so that a seed
    # draws as plain Optuna does
    "tpe": {"_target_": "optuna.samplers.TPESampler", "seed": None, "n_startup_trials": 10, "n_ei_candidates": 24},
    "random": {"_target_": "optuna.samplers.RandomSampler", "seed": None},
    "cmaes": {"_target_": "optuna.samplers.CmaEsSampler", "seed": None, "x0": None, "sigma0": None,
              "independent_sampler": None, "warn_independent_sampling": True, "consider_pruned_trials": False,
              "restart_strategy": None, "inc_popsize": 2, "use_separable_cma": False, "source_trials": None},
    "nsgaii": {"_target_": "optuna.samplers.NSGAIISampler", "seed": None, "population_size": 50,
               "mutation_prob": None, "crossover_prob": 0.9, "swapping_prob": 0.5, "constraints_func": None},
    "motpe": {"_target_": "optuna.samplers.TPESampler", "seed": None, "n_startup_trials": 10,
              "n_ei_candidates": 24},
    "qmc": {"_target_": "optuna.samplers.QMCSampler", "seed": None, "qmc_type": "sobol", "scramble": False,
            "independent_sampler": None, "warn_asynchronous_seeding": True},
    "grid": {"_target_": "optuna.samplers.GridSampler", "_partial_": True},
}
for _name, _node in SAMPLERS.items():
    ConfigStore.instance().store(group="hydra/sweeper/sampler", name=_name, node=_node, provider="compress")
