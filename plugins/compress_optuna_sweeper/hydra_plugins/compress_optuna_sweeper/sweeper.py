"""Hydra's entry point for the sweeper; the work is in `_impl` so that discovery stays cheap."""

from __future__ import annotations

from typing import Any, List, Optional

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.compress_optuna_sweeper.config import CompressOptunaSweeperConf  # noqa: F401 (registers)
from omegaconf import DictConfig


class CompressOptunaSweeper(Sweeper):
    def __init__(self, **kwargs: Any) -> None:
        from hydra_plugins.compress_optuna_sweeper._impl import OptunaSweeperImpl

        self.impl = OptunaSweeperImpl(**kwargs)
        self.hydra_context: Optional[HydraContext] = None
        self.config: Optional[DictConfig] = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.impl.setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.launcher = self.impl.launcher

    def sweep(self, arguments: List[str]) -> Any:
        return self.impl.sweep(arguments)
