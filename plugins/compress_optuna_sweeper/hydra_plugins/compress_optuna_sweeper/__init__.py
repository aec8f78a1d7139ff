"""A Hydra sweeper that drives an Optuna 5 study (the released hydra-optuna-sweeper pins optuna<3)."""


def report(value: float, step: int) -> bool:
    """An intermediate value from inside a job, for the study's pruner (see trial_report)."""
    from hydra_plugins.compress_optuna_sweeper.trial_report import report as _report

    return _report(value, step)
