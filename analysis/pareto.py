"""`python -m analysis.pareto`: read the trials from MLflow, mark the Pareto front, pick and
export the winner.

Writes the front as a CSV table, sets `pareto=true` / `pareto=false` on every finished trial
run of the study, picks the winner by the policy in `analysis/winner.py`, and exports it to
TFLite and Core ML (`analysis/export.py`), each scored from disk on the full test set.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis.front import DEFAULT_OBJECTIVES, pareto_mask
from analysis.runs import DEFAULT_EXPERIMENT, DEFAULT_URI, load_trials
from compress import metrics as M

COLUMNS = ["study", "trial", *M.SEARCHED_PARAMS, M.VAL_ACCURACY, M.TEST_ACCURACY, M.SIZE_BYTES,
           M.SIZE_GZIP_BYTES, M.LATENCY_MS, M.LATENCY_RATIO, M.PARAMS, M.NONZERO_PARAMS, M.MACS, "run_id"]


def mark_front(tracking_uri: str, experiment: str, study: str | None, out_csv: Path):
    """Compute the front of the study's finished trials, tag the runs, write the table."""
    from mlflow.tracking import MlflowClient

    table = load_trials(tracking_uri, experiment, study)
    if table.empty:
        raise SystemExit(f"error: no finished trial runs in {experiment!r}{f' for study {study!r}' if study else ''}")
    table["pareto"] = pareto_mask(table, DEFAULT_OBJECTIVES)
    client = MlflowClient(tracking_uri=tracking_uri)
    for run_id, on_front in zip(table.run_id, table.pareto):
        client.set_tag(run_id, "pareto", "true" if on_front else "false")
    front = table[table.pareto].sort_values(M.SIZE_BYTES)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    front[[c for c in COLUMNS if c in front]].to_csv(out_csv, index=False)
    return table, front


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default=DEFAULT_URI)
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT)
    parser.add_argument("--study", default="fmnist_compress", help="Optuna study name ('' for all trials)")
    parser.add_argument("--out", default="analysis/out", type=Path, help="folder for the front table")
    parser.add_argument("--export-dir", default="analysis/out/winner", type=Path,
                        help="folder for the front trial's winner.tflite/.mlpackage (default analysis/out/winner, "
                             "not committed: the shipped winner/ comes from python -m compress.finalize)")
    parser.add_argument("--policy", default="smallest_within_budget", choices=["smallest_within_budget", "knee"])
    parser.add_argument("--budget", type=float, default=0.005, help="accuracy budget below the teacher (0.005 = 0.5 points)")
    parser.add_argument("--teacher-card", type=Path, default=Path("models/teacher/card.json"))
    parser.add_argument("--coreml-compression", default=None, help="override the Core ML compression of the winner")
    parser.add_argument("--no-export", action="store_true", help="mark the front only")
    args = parser.parse_args(argv)
    table, front = mark_front(args.tracking_uri, args.experiment, args.study or None, args.out / "pareto.csv")
    print(f"{len(front)} of {len(table)} finished trials on the front -> {args.out / 'pareto.csv'}")
    show = front[["trial", M.VAL_ACCURACY, M.TEST_ACCURACY, M.SIZE_BYTES, M.LATENCY_RATIO, "quant.mode",
                  "student.width", "prune.sparsity"]]
    print(show.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.no_export:
        return
    import json

    from analysis.export import export_winner
    from analysis.winner import pick

    teacher_val = json.loads(args.teacher_card.read_text())["val_accuracy"]
    row, why = pick(table, teacher_val, args.budget, args.policy)
    print(f"winner: trial {int(row['trial'])} ({why})")
    summary = export_winner(args.tracking_uri, row, args.export_dir, args.coreml_compression)
    print(f"{args.export_dir / 'winner.tflite'}: {row[M.SIZE_BYTES]:,.0f} bytes, test accuracy from disk "
          f"{100 * summary['tflite']['accuracy']:.2f}%, latency {row[M.LATENCY_RATIO]:.3f}x the teacher's")
    print(f"{args.export_dir / 'winner.mlpackage'}: {summary['coreml']['size_bytes']:,} bytes "
          f"({summary['coreml_compression']}), test accuracy {100 * summary['coreml']['accuracy']:.2f}%, "
          f"top-1 agreement with the TFLite file {100 * summary['coreml']['agreement']:.2f}%")


if __name__ == "__main__":
    main()
