"""Each size class's leading finalist: the one its target is counted on (conf/targets/: the size
classes and the accuracy each aims at, as a mean over seeds), trained with the winner's seeds too
(`finalize.class_seeds`), and held against the user's teacher on the same test images.

A class's leader is its most accurate first-seed finalist on validation whose shipping file fits the
class and meets the latency budget, as the winner is chosen (`winner_policy.pick_finalist`): at the app's
budget the leader is the winner's recipe."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from compress.core import metrics as M
from compress.finalize.latency_budget import latency_budget
from compress.finalize.winner_export import kept_name
from compress.finalize.winner_policy import pick_finalist, shipped_seed
from compress.measure.scoring import score

log = logging.getLogger(__name__)


def leaders(rows: pd.DataFrame, cfg) -> dict[int, pd.Series]:
    """Size class (bytes) -> its leading finalist's first-seed row; a class no finalist fits is left out."""
    first = rows[rows["seed"].astype(int) == int(cfg.seed)] if len(rows) else rows
    budget = latency_budget(cfg.finalize)
    out = {}
    for size in sorted(int(c) for c in cfg.finalize.size_classes):
        row, _ = pick_finalist(first, "max_bytes", size, 0.0, float("nan"), budget)
        if row is not None:
            out[size] = row
    return out


def summary(rows: pd.DataFrame, cfg, export_dir: Path, splits) -> dict:
    """Per size class: the leader's seeds and their test accuracies (mean, spread), the seed that ships
    (the best on validation within the class and the latency budget), and that file against the user's
    teacher on the test images (McNemar's exact test), scored from its exported copy."""
    out = {}
    teacher = Path(str(cfg.teacher.path))
    for size, leader in leaders(rows, cfg).items():
        seeds = rows[rows["trial"].astype(int) == int(leader["trial"])].sort_values("seed")
        shipped = shipped_seed(seeds, "max_bytes", size, 0.0, float("nan"), latency_budget(cfg.finalize))
        tests = seeds[M.SHIP_TEST_ACCURACY].astype(float)
        entry = {"trial": int(leader["trial"]), "recipe": str(leader["recipe"]), "shipped_seed": int(shipped["seed"]),
                 "ship_bytes": int(shipped[M.SHIP_SIZE_BYTES]), "seeds": seeds["seed"].astype(int).tolist(),
                 "test_accuracy": tests.round(6).tolist(), "mean": float(tests.mean()),
                 "min": float(tests.min()), "max": float(tests.max()),
                 "std": float(tests.std(ddof=1)) if len(tests) > 1 else None}
        file = export_dir / "finalists" / kept_name(shipped, cfg) / "finalist.tflite"
        if teacher.is_file() and file.is_file():
            log.info("size class %s B: trial %d seed %d's file against the user's teacher (%s), McNemar", f"{size:,}",
                     entry["trial"], entry["shipped_seed"], teacher)
            paired = score(file, against=teacher, splits=splits, paired_test=True)
            entry["paired_teacher"] = {k: paired[k] for k in ("n", "accuracy", "against_accuracy", "only_this_right",
                                                              "only_against_right", "mcnemar_p") if k in paired}
        out[str(size)] = entry
    return out
