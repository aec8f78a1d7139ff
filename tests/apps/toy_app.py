"""A cheap two-objective task for testing the sweeper (no TensorFlow): it fails, by its
inputs, whenever x is negative."""

import time

import hydra


@hydra.main(version_base="1.3", config_path="conf", config_name="toy")
def main(cfg):
    start = time.time()
    import os

    if os.environ.get("TOY_PID_DIR"):  # for the tests that kill a job mid-trial: its process id, by trial
        from pathlib import Path

        Path(os.environ["TOY_PID_DIR"], f"pid_{_trial_number()}").write_text(str(os.getpid()))
    time.sleep(cfg.sleep)
    if cfg.prune_above is not None and cfg.x > cfg.prune_above:
        import optuna

        raise optuna.TrialPruned(f"x={cfg.x} above {cfg.prune_above}")
    if cfg.x < 0:
        raise ValueError(f"x={cfg.x} is negative")

    return {"a": cfg.x**2 + cfg.y, "b": (cfg.x - 2) ** 2 - cfg.y, "trial": _trial_number(),
            "pid": os.getpid(), "start": start, "end": time.time(),
            "threads": os.environ.get("COMPRESS_THREADS", "unset")}


def _trial_number():
    """The trial's number as any app can read it, with no node of its own in the config."""
    from omegaconf import OmegaConf

    return OmegaConf.create({"n": "${optuna:trial_number}"}).n


if __name__ == "__main__":
    main()
