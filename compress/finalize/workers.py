"""Finalists trained side by side (`finalize.jobs`): the students are small, so one process of two
threads leaves a core idle much of the time; `jobs` processes of cores/jobs threads each keep them
busy. The parent splits the pending finalists into groups of about equal cost (`expected_costs`:
the search trial's measured seconds per epoch times the final epochs; largest first), runs one
`python -m compress.finalize` per group with no export, waits, and carries on with what is left (the
winner's seeds go the same way, one process a seed). A child repeats the parent's command line and
selection and trains its group's share of it (`SHARE_ENV`), not a selection named by hand: a filled
size class (finalize/fill.py) widens the most accurate finalist of the whole selection, which a group
named by hand would choose among its own trials alone, training another recipe. Each child
appends its rows to the finalists' table (it takes turns through a lock), so a killed run resumes
as a sequential one does.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from compress.core import metrics as M
from compress.core.errors import CompressError

log = logging.getLogger(__name__)
CHILD_ENV = "COMPRESS_FINALIZE_WORKER"  # set in the child processes: they never start their own
SHARE_ENV = "COMPRESS_FINALIZE_SHARE"  # a child's trials, comma-separated, among the parent's selection
# what the parent sets per child (the parent ran the latency preflight: a child trains what it was given)
OWN_KEYS = ("finalize.export", "finalize.jobs", "finalize.latency_preflight", "seed")


def expected_costs(pending: list[tuple[dict, int]]) -> dict[int, float]:
    """Each pending finalist's expected training cost, from (its trial's row, its final epochs):
    the search trial's training seconds per epoch (`time_train_s` over `distill.epochs`) times the
    final epochs. An epoch's cost does not follow the MACs across families: in the default study a
    dsconv student of 3.6 M MACs trained 161 s an epoch in the search, a cnn of 3.8 M MACs 44 s.
    Where any row lacks a measured time (a table from before), the MACs times the epochs, for all."""
    def positive(row, key, default: float) -> float:
        try:
            value = float(row.get(key))
        except (TypeError, ValueError):
            return default
        return value if value > 0 else default  # nan compares False

    per_epoch = {int(row["trial"]): positive(row, M.TIME_TRAIN_S, 0.0) / positive(row, "distill.epochs", 1.0)
                 for row, _ in pending}
    if all(per_epoch.values()):  # one missing time falls back for all
        return {int(row["trial"]): per_epoch[int(row["trial"])] * epochs for row, epochs in pending}
    return {int(row["trial"]): positive(row, M.MACS, 1.0) * epochs for row, epochs in pending}


def plan(costs: dict[int, float], jobs: int) -> list[list[int]]:
    """Trials into at most `jobs` groups of about equal summed cost (largest first, each to the
    least loaded group); empty groups are dropped."""
    groups: list[list[int]] = [[] for _ in range(max(1, jobs))]
    loads = [0.0] * len(groups)
    for trial in sorted(costs, key=lambda t: (-costs[t], t)):
        i = loads.index(min(loads))
        groups[i].append(trial)
        loads[i] += costs[trial]
    return [g for g in groups if g]


def batches(pending: list[tuple[dict, int]], epochs_of, jobs: int) -> list[tuple[list[int], int]]:
    """The child processes for the pending (trial's row, seed) pairs, as (trials, seed): one seed's
    finalists in at most `jobs` groups of about equal expected cost (`plan`, `epochs_of(row)` each
    one's final epochs); several seeds (the winner's and the class leaders' extra seeds) one process
    a seed, with every trial of that seed."""
    seeds = sorted({seed for _, seed in pending})
    if len(seeds) > 1:
        return [(sorted({int(row["trial"]) for row, s in pending if s == seed}), seed) for seed in seeds]
    costs = expected_costs([(row, epochs_of(row)) for row, _ in pending])
    log.info("finalize.jobs=%d: expected training cost of each (the search's seconds per epoch times the final "
             "epochs): %s", jobs, {t: round(c) for t, c in costs.items()})
    return [(group, seeds[0]) for group in plan(costs, jobs)]


def child_overrides() -> tuple[list[str], Path]:
    """The command line's own overrides (less those the parent sets per child) and the run folder."""
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    keep = [o for o in hc.overrides.task if o.lstrip("+~").split("=", 1)[0] not in OWN_KEYS]
    return keep, Path(hc.runtime.output_dir)


def child_command(overrides: list[str], trials: list[int], seed: int, folder: Path,
                  threads: str) -> tuple[list[str], dict]:
    """One child's command line (the parent's overrides, its seed, no export, no children, no preflight) and
    environment (its share of the parent's selection, its threads)."""
    cmd = [sys.executable, "-m", "compress.finalize", *overrides, f"seed={seed}", "finalize.export=false",
           "finalize.jobs=1", "finalize.latency_preflight=null", f"hydra.run.dir={folder}"]
    env = {**os.environ, CHILD_ENV: "1", SHARE_ENV: ",".join(map(str, trials)), "COMPRESS_THREADS": threads,
           "PYTHONUNBUFFERED": "1"}
    return cmd, env


def assigned_share() -> list[int] | None:
    """In a child process, the trials it trains among the parent's selection; None elsewhere."""
    share = os.environ.get(SHARE_ENV) if os.environ.get(CHILD_ENV) else None
    return [int(t) for t in share.split(",")] if share else None


@contextmanager
def term_ends_in_finally():
    """SIGTERM raises SystemExit while this holds: Python's default ends the process at once, skipping
    `finally`, and the children would train on, orphaned (a stopped timing of the main job's finalize)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def side_by_side(batches: list[tuple[list[int], int]], jobs: int, phase: str) -> None:
    """Run each (trials, seed) batch as its own finalize process, at most `jobs` at a time, each
    with cores/jobs threads, its log under the run folder's finalize_<phase>_<n>/; raise with the
    log's path when one fails. Stopped (Ctrl-C, TERM), it stops its children before it ends."""
    overrides, run_dir = child_overrides()
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    waiting, running, failed = list(enumerate(batches, start=1)), [], []
    with term_ends_in_finally():
        try:
            while waiting or running:
                while waiting and len(running) < jobs:
                    i, (trials, seed) = waiting.pop(0)
                    folder = run_dir / f"finalize_{phase}_{i}"
                    folder.mkdir(parents=True, exist_ok=True)
                    cmd, env = child_command(overrides, trials, seed, folder, threads)
                    out = open(folder / "finalize.log", "ab")  # noqa: SIM115 - closed when the process ends
                    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
                    log.info("finalize %s process %d (%s thread(s)): trials %s seed %d; its progress: %s", phase,
                             i, threads, trials, seed, folder / "finalize.log")
                    running.append((i, proc, out, folder))
                running[0][1].wait()  # the oldest; it leaves `running` once it has ended
                i, proc, out, folder = running.pop(0)
                out.close()
                if proc.returncode != 0:
                    failed.append(f"{phase} process {i} ended with status {proc.returncode}: see "
                                  f"{folder / 'finalize.log'}")
        finally:
            for _, proc, out, _ in running:  # interrupted: no child outlives the parent
                proc.terminate()
                proc.wait()
                out.close()
    if failed:
        raise CompressError("finalize.jobs: " + "; ".join(failed))


def may_fork(jobs: int) -> bool:
    """Whether this process may start children: jobs > 1, not a child itself, and under Hydra
    (the children repeat its command line)."""
    from hydra.core.hydra_config import HydraConfig

    return jobs > 1 and not os.environ.get(CHILD_ENV) and HydraConfig.initialized()
