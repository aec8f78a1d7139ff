"""Thin Hydra entry points: compose conf/, run a plain function, turn user errors into one line."""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path
from typing import Callable

from compress.config import schema
from compress.core.errors import CompressError

ROOT = Path(__file__).resolve().parents[2]  # the checkout: conf/, models/, report/ are read from here
CONF_DIR = str(ROOT / "conf")


def compose(overrides: list[str] | None = None, return_hydra_config: bool = False):
    """The project's config composed with `overrides`, as the command line would, without
    running a job (for tests, benchmarks and the analysis commands)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    schema.register()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides or []),
                             return_hydra_config=return_hydra_config)


def console_logging() -> None:
    """Progress lines on stderr for the argparse commands, in the format Hydra's commands use."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S", force=True)


# retired option -> its replacement: the command line refuses the old one in one line naming the new,
# and files written under the old name (report/samplers.json) are read under the new
RETIRED_OPTIONS = {"sampler=nsga2": "sampler=nsgaii"}


def check_retired(argv: list[str]) -> None:
    """A retired option (RETIRED_OPTIONS): one line naming its replacement, exit 2."""
    for arg in argv:
        if arg in RETIRED_OPTIONS:
            print(f"error: {arg} is retired: use {RETIRED_OPTIONS[arg]} (the same setting)", file=sys.stderr)
            sys.exit(2)


# hydra/launcher= options that come from a plugin, and the extra of this project that installs it
LAUNCHER_EXTRAS = {"joblib": ("hydra_joblib_launcher", "joblib"), "ray": ("hydra_ray_launcher", "ray"),
                   "ray_aws": ("hydra_ray_launcher", "ray"), "submitit_local": ("hydra_submitit_launcher", "slurm"),
                   "submitit_slurm": ("hydra_submitit_launcher", "slurm"),
                   "slurm": ("hydra_submitit_launcher", "slurm")}  # conf/hydra/launcher/slurm.yaml


def check_launcher_installed(argv: list[str]) -> None:
    """`hydra/launcher=NAME` whose plugin is not installed: one line naming the extra, exit 2 (Hydra's
    own message lists every config group option instead)."""
    for arg in argv:
        if arg.startswith(("hydra/launcher=", "override hydra/launcher=")):
            name = arg.split("=", 1)[1]
            module, extra = LAUNCHER_EXTRAS.get(name, (None, None))
            if module and importlib.util.find_spec(f"hydra_plugins.{module}") is None:
                print(f"error: hydra/launcher={name} is not installed: pip install -e '.[{extra}]' "
                      "(docs/scaling-out.md)", file=sys.stderr)
                sys.exit(2)


def hydra_entry(fn: Callable, config_name: str = "config") -> None:
    """Run `fn(cfg)` under @hydra.main with the project's config folder.

    A CompressError (bad config value, bad data file, unreachable store) in a single
    run prints its one-line message on stderr and exits with status 2.
    """
    import hydra

    schema.register()
    check_retired(sys.argv[1:])
    check_launcher_installed(sys.argv[1:])

    @hydra.main(version_base="1.3", config_path=CONF_DIR, config_name=config_name)
    def _task(cfg):
        try:
            return fn(cfg)
        except CompressError as exc:
            from hydra.core.hydra_config import HydraConfig

            if HydraConfig.get().mode.name == "MULTIRUN":
                raise  # the sweeper records it as a failed trial
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(exc.exit_code)

    _task()
