"""Two conflicting objectives of two parameters (distances to two corners), returned as a tuple."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path="conf", config_name="multi_objective")
def two_corners(cfg: DictConfig):
    x, y = float(cfg.x), float(cfg.y)
    near_origin = x * x + y * y
    near_far_corner = (x - 4) ** 2 + (y - 3) ** 2
    return near_origin, near_far_corner


if __name__ == "__main__":
    two_corners()
