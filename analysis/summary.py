"""`python -m analysis.summary`: a study at a glance, from its MLflow runs.

Finished trial count, median trial time and latency ratio, and the best validation accuracy
reached at or under each of the study's size classes (`targets.size_classes`, conf/targets/) and at
any size, with that trial's test accuracy.
"""

from __future__ import annotations

import argparse
import math
from typing import Sequence

from compress.config import paths
from compress.core import metrics as M
from compress.tracking.trial_runs import load_trials


def best_by_size(table, size_classes: Sequence[int]) -> list[dict]:
    """One row per size class and one for any size: the most accurate trial (by validation accuracy)
    at or under it, and how many trials fit it (none: a row of 0 trials)."""
    rows = []
    for limit in (*sorted(int(c) for c in size_classes), math.inf):
        fits = table[table[M.SIZE_BYTES] <= limit]
        if fits.empty:
            rows.append({"up_to_bytes": limit, "trials": 0})
            continue
        best = fits.sort_values([M.VAL_ACCURACY, "trial"], ascending=[False, True]).iloc[0]
        rows.append({"up_to_bytes": limit, "trials": len(fits), "trial": int(best["trial"]),
                     M.SIZE_BYTES: int(best[M.SIZE_BYTES]), M.VAL_ACCURACY: best[M.VAL_ACCURACY],
                     M.TEST_ACCURACY: best[M.TEST_ACCURACY], M.LATENCY_RATIO: best[M.LATENCY_RATIO],
                     "quant.mode": best["quant.mode"], "student.width": best["student.width"],
                     "prune.sparsity": best["prune.sparsity"]})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analysis.summary", description=__doc__.split("\n\n")[0])
    paths.add_study_arguments(parser)
    args = parser.parse_args(argv)
    cfg = paths.config_from_args(args)
    sp = paths.of(cfg)
    paths.require_store(sp)
    table = load_trials(sp.tracking_uri, sp.experiment, sp.study)
    if table.empty:
        raise SystemExit(paths.no_trials_message(sp))
    print(f"{len(table)} finished trials; median {M.TIME_TOTAL_S} {table[M.TIME_TOTAL_S].median():.1f} s; "
          f"median {M.LATENCY_RATIO} {table[M.LATENCY_RATIO].median():.4f}")
    for row in best_by_size(table, cfg.targets.size_classes):
        limit = "any size" if row["up_to_bytes"] == math.inf else f"<= {row['up_to_bytes']:,} B"
        if not row["trials"]:
            print(f"{limit:>14}: no finished trial")
            continue
        print(f"{limit:>14}: best val {100 * row[M.VAL_ACCURACY]:.2f}% (test {100 * row[M.TEST_ACCURACY]:.2f}%) "
              f"trial {row['trial']}, {row[M.SIZE_BYTES]:,} B, {row['quant.mode']}, width {row['student.width']:.3f}, "
              f"sparsity {row['prune.sparsity']}, latency {row[M.LATENCY_RATIO]:.3f}x teacher  "
              f"[{row['trials']} of {len(table)} fit]")


if __name__ == "__main__":
    main()
