"""`python -m compress.speed`: what a trial costs, measured in one run on the full data.

1. N trials at the default settings (tracking off, files in a temporary folder): the
   median of `time_total_s` and the median of each phase.
2. Distillation epochs of the default student with the teacher's logits read from the
   on-disk cache, against two ways of running the teacher on every batch, alternated:
   inside the training step, one after the other (`in_step`, the keras.io `Distiller` the
   user started from: the reference the 5x target is set against), and in the input
   pipeline, overlapped with the previous step's training (`online`, our faster variant), and
   the augmented views with the teacher's cached logits for each view (`views`, the finalists'
   recipe: consistent distillation without the teacher in the step).
Prints a table; with --json PATH writes the same figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from compress.config.cli import compose, console_logging
from compress.core import metrics as M
from compress.search import context
from compress.search.trial import run_trial
from compress.training import distill
from compress.training.students import build_student

log = logging.getLogger(__name__)


def trial_times(n: int, overrides: list[str]) -> list[dict]:
    """Run `n` default trials in this process (the first pays for loading the context)."""
    cfg = compose(["tracking.enabled=false", *overrides])
    out = []
    for i in range(n):
        with tempfile.TemporaryDirectory() as tmp:
            cfg.seed = i
            results = run_trial(cfg, tmp)
        out.append({k: results.get(k, 0.0) for k in (*M.PHASE_TIMES, M.TIME_COREML_S, M.TIME_CONTEXT_S, M.VAL_ACCURACY)})
    return out


EPOCH_MODES = ("cached", "in_step", "online", "views")


def _epoch_runner(mode: str, overrides: list[str]):
    """A compiled default student and its full-data pipeline for one of `EPOCH_MODES`;
    returns a function that trains one epoch and gives its seconds."""
    cfg = compose([f"distill.teacher_logits={'cached' if mode == 'cached' else 'online'}", *overrides])
    ctx = context.get(cfg)
    s = ctx.splits
    targets, teacher = ctx.distillation_targets(cfg.distill.teacher_logits)
    student = build_student(cfg.student)
    if mode == "in_step":
        student, teacher = distill.TeacherInStep(student, teacher), None
    steps = int(np.ceil(len(s.x_train) / cfg.distill.batch_size))
    distill.compile_for_distillation(student, cfg.distill, float(cfg.distill.learning_rate), steps,
                                     int(cfg.distill.steps_per_execution))
    # a warm-up pass on a slice traces the training graph (and the online teacher's), so the
    # timed epochs measure training alone, as in a trial's later epochs
    if mode == "views":
        view_images, view_logits = ctx.training_views(OmegaConf.merge(cfg.distill, {"augment": "flip_shift"}))
        labels = np.argmax(targets[:, :10], axis=1)
        student.fit(distill.view_dataset(view_images[:, :2048], view_logits[:, :2048], labels[:2048],
                                         cfg.distill.batch_size, 0), verbose=0)
        full = distill.view_dataset(view_images, view_logits, labels, cfg.distill.batch_size, 0)
    else:
        student.fit(distill.dataset(s.x_train[:2048], targets[:2048], cfg.distill.batch_size, 0, teacher), verbose=0)
        full = distill.dataset(s.x_train, targets, cfg.distill.batch_size, 0, teacher)

    def one_epoch() -> float:
        start = time.perf_counter()
        student.fit(full, epochs=1, verbose=0)
        return time.perf_counter() - start

    return one_epoch


def epoch_seconds(overrides: list[str], rounds: int = 3) -> dict[str, list[float]]:
    """Seconds per distillation epoch in each of `EPOCH_MODES`, timed in alternating rounds so
    that machine noise hits all alike."""
    runners = {mode: _epoch_runner(mode, overrides) for mode in EPOCH_MODES}
    times: dict[str, list[float]] = {mode: [] for mode in runners}
    for i in range(rounds):
        for mode, one_epoch in runners.items():
            times[mode].append(one_epoch())
            log.info("speed: round %d of %d, %s epoch %.1f s", i + 1, rounds, mode, times[mode][-1])
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compress.speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=3, help="default trials to time (default 3)")
    parser.add_argument("--epoch-rounds", type=int, default=3, help="alternating rounds of one epoch per mode (default 3)")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. data.fraction=0.1")
    args = parser.parse_args(argv)

    console_logging()
    log.info("speed: %d default trial(s), one after another", args.trials)
    trials = trial_times(args.trials, args.overrides)
    log.info("speed: %d alternating round(s) of one distillation epoch in each of %s", args.epoch_rounds,
             ", ".join(EPOCH_MODES))
    epochs = epoch_seconds(args.overrides, args.epoch_rounds)
    cached, in_step, online, views = (float(np.median(epochs[m])) for m in EPOCH_MODES)
    student = compose(args.overrides).student
    summary = {
        "cpus": os.cpu_count(),  # the machine the figures belong to
        "student": f"the {student.arch} student of width {float(student.width):.3f} ({student.head} head)",
        "trials": trials,
        "median_" + M.TIME_TOTAL_S: float(np.median([t[M.TIME_TOTAL_S] for t in trials])),
        **{f"median_{k}": float(np.median([t[k] for t in trials]))
           for k in (*M.PHASE_TIMES, M.TIME_COREML_S) if k != M.TIME_TOTAL_S},
        "epoch_s_cached_logits_rounds": epochs["cached"],
        "epoch_s_teacher_in_step_rounds": epochs["in_step"],
        "epoch_s_online_teacher_rounds": epochs["online"],
        "epoch_s_views_rounds": epochs["views"],
        "epoch_s_views": views,
        "views_cost_vs_cached": views / cached,
        "views_speedup_vs_teacher_in_step": in_step / views,
        "epoch_s_cached_logits": cached,
        "epoch_s_teacher_in_step": in_step,
        "epoch_s_online_teacher": online,
        "cached_speedup": in_step / cached,
        "cached_speedup_vs_online_pipeline": online / cached,
    }
    print(f"{'phase':<24}{'median s':>10}")
    for key in (M.TIME_TRAIN_S, M.TIME_PRUNE_S, M.TIME_CONVERT_S, M.TIME_EVAL_S, M.TIME_COREML_S, M.TIME_TOTAL_S):
        print(f"{key:<24}{summary['median_' + key]:>10.1f}")
    print(f"distillation epoch (median of {args.epoch_rounds}): cached logits {cached:.1f} s; teacher in the training "
          f"step {in_step:.1f} s -> {summary['cached_speedup']:.1f}x; teacher in the input pipeline {online:.1f} s "
          f"-> {summary['cached_speedup_vs_online_pipeline']:.1f}x; augmented views with cached logits {views:.1f} s "
          f"({summary['views_cost_vs_cached']:.2f}x the plain cached epoch)")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
