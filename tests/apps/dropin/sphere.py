"""The released hydra-optuna-sweeper's sphere example, unchanged but for its sweeper line
(`override hydra/sweeper: compress_optuna`), plus a pruning variant that reports steps."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path="conf", config_name="sphere")
def sphere(cfg: DictConfig) -> float:
    x: float = cfg.x
    y: float = cfg.y
    if cfg.get("error", False):
        raise RuntimeError("cfg.error is True")
    if cfg.get("steps", 0):  # report a decreasing curve, so that a pruner has something to judge
        from hydra_plugins.compress_optuna_sweeper import report

        for step in range(int(cfg.steps)):
            report((x**2 + y**2) * (1 + 1 / (step + 1)), step)
    return x**2 + y**2


if __name__ == "__main__":
    sphere()
