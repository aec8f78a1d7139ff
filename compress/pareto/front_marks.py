"""The study's front marked in MLflow (`pareto=true|false` on every finished trial run) and written as a
table; `python -m compress.pareto` (__main__.py) then picks a trial from it and exports it as it ran
(trial_export.py)."""

from __future__ import annotations

from pathlib import Path

from compress.config import paths
from compress.core import metrics as M
from compress.core.front import DEFAULT_OBJECTIVES, pareto_mask
from compress.tracking.trial_runs import load_trials

COLUMNS = ["study", "trial", *M.SEARCHED_PARAMS, M.VAL_ACCURACY, M.TEST_ACCURACY, M.SIZE_BYTES,
           M.SIZE_GZIP_BYTES, M.LATENCY_MS, M.LATENCY_RATIO, M.PARAMS, M.NONZERO_PARAMS, M.MACS, "run_id"]


def mark_front(sp: paths.StudyPaths, out_csv: Path):
    """Compute the front of the study's finished trials, tag the runs, write the table."""
    from mlflow.tracking import MlflowClient

    tracking_uri = sp.tracking_uri
    table = load_trials(tracking_uri, sp.experiment, sp.study)
    if table.empty:
        raise SystemExit(paths.no_trials_message(sp))
    table["pareto"] = pareto_mask(table, DEFAULT_OBJECTIVES)
    client = MlflowClient(tracking_uri=tracking_uri)
    for run_id, on_front in zip(table.run_id, table.pareto):
        client.set_tag(run_id, "pareto", "true" if on_front else "false")
    front = table[table.pareto].sort_values(M.SIZE_BYTES)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    front[[c for c in COLUMNS if c in front]].to_csv(out_csv, index=False)
    return table, front
