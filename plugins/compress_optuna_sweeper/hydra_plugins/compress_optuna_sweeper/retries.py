"""Trials run again. Two kinds, kept apart:

- a trial *lost* with its process (SIGKILL, an out-of-memory kill, a reboot: found by its stale
  heartbeat) or stopped by Ctrl-C is always run again with the same parameters and never counts as
  a failure, whatever `max_retry` says;
- a trial that *failed on its own* (its job raised) is run again up to `max_retry` times, and each
  failure counts towards `max_failure_rate`.

A retry is a WAITING trial with the same parameters that the next `ask` takes first; its
`failed_trial` and `retry_history` attributes (the names Optuna's RetryFailedTrialCallback uses)
keep the numbers it replaces out of the study's count. A run ends only when no trial it counts is
still RUNNING: `wait_for_running` waits for another process's trial to finish or to lose its
heartbeat."""

from __future__ import annotations

import logging
import time
import warnings
from typing import Optional

import optuna
from hydra_plugins.compress_optuna_sweeper.storage import retried_numbers
from optuna.trial import TrialState

log = logging.getLogger(__name__)
LOST = "lost"  # system attribute of a trial lost with its process: "heartbeat" or "interrupted"


def is_lost(trial: optuna.trial.FrozenTrial) -> bool:
    return LOST in trial.system_attrs


def retry(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> Optional[int]:
    """Queue `trial`'s parameters again unless a retry of it exists; returns the retry's number."""
    trials = study.get_trials(deepcopy=False)
    if trial.number in retried_numbers(trials):
        return None
    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    root = trial.system_attrs.get("failed_trial", trial.number)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        template = optuna.trial.create_trial(
            state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
            system_attrs={"failed_trial": root, "retry_history": history})
    # the storage numbers it (other processes may add trials meanwhile): ask it, never count for it
    trial_id = study._storage.create_new_trial(study._study_id, template_trial=template)
    return study._storage.get_trial(trial_id).number


def retry_failure(study: optuna.Study, trial: optuna.trial.FrozenTrial, max_retry: int) -> None:
    """A trial that failed on its own: run again while its chain has had fewer than `max_retry` retries."""
    if not max_retry:
        return
    history = trial.system_attrs.get("retry_history", [])
    done = sum(not is_lost(t) for t in study.get_trials(deepcopy=False) if t.number in history)
    if done < max_retry:
        number = retry(study, trial)
        if number is not None:
            log.info("trial %d will run again as trial %d (retry %d of max_retry=%d)", trial.number, number,
                     done + 1, max_retry)


def mark_lost(study: optuna.Study, trial_id: int, number: int, how: str) -> bool:
    """Mark a RUNNING trial lost (`how`: heartbeat or interrupted), FAIL it and queue it again.
    False when it had finished meanwhile (or another process marked it first)."""
    from optuna.exceptions import UpdateFinishedTrialError

    storage = study._storage
    try:  # the mark first: a finished trial takes no attribute, and FAIL is the claim between processes
        storage.set_trial_system_attr(trial_id, LOST, how)
        if not storage.set_trial_state_values(trial_id, TrialState.FAIL):
            return False
    except UpdateFinishedTrialError:
        return False
    again = retry(study, storage.get_trial(trial_id))
    if how == "heartbeat":
        log.warning("trial %d lost its heartbeat (its process died): it runs again as trial %s, not counted as a "
                    "failure", number, again)
    else:
        log.warning("trial %d stopped by an interrupt: it runs again as trial %s on the next run, not counted as "
                    "a failure", number, again)
    return True


def fail_stale(study: optuna.Study) -> list:
    """Trials whose process died (no heartbeat for the grace period): marked lost and queued again.
    Returns their numbers."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    storage = study._storage
    if not is_heartbeat_enabled(storage):  # no heartbeat: nothing can be told stale
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        stale = storage._get_stale_trial_ids(study._study_id)
    numbers = {i: storage.get_trial(i).number for i in stale}
    return [numbers[i] for i in stale if mark_lost(study, i, numbers[i], "heartbeat")]


def wait_for_running(study: optuna.Study, own: set, poll: float, grace: int) -> bool:
    """Wait while a trial this process does not run is RUNNING: until it finishes or loses its heartbeat.

    Returns True when a lost trial was queued again (the caller's loop has work again), False when
    nothing is left running elsewhere. Without a heartbeat a RUNNING trial cannot be told dead from
    alive: it is named and not waited for."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    heartbeat = is_heartbeat_enabled(study._storage)
    said, start = set(), time.time()
    while True:
        running = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                   if t.number not in own]
        if not running:
            if said:
                log.info("waited %.0f s for trial(s) %s", time.time() - start, sorted(said))
            return False
        if not heartbeat:
            log.warning("trial(s) %s still RUNNING and the storage has no heartbeat to tell a live process from a "
                        "dead one: not waited for (set hydra.sweeper.heartbeat_interval)",
                        [t.number for t in running])
            return False
        for t in running:
            if t.number not in said:
                said.add(t.number)
                log.info("waiting for trial %d (running in another process since %s; taken as lost when its "
                         "heartbeat is %d s old)", t.number,
                         t.datetime_start.strftime("%H:%M:%S") if t.datetime_start else "?", grace)
        if fail_stale(study):
            return True
        time.sleep(poll)
