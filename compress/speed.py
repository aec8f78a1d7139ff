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
from pathlib import Path

import numpy as np

from compress.config.cli import compose, console_logging
from compress.core import metrics as M
from compress.search.cost import EPOCH_MODES, epoch_seconds, trial_times

log = logging.getLogger("compress.speed")


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
