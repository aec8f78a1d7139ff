"""The study as one compact, committed table: every trial run's params, metrics and curves.

`python -m analysis.table` and `python -m analysis.report --from-mlflow` write it (`report/trials.csv`);
the report is then generated from the table alone, so it can be rebuilt without the MLflow store.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from compress.core import metrics as M
from compress.core.atomic import write_whole
from compress.tracking.trial_runs import RECIPE_PARAMS, load_trials

CURVES = {"curve_val": M.EPOCH_VAL_ACCURACY, "curve_train": M.EPOCH_TRAIN_ACCURACY}
METRICS = (*M.TRIAL_METRICS, M.TEACHER_LATENCY_MS, M.KERAS_VAL_ACCURACY, M.COREML_SIZE_BYTES, M.COREML_VAL_ACCURACY,
           *M.PHASE_TIMES, M.TIME_COREML_S)
COLUMNS = ("study", "trial", "status", *M.SEARCHED_PARAMS, *RECIPE_PARAMS, *METRICS, *CURVES)


def from_mlflow(tracking_uri: str, experiment: str,
                study: str | None = None) -> pd.DataFrame:
    """Every trial run of the study (failed and killed ones too, by status) with its curves."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    table = load_trials(tracking_uri, experiment, study, finished_only=False)
    if table.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    for column, metric in CURVES.items():
        table[column] = [
            ";".join(f"{m.value:.4f}" for m in sorted(client.get_metric_history(run_id, metric), key=lambda m: m.step))
            for run_id in table["run_id"]
        ]
    for column in COLUMNS:
        if column not in table:
            table[column] = None
    table["prune.method"] = _method_or_magnitude(table["prune.method"])
    # a trial retried after a kill has two runs, both kept (the report counts the killed ones):
    # by trial number, the finished run first
    table = table.assign(_unfinished=table["status"] != "FINISHED").sort_values(["trial", "_unfinished"], kind="stable")
    return table[list(COLUMNS)].reset_index(drop=True)


def with_committed(fresh: pd.DataFrame, committed: Path | None, study: str) -> pd.DataFrame:
    """`fresh` (from MLflow) plus the committed table's rows of `study` whose trials MLflow does not
    hold: a study resumed on a fresh machine has its earlier trials only in the committed table,
    and writing the table from MLflow alone would drop them."""
    if committed is None or not Path(committed).is_file():
        return fresh
    known = read(Path(committed))
    known = known[(known["study"].astype(str) == study) & ~known["trial"].isin(fresh["trial"])]
    if known.empty:
        return fresh
    for column in CURVES:
        known[column] = [";".join(f"{v:.4f}" for v in c) for c in known[column]]
    if fresh.empty:  # a fresh clone: the committed rows as they were read, their columns' types kept, so that
        return known.reset_index(drop=True)  # it is written back as it was
    return pd.concat([known, fresh], ignore_index=True).sort_values("trial", kind="stable").reset_index(drop=True)


def write(table: pd.DataFrame, path: Path) -> None:
    """Write the table atomically: a reader (another finalize process, finalize.jobs) sees the old
    file or the new one, never half of one."""
    write_whole(path, lambda tmp: table.to_csv(tmp, index=False, float_format="%.6g"))


def _method_or_magnitude(column: pd.Series) -> pd.Series:
    """Trials run before `prune.method` existed pruned by magnitude."""
    return column.astype(object).where(column.notna(), "magnitude")


def read(path: Path) -> pd.DataFrame:
    """The committed table; curves back as lists of floats (read as text: a one-epoch curve is one
    number, which the CSV reader would otherwise take for a float and the curve would be lost)."""
    table = pd.read_csv(path, dtype={column: str for column in CURVES})
    table["prune.method"] = _method_or_magnitude(table["prune.method"] if "prune.method" in table
                                                 else pd.Series([None] * len(table), dtype=object))
    for column in CURVES:
        if column not in table:
            table[column] = ""
    return curves_as_lists(table)


def curves_as_lists(table: pd.DataFrame) -> pd.DataFrame:
    """The curve columns ("0.81;0.84;...", as written) as lists of floats, in place."""
    for column in CURVES:
        table[column] = [[float(v) for v in str(s).split(";")] if isinstance(s, str) and s else []
                         for s in table[column]]
    return table


def finished(table: pd.DataFrame) -> pd.DataFrame:
    """The completed trials with every objective present (what the front is computed over)."""
    ok = table[table["status"] == "FINISHED"].copy()
    return ok.dropna(subset=[M.VAL_ACCURACY, M.SIZE_BYTES, M.LATENCY_MS]).reset_index(drop=True)
