"""The main job timed from empty stores (`scripts/time_main_job.sh`): its ledger summed by stage, the machine it
ran on, how much of the cores other work took, and what the timed study's own finalists reached. The script
prints it (`python -m analysis.main_job_timing FOLDER`); report.md states the committed ledger's
(`report/main_job_timing/`).

A ledger row is one run of one stage: `done`, or `stopped` / `interrupted` (its finished work kept, its unfinished
work repeated by the next run), so the sum of the rows is an upper bound of the job's time."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

STAGES = ("study", "finalize", "bench", "report")
BUDGET_H = 4.0  # the whole main job on 2 cores, from empty stores
OUTCOME = "outcome.json"  # the timed study's size classes, copied from its finalists.json by `record_outcome`


def _cpu(folder: Path) -> dict | None:
    """What the machine's cores did while the stages ran (cpu.csv: sampled every 30 s), and how much was the job's."""
    path = folder / "cpu.csv"
    if not path.is_file():
        return None
    cpu = pd.read_csv(path, names=["at", "run", "machine", "job"])
    cpu["at"] = (pd.to_datetime(cpu["at"], utc=True) - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    spans = cpu.groupby("run")[["at", "machine", "job"]].agg(lambda c: c.iloc[-1] - c.iloc[0]).sum()
    if spans["machine"] <= 0:
        return None
    return {"span_s": float(spans["at"]), "busy_s": float(spans["machine"]),
            "job_share": float(spans["job"] / spans["machine"]), "other_s": float(spans["machine"] - spans["job"])}


def summarize(folder: Path) -> dict | None:
    """The ledger in `folder` (stages.csv, machine.txt, cpu.csv, outcome.json) summed; None where it has none."""
    path = folder / "stages.csv"
    if not path.is_file():
        return None
    ledger = pd.read_csv(path)
    by_stage = ledger.groupby("stage", sort=False)["seconds"].agg(["sum", "count"])
    machine = folder / "machine.txt"
    done = ledger["status"] == "done"
    outcome = folder / OUTCOME
    return {
        "stages": [{"stage": stage, "seconds": float(row["sum"]), "runs": int(row["count"])}
                   for stage, row in by_stage.iterrows()],
        "total_s": float(ledger["seconds"].sum()),
        "left": [s for s in STAGES if s not in set(ledger.loc[done, "stage"])],
        "machine": " and ".join(dict.fromkeys(machine.read_text().splitlines())) if machine.is_file()
        else "machine not recorded",
        "stopped": {"runs": int((~done).sum()), "seconds": float(ledger.loc[~done, "seconds"].sum())},
        "done_s": float(ledger.loc[done, "seconds"].sum()),
        "budget_h": BUDGET_H,
        "cpu": _cpu(folder),
        "outcome": json.loads(outcome.read_text()) if outcome.is_file() else None,
    }


def record_outcome(folder: Path, finalists_json: Path) -> bool:
    """Keep the timed study's size classes (each leader's recipe, its seeds' test accuracy and mean) beside the
    ledger, so that the committed ledger says what the timed job reached; False where finalize wrote none yet."""
    if not finalists_json.is_file():
        return False
    summary = json.loads(finalists_json.read_text())
    classes = {size: {k: c[k] for k in ("trial", "recipe", "ship_bytes", "seeds", "test_accuracy", "mean", "min",
                                         "max") if k in c}
               for size, c in summary.get("size_classes", {}).items()}
    outcome = {"study": summary.get("study"), "size_classes": classes,
               "winner": {k: summary.get(k) for k in ("trial", "seed", "size_bytes", "test_accuracy")}}
    tmp = folder / (OUTCOME + ".tmp")
    tmp.write_text(json.dumps(outcome, indent=1) + "\n")
    tmp.replace(folder / OUTCOME)
    return True


def against_targets(s: dict | None, size_classes, accuracy) -> list[dict]:
    """Each size class the timed study's finalists reached (its leader's seeds' mean), beside its accuracy target."""
    classes = ((s or {}).get("outcome") or {}).get("size_classes") or {}
    out = []
    for size, target in zip(size_classes, accuracy):
        reached = classes.get(str(int(size)))
        if reached:
            out.append({**reached, "size": int(size), "target": float(target), "met": reached["mean"] >= float(target),
                        "points": 100 * (reached["mean"] - float(target))})
    return out


def lines(s: dict) -> list[str]:
    """The console's summary of `summarize`'s dict."""
    out = [f"  {r['stage']}: {r['seconds']:,.0f} s ({r['seconds'] / 3600:.2f} h) in {r['runs']} run(s)"
           for r in s["stages"]]
    so_far = f" so far (not done yet: {', '.join(s['left'])})" if s["left"] else ""
    out.append(f"time_main_job: the main job from empty stores in {s['total_s']:,.0f} s ({s['total_s'] / 3600:.2f} h)"
               f"{so_far} on {s['machine']}; target {s['budget_h']:g} h")
    if s["stopped"]["runs"]:
        stopped = s["stopped"]
        out.append(f"  of which {stopped['runs']} run(s) stopped or interrupted ({stopped['seconds']:,.0f} s);"
                   f" the runs that finished their stage alone: {s['done_s']:,.0f} s ({s['done_s'] / 3600:.2f} h)")
    if s["cpu"]:
        c = s["cpu"]
        under_way = " (a stage under way included)" if s["left"] else ""
        out.append(f"  sampled every 30 s over {c['span_s']:,.0f} s{under_way}: the cores were busy "
                   f"{c['busy_s']:,.0f} CPU-seconds, {c['job_share']:.0%} of them this job's; "
                   f"other work took {c['other_s']:,.0f} CPU-seconds")
    for size, c in ((s["outcome"] or {}).get("size_classes") or {}).items():
        out.append(f"  its study's finalists, at most {int(size):,} B: trial {c['trial']}'s recipe, mean "
                   f"{100 * c['mean']:.2f}% test over seeds {c['seeds']} "
                   f"({', '.join(f'{100 * a:.2f}%' for a in c['test_accuracy'])})")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analysis.main_job_timing", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="the ledger's folder (time_main_job.sh's scratch, or a kept copy "
                                                  "such as report/main_job_timing)")
    parser.add_argument("--study", default=None, help="the timed study: its finalists' outcome is copied beside "
                                                      "the ledger from FOLDER/sweeps/STUDY/report/finalists.json")
    args = parser.parse_args(argv)
    if args.study:
        record_outcome(args.folder, args.folder / "sweeps" / args.study / "report" / "finalists.json")
    s = summarize(args.folder)
    if s is None:
        raise SystemExit(f"error: {args.folder / 'stages.csv'}: missing (bash scripts/time_main_job.sh writes it)")
    print("\n".join(lines(s)))


if __name__ == "__main__":
    main()
