"""What the analysis notebook draws, read in one call: the study's finished trials (MLflow's runs plus
the committed table's rows MLflow lacks; the committed table alone on a fresh clone) with the front
marked, the benchmark's reference models and the finalized winner's trial, and a line saying where
each came from."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from compress.config import paths
from compress.core.front import DEFAULT_OBJECTIVES, pareto_mask
from compress.tracking import trials_table as T

REFERENCES = ("teacher_float32", "teacher_dynamic", "teacher_pruned50_int8")  # bench rows drawn beside the trials


@dataclass
class StudyData:
    trials: pd.DataFrame  # finished trials of the study, with a boolean `pareto` column
    source: str  # where the trials were read
    references: list[dict] = field(default_factory=list)  # the benchmark's reference models
    winner_trial: int | None = None  # the finalized winner's search trial, when it is of this study
    summary: str = ""


def load(study: paths.StudyPaths, bench: Path, winner: Path) -> StudyData:
    """The study's trials, references and winner; SystemExit with one line when no store or table
    holds a trial of the study."""
    committed = next((p for p in (study.study_table, study.report_dir / "trials.csv") if p.is_file()
                      and study.study in set(T.read(p)["study"].astype(str))), None)
    fresh = T.from_mlflow(study.tracking_uri, study.experiment, study.study)
    if fresh.empty and committed is None:
        raise SystemExit(paths.no_trials_message(study))
    if fresh.empty:
        table, source = T.read(committed), f"the committed table {committed} (no runs of this study in MLflow)"
    else:
        merged = T.with_committed(fresh, committed, study.study)
        added = len(merged) - len(fresh)
        table = merged.assign(curve_val="", curve_train="")
        source = f"MLflow ({study.tracking_uri})" + (f" and {added} rows of {committed} that MLflow lacks" if added
                                                     else "")
    trials = T.finished(table)
    trials = trials[trials["study"].astype(str) == study.study].reset_index(drop=True)
    trials["pareto"] = pareto_mask(trials, DEFAULT_OBJECTIVES)
    references = ([r for r in json.loads(bench.read_text()) if r["name"] in REFERENCES] if bench.is_file() else [])
    shipped = json.loads(winner.read_text()) if winner.is_file() else {}
    winner_trial = shipped.get("trial") if shipped.get("study") == study.study else None
    summary = (f"{len(trials)} finished trials of {study.study!r}, read from {source}; {int(trials['pareto'].sum())} "
               f"on the front; {len(references)} reference models from {bench}; "
               + (f"winner: trial {winner_trial}'s recipe ({winner})" if winner_trial is not None
                  else f"no finalized winner of this study in {winner}"))
    return StudyData(trials, source, references, winner_trial, summary)
