"""Which study trials become finalists, the finalists' table, and how well the search ranked them.

Pure pandas over a trials table (`analysis.table`'s columns): no training, no stores.
"""

from __future__ import annotations

import fcntl
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from compress.core import metrics as M
from compress.core.atomic import write_whole
from compress.core.errors import ConfigError
from compress.core.front import DEFAULT_OBJECTIVES, pareto_mask
from compress.core.options import FAMILIES

# the finalists' table: one row per finalist ever trained (trial x seed x recipe)
KEY = ("study", "trial", "seed", "recipe")


SHIP_ESTIMATE = "ship_estimate_bytes"  # the column select() sorts into size classes
FINAL_WIDTH = "final_width"  # a selection's column: the width a finalist trains at where it is not its trial's
FILLED_CLASS = "filled_class_bytes"  # a selection's column: the size class a widened finalist was made to fill


def filled_class(row) -> int | None:
    """The size class (bytes) a selection's row was widened to fill (finalize/fill.py), else None."""
    value = row.get(FILLED_CLASS) if row is not None else None
    return None if value is None or pd.isna(value) else int(value)


def with_ship_estimate(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials with the estimated size of the int8 file their recipe would ship as: one byte per
    parameter plus the family's overhead (`options.FAMILIES`). A trial's own `size_bytes`
    is its file in its search mode (a float32 trial of 197 KB ships as about 53 KB of int8), so
    classing finalists by it leaves out recipes that fit the app's budget once shipped."""
    out = trials.copy()
    out[SHIP_ESTIMATE] = pd.Series([ship_estimate(r) for _, r in out.iterrows()], index=out.index, dtype=float)
    return out


def ship_estimate(row) -> float | None:
    """`with_ship_estimate` for one trial's row (a dict or Series); None without its parameter count."""
    params = row.get(M.PARAMS)
    if params is None or pd.isna(params):
        return None
    arch = row.get("student.arch")
    return float(params) + FAMILIES["cnn" if arch is None or pd.isna(arch) else str(arch)].int8_overhead_bytes


def select(trials: pd.DataFrame, max_finalists: int, size_classes: list[int],
           min_accuracy: float = 0.0, max_latency_ratio: float | None = None) -> pd.DataFrame:
    """The default finalists: the study's finished front (its own objectives) among trials whose
    search validation accuracy reaches `min_accuracy` (a recipe the search scored at 35% sits on
    the front only for being the smallest, and is no candidate to ship), at most `max_finalists`,
    always the most accurate front trial whose shipped int8 file (`with_ship_estimate`) fits each
    size class that has one, the rest spread evenly over log shipped size. Sorted by that size.

    With a latency budget (`finalize.max_latency_ratio`, which the winner must meet), each size
    class also always gets its most accurate front trial whose search file ran within the budget:
    otherwise the most accurate recipes, slower than the budget, could leave no finalist the winner
    policy may ship. The search file's latency stands in for the shipped file's."""
    finished = trials[trials["status"] == "FINISHED"].dropna(subset=list(DEFAULT_OBJECTIVES) + [M.PARAMS])
    finished = finished[finished[M.VAL_ACCURACY] >= min_accuracy]
    finished = with_ship_estimate(finished.drop_duplicates("trial", keep="first"))
    front = finished[pareto_mask(finished, DEFAULT_OBJECTIVES)].sort_values(SHIP_ESTIMATE)
    if front.empty or max_finalists < 1:
        return front.iloc[:0]
    chosen: list[int] = []
    for limit in sorted(size_classes):
        fits = front[front[SHIP_ESTIMATE] <= limit]
        pools = [fits] if max_latency_ratio is None else [fits, fits[fits[M.LATENCY_RATIO] <= max_latency_ratio]]
        for pool in (pool for pool in pools if len(pool)):
            best = pool.sort_values([M.VAL_ACCURACY, SHIP_ESTIMATE], ascending=[False, True]).iloc[0]
            if int(best["trial"]) not in chosen:
                chosen.append(int(best["trial"]))
    chosen_sizes = set(front[front["trial"].isin(chosen)][SHIP_ESTIMATE])
    rest = front[~front["trial"].isin(chosen) & ~front[SHIP_ESTIMATE].isin(chosen_sizes)]
    rest = rest.sort_values(M.VAL_ACCURACY, ascending=False).drop_duplicates(SHIP_ESTIMATE).sort_values(SHIP_ESTIMATE)
    slots = max(0, max_finalists - len(chosen))
    if slots and len(rest):
        logs = np.log(rest[SHIP_ESTIMATE].to_numpy(float))
        targets = np.linspace(logs.min(), logs.max(), min(slots, len(rest)))
        free = list(range(len(rest)))
        for target in targets:
            pick = min(free, key=lambda i: abs(logs[i] - target))
            free.remove(pick)
            chosen.append(int(rest.iloc[pick]["trial"]))
    picked = front[front["trial"].isin(chosen[:max_finalists])]
    return picked.sort_values(SHIP_ESTIMATE)


def by_hand(trials: pd.DataFrame, numbers: list[int]) -> pd.DataFrame:
    """The finished trials named in `finalize.trials`; a number that is not one is refused."""
    finished = trials[trials["status"] == "FINISHED"].drop_duplicates("trial", keep="first")
    missing = sorted(set(int(n) for n in numbers) - set(finished["trial"].astype(int)))
    if missing:
        raise ConfigError(f"finalize.trials={list(numbers)}: trial(s) {missing} are not finished trials of the study "
                          f"(finished: {len(finished)})")
    return finished[finished["trial"].isin([int(n) for n in numbers])].sort_values(M.SIZE_BYTES)


def read(path: Path) -> pd.DataFrame:
    """The finalists' table, or an empty one."""
    return pd.read_csv(path) if Path(path).is_file() else pd.DataFrame(columns=list(KEY))


def append(path: Path, row: dict) -> pd.DataFrame:
    """Add (or replace, same key) one finalist's row and write the table atomically; finalize
    processes run side by side (README: two finalists at a time) take turns through a lock file.
    Returns the table as it was written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        table = read(path)
        if len(table):
            same = np.ones(len(table), dtype=bool)
            for key in KEY:
                same &= table[key].astype(str).to_numpy() == str(row[key])
            table = table[~same]
        new = _like(pd.DataFrame([row]), table)
        table = new if table.empty else pd.concat([table, new], ignore_index=True)  # empty: its columns are none
        write_whole(path, lambda tmp: table.to_csv(tmp, index=False, float_format="%.6g"))
    return read(path)  # as written (6 digits): the export reads the figures a fresh clone reads


def _like(new: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """`new` with each whole-number float column the table holds as integers made integer again: a count
    read back from another table as a float (1956736.0) would turn the table's column to floats, which it
    writes at 6 significant digits (1956740)."""
    for column in new.columns.intersection(table.columns):
        values = new[column]
        if pd.api.types.is_integer_dtype(table[column]) and pd.api.types.is_float_dtype(values) \
                and values.notna().all() and (values % 1 == 0).all():
            new[column] = values.astype(table[column].dtype)
    return new


def done(table: pd.DataFrame, study: str, trial: int, seed: int, recipe: str) -> bool:
    """Whether this finalist (same recipe) is already in the table: a resumed run skips it."""
    if table.empty:
        return False
    match = ((table["study"].astype(str) == study) & (table["trial"].astype(int) == int(trial))
             & (table["seed"].astype(int) == int(seed)) & (table["recipe"].astype(str) == recipe))
    return bool(match.any())


def spearman(a, b) -> float:
    """Spearman's rank correlation (average ranks for ties); nan below 3 pairs or without spread."""
    a, b = pd.Series(list(a), dtype=float), pd.Series(list(b), dtype=float)
    if len(a) < 3:
        return float("nan")
    ra, rb = a.rank(), b.rank()
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def rank_agreement(table: pd.DataFrame, size_classes: list[int]) -> dict:
    """How well the short search ranks what the final training gives: Spearman's rho between a
    finalist's search validation accuracy and its final validation accuracy (same quantization
    mode), overall and within each size class, with n. A finalist's class is that of its shipped
    int8 file, as the selection's is (a table without shipped sizes: its search file's)."""
    rows = table[table["seed"].astype(int) == table["seed"].astype(int).min()] if len(table) else table
    rows = rows.drop_duplicates("trial", keep="last")
    size = M.SHIP_SIZE_BYTES if M.SHIP_SIZE_BYTES in rows else "search_size_bytes"
    out = {"overall": {"n": int(len(rows)), "rho": spearman(rows.get("search_val_accuracy", []),
                                                             rows.get(M.VAL_ACCURACY, []))}}
    lower = 0
    for limit in sorted(size_classes) + [math.inf]:
        inside = rows[(rows[size] > lower) & (rows[size] <= limit)] if len(rows) else rows
        name = f"<= {int(limit)} B" if math.isfinite(limit) else f"> {int(lower)} B"
        out[name] = {"n": int(len(inside)), "rho": spearman(inside.get("search_val_accuracy", []),
                                                            inside.get(M.VAL_ACCURACY, []))}
        lower = limit
    return out


def read_summary(path: Path) -> dict:
    """The summary `write_summary` left, or {} where there is none (a new study)."""
    return json.loads(path.read_text()) if path.is_file() else {}


def write_summary(path: Path, summary: dict) -> None:
    """The finalists' summary (rank agreement, the winner's seeds) as JSON; NaN written as null."""
    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(clean(summary), indent=2) + "\n")
