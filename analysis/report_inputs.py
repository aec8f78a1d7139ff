"""What report.md is computed from, read once: the study's committed tables, the bench, the search
JSON, the winner, the teacher's card and the study's composed config (its targets)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from analysis import finalists_section, main_job_timing
from compress.config import paths
from compress.config.cli import RETIRED_OPTIONS
from compress.config.paths import compose_for
from compress.core.front import DEFAULT_OBJECTIVES, pareto_mask
from compress.tracking import trials_table as T


class Inputs:
    """Everything the report is computed from, read once."""

    def __init__(self, folder: Path, winner_dir: Path, teacher_card: Path):
        self.folder = folder
        self.all = T.read(folder / "trials.csv")
        self.trials = T.finished(self.all)
        self.trials["pareto"] = pareto_mask(self.trials, DEFAULT_OBJECTIVES)
        self.bench = {r["name"]: r for r in json.loads((folder / "bench.json").read_text())}
        self.early_stop = _maybe_json(folder / "early_stop.json")
        self.early_stop_full = _maybe_json(folder / "early_stop_full.json")
        self.early_stop_replay = _maybe_json(folder / "early_stop_replay.json")
        self.samplers = _current_sampler_names(_maybe_json(folder / "samplers.json"))
        self.speed = _maybe_json(folder / "speed.json")
        self.pruning = _maybe_json(folder / "pruning.json")  # python -m analysis.pruning (experiment=pruning)
        # python -m compress.verify winner/winner.tflite --against models/teacher/teacher.keras --save ...
        self.paired_teacher = _maybe_json(folder / "paired_teacher.json")
        self.main_job = main_job_timing.summarize(folder / "main_job_timing")  # scripts/time_main_job.sh's ledger
        self.winner_json = json.loads((winner_dir / "winner.json").read_text())
        self.card = json.loads(teacher_card.read_text())
        study = self.winner_json.get("study")
        if study and study not in set(self.trials["study"].astype(str)):
            raise SystemExit(f"error: the winner comes from study {study!r} but {folder / 'trials.csv'} holds "
                             f"{sorted(set(self.trials['study'].astype(str)))}: write that study's table first")
        hits = self.trials[self.trials["trial"] == int(self.winner_json["trial"])]
        if hits.empty:
            raise SystemExit(f"error: winner trial {self.winner_json['trial']} is not a finished trial of the table")
        self.winner = hits.iloc[0]

        # the finalists' figures (None without finalists), for the text and for their figure alike
        config = study_config(study)
        self.targets = config.targets  # the app's budgets, as the study's config sets them
        self.finalists = finalists_section.figures(folder, self.winner_json,
                                                   self.bench["teacher_float32"]["test_accuracy"], self.targets,
                                                   self.speed, float(config.finalize.int8_tolerance))


def _maybe_json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def _current_sampler_names(samplers: dict | None) -> dict | None:
    """A comparison written under a retired sampler name (nsga2) read under its replacement's (nsgaii)."""
    if not samplers:
        return samplers
    renamed = {old.split("=", 1)[1]: new.split("=", 1)[1] for old, new in RETIRED_OPTIONS.items()
               if old.startswith("sampler=")}
    samplers["by_sampler"] = {renamed.get(k, k): v for k, v in samplers.get("by_sampler", {}).items()}
    for arm in samplers.get("arms", []):
        arm["sampler"] = renamed.get(arm.get("sampler"), arm.get("sampler"))
    return samplers


def study_config(study: str):
    """The study's composed config (its search space, measurement and finalize settings)."""
    return compose_for(study)


def study_trials(sp, report_table: Path | None = None) -> pd.DataFrame:
    """The study's trials from its MLflow runs plus the rows MLflow lacks from its committed table,
    then from the report's own `report_table` (as finalize reads them). A fresh clone's study is
    rebuilt from those tables and has no runs in MLflow: its report reads the tables, and says so.
    SystemExit with one line when none holds a trial."""
    fresh = T.from_mlflow(sp.tracking_uri, sp.experiment, sp.study)
    table = fresh
    for committed in dict.fromkeys(p for p in (sp.study_table, report_table) if p is not None):
        before = len(table)
        table = T.with_committed(table, committed, sp.study)  # trials run on another machine
        if len(table) > before:
            print(f"study {sp.study}: {len(table) - before} trial(s) MLflow does not hold, from {committed}")
    if table.empty:
        raise SystemExit(paths.no_trials_message(sp))
    print(f"study {sp.study}: {len(fresh)} trial runs from MLflow, {len(table) - len(fresh)} from committed tables")
    return table


def sampler_config():
    """The default study's sampler settings, from the composed config (not a file read by hand)."""
    return compose_for(None).hydra.sweeper.sampler


def early_stop_default() -> str:
    """The early_stop option the default study composes (its defaults list, as Hydra resolved it)."""
    return str(compose_for(None).hydra.runtime.choices.early_stop)


def study_recipe(trials: pd.DataFrame) -> dict:
    """What the study's trials ran (from the table, not the current defaults): distillation and
    pruning epochs, and the distillation views where the table records them (None: not recorded)."""
    def known(key):
        return trials[key].dropna() if key in trials else pd.Series(dtype=object)

    epochs = {key: int(known(key).median()) if len(known(key)) else None for key in ("distill.epochs", "prune.epochs")}
    views = sorted(set(known("distill.augment").astype(str)))
    return {"distill_epochs": epochs["distill.epochs"], "prune_epochs": epochs["prune.epochs"],
            "augment": {"flip_shift": "augmented views with the teacher's logits for each",
                        "none": "the plain images, the teacher's logits cached"}.get(views[0], views[0])
            if len(views) == 1 else None}
