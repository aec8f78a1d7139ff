"""The study as one compact, committed table: every trial run's params, metrics and curves.

`python -m analysis.report --from-mlflow` writes it (`report/trials.csv`); the report is then
generated from the table alone, so it can be rebuilt without the MLflow store.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.runs import DEFAULT_EXPERIMENT, DEFAULT_URI, RECIPE_PARAMS, load_trials
from compress import metrics as M

CURVES = {"curve_val": M.EPOCH_VAL_ACCURACY, "curve_train": M.EPOCH_TRAIN_ACCURACY}
METRICS = (*M.TRIAL_METRICS, M.TEACHER_LATENCY_MS, M.KERAS_VAL_ACCURACY, M.COREML_SIZE_BYTES, M.COREML_VAL_ACCURACY,
           *M.PHASE_TIMES, M.TIME_COREML_S)
COLUMNS = ("study", "trial", "status", *M.SEARCHED_PARAMS, *RECIPE_PARAMS, *METRICS, *CURVES)


def from_mlflow(tracking_uri: str = DEFAULT_URI, experiment: str = DEFAULT_EXPERIMENT,
                study: str | None = None) -> pd.DataFrame:
    """Every trial run of the study (failed and killed ones too, by status) with its curves."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    table = load_trials(tracking_uri, experiment, study, finished_only=False)
    for column, metric in CURVES.items():
        table[column] = [
            ";".join(f"{m.value:.4f}" for m in sorted(client.get_metric_history(run_id, metric), key=lambda m: m.step))
            for run_id in table["run_id"]
        ]
    for column in COLUMNS:
        if column not in table:
            table[column] = None
    # a trial retried after a kill has two runs, both kept (the report counts the killed ones):
    # by trial number, the finished run first
    table = table.assign(_unfinished=table["status"] != "FINISHED").sort_values(["trial", "_unfinished"], kind="stable")
    return table[list(COLUMNS)].reset_index(drop=True)


def write(table: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False, float_format="%.6g")


def read(path: Path) -> pd.DataFrame:
    """The committed table; curves back as lists of floats."""
    table = pd.read_csv(path)
    for column in CURVES:
        table[column] = [[float(v) for v in str(s).split(";")] if isinstance(s, str) and s else []
                         for s in table[column]]
    return table


def finished(table: pd.DataFrame) -> pd.DataFrame:
    """The completed trials with every objective present (what the front is computed over)."""
    ok = table[table["status"] == "FINISHED"].copy()
    return ok.dropna(subset=[M.VAL_ACCURACY, M.SIZE_BYTES, M.LATENCY_MS]).reset_index(drop=True)


def main(argv: list[str] | None = None) -> None:
    """`python -m analysis.table --study NAME --out PATH`: write a study's trials table from MLflow
    (commit it as the study grows: a fresh machine resumes the study from it)."""
    import argparse

    parser = argparse.ArgumentParser(description="Write a study's trials table (every run, its curves) from MLflow.")
    parser.add_argument("--study", required=True, help="the Optuna study name (hydra.sweeper.study_name)")
    parser.add_argument("--out", type=Path, required=True, help="the CSV to write")
    parser.add_argument("--tracking-uri", default=DEFAULT_URI)
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT)
    args = parser.parse_args(argv)
    table = from_mlflow(args.tracking_uri, args.experiment, args.study)
    if table.empty:
        raise SystemExit(f"error: no trial runs of study {args.study!r} in {args.tracking_uri}")
    write(table, args.out)
    print(f"{args.out}: {len(table)} runs of study {args.study} "
          f"({int((table['status'] == 'FINISHED').sum())} finished)")


if __name__ == "__main__":
    main()
