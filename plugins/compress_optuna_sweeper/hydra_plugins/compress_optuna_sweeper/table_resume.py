"""Rebuild a study in an empty storage from a committed table of its trials.

A study's store (SQLite under sweeps/) is not committed; its trials table is (small, text). On a
fresh machine the sweeper adds the table's trials to the new storage, in trial-number order and
with the numbers kept (a number missing from the table becomes a FAIL placeholder), so that the
study continues where the table ends: the sampler sees every finished trial, new trial numbers
(hence job folders) never collide with old ones, and the early-stop rule finds the curves.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import TrialState

log = logging.getLogger(__name__)
# the table's per-epoch validation curve column, and the trial attribute the early-stop rule reads
CURVE_COLUMN, CURVE_ATTR = "curve_val", "val_curve"
STATES = {"FINISHED": TrialState.COMPLETE, "PRUNED": TrialState.PRUNED}


def _value(raw, dist: BaseDistribution):
    """The table's cell as a value of the distribution, or None when it is missing or outside it."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return None
    if isinstance(dist, CategoricalDistribution):
        for choice in dist.choices:
            if str(choice) == str(raw) or (isinstance(choice, (int, float)) and _num(raw) == choice):
                return choice
        return None
    number = _num(raw)
    if number is None:
        return None
    number = int(round(number)) if isinstance(dist, IntDistribution) else float(number)
    return number if dist.low <= number <= dist.high else None


def _num(raw) -> Optional[float]:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


def seed_study(study: optuna.Study, path: str, space: Dict[str, BaseDistribution],
               objectives: Optional[Sequence[str]]) -> int:
    """Add the table's trials of `study` to its (empty) storage; returns how many were added."""
    import pandas as pd

    table = pd.read_csv(Path(path))
    if "study" in table:
        table = table[table["study"].astype(str) == study.study_name]
    if table.empty or "trial" not in table:
        return 0
    # a trial retried after a kill has two rows: keep the finished (or stopped) one
    table = table.assign(_rank=table["status"].map({"FINISHED": 0, "PRUNED": 1}).fillna(2))
    table = table.sort_values(["trial", "_rank"]).drop_duplicates("trial", keep="first")
    rows = {int(r["trial"]): r for _, r in table.iterrows()}
    added: List[optuna.trial.FrozenTrial] = []
    for number in range(max(rows) + 1):
        row = rows.get(number)
        state = STATES.get(str(row["status"])) if row is not None else None
        params, dists = {}, {}
        if row is not None:
            for name, dist in space.items():
                value = _value(row.get(name), dist)
                if value is not None:
                    params[name], dists[name] = value, dist
        values = None
        if state == TrialState.COMPLETE:
            values = [_num(row.get(name)) for name in (objectives or [])]
            if not values or any(v is None or math.isnan(v) for v in values):
                state = None
        attrs = {"imported_from": str(path)}
        if row is not None and isinstance(row.get(CURVE_COLUMN), str) and row.get(CURVE_COLUMN):
            attrs[CURVE_ATTR] = [float(v) for v in str(row[CURVE_COLUMN]).split(";") if v]
        added.append(optuna.trial.create_trial(
            state=state or TrialState.FAIL, params=params, distributions=dists,
            values=values if state == TrialState.COMPLETE else None, user_attrs=attrs))
    study.add_trials(added)
    done = sum(t.state == TrialState.COMPLETE for t in added)
    log.info("study %s rebuilt from %s: %d trials (%d finished, %d stopped early, %d failed or missing)",
             study.study_name, path, len(added), done, sum(t.state == TrialState.PRUNED for t in added),
             sum(t.state == TrialState.FAIL for t in added))
    return len(added)
