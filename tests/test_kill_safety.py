"""A kill must not shorten the study: real processes and real signals on the toy study (no TensorFlow).

`max_failure_rate=0` in each: a trial lost with its process, or stopped by Ctrl-C, that were counted
as a failure would end the study with an error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

APP = Path(__file__).parent / "apps" / "toy_app.py"


def command(tmp_path: Path, *overrides: str) -> list[str]:
    return [sys.executable, str(APP), "-m", f"hydra.sweeper.storage=sqlite:///{tmp_path}/toy.db",
            f"hydra.sweep.dir={tmp_path}/jobs", "hydra.sweeper.n_trials=4", "hydra.sweeper.max_failure_rate=0.0",
            "hydra.sweeper.heartbeat_interval=1", "x=interval(0.0,3.0)", *overrides]


def start(tmp_path: Path, *overrides: str) -> subprocess.Popen:
    env = {**os.environ, "TOY_SWEEP_DIR": str(tmp_path / "jobs"), "TOY_PID_DIR": str(tmp_path)}
    # SIGINT as a terminal's foreground job has it: a suite started in the background of a shell without job
    # control (`pytest &` in a script) hands its children SIGINT ignored, and the Ctrl-C below would go unheard
    return subprocess.Popen(command(tmp_path, *overrides), env=env, cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for_job(tmp_path: Path, proc: subprocess.Popen, number: int) -> None:
    deadline = time.time() + 120
    while not (tmp_path / f"pid_{number}").is_file():
        assert time.time() < deadline and proc.poll() is None, f"trial {number} never started"
        time.sleep(0.05)
    time.sleep(0.5)


def rerun(tmp_path: Path, *overrides: str) -> str:
    done = subprocess.run(command(tmp_path, *overrides, "sleep=0"), capture_output=True, text=True, cwd=tmp_path,
                          timeout=300, env={**os.environ, "TOY_SWEEP_DIR": str(tmp_path / "jobs")})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def study(tmp_path: Path) -> list:
    return optuna.load_study(study_name="toy", storage=f"sqlite:///{tmp_path}/toy.db").get_trials()


def assert_study_whole(trials: list, lost: set, how: str) -> None:
    """Four trials COMPLETE, each lost one FAIL marked `how` and run again with its parameters."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 4, [(t.number, t.state) for t in trials]
    assert {t.number for t in trials if t.state == TrialState.FAIL} == lost
    for number in lost:
        assert trials[number].system_attrs["lost"] == how
        (again,) = [t for t in trials if t.system_attrs.get("failed_trial") == number]
        assert again.state == TrialState.COMPLETE and again.params == trials[number].params


@pytest.mark.slow
def test_a_killed_run_started_again_at_once_waits_for_its_lost_trial_and_runs_it_again(tmp_path):
    """The heartbeat has not expired when the second run starts: it must wait, not end a trial short. (A grace
    period of 10 s: the second run's own start, under a loaded suite, once took over the 4 s it was.)"""
    proc = start(tmp_path, "hydra.sweeper.grace_period=10", "sleep=3")
    wait_for_job(tmp_path, proc, 2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert [t.state for t in study(tmp_path)] == [TrialState.COMPLETE] * 2 + [TrialState.RUNNING]
    began = time.time()
    out = rerun(tmp_path, "hydra.sweeper.grace_period=10")
    assert "waiting for trial 2" in out and "trial 2 lost its heartbeat" in out
    assert time.time() - began >= 2  # it waited for the heartbeat to expire
    assert_study_whole(study(tmp_path), {2}, "heartbeat")


@pytest.mark.parametrize("overrides", [
    [],  # one process
    ["hydra.sweeper.n_jobs=2"],  # two worker processes on the store
    pytest.param(["hydra.sweeper.n_jobs=2", "hydra/launcher=submitit_local"], marks=pytest.mark.slow),  # a launcher
], ids=["one-process", "two-workers", "submitit"])
def test_one_ctrl_c_stops_everything_marks_the_running_trials_at_once_and_they_run_again(tmp_path, overrides):
    proc = start(tmp_path, "hydra.sweeper.grace_period=600", "sleep=30", *overrides)
    wait_for_job(tmp_path, proc, 0)
    began = time.time()
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends: the whole foreground group
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out[-3000:]
    assert time.time() - began < 25  # not the job's 30 s, nor a 600 s grace period
    assert "error: interrupted" in out
    for pid_file in tmp_path.glob("pid_*"):  # no job process is left behind
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid_file.read_text()), 0)
    trials = study(tmp_path)
    running = {t.number for t in trials if t.state == TrialState.RUNNING}
    lost = {t.number for t in trials if t.system_attrs.get("lost") == "interrupted"}
    assert not running and lost and all(trials[n].state == TrialState.FAIL for n in lost)
    rerun(tmp_path, "hydra.sweeper.grace_period=600", *overrides)
    assert_study_whole(study(tmp_path), lost, "interrupted")


