"""`python -m compress.finalize`: train the study's finalists the long way, ship each as int8, pick
the winner among them and export it (the stage: compress/finalize/stage.py)."""

from compress.config.cli import hydra_entry
from compress.config.validate import validate
from compress.finalize.stage import run


def task(cfg) -> dict:
    validate(cfg)
    return run(cfg, str(cfg.paths.study))


if __name__ == "__main__":
    hydra_entry(task, config_name="config")
