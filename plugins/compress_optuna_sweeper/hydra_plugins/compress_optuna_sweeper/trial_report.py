"""Intermediate values from inside a job, for Optuna's pruners (single-objective studies).

    from hydra_plugins.compress_optuna_sweeper import report
    for epoch in range(epochs):
        ...
        report(val_loss, step=epoch)   # raises optuna.TrialPruned when the study's pruner says so

The job finds its trial from the environment the sweeper sets (`${optuna:...}`): in this process
(the basic launcher) the sweeper's own study object, elsewhere the study loaded from its storage,
with the configured pruner. Outside a sweep, `report` does nothing and returns False.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

import optuna

PRUNER_ENV = "OPTUNA_PRUNER"
_ACTIVE: dict = {}  # trial number -> (study, trial), set by the sweeper for in-process jobs
_LOADED: dict = {}


def pruner_override(study: optuna.Study, trial: optuna.Trial, pruner_cfg: Any) -> str:
    """The job's pruner in its environment (a job in another process builds its own from it); an
    in-process job reports to `trial` itself."""
    from omegaconf import OmegaConf

    activate(study, trial)
    pruner_json = json.dumps(OmegaConf.to_container(OmegaConf.create(pruner_cfg), resolve=True))
    return f"++hydra.job.env_set.{PRUNER_ENV}='{pruner_json}'"


def activate(study: optuna.Study, trial: optuna.Trial) -> None:
    _ACTIVE.clear()
    _ACTIVE[trial.number] = (study, trial)


def _trial() -> Optional[optuna.Trial]:
    from hydra_plugins.compress_optuna_sweeper.config import TRIAL_ENV

    number = os.environ.get(TRIAL_ENV["trial_number"])
    if not number:
        return None
    if int(number) in _ACTIVE:
        return _ACTIVE[int(number)][1]
    storage, name = os.environ.get(TRIAL_ENV["storage"]), os.environ.get(TRIAL_ENV["study_name"])
    if not storage:
        return None
    key = (storage, name)
    if key not in _LOADED:
        pruner = None
        if os.environ.get(PRUNER_ENV):
            from hydra.utils import instantiate

            pruner = instantiate(json.loads(os.environ[PRUNER_ENV]))
        _LOADED[key] = optuna.load_study(study_name=name, storage=storage, pruner=pruner)
    study = _LOADED[key]
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, int(number))
    return optuna.Trial(study, trial_id)


def report(value: float, step: int, **_: Any) -> bool:
    """Report `value` at `step`; raise optuna.TrialPruned when the pruner prunes the trial.
    Returns whether the value reached a study (False outside a sweep)."""
    trial = _trial()
    if trial is None:
        return False
    trial.report(float(value), int(step))
    if trial.should_prune():
        raise optuna.TrialPruned(f"pruned at step {step} (value {value:.6g})")
    return True
