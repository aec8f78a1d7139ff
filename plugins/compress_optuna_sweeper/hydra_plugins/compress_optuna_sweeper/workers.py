"""The sweep's other processes: n_jobs > 1 starts n_jobs - 1 workers running the same command
on the shared storage, each with its own ask / launch / tell loop (with Hydra's basic launcher; other
launchers run trials at once through themselves: `launchers`). A worker that dies stops heart-beating
and its trial is marked lost and run again (`retries`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional

log = logging.getLogger(__name__)
WORKER_ENV = "COMPRESS_SWEEPER_WORKER"  # set in the worker processes that n_jobs > 1 starts


def identity_overrides(study_name: str, number: int, storage: Optional[str]) -> List[str]:
    """Hydra overrides that give the job its study and trial as environment variables (read with
    `${optuna:...}`): they need no node in the app's config, and Hydra leaves hydra.* overrides out
    of the job's own overrides and of its launch line."""
    from hydra_plugins.compress_optuna_sweeper.config import TRIAL_ENV

    values = {"study_name": study_name, "trial_number": number, "storage": storage or ""}
    return [f"++hydra.job.env_set.{TRIAL_ENV[k]}='{v}'" for k, v in values.items()]


def start_workers(n_jobs: int, storage_url: Optional[str], sweep_dir: Path) -> list:
    """For n_jobs > 1, start n_jobs - 1 more processes running this same command.

    Each runs its own ask / launch / tell loop against the shared storage, so a new
    trial starts as soon as any worker is free (not when a whole batch has ended).  The
    workers split the cores between them (COMPRESS_THREADS) and log to the sweep folder.
    """
    import os
    import subprocess
    import sys

    if n_jobs <= 1 or os.environ.get(WORKER_ENV):
        return []
    if not storage_url:  # the released plugin runs its batches in this process: so do we
        log.info("n_jobs=%d without a storage: trials run one after another in this process (a storage "
                 "lets %d worker processes share the study)", n_jobs, n_jobs)
        return []
    sweep_dir.mkdir(parents=True, exist_ok=True)
    threads = str(max(1, (os.cpu_count() or 1) // n_jobs))
    os.environ.setdefault("COMPRESS_THREADS", threads)
    workers = []
    for i in range(1, n_jobs):
        env = {**os.environ, WORKER_ENV: str(i), "COMPRESS_THREADS": threads}
        log_file = open(sweep_dir / f"worker_{i}.log", "ab")  # noqa: SIM115 - closed with the process
        workers.append(subprocess.Popen([sys.executable, *sys.orig_argv[1:]], env=env, stdout=log_file,
                                        stderr=subprocess.STDOUT))
    log.info("started %d more worker process(es): %s", len(workers), [w.pid for w in workers])
    return workers
