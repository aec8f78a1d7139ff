"""Trials at once through Hydra's launchers, with the real engines (joblib, submitit's local executor,
a Ray cluster on loopback), and the one-line refusals of a launcher that cannot work."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import ROOT, needs_data, needs_teacher, smoke_stores
from optuna.trial import TrialState

from compress.core import metrics as M

APP = Path(__file__).parent / "apps" / "toy_app.py"
# the same for the cluster and its drivers: token authentication with a token of this session's (Ray 2.60
# refuses to start a token cluster without one, and this keeps ~/.ray untouched)
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


def toy(tmp_path: Path, *overrides: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """The toy study (no TensorFlow) with its store and jobs under tmp_path."""
    env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k != "COMPRESS_THREADS"}
    cmd = [sys.executable, str(APP), "-m", f"hydra.sweeper.storage=sqlite:///{tmp_path}/toy.db",
           f"hydra.sweep.dir={tmp_path}/jobs", "x=interval(0.0,3.0)", *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**env, "TOY_SWEEP_DIR": str(tmp_path / "jobs")})
    if check:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def trials(tmp_path: Path) -> list:
    return optuna.load_study(study_name="toy", storage=f"sqlite:///{tmp_path}/toy.db").get_trials()


def assert_two_at_once(tmp_path: Path, proc: subprocess.CompletedProcess, n: int = 4) -> None:
    done = trials(tmp_path)
    assert [t.state for t in done] == [TrialState.COMPLETE] * n
    assert sorted(int(p.name) for p in (tmp_path / "jobs").iterdir() if p.name.isdigit()) == list(range(n))
    assert {t.user_attrs["threads"] for t in done} == {str(max(1, (os.cpu_count() or 1) // 2))}  # a share each
    spans = [t.user_attrs for t in done]
    assert any(p["pid"] != q["pid"] and p["start"] < q["end"] and q["start"] < p["end"] for p in spans for q in spans)
    log = proc.stdout + proc.stderr
    for number in range(n):  # each job's folder, named by its trial, and its log are printed
        assert f"trial {number}: job folder {tmp_path}/jobs/{number} (log: {tmp_path}/jobs/{number}/" in log


def test_joblib_runs_two_trials_at_once(tmp_path):
    proc = toy(tmp_path, "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=4", "sleep=1.5")
    assert_two_at_once(tmp_path, proc)
    assert "2 trial(s) at once, one launch per trial" in proc.stdout + proc.stderr
    assert not list((tmp_path / "jobs").glob("worker_*.log"))  # no worker processes beside the launcher


@pytest.mark.slow
def test_submitit_local_runs_two_at_once_and_a_killed_job_fails_only_its_trial(tmp_path):
    env = {**os.environ, "TOY_SWEEP_DIR": str(tmp_path / "jobs"), "TOY_PID_DIR": str(tmp_path)}
    cmd = [sys.executable, str(APP), "-m", f"hydra.sweeper.storage=sqlite:///{tmp_path}/toy.db",
           "x=interval(0.0,3.0)", "hydra/launcher=submitit_local", "hydra.sweeper.n_jobs=2",
           "hydra.sweeper.n_trials=5", "sleep=3"]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "pid_1").is_file():
        assert time.time() < deadline and proc.poll() is None, "trial 1's job never started"
        time.sleep(0.1)
    os.kill(int((tmp_path / "pid_1").read_text()), signal.SIGKILL)  # the job's own process, mid-trial
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out[-3000:]
    states = {t.number: t.state for t in trials(tmp_path)}
    assert states[1] == TrialState.FAIL and sorted(states) == [0, 1, 2, 3, 4]
    assert [n for n, s in states.items() if s == TrialState.COMPLETE] == [0, 2, 3, 4]
    assert "trial 1 failed: UncompletedJobError" in out
    assert (tmp_path / "jobs" / ".submitit").is_dir()


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster for the session, on loopback, dashboard off, no usage statistics."""
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, **RAY_ENV}
    ray = [sys.executable, "-m", "ray.scripts.scripts"]
    start = subprocess.run([*ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                            "--include-dashboard=false", "--num-cpus=2", "--disable-usage-stats"],
                           capture_output=True, text=True, env=env, timeout=180)
    assert start.returncode == 0, start.stdout[-2000:] + start.stderr[-2000:]
    yield f"127.0.0.1:{port}"
    subprocess.run([*ray, "stop", "--force"], capture_output=True, env=env, timeout=120)


