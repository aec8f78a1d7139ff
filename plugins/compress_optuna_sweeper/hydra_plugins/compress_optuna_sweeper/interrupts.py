"""Ctrl-C on a sweep: one is enough. The worker processes and the launcher's jobs are stopped, and the
trials this process was running are marked lost at once (no wait for their heartbeat to expire), so
the next run of the same command runs them again without counting them as failures."""

from __future__ import annotations

import signal
import time
from typing import Any, Optional

import optuna
from hydra_plugins.compress_optuna_sweeper import launchers
from hydra_plugins.compress_optuna_sweeper.retries import mark_lost


def stop_everything(study: optuna.Study, own: set, workers: list, launcher: Optional[Any], stop: Any) -> None:
    """`own`: the trial numbers this process runs; `workers`: its worker processes (basic launcher);
    `launcher`: the launcher whose jobs to stop (None for the basic one); `stop`: the slots' event."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
    stop.set()
    deadline = time.time() + 2  # workers in this terminal got the same Ctrl-C: a moment to act on it
    while time.time() < deadline and any(w.poll() is None for w in workers):
        time.sleep(0.1)
    for w in workers:
        if w.poll() is None:  # started elsewhere (a service), or deaf to the terminal's signal
            w.send_signal(signal.SIGINT)
    if launcher is not None:
        launchers.stop_jobs(launcher)
    trials = study.get_trials(deepcopy=False)
    for number in sorted(own):
        mark_lost(study, trials[number]._trial_id, number, "interrupted")
    for w in workers:
        try:
            w.wait(timeout=15)
        except Exception:  # noqa: BLE001 - a worker that does not stop is killed; its trial goes stale
            w.kill()
