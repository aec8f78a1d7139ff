"""`python -m analysis.pruning`: channel pruning against magnitude pruning and a narrower student
at equal file size, from the pruning study (`python -m compress.sweep -m experiment=pruning`).

Reads the study's trial runs (MLflow, or `--table` a trials table) and writes the figures the
report quotes to `report/pruning.json` (committed: the report rebuilds on a fresh clone without
the study's store). Nothing here trains. `render` gives the report's section
(analysis/templates/pruning.md.j2).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from compress.config import paths
from compress.core import metrics as M
from compress.tracking import trials_table as T

STUDY = "pruning"
OUT = Path("report/pruning.json")
TEMPLATES = Path(__file__).resolve().parent / "templates"
EQUAL_BYTES = 0.10  # two files are "at equal bytes" within this share of each other


# what a grid point is: sparsity 0 under magnitude skips the pruning step (the narrow student as
# distilled); under channel it keeps every channel and fine-tunes as long as a pruned model does
NARROW, NARROW_LONG = "none", "none, fine-tuned as long"


def _row(r: pd.Series, distill_epochs: int) -> dict:
    sparsity = float(r["prune.sparsity"])
    method = str(r["prune.method"])
    curve = [float(v) for v in r["curve_val"]] if isinstance(r["curve_val"], list) else []
    fine_tuned = sparsity > 0 or method == "channel"
    return {
        "trial": int(r["trial"]), "width": float(r["student.width"]),
        "method": method if sparsity > 0 else (NARROW_LONG if method == "channel" else NARROW), "sparsity": sparsity,
        "val_accuracy": float(r[M.VAL_ACCURACY]), "test_accuracy": float(r[M.TEST_ACCURACY]),
        "size_bytes": int(r[M.SIZE_BYTES]), "size_gzip_bytes": int(r[M.SIZE_GZIP_BYTES]),
        "coreml_size_bytes": int(r[M.COREML_SIZE_BYTES]) if pd.notna(r.get(M.COREML_SIZE_BYTES)) else None,
        "params": int(r[M.PARAMS]), "macs": int(r[M.MACS]), "latency_ms": float(r[M.LATENCY_MS]),
        "distill_curve": curve[:distill_epochs], "fine_tune_curve": curve[distill_epochs:] if fine_tuned else [],
    }


def _nearest(rows: list[dict], size: int) -> dict | None:
    """The row of the nearest file size (on a log scale), if it is within EQUAL_BYTES of `size`."""
    best = min(rows, key=lambda r: abs(math.log(r["size_bytes"] / size)), default=None)
    return best if best and abs(best["size_bytes"] / size - 1) <= EQUAL_BYTES else None


def epochs_to_match(curve: list[float], target: float) -> int | None:
    """The first fine-tuning epoch (1-based) whose validation accuracy reaches `target` (the final
    accuracy of the narrow student of equal bytes trained as long), or None when no epoch does.
    How many epochs channel pruning needs is read against that baseline, not against the pruned
    model's own last epoch: both curves still rise at the grid's last epoch."""
    return next((i for i, v in enumerate(curve, start=1) if v >= target), None)


def still_rising(curve: list[float]) -> bool:
    """Whether a curve's last epoch is its best: more epochs may still pay."""
    return bool(curve) and curve[-1] >= max(curve)


