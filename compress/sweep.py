"""`python -m compress.sweep -m`: the Optuna study over distillation, pruning, quantization
and width, one Hydra job per trial.  Without -m it runs one trial of the composed config."""

from __future__ import annotations

from compress.config.cli import hydra_entry


def task(cfg) -> dict:
    """One Hydra job = one trial, its config checked first; output files go to the job's own folder."""
    from hydra.core.hydra_config import HydraConfig

    from compress.search.preflight import preflight

    preflight(cfg, check_data=False)  # the trial reads and checks the data files itself, before it writes
    from compress.search.trial import run_trial  # TensorFlow: a bad value is refused before it is imported

    return run_trial(cfg, HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    hydra_entry(task, config_name="config")
