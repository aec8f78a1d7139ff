"""`python -m analysis.pareto`: read the trials from MLflow, mark the Pareto front, tag it.

Writes the front as a CSV table and sets `pareto=true` / `pareto=false` on every finished
trial run of the study.  (Picking and exporting the winner is the next step of this module.)
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
    args = parser.parse_args(argv)
    table, front = mark_front(args.tracking_uri, args.experiment, args.study or None, args.out / "pareto.csv")
    print(f"{len(front)} of {len(table)} finished trials on the front -> {args.out / 'pareto.csv'}")
    show = front[["trial", M.VAL_ACCURACY, M.TEST_ACCURACY, M.SIZE_BYTES, M.LATENCY_RATIO, "quant.mode",
                  "student.width", "prune.sparsity"]]
    print(show.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    main()
