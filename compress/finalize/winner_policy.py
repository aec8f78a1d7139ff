"""The winner policy: which finalist wins, and which of its seeds ships.

Policies (validation accuracy only; test accuracy is reported, never used to choose):
- `max_bytes`: the most accurate shipping file at or under `finalize.max_bytes` (the app's budget);
- `smallest_within`: the smallest shipping file within `finalize.budget` of the teacher's accuracy.

Either policy takes an optional latency budget, `finalize.max_latency_ratio`: only finalists whose
shipping file ran at most that fraction of the teacher's latency (measured in the finalist's own
run, beside the teacher) may win. Tables in, rows out: the report reads it without the export's libraries.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from compress.core import metrics as M
from compress.core.options import WINNER_POLICIES
from compress.finalize.latency_budget import LatencyBudget, _budget, latency_budget

POLICIES = WINNER_POLICIES


def choose(rows: pd.DataFrame, cfg) -> tuple[pd.Series | None, str]:
    """The winning finalist (first seed) by the configured policy, and why; None when none qualifies."""
    f = cfg.finalize
    first = rows[rows["seed"].astype(int) == int(cfg.seed)] if len(rows) else rows
    if first.empty:
        return None, "no finalist has been trained"
    return pick_finalist(first, str(f.policy), int(f.max_bytes), float(f.budget), teacher_val_accuracy(cfg),
                latency_budget(f))


def pick_finalist(first: pd.DataFrame, policy: str, max_bytes: int, budget: float, teacher_val: float,
         max_latency_ratio: LatencyBudget | float | None = None):
    """`choose` on a table alone (testable without a config)."""
    if policy not in POLICIES:
        raise ValueError(f"finalize.policy={policy}: allowed {', '.join(POLICIES)}")
    meets = _meets(first, policy, max_bytes, budget, teacher_val, max_latency_ratio)
    latency = _budget(max_latency_ratio)
    fast = "" if latency is None else latency.words()
    if policy == "max_bytes":
        if meets.empty:
            return None, f"no finalist's shipping file is at most {max_bytes:,} bytes{fast}"
        row = meets.sort_values([M.SHIP_VAL_ACCURACY, M.SHIP_SIZE_BYTES], ascending=[False, True]).iloc[0]
        return row, f"most accurate finalist (validation) at most {max_bytes:,} bytes{fast}"
    if meets.empty:
        return None, f"no finalist within {100 * budget:.2g} points of the teacher's validation accuracy{fast}"
    row = meets.sort_values([M.SHIP_SIZE_BYTES, M.SHIP_VAL_ACCURACY], ascending=[True, False]).iloc[0]
    return row, (f"smallest finalist within {100 * budget:.2g} points of the teacher's validation accuracy "
                 f"({100 * teacher_val:.2f}%){fast}")


def shipped_seed(seeds: pd.DataFrame, policy: str, max_bytes: int, budget: float, teacher_val: float,
                 max_latency_ratio: LatencyBudget | float | None = None) -> pd.Series:
    """The seed of the winner's recipe that ships: the best on validation among its seeds whose file
    still meets the policy (max_bytes: at most the app's budget; smallest_within: within the budget
    of the teacher; and the latency budget, where one is set). Each seed chooses its own int8
    encoding, so another seed's file can come out bigger than the first's: it never ships over
    the budget the winner was chosen under."""
    meets = _meets(seeds, policy, max_bytes, budget, teacher_val, max_latency_ratio)
    pool = meets if len(meets) else seeds
    return pool.sort_values([M.SHIP_VAL_ACCURACY, "seed"], ascending=[False, True]).iloc[0]


def _meets(rows: pd.DataFrame, policy: str, max_bytes: int, budget: float, teacher_val: float,
           max_latency_ratio: LatencyBudget | float | None = None) -> pd.DataFrame:
    """The rows whose shipping file meets the policy's condition: at most `max_bytes`, or within
    `budget` of the teacher's validation accuracy; and at most `max_latency_ratio` of the
    teacher's latency where that is set."""
    latency = _budget(max_latency_ratio)
    if latency is not None:
        rows = rows[rows[M.SHIP_LATENCY_RATIO] <= latency.limits(rows)]
    if policy == "max_bytes":
        return rows[rows[M.SHIP_SIZE_BYTES] <= max_bytes]
    return rows[rows[M.SHIP_VAL_ACCURACY] >= teacher_val - budget]


def teacher_val_accuracy(cfg) -> float:
    """The teacher's validation accuracy from its card (the committed teacher's, or nan)."""
    card = Path(str(cfg.teacher.path)).with_name("card.json")
    return float(json.loads(card.read_text())["val_accuracy"]) if card.is_file() else float("nan")
