"""A paraboloid to minimise, written as a Hydra user of the released hydra-optuna-sweeper would
write an app for it: its config only selects `hydra/sweeper: compress_optuna`. `error=true` makes
every job raise; `steps=N` reports a shrinking curve, so that a pruner has something to judge."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path="conf", config_name="sphere")
def paraboloid(cfg: DictConfig) -> float:
    if cfg.get("error", False):
        raise RuntimeError("cfg.error is True")
    value = float(cfg.x) ** 2 + float(cfg.y) ** 2
    for step in range(int(cfg.get("steps", 0))):
        from hydra_plugins.compress_optuna_sweeper import report

        report(value + 1.0 / (step + 1), step)
    return value


if __name__ == "__main__":
    paraboloid()
