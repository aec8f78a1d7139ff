"""`python -m analysis.summary`: a study at a glance, from its MLflow runs.

Finished trial count, median trial time and latency ratio, and the best validation
accuracy reached in each .tflite size bucket (with that trial's test accuracy).
"""

from __future__ import annotations

import argparse

import numpy as np

from compress.config import paths
from compress.core import metrics as M
from compress.tracking.trial_runs import load_trials

BUCKETS = (16_384, 32_768, 65_536, 131_072, 262_144, 1_048_576, float("inf"))  # 16 KB, 32 KB, 64 KB, ...


def best_by_size(table):
    """One row per size bucket: the most accurate trial (by validation accuracy) within it."""
    bucket = np.searchsorted(np.asarray(BUCKETS), table[M.SIZE_BYTES].to_numpy(float), side="left")
    rows = []
    for b in sorted(set(bucket)):
        group = table[bucket == b]
        best = group.sort_values(M.VAL_ACCURACY, ascending=False).iloc[0]
        rows.append({"up_to_bytes": BUCKETS[b], "trials": len(group), "trial": int(best["trial"]),
                     M.SIZE_BYTES: int(best[M.SIZE_BYTES]), M.VAL_ACCURACY: best[M.VAL_ACCURACY],
                     M.TEST_ACCURACY: best[M.TEST_ACCURACY], M.LATENCY_RATIO: best[M.LATENCY_RATIO],
                     "quant.mode": best["quant.mode"], "student.width": best["student.width"],
                     "prune.sparsity": best["prune.sparsity"]})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analysis.summary", description=__doc__.split("\n\n")[0])
    paths.add_study_arguments(parser)
    args = parser.parse_args(argv)
    sp = paths.from_args(args, needs_store=True)
    table = load_trials(sp.tracking_uri, sp.experiment, sp.study)
    if table.empty:
        raise SystemExit(paths.no_trials_message(sp))
    print(f"{len(table)} finished trials; median {M.TIME_TOTAL_S} {table[M.TIME_TOTAL_S].median():.1f} s; "
          f"median {M.LATENCY_RATIO} {table[M.LATENCY_RATIO].median():.4f}")
    for row in best_by_size(table):
        limit = "any size" if row["up_to_bytes"] == float("inf") else f"<= {row['up_to_bytes']:,.0f} B"
        print(f"{limit:>14}: best val {100 * row[M.VAL_ACCURACY]:.2f}% (test {100 * row[M.TEST_ACCURACY]:.2f}%) "
              f"trial {row['trial']}, {row[M.SIZE_BYTES]:,} B, {row['quant.mode']}, width {row['student.width']:.3f}, "
              f"sparsity {row['prune.sparsity']}, latency {row[M.LATENCY_RATIO]:.3f}x teacher  [{row['trials']} trials]")


if __name__ == "__main__":
    main()
