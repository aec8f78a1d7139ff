"""`python -m analysis.replay_early_stop`: what the early-stop rule would have done to a
finished study, replayed over its committed table.

    python -m analysis.replay_early_stop --table report/trials.csv --json report/early_stop_replay.json

The live comparison (`python -m compress.search_quality early-stop`) runs on the cheap proxy;
the real study is too slow to run twice.  The replay walks the study's finished trials in trial
order and applies `compress.search.early_stop.hopeless` (settings from `conf/early_stop/front.yaml`)
to each trial's distillation curve, with the trials before it that the rule let finish as its
references, exactly as the callback would have seen them.  A stopped trial is charged its
training time up to the stopping epoch (its `time_train_s` shared evenly over its distillation
epochs) and drops out of the front.

It is a counterfactual, not a run: with trials stopped, the sampler would have proposed other
trials after them.  It answers "at this study's scale, how much does the rule cut, and does it
throw away a trial the front needed?", which the proxy cannot.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from compress.config import paths
from compress.core import metrics as M
from compress.core.front import DEFAULT_OBJECTIVES, pareto_mask
from compress.core.hypervolume import REFERENCE, hypervolume, to_space
from compress.search.early_stop import Reference, hopeless
from compress.tracking import trials_table as T

ROOT = Path(__file__).resolve().parent.parent
RULE = ROOT / "conf" / "early_stop" / "front.yaml"


def epochs_of(row: pd.Series) -> int:
    """Training epochs the trial ran: its distillation curve, plus pruning and QAT epochs."""
    return len(row["curve_val"])


def replay(trials: pd.DataFrame, check_epochs: list[int], slack: float, min_completed: int) -> dict:
    """Apply the rule in trial order; returns per-trial outcomes and the totals."""
    kept: list[Reference] = []
    kept_points, all_points, outcomes = [], [], []
    epochs_total = epochs_saved = 0
    seconds_total = seconds_saved = 0.0
    for _, row in trials.sort_values("trial").iterrows():
        n_distill = int(row["distill.epochs"])
        curve = tuple(row["curve_val"][:n_distill])
        sparsity = float(row["prune.sparsity"])
        point = to_space(row[M.VAL_ACCURACY], row[M.SIZE_BYTES], row[M.LATENCY_RATIO])
        all_points.append(point)
        epochs, seconds = epochs_of(row), float(row[M.TIME_TOTAL_S])
        epochs_total += epochs
        seconds_total += seconds
        stopped, reason = None, None
        for e in check_epochs:
            if e > len(curve):
                break
            reason = hopeless(curve[e - 1], e, int(row[M.PARAMS]), str(row["quant.mode"]), int(row[M.MACS]), kept,
                              slack, min_completed, sparsity)
            if reason:
                stopped = e
                break
        if stopped:
            epochs_saved += epochs - stopped
            seconds_saved += seconds - float(row[M.TIME_TRAIN_S]) * stopped / len(curve)
        else:
            kept.append(Reference(float(row[M.VAL_ACCURACY]), float(row[M.SIZE_BYTES]), float(row[M.MACS]), curve,
                                  sparsity))
            kept_points.append(point)
        outcomes.append({"trial": int(row["trial"]), "stopped_at_epoch": stopped, "reason": reason,
                         "val_accuracy": float(row[M.VAL_ACCURACY]), "pareto": bool(row.get("pareto", False))})
    stopped_rows = [o for o in outcomes if o["stopped_at_epoch"]]
    return {
        "trials": len(outcomes),
        "stopped": len(stopped_rows),
        "stopped_on_front": [o["trial"] for o in stopped_rows if o["pareto"]],
        "epochs_saved_share": epochs_saved / epochs_total if epochs_total else 0.0,
        "time_saved_share": seconds_saved / seconds_total if seconds_total else 0.0,
        "hypervolume_all": hypervolume(all_points),
        "hypervolume_kept": hypervolume(kept_points),
        "reference_point": REFERENCE,
        "outcomes": outcomes,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analysis.replay_early_stop", description=__doc__.split("\n\n")[0])

    paths.add_study_arguments(parser, tracking=False)
    parser.add_argument("--table", type=Path, default=None,
                        help="the study's trials table (default: report/trials.csv, or sweeps/<study>/report/trials.csv)")
    parser.add_argument("--rule", type=Path, default=RULE, help="early_stop config to replay (default front.yaml)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    sp = paths.from_args(args)
    if args.json:
        try:
            sp.check_writable(args.json, "--json")
        except paths.ConfigError as exc:
            raise SystemExit(f"error: {exc}") from None
    args.table = args.table or sp.report_dir / "trials.csv"
    if not args.table.is_file():
        raise SystemExit(f"error: no study table at {args.table} (write one with `python -m analysis.report --from-mlflow`)")

    trials = T.finished(T.read(args.table))
    trials["pareto"] = pareto_mask(trials, DEFAULT_OBJECTIVES)
    rule = OmegaConf.load(args.rule)
    table = args.table.resolve()
    result = {"table": str(table.relative_to(ROOT) if table.is_relative_to(ROOT) else table),
              "check_epochs": list(rule.check_epochs), "slack": float(rule.slack),
              "min_completed": int(rule.min_completed),
              **replay(trials, list(rule.check_epochs), float(rule.slack), int(rule.min_completed))}
    print(f"replayed {result['trials']} trials: {result['stopped']} stopped "
          f"({len(result['stopped_on_front'])} of them on the study's front), "
          f"{100 * result['epochs_saved_share']:.0f}% of the training epochs and "
          f"{100 * result['time_saved_share']:.0f}% of the trial time saved; hypervolume "
          f"{result['hypervolume_all']:.4f} with every trial, {result['hypervolume_kept']:.4f} without the stopped ones")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