@pytest.mark.slow  # a Ray cluster's start and stop: half a minute; each trial sleeps 4 s so that two overlap on a loaded machine too
def test_ray_runs_two_trials_at_once_on_a_cluster(tmp_path, ray_cluster):
    proc = toy(tmp_path, "hydra/launcher=ray", f"+hydra.launcher.ray.init.address={ray_cluster}",
               "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=4", "sleep=4", env=RAY_ENV)
    assert_two_at_once(tmp_path, proc)


@pytest.mark.slow
@needs_data
@needs_teacher
def test_the_smoke_study_through_ray_two_trials_at_once_each_a_nested_mlflow_run(tmp_path, ray_cluster):
    from mlflow.tracking import MlflowClient

    cmd = [sys.executable, "-m", "compress.sweep", "-m", *smoke_stores(tmp_path), f"hydra.sweep.dir={tmp_path}/jobs",
           "hydra/launcher=ray", f"+hydra.launcher.ray.init.address={ray_cluster}", "hydra.sweeper.n_jobs=2",
           "hydra.sweeper.n_trials=2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600, env={**os.environ, **RAY_ENV})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    study = optuna.load_study(study_name="smoke", storage=f"sqlite:///{tmp_path}/optuna.db")
    done = study.get_trials()
    assert [t.state for t in done] == [TrialState.COMPLETE] * 2, ([t.user_attrs.get("error") for t in done],
                                                                  proc.stdout[-3000:] + proc.stderr[-3000:])
    assert done[0].datetime_start < done[1].datetime_complete and done[1].datetime_start < done[0].datetime_complete
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    (experiment,) = [e for e in client.search_experiments() if e.name == "fashion-mnist-compression-smoke"]
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get(M.TAG_ROLE) == "study"]
    children = [r for r in runs if r.data.tags.get(M.TAG_ROLE) == "trial"]
    assert len(children) == 2 and all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children)
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert sorted(int(r.data.tags[M.TAG_TRIAL]) for r in children) == [0, 1]


@pytest.mark.parametrize("overrides, expected", [
    (["hydra/launcher=submitit_slurm"], "hydra/launcher=submitit_slurm runs jobs on other machines, which cannot "
                                        "open hydra.sweeper.storage=sqlite"),
    (["hydra/launcher=ray", "+hydra.launcher.ray.init.address=127.0.0.1:9"], "no Ray cluster answers there"),
    (["hydra/launcher=joblib", "hydra.sweeper.n_jobs=0"], "hydra.sweeper.n_jobs=0: must be an integer >= 1"),
])
def test_a_launcher_that_cannot_work_is_one_line_and_no_store(tmp_path, overrides, expected):
    proc = toy(tmp_path, *overrides, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and expected in proc.stderr
    assert not (tmp_path / "toy.db").exists()


def test_the_slurm_option_requeues_timeouts_and_refuses_a_file_store(tmp_path):
    from compress.config.cli import compose

    launcher = compose(["hydra/launcher=slurm"], return_hydra_config=True).hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher") and launcher.max_num_timeout == 3
    proc = subprocess.run([sys.executable, "-m", "compress.sweep", "-m", "experiment=smoke", "hydra/launcher=slurm",
                           f"hydra.sweeper.storage=sqlite:///{tmp_path}/optuna.db",
                           f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2 and "hydra/launcher=submitit_slurm runs jobs on other machines" in proc.stderr
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_launcher_whose_extra_is_missing_names_the_extra():
    """Run as if hydra-joblib-launcher were not installed (its module not found), before Hydra composes."""
    import tomllib

    from compress.config.cli import LAUNCHER_EXTRAS

    code = ("import sys, importlib.util; from compress.config.cli import check_launcher_installed\n"
            "importlib.util.find_spec = lambda name, *a: None if 'joblib_launcher' in name else object()\n"
            "check_launcher_installed(sys.argv[1:])")
    proc = subprocess.run([sys.executable, "-c", code, "hydra/launcher=joblib"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: hydra/launcher=joblib is not installed: pip install -e '.[joblib]' " \
                                  "(docs/scaling-out.md)"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {extra for _, extra in LAUNCHER_EXTRAS.values()} <= set(extras)  # every extra named exists


def test_without_a_storage_the_launcher_still_runs_the_study_in_memory(tmp_path):
    import yaml

    proc = toy(tmp_path, "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=4",
               "hydra.sweeper.storage=null")
    results = yaml.safe_load((tmp_path / "jobs" / "optimization_results.yaml").read_text())
    assert results["n_complete"] == 4 and not (tmp_path / "toy.db").exists()
    assert sorted(int(p.name) for p in (tmp_path / "jobs").iterdir() if p.name.isdigit()) == [0, 1, 2, 3]
    assert "(in memory): 0 of 4 trials" in proc.stdout + proc.stderr
