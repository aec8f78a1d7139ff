"""A search space with a dependent parameter: z is drawn near x, and a parameter w that the app's
config does not have is added, both by the `custom_search_space` hook."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path="conf", config_name="custom_search_space")
def four_d_bowl(cfg: DictConfig) -> float:
    return sum(float(cfg[k]) ** 2 for k in ("w", "x", "y", "z"))


def widen(cfg: DictConfig, trial) -> None:
    """z within `max_z_difference_from_x` of the x the sampler chose; '+w' adds a key to the config."""
    centre, reach = trial.params["x"], float(cfg.max_z_difference_from_x)
    trial.suggest_float("z", centre - reach, centre + reach)
    trial.suggest_float("+w", 0.0, 1.0)


if __name__ == "__main__":
    four_d_bowl()