def test_a_trial_that_failed_on_its_own_is_retried_max_retry_times_and_counts(tmp_path):
    done = subprocess.run([sys.executable, str(APP), "-m", f"hydra.sweeper.storage=sqlite:///{tmp_path}/toy.db",
                           f"hydra.sweep.dir={tmp_path}/jobs",
                           "hydra.sweeper.n_trials=2", "hydra.sweeper.max_retry=2", "x=interval(-3.0,-1.0)"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "TOY_SWEEP_DIR": str(tmp_path / "jobs")})
    assert done.returncode == 0, done.stderr[-2000:]
    trials = study(tmp_path)
    assert all(t.state == TrialState.FAIL and "lost" not in t.system_attrs for t in trials)
    assert len(trials) == 6  # each of the 2 trials, and its 2 retries with the same parameters
    firsts = [t for t in trials if "failed_trial" not in t.system_attrs]
    assert len(firsts) == 2
    for first in firsts:
        chain = [t for t in trials if t.system_attrs.get("failed_trial") == first.number]
        assert len(chain) == 2 and all(t.params == first.params for t in chain)


def test_the_study_run_closes_the_mlflow_run_of_a_trial_lost_with_its_process(tmp_path):
    """A trial whose process died leaves its MLflow run RUNNING; once the sweep has marked it lost,
    the study's end marks that run KILLED (and leaves the other trials' runs alone)."""
    from hydra_plugins.compress_optuna_sweeper.retries import mark_lost
    from hydra_plugins.compress_optuna_sweeper.storage import make_storage
    from mlflow.tracking import MlflowClient

    from compress.config.cli import compose
    from compress.core import metrics as M
    from compress.tracking import runs as tracking
    from compress.tracking.study_run import StudyRun

    storage = f"sqlite:///{tmp_path}/optuna.db"
    cfg = compose([f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.artifact_root={tmp_path}/artifacts",
                   f"hydra.sweeper.storage={storage}", "paths.study=lost"], return_hydra_config=True)
    study = optuna.create_study(study_name="lost", storage=make_storage(storage), directions=["maximize"] * 3)
    dead, alive = study.ask(), study.ask()
    experiment_id = tracking.connect(cfg.tracking)
    client = MlflowClient()
    run_of = {t.number: client.create_run(experiment_id, tags={M.TAG_ROLE: "trial", M.TAG_STUDY: "lost",
                                                               M.TAG_TRIAL: str(t.number)}).info.run_id
              for t in (dead, alive)}
    mark_lost(study, dead._trial_id, dead.number, "heartbeat")
    callback = StudyRun(cfg)
    callback.on_study_start(study)
    callback.on_study_end(study, None)
    assert client.get_run(run_of[dead.number]).info.status == "KILLED"
    assert client.get_run(run_of[alive.number]).info.status == "RUNNING"  # still running elsewhere: untouched
    assert client.get_run(callback.run_id).info.status == "FINISHED"