def compute(table: pd.DataFrame, val_images: int | None = None) -> dict:
    """Every finished trial of the grid, and the comparisons: each channel-pruned model against
    the narrow student of the nearest file size trained as long (and as distilled), against
    magnitude pruning of the same width and share, and against its own unpruned start."""
    finished = T.finished(table)
    if finished.empty:
        raise SystemExit("error: the pruning study has no finished trial; run python -m compress.sweep -m "
                         "experiment=pruning")
    epochs = {int(v) for v in finished["distill.epochs"].dropna()}
    if len(epochs) != 1:
        raise SystemExit(f"error: the pruning study's trials ran {sorted(epochs)} distillation epochs; "
                         f"one recipe is needed to split their curves")
    distill_epochs = epochs.pop()
    rows = sorted((_row(r, distill_epochs) for _, r in finished.drop_duplicates("trial").iterrows()),
                  key=lambda r: r["trial"])
    narrow = [r for r in rows if r["method"] == NARROW]
    narrow_long = [r for r in rows if r["method"] == NARROW_LONG]
    magnitude = [r for r in rows if r["method"] == "magnitude"]
    comparisons = []
    for ch in (r for r in rows if r["method"] == "channel"):
        same = next((r for r in magnitude if r["width"] == ch["width"] and r["sparsity"] == ch["sparsity"]), None)
        mag_equal = _nearest(magnitude, ch["size_bytes"])  # magnitude pruning of a file as big as this one
        start = next((r for r in narrow if r["width"] == ch["width"]), None)
        # the fair pair: a narrow student trained as long (distillation plus the same fine-tuning);
        # without one in the grid, the narrow student as distilled
        baseline = _nearest(narrow_long, ch["size_bytes"]) or _nearest(narrow, ch["size_bytes"])
        long_enough = baseline if baseline and baseline["method"] == NARROW_LONG else None
        comparisons.append({
            "channel": ch, "magnitude": same, "unpruned": start, "narrow_at_equal_bytes": baseline,
            "magnitude_at_equal_bytes": mag_equal,
            "val_points_over_magnitude": 100 * (ch["val_accuracy"] - mag_equal["val_accuracy"]) if mag_equal else None,
            "test_points_over_magnitude": 100 * (ch["test_accuracy"] - mag_equal["test_accuracy"]) if mag_equal else None,
            "narrow_as_distilled": _nearest(narrow, ch["size_bytes"]),
            "bytes_ratio_to_narrow": ch["size_bytes"] / baseline["size_bytes"] if baseline else None,
            "val_points_over_narrow": 100 * (ch["val_accuracy"] - baseline["val_accuracy"]) if baseline else None,
            "test_points_over_narrow": 100 * (ch["test_accuracy"] - baseline["test_accuracy"]) if baseline else None,
            "file_share_of_unpruned": ch["size_bytes"] / start["size_bytes"] if start else None,
            "macs_share_of_unpruned": ch["macs"] / start["macs"] if start else None,
            "epochs_to_match_narrow": (epochs_to_match(ch["fine_tune_curve"], long_enough["val_accuracy"])
                                       if long_enough else None),
            "still_rising": still_rising(ch["fine_tune_curve"]),
            "narrow_still_rising": still_rising(long_enough["fine_tune_curve"]) if long_enough else None,
        })
    mag_shares = []
    for m in magnitude:
        # bytes against the unpruned student; accuracy against it trained as long (its fine-tuning
        # epochs without pruning), else as distilled, and the row says which
        start = next((r for r in narrow if r["width"] == m["width"]), None)
        fair = next((r for r in narrow_long if r["width"] == m["width"]), None) or start
        if start:
            mag_shares.append({"width": m["width"], "sparsity": m["sparsity"],
                               "file_share": m["size_bytes"] / start["size_bytes"],
                               "gzip_share": m["size_gzip_bytes"] / start["size_gzip_bytes"],
                               "against": fair["method"],
                               "val_points": 100 * (m["val_accuracy"] - fair["val_accuracy"])})
    wins = [c for c in comparisons if c["val_points_over_narrow"] is not None]
    mean_gain = float(np.mean([c["val_points_over_narrow"] for c in wins])) if wins else None
    # one standard error of a difference of two validation accuracies near these, in points
    accuracy = float(np.mean([c["channel"]["val_accuracy"] for c in wins])) if wins else None
    se_diff = (100 * math.sqrt(2 * accuracy * (1 - accuracy) / val_images)) if wins and val_images else None
    return {
        "study": STUDY, "distill_epochs": distill_epochs,
        "fine_tune_epochs": max((len(r["fine_tune_curve"]) for r in rows), default=0),
        "n_trials": len(finished), "rows": rows, "comparisons": comparisons, "magnitude": mag_shares,
        "equal_bytes": EQUAL_BYTES,
        "channel_beats_narrow": sum(c["val_points_over_narrow"] > 0 for c in wins), "n_pairs": len(wins),
        "mean_val_points_over_narrow": mean_gain, "val_images": val_images, "se_of_a_difference": se_diff,
        "worth_offering": bool(mean_gain is not None and se_diff is not None and mean_gain > 2 * se_diff),
    }


def render(fig: dict) -> str:
    """The report's section on channel pruning."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["pct"] = lambda v: f"{100 * v:.2f}%"
    env.filters["kb"] = lambda v: "n/a" if v is None else f"{v:,} B"
    env.filters["pts"] = lambda v: "n/a" if v is None else f"{v:+.2f}"
    env.filters["ms"] = lambda v: f"{v:.4f}"
    return env.get_template("pruning.md.j2").render(**fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analysis.pruning", description=__doc__.split("\n\n")[0])
    paths.add_study_arguments(parser)
    parser.add_argument("--table", type=Path, help="a trials table (python -m analysis.table) instead of MLflow")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where the figures go (default {OUT})")
    parser.set_defaults(study=STUDY)
    for action in parser._actions:
        if action.dest == "study":
            action.help = f"the study to read (default: {STUDY}, the study experiment=pruning runs)"
    args = parser.parse_args(argv)
    if args.table:
        if not args.table.is_file():
            raise SystemExit(f"error: --table {args.table}: no such file")
        table = T.read(args.table)
    else:
        sp = paths.from_args(args, needs_store=True)
        table = T.from_mlflow(sp.tracking_uri, sp.experiment, sp.study)
        if table.empty:
            raise SystemExit(paths.no_trials_message(sp))
        table = T.curves_as_lists(table)
    study_cfg = paths.compose_for(args.study)
    val_images = int(round(int(study_cfg.data.val_size) * float(study_cfg.data.fraction)))
    fig = compute(table, val_images)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    paths.write_or_exit(args.out, lambda tmp: tmp.write_text(json.dumps(fig, indent=1) + "\n"))
    print(f"{fig['n_trials']} trials of study {fig['study']} -> {args.out}; channel pruning beats the narrow "
          f"student at equal bytes in {fig['channel_beats_narrow']} of {fig['n_pairs']} pairs")


if __name__ == "__main__":
    main()
