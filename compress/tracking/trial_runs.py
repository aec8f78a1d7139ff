"""Trials as a table, read from MLflow (any tracking URI); never from a training process."""

from __future__ import annotations

import pandas as pd

from compress.core import metrics as M

RECIPE_PARAMS = ("data.fraction", "distill.epochs", "distill.augment", "prune.epochs", "quant.qat_epochs")  # fixed per study, read too


def load_trials(tracking_uri: str, experiment: str,
                study: str | None = None, finished_only: bool = True) -> pd.DataFrame:
    """One row per trial run: run id, status, study, trial number, searched params, metrics.

    Failed, killed, stopped early and still-running runs are left out unless `finished_only` is
    False.  A run stopped early by the study's rule ends KILLED in MLflow; its status here is
    PRUNED, as Optuna has it, so that it is not taken for a killed process.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:  # no run was ever logged there: no trials (the caller says what to do)
        return pd.DataFrame()
    query = f"tags.`{M.TAG_ROLE}` = 'trial'"
    if study:
        query += f" and tags.`{M.TAG_STUDY}` = '{study}'"
    rows = []
    page_token = None
    while True:
        page = client.search_runs([exp.experiment_id], filter_string=query, max_results=1000, page_token=page_token)
        for run in page:
            if finished_only and run.info.status != "FINISHED":
                continue
            row = {
                "run_id": run.info.run_id,
                "status": "PRUNED" if run.data.tags.get(M.TAG_OPTUNA_STATE) == "PRUNED" else run.info.status,
                "study": run.data.tags.get(M.TAG_STUDY),
                "trial": int(run.data.tags[M.TAG_TRIAL]) if M.TAG_TRIAL in run.data.tags else None,
            }
            row.update({k: run.data.params.get(k) for k in (*M.SEARCHED_PARAMS, *RECIPE_PARAMS)})
            row.update(run.data.metrics)
            rows.append(row)
        page_token = page.token
        if not page_token:
            break
    table = pd.DataFrame(rows)
    for key in ("student.width", "distill.temperature", "distill.alpha", "prune.sparsity", *RECIPE_PARAMS):
        if key in table:
            table[key] = pd.to_numeric(table[key], errors="coerce")
    return table.sort_values(["study", "trial"]).reset_index(drop=True) if len(table) else table
