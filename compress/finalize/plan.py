"""What a finalize run trains: the study's candidate trials (MLflow, else the committed table), the
finalists chosen among them (by hand or the default selection, the smallest class's widened to fill it),
and who teaches them (`finalize.teacher`)."""

from __future__ import annotations

import logging

import pandas as pd

from compress.core.errors import ConfigError
from compress.data import sources
from compress.finalize import recipe
from compress.finalize import selection as finalists
from compress.finalize.fill import fill
from compress.finalize.latency_budget import latency_budget
from compress.finalize.paths import Paths
from compress.teacher import tutor
from compress.tracking import trials_table

log = logging.getLogger(__name__)


def candidate_table(cfg, study: str, paths: Paths):
    """The study's trials: fresh from MLflow when it holds them (and written to the table), else
    the table on disk (a fresh clone has the committed one)."""
    if cfg.tracking.enabled:
        try:
            fresh = trials_table.from_mlflow(str(cfg.tracking.uri), str(cfg.tracking.experiment), study)
        except (SystemExit, Exception) as exc:  # noqa: BLE001 - no store, no experiment: fall back to the table
            log.info("no trial runs of %s in MLflow (%s): reading %s", study, str(exc).splitlines()[0][:120],
                     paths.trials)
            fresh = pd.DataFrame()
        if len(fresh):
            for committed in (paths.study_table, paths.trials):  # the study's own table first
                fresh = trials_table.with_committed(fresh, committed, study)
            trials_table.write(fresh, paths.trials)
            log.info("%d trial runs of study %s from MLflow -> %s", len(fresh), study, paths.trials)
            return fresh
    for source in dict.fromkeys((paths.trials, paths.study_table)):  # the named table, then the study's own
        if not source.is_file():
            continue
        table = trials_table.read(source)
        table = table[table["study"].astype(str) == study] if "study" in table else table
        if len(table):
            log.info("no trial runs of %s in MLflow: reading %s (%d rows)", study, source, len(table))
            return table
    raise ConfigError(f"paths.study={study}: no trial runs in MLflow and none in {paths.trials} or "
                      f"{paths.study_table}; run the study first (python -m compress.sweep -m)")


def with_finalists_teacher(cfg, study: str):
    """`cfg`, or (`finalize.teacher=ensemble` for a study of other data that has no ensemble of its own: one
    is hours of training, `python -m compress.ensemble`) `cfg` with `finalize.teacher=user`, said in a line."""
    kind = str(cfg.data.get("source", "fashion_mnist"))
    if cfg.finalize.get("teacher") != "ensemble" or kind == "fashion_mnist":
        return cfg  # Fashion-MNIST's ensemble is committed: a missing one stops with one line (teacher/tutor.py)
    path = tutor.target_path(cfg.ensemble, kind, str(cfg.paths.sweeps_dir), study)
    if path.is_file():
        return cfg
    log.warning("finalize.teacher=ensemble: study %s has no ensemble of its data at %s; the user's teacher teaches "
                "the finalists (build one: python -m compress.ensemble with the study's data options)", study, path)
    return recipe.copied(cfg, {"finalize.teacher": "user"})


def selected(cfg, trials, share: list[int] | None = None):
    """The finalists as this config trains them (the trials named by hand, else the default selection, each
    smallest-class recipe widened to fill its class where `finalize.fill_size_classes` says; of these, the
    trials in `share` alone, a worker process's part: finalize/workers.py), and the default selection (the
    one the targets count)."""
    f = cfg.finalize
    latency = latency_budget(f)  # the search trials carry no machine: their selection takes the default ratio
    default = finalists.select(trials, int(f.max_finalists), list(f.size_classes), float(f.min_search_accuracy),
                               latency.default if latency else None)
    selection = finalists.by_hand(trials, list(f.trials)) if f.trials else default
    if f.fill_size_classes and len(selection):  # as wide as the class allows (finalize/fill.py)
        shape, classes, _ = sources.check(cfg.data, str(cfg.paths.cache_dir))
        selection = fill(selection, f, cfg.student, classes, tuple(shape))
    if share is not None:  # after the fill: the recipes the whole selection trains
        missing = sorted(set(share) - {int(t) for t in selection["trial"]})
        if missing:
            raise ConfigError(f"finalize worker: trials {missing} are not among this run's finalists "
                              f"{selection['trial'].astype(int).tolist()}")
        selection = selection[selection["trial"].astype(int).isin(share)]
    return selection, default
