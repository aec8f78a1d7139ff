"""`python -m compress.finalize`: train the study's finalists the long way, ship each as int8,
pick the winner among them and export it.

The study ranks recipes with a short, cheap proxy (a few distillation epochs); this stage takes
the chosen recipes (`compress.finalize.selection.select`, or `finalize.trials=[...]`) and retrains each
from scratch with the final recipe (`conf/finalize/`: tens of epochs on a schedule, on the plain
images or, with `finalize.augment=flip_shift`, over augmented views with the teacher's logits for the
same view). Every finalist is converted twice and both files are
measured from disk: in its trial's own quantization mode (to compare search and final
accuracy) and in the shipping encoding (full-integer int8, slimmed, per-channel or per-tensor,
quantization-aware fine-tuned where post-training quantization loses accuracy). Each finalist
is a nested MLflow run (`role=finalist`) under the study's run and a row of the finalists'
table, written as soon as it is done: a killed run resumes with the unfinished finalists only.

Only the default study writes the committed deliverables (`report/`, `winner/`); any other
study writes its own under `sweeps/<study>/`.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import pandas as pd

from compress.config import study_data as record
from compress.core import metrics as M
from compress.core.errors import ConfigError
from compress.finalize import classes as size_classes
from compress.finalize import latency_preflight
from compress.finalize import selection as finalists
from compress.finalize import workers as finalist_workers
from compress.finalize.finalist_run import reship, train_finalist
from compress.finalize.paths import Paths, work_name
from compress.finalize.plan import candidate_table, selected, with_finalists_teacher
from compress.finalize.recipe import final_epochs, finalist_config, recipe_hash, taught
from compress.finalize.winner_export import export
from compress.finalize.winner_policy import choose
from compress.search import context
from compress.search.preflight import preflight
from compress.tracking import run_logging

log = logging.getLogger(__name__)


def _check_study_data(cfg, study: str) -> None:
    """The data the study ran on (its record), or one line before anything is trained."""
    source, sweeps = str(cfg.data.get("source", "fashion_mnist")), str(cfg.paths.sweeps_dir)
    record.check_source(sweeps, study, source)
    if source != "fashion_mnist":  # read once: the finalists reuse this process's context
        s = context.get(cfg).splits
        record.check(sweeps, study, s.kind, s.fingerprint, s.source)


def run(cfg, study: str) -> dict:
    """Train the finalists not yet in the table, then pick and export the winner; returns the summary."""
    cfg = taught(with_finalists_teacher(cfg, study))  # the process's teacher, logits and checks
    preflight(cfg, check_data=False)
    _check_study_data(cfg, study)
    f = cfg.finalize
    paths = Paths.of(cfg)
    trials = candidate_table(cfg, study, paths)
    manual = bool(f.trials)
    share = finalist_workers.assigned_share()
    selection, default = selected(cfg, trials, share)
    in_default = {int(t) for t in default["trial"]} if len(default) else set()  # a row's `selection` column
    if selection.empty:
        floor = "" if manual else f" at or above finalize.min_search_accuracy={float(f.min_search_accuracy):g}"
        best = trials[M.VAL_ACCURACY].max() if M.VAL_ACCURACY in trials and len(trials) else float("nan")
        raise ConfigError(f"paths.study={study}: no finished trial with every objective{floor} to choose finalists "
                          f"from (best search validation accuracy: {best:.4f})")
    log.info("finalists of study %s (%s%s): trials %s, search files %s bytes, int8 files of about %s bytes "
             "(size classes %s read the int8 estimate)", study,
             "named by hand" if manual else f"default selection, at most {f.max_finalists}",
             "; this process's share of it" if share is not None else "",
             selection["trial"].astype(int).tolist(), [int(v) for v in selection[M.SIZE_BYTES]],
             [int(v) for v in finalists.with_ship_estimate(selection)[finalists.SHIP_ESTIMATE]],
             list(f.size_classes))
    table = finalists.read(paths.table)
    started = time.perf_counter()
    ctx = context.get(cfg)
    todo, too_slow = _within_latency(cfg, ctx, study, table, [(row, int(cfg.seed)) for _, row in selection.iterrows()],
                                     finalists.read_summary(paths.summary).get("latency_preflight"))
    table = _side_by_side(cfg, study, paths, table, todo, "finalists")
    for i, (row, seed) in enumerate(todo, start=1):
        table = _train_if_missing(cfg, ctx, row, seed, study, paths, table, f"{i} of {len(todo)}", in_default,
                                  started)
    table = _reshipped(cfg, ctx, study, paths, table, selection)
    rows = _current(table, study, selection, cfg)
    if not bool(f.export):  # a side measurement (another recipe of the same trials): rows only
        log.info("finalize.export=false: %d finalist row(s) in %s; the winner, its seeds and %s are left as they are",
                 len(rows), paths.table, paths.summary)
        return {"study": study, "selection": "manual" if manual else "default", "finalists": _keys(rows),
                "latency_preflight": too_slow}
    summary = {"study": study, "selection": "manual" if manual else "default",
               "rank_agreement": finalists.rank_agreement(rows, list(f.size_classes)),
               "finalists": _keys(rows), "latency_preflight": too_slow}

    winner, reason = choose(rows, cfg)
    if winner is None:
        finalists.write_summary(paths.summary, {**summary, "winner": None, "reason": reason})
        log.warning("no winner: %s", reason)
        return summary
    seeded = [int(winner["trial"])]  # the winner's recipe, and each size class's leader with class_seeds
    seeded += [int(r["trial"]) for r in size_classes.leaders(rows, cfg).values()] if bool(f.class_seeds) else []
    todo = [(selection[selection["trial"].astype(int) == trial].iloc[0], int(s))  # the study's row
            for trial in dict.fromkeys(seeded) for s in f.winner_seeds if int(s) != int(cfg.seed)]
    table = _side_by_side(cfg, study, paths, table, todo, "seeds")
    for row, seed in todo:
        table = _train_if_missing(cfg, ctx, row, seed, study, paths, table, f"trial {int(row['trial'])} seed {seed}",
                                  in_default, started)
    table = _reshipped(cfg, ctx, study, paths, table, selection)
    rows = _current(table, study, selection, cfg, extra_seeds=True)
    summary["finalists"] = _keys(rows)
    summary.update(export(rows, winner, reason, cfg, paths, study, ctx.splits))
    summary["size_classes"] = size_classes.summary(rows, cfg, paths.export, ctx.splits)
    finalists.write_summary(paths.summary, {k: v for k, v in summary.items() if k not in ("confusion", "io")})
    log.info("finalize done in %.0f s: winner trial %s, %s bytes, test %.2f%% (%s)", time.perf_counter() - started,
             summary["trial"], f"{summary['size_bytes']:,}", 100 * summary["test_accuracy"], reason)
    return summary


def _within_latency(cfg, ctx, study, table, todo, recorded=None):
    """`todo` less the finalists not yet trained whose untrained shipping file is already too slow for the
    latency budget on this CPU (`latency_preflight`; a verdict `recorded` under this CPU's budget stands),
    and what was measured of those left out."""
    if not latency_preflight.applies(cfg):
        return todo, []
    kept, too_slow = [], []
    for row, seed in todo:
        fcfg = finalist_config(cfg, row, seed)
        trial = int(row["trial"])
        check = None if finalists.done(table, study, trial, seed, recipe_hash(fcfg)) else \
            latency_preflight.recorded(recorded, fcfg, trial) or latency_preflight.measure_recipe(fcfg, ctx, trial)
        if check is not None and check.skip:
            log.warning("latency preflight: %s: not trained (finalize.latency_preflight=null trains it)", check.words())
            too_slow.append({k: v for k, v in dataclasses.asdict(check).items() if k != "recipe" or v})  # as read
            continue
        if check is not None:
            log.info("latency preflight: %s", check.words())
        kept.append((row, seed))
    return kept, too_slow


def _side_by_side(cfg, study, paths, table, todo, phase):
    """With finalize.jobs > 1, train the pending finalists of `todo` in that many child processes
    (compress.finalize.workers) and return the table as they left it; else do nothing."""
    jobs = int(cfg.finalize.jobs)
    if not finalist_workers.may_fork(jobs):
        return table
    pending = [(row, seed) for row, seed in todo if not finalists.done(
        table, study, int(row["trial"]), seed, recipe_hash(finalist_config(cfg, row, seed)))]
    if len(pending) < 2:
        return table
    batches = finalist_workers.batches(pending, lambda row: final_epochs(cfg.finalize, row), jobs)
    log.info("finalize.jobs=%d: %d pending finalist(s) in %d process(es) side by side", jobs, len(pending),
             len(batches))
    finalist_workers.side_by_side(batches, jobs, phase)
    return finalists.read(paths.table)


def _train_if_missing(cfg, ctx, row, seed, study, paths, table, label, in_default, started):
    """Train one finalist unless the table has it; its row's `selection` says whether the trial is one
    of the study's default selection (the one the targets count), however this run named it."""
    fcfg = finalist_config(cfg, row, seed)
    recipe = recipe_hash(fcfg)
    trial = int(row["trial"])
    if finalists.done(table, study, trial, seed, recipe):
        log.info("finalist %s: trial %d seed %d already trained (recipe %s), skipped", label, trial, seed, recipe)
        return table
    log.info("finalist %s: trial %d (%s, width %.3f, %s, %s) seed %d, %d epochs, augment %s [%.0f s so far]",
             label, trial, fcfg.student.arch, float(fcfg.student.width), fcfg.student.head, fcfg.quant.mode, seed,
             int(fcfg.distill.epochs), fcfg.distill.augment, time.perf_counter() - started)
    workdir = paths.work / work_name(trial, seed, recipe)
    result = train_finalist(fcfg, ctx.ready_to_train(fcfg.distill), row, workdir, study)
    result.update({"study": study, "trial": trial, "seed": seed, "recipe": recipe,
                   "selection": "default" if trial in in_default else "manual"})
    return finalists.append(paths.table, result)


def _reshipped(cfg, ctx, study, paths, table, selection):
    """The selection's rows (every seed) shipped by today's choice of encoding (`finalist_run.reship`,
    within the size class a widened one was made to fill), the table rewritten for each that changed
    and its MLflow run updated; the table."""
    filled = {int(r["trial"]): finalists.filled_class(r) for _, r in selection.iterrows()}
    for _, row in _current(table, study, selection, cfg, extra_seeds=True).iterrows():
        workdir = paths.work / work_name(int(row["trial"]), int(row["seed"]), str(row["recipe"]))
        changed = reship(cfg, ctx, row, workdir, filled.get(int(row["trial"])))
        if changed:
            table = finalists.append(paths.table, {**row.to_dict(), **changed})
            run_logging.update_finalist(cfg, row.get("run_id"), changed, workdir)
    return table


def _keys(rows) -> list[dict]:
    """The finalists' table rows this run's selection and recipe stand for (the report shows
    these, not the earlier recipes the table also keeps)."""
    return [{"trial": int(r["trial"]), "seed": int(r["seed"]), "recipe": str(r["recipe"])} for _, r in rows.iterrows()]


def _current(table, study, selection, cfg, extra_seeds: bool = False):
    """The table's rows for this selection under this recipe (earlier recipes stay in the file)."""
    keep = []
    for _, row in selection.iterrows():
        seeds = [int(cfg.seed)] + ([int(s) for s in cfg.finalize.winner_seeds] if extra_seeds else [])
        for seed in dict.fromkeys(seeds):
            recipe = recipe_hash(finalist_config(cfg, row, seed))
            match = table[(table["study"].astype(str) == study) & (table["trial"].astype(int) == int(row["trial"]))
                          & (table["seed"].astype(int) == seed) & (table["recipe"].astype(str) == recipe)]
            keep.append(match)
    return pd.concat(keep, ignore_index=True) if keep else table.iloc[:0]
