"""Does the search earn its place: the sampler against random search and the study with and without
early stopping, each arm a proxy study of its own, summarised by hypervolume; `python -m
compress.search_quality` runs the arms and stores the summary."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import optuna

from compress.config import paths
from compress.config.cli import ROOT
from compress.core.hypervolume import REFERENCE, hypervolume, to_space
from compress.core.options import QUANT

EXPERIMENTS = ("proxy", "full")


def storage_of(experiment: str) -> str:
    """The experiment's Optuna store as its config names it, made absolute so that it is the
    same file from any working directory."""
    url = paths.resolve(None, [f"experiment={experiment}"]).storage
    return url.replace("sqlite:///", f"sqlite:///{ROOT}/")



def run_arm(name: str, trials: int, overrides: list[str], experiment: str = "proxy") -> dict:
    """Run (or resume) one study of the experiment and summarise it from the store."""
    cmd = [sys.executable, "-m", "compress.sweep", "-m", f"experiment={experiment}", f"paths.study={name}",
           f"hydra.sweeper.storage={storage_of(experiment)}", f"hydra.sweeper.n_trials={trials}", *overrides]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COMPRESS_THREADS": os.environ.get("COMPRESS_THREADS", "1")}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"error: arm {name} failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    return summarise(name, storage_of(experiment), trials)


def summarise(name: str, storage: str, budget: int | None = None) -> dict:
    """Hypervolume, trial counts and trial time of a stored study; with `budget`, of its first
    `budget` finished (complete or pruned) trials by number, so that a study run further (an
    arm reused at a larger budget) still answers "after N trials"."""
    trials = finished_trials(name, storage)
    trials = trials[:budget] if budget is not None else trials
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    points = [to_space(t.user_attrs["val_accuracy"], t.user_attrs["size_bytes"], t.user_attrs["latency_ratio"])
              for t in done]
    seconds = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in (*done, *pruned)
                  if t.datetime_complete and t.datetime_start)
    return {"study": name, "complete": len(done), "pruned": len(pruned), "hypervolume": hypervolume(points),
            "trial_seconds": seconds, "epochs_trained": sum(epochs_trained(t) for t in (*done, *pruned)), "best_val_accuracy": max((t.user_attrs["val_accuracy"] for t in done), default=None)}


def finished_trials(name: str, storage: str) -> list[optuna.trial.FrozenTrial]:
    """The study's complete and pruned trials, by trial number."""
    study = optuna.load_study(study_name=name, storage=storage)
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return sorted((t for t in study.get_trials(deepcopy=False) if t.state in finished), key=lambda t: t.number)


def trials_within(name: str, seconds: float, storage: str) -> int:
    """How many of the study's first finished trials (by number) fit in `seconds` of trial time."""
    spent, n = 0.0, 0
    for t in finished_trials(name, storage):
        spent += (t.datetime_complete - t.datetime_start).total_seconds()
        if spent > seconds:
            break
        n += 1
    return n


def epochs_trained(trial: optuna.trial.FrozenTrial) -> int:
    """Training epochs a trial ran: a machine-independent measure of its cost.  A completed
    trial ran its distillation curve, one pruning epoch when sparse and one QAT epoch for qat;
    a pruned one stopped after the epoch its reason names (`compress/search/early_stop.py`)."""
    if trial.state == optuna.trial.TrialState.PRUNED:
        found = re.match(r"epoch (\d+):", trial.user_attrs.get("pruned_reason", ""))
        return int(found.group(1)) if found else 0
    p = trial.params
    return (len(trial.user_attrs.get("val_curve", [])) + int(float(p.get("prune.sparsity", 0)) > 0)
            + int(QUANT[str(p.get("quant.mode", "float32"))].fine_tunes))


def samplers(args) -> dict:
    arms = []
    for sampler in args.samplers:
        for seed in args.seeds:
            arm = run_arm(f"proxy_{sampler}_s{seed}", args.trials,
                          [f"sampler={sampler}", f"hydra.sweeper.sampler.seed={seed}", "early_stop=disabled"])
            arms.append({"sampler": sampler, "seed": seed, **arm})
            print(f"{sampler:<8} seed {seed}: hypervolume {arm['hypervolume']:.4f} ({arm['complete']} trials)", flush=True)
    by_sampler = {}
    for sampler in args.samplers:
        hv = [a["hypervolume"] for a in arms if a["sampler"] == sampler]
        by_sampler[sampler] = {"mean": float(np.mean(hv)), "std": float(np.std(hv, ddof=1)) if len(hv) > 1 else 0.0,
                               "values": hv}
    for sampler, s in by_sampler.items():
        print(f"{sampler:<8} hypervolume after {args.trials} trials: {s['mean']:.4f} +- {s['std']:.4f} "
              f"over seeds {list(args.seeds)}")
    return {"comparison": "samplers", "trials": args.trials, "reference_point": REFERENCE, "arms": arms,
            "by_sampler": by_sampler}


def early_stop(args) -> dict:
    storage = storage_of(args.experiment)
    arms = {}
    for label, group in (("without", "disabled"), ("with", "front")):
        if label in args.arms:
            arms[label] = run_arm(f"{args.experiment}_es_{label}_s{args.seed}", args.trials,
                                  [f"early_stop={group}", f"hydra.sweeper.sampler.seed={args.seed}"], args.experiment)
    if len(arms) < 2:  # one arm run on its own, beside the other: its figures, no comparison yet
        for label, a in arms.items():
            print(f"{label:<8} early stop: hypervolume {a['hypervolume']:.4f}, {a['complete']} complete, "
                  f"{a['pruned']} pruned, trial time {a['trial_seconds']:.0f} s")
        return {"comparison": "early_stop", "experiment": args.experiment, "trials": args.trials, "arms": arms}
    saved = 1.0 - arms["with"]["trial_seconds"] / arms["without"]["trial_seconds"]
    # the other side of the trade: what the arm without early stopping had found by the time the
    # arm with it had spent all of its trial time
    same_time = trials_within(arms["without"]["study"], arms["with"]["trial_seconds"], storage)
    arms["without_at_same_time"] = summarise(arms["without"]["study"], storage, same_time)
    epochs_saved = 1.0 - arms["with"]["epochs_trained"] / arms["without"]["epochs_trained"]
    for label in ("without", "with"):
        a = arms[label]
        print(f"{label:<8} early stop: hypervolume {a['hypervolume']:.4f}, {a['complete']} complete, "
              f"{a['pruned']} pruned, {a['epochs_trained']} training epochs, trial time {a['trial_seconds']:.0f} s")
    print(f"without early stop, after the same trial time ({same_time} trials): hypervolume "
          f"{arms['without_at_same_time']['hypervolume']:.4f}")
    print(f"early stopping saved {100 * epochs_saved:.0f}% of the training epochs and {100 * saved:.0f}% of the "
          f"trial time on the same budget of {args.trials} trials")
    return {"comparison": "early_stop", "experiment": args.experiment, "trials": args.trials, "seed": args.seed,
            "reference_point": REFERENCE,
            "arms": arms, "time_saved_share": saved, "epochs_saved_share": epochs_saved}
