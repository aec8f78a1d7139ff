"""The study's sampler, built from the sweeper's `sampler` config: seeded afresh on a resumed
study, the sampler group's leftovers dropped, and GridSampler's grid as the released plugin builds it."""

from __future__ import annotations

import inspect
from typing import Any, Dict, List, Optional

import optuna
from hydra.utils import get_class, instantiate
from hydra_plugins.compress_optuna_sweeper.config import SAMPLERS
from hydra_plugins.compress_optuna_sweeper.grammar import SweeperError
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution


def make_sampler(sampler_cfg: Any, n_existing: int, grid: Optional[Dict[str, List[Any]]] = None
                 ) -> Optional[optuna.samplers.BaseSampler]:
    """The configured sampler; on a resumed study its seed is offset by the number of
    trials already there, so a seeded sampler does not replay the first run's draws."""
    if not sampler_cfg:
        return None
    cfg = OmegaConf.create(OmegaConf.to_container(sampler_cfg, resolve=True)
                           if isinstance(sampler_cfg, DictConfig) else dict(sampler_cfg))
    if n_existing and cfg.get("seed") is not None:
        cfg.seed = int(cfg.seed) + n_existing
    sampler = instantiate(without_group_leftovers(cfg))
    if callable(sampler) and not isinstance(sampler, optuna.samplers.BaseSampler):  # grid: a partial
        sampler = sampler(grid)
    return sampler


def without_group_leftovers(cfg: DictConfig) -> DictConfig:
    """A sampler written out with its own `_target_` is merged over the group's default (tpe):
    drop the keys the target does not take that still hold the tpe default's values (a key the
    user set, a typo included, stays and fails loudly)."""
    try:
        accepted = set(inspect.signature(get_class(str(cfg._target_)).__init__).parameters)
    except Exception:  # noqa: BLE001 - instantiate will say what is wrong
        return cfg
    tpe = SAMPLERS["tpe"]
    keep = {k: v for k, v in cfg.items() if k.startswith("_") or k in accepted
            or not (k in tpe and v == tpe[k])}
    return OmegaConf.create(keep)


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


def grid_and_size(space: Dict[str, BaseDistribution], sampler_cfg: Any, n_trials: int):
    """(the grid, n_trials) for a GridSampler: the study is at most the grid's size; (None, n_trials) else."""
    import logging

    import numpy as np

    if not str((sampler_cfg or {}).get("_target_", "")).endswith("GridSampler"):
        return None, n_trials
    grid = grid_of(space)
    size = int(np.prod([len(v) for v in grid.values()])) if grid else 1
    if n_trials > size:
        logging.getLogger(__name__).info("Updating num of trials to %d due to using GridSampler.", size)
    return grid, min(n_trials, size)


def make_pruner(pruner_cfg: Any) -> Any:
    """The study's pruner from its config node (`_target_` and arguments)."""
    from hydra.utils import instantiate
    from omegaconf import DictConfig, OmegaConf

    plain = OmegaConf.to_container(pruner_cfg, resolve=True) if isinstance(pruner_cfg, DictConfig) else dict(pruner_cfg)
    return instantiate(OmegaConf.create(plain))
