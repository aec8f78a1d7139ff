"""`python -m compress.pareto`: read the trials from MLflow, mark the Pareto front, pick and
export the winner.

Writes the front as a CSV table, sets `pareto=true` / `pareto=false` on every finished trial
run of the study, picks the winner by the policy in `compress/core/front.py`, and exports it to
TFLite and Core ML (`compress/pareto/trial_export.py`), each scored from disk on the full test set.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from compress.config import paths
from compress.core import metrics as M
from compress.core.front import pick_trial
from compress.pareto.front_marks import mark_front
from compress.pareto.trial_export import export_winner


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m compress.pareto", description=__doc__.split("\n\n")[0])
    paths.add_study_arguments(parser)
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the front table pareto.csv (default: sweeps/<study>/analysis, not committed)")
    parser.add_argument("--export-dir", type=Path, default=None,
                        help="folder for the chosen front trial's winner.tflite/.mlpackage, exported as it ran "
                             "(default: sweeps/<study>/analysis/winner, not committed; the shipped winner/ comes "
                             "from python -m compress.finalize)")
    parser.add_argument("--policy", default="smallest_within_budget", choices=["smallest_within_budget", "knee"],
                        help="how to pick the front trial to export (default smallest_within_budget)")
    parser.add_argument("--budget", type=float, default=0.005,
                        help="accuracy budget below the teacher for smallest_within_budget (default 0.005 = 0.5 points)")
    parser.add_argument("--teacher-card", type=Path, default=Path("models/teacher/card.json"),
                        help="the teacher's card with its validation accuracy (default models/teacher/card.json)")
    parser.add_argument("--coreml-compression", default=None,
                        help="Core ML weight compression of the export (default: the trial's own)")
    parser.add_argument("--no-export", action="store_true", help="mark the front only, export nothing")
    args = parser.parse_args(argv)
    if not 0.0 <= args.budget <= 1.0:
        raise SystemExit(f"error: --budget={args.budget}: must be between 0 and 1 (a share: 0.005 is 0.5 points)")
    sp = paths.from_args(args)
    try:
        out = sp.check_writable(args.out or sp.analysis_dir, "--out")
        export_dir = sp.check_writable(args.export_dir or sp.analysis_dir / "winner", "--export-dir")
    except paths.ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    paths.require_store(sp)
    table, front = mark_front(sp, out / "pareto.csv")
    print(f"{len(front)} of {len(table)} finished trials of study {sp.study} on the front -> {out / 'pareto.csv'}")
    show = front[["trial", M.VAL_ACCURACY, M.TEST_ACCURACY, M.SIZE_BYTES, M.LATENCY_RATIO, "quant.mode",
                  "student.width", "prune.sparsity"]]
    print(show.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.no_export:
        return
    teacher_val = json.loads(args.teacher_card.read_text())["val_accuracy"]
    row, why = pick_trial(table, teacher_val, args.budget, args.policy)
    print(f"winner: trial {int(row['trial'])} ({why})")
    try:
        paths.refuse_foreign_export(export_dir, sp.study)
    except paths.ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    summary = export_winner(sp.tracking_uri, row, export_dir, args.coreml_compression)
    print(f"{export_dir / 'winner.tflite'}: {row[M.SIZE_BYTES]:,.0f} bytes, test accuracy from disk "
          f"{100 * summary['tflite']['accuracy']:.2f}%, latency {row[M.LATENCY_RATIO]:.3f}x the teacher's")
    print(f"{export_dir / 'winner.mlpackage'}: {summary['coreml']['size_bytes']:,} bytes "
          f"({summary['coreml_compression']}), test accuracy {100 * summary['coreml']['accuracy']:.2f}%, "
          f"top-1 agreement with the TFLite file {100 * summary['coreml']['agreement']:.2f}%")


if __name__ == "__main__":
    main()
