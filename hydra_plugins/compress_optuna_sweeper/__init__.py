"""A Hydra sweeper that drives an Optuna 5 study (the released hydra-optuna-sweeper pins optuna<3)."""
