"""The sweeper's own settings checked before any store is written: one line naming the key, the value
and what is allowed, exit status 2."""

from __future__ import annotations

import sys
from typing import Any, Sequence


def check_settings(n_trials: int, n_jobs: int, max_failure_rate: float, min_trials_for_rate: int,
                   heartbeat: tuple[int, int, int], n_trials_scope: str, pruner_cfg: Any,
                   directions: Sequence[str]) -> None:
    """Refuse a setting out of range: one line, exit 2."""
    checks = [
        ("n_trials", n_trials, n_trials >= 1, "an integer >= 1 (the study's total)"),
        ("n_jobs", n_jobs, n_jobs >= 1, "an integer >= 1"),
        ("max_failure_rate", max_failure_rate, 0.0 <= max_failure_rate <= 1.0, "between 0 and 1"),
        ("min_trials_for_rate", min_trials_for_rate, min_trials_for_rate >= 1, "an integer >= 1"),
        ("heartbeat_interval", heartbeat[0], heartbeat[0] >= 0, ">= 0 seconds (0: no heartbeat)"),
        ("grace_period", heartbeat[1], heartbeat[1] >= 0, ">= 0 seconds"),
        ("max_retry", heartbeat[2], heartbeat[2] >= 0, "an integer >= 0"),
    ]
    for key, value, ok, allowed in checks:
        if not ok:
            _refuse(f"hydra.sweeper.{key}={value}: must be {allowed}")
    if n_trials_scope not in ("study", "run"):
        _refuse(f"hydra.sweeper.n_trials_scope={n_trials_scope}: must be study (n_trials is the study's total) or "
                f"run (n_trials more trials each run, as the released plugin)")
    if pruner_cfg and len(directions) > 1:
        _refuse("hydra.sweeper.pruner: Optuna prunes single-objective studies only "
                f"(this one has {len(directions)} directions)")
    if directions and any(d not in ("minimize", "maximize") for d in directions):
        _refuse(f"hydra.sweeper.direction={list(directions)}: each must be minimize or maximize")


def _refuse(line: str) -> None:
    print(f"error: {line}", file=sys.stderr)
    raise SystemExit(2)
