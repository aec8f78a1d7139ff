"""Across machines, for real: a PostgreSQL study storage and an MLflow tracking server on
127.0.0.1, two independent sweep workers against them at once, every trial there once."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from conftest import ROOT, needs_data, needs_teacher
from optuna.trial import TrialState

from compress.core import metrics as M

pytestmark = [needs_data, needs_teacher]


def postgres_bin() -> Path | None:
    """The folder holding initdb and pg_ctl (Debian keeps them off the PATH)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the `postgres` account the Debian package creates."""
    if os.geteuid() != 0:
        return cmd
    if shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
    return ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture
def postgres():
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (scripts/setup.sh installs Debian's postgresql package)")
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres account to run the server")
    # outside pytest's root-only tmp tree, so that the postgres account can reach it
    base = Path(tempfile.mkdtemp(prefix="compress-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
    port = free_port()
    subprocess.run(as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
                   check=True, capture_output=True, timeout=120)
    subprocess.run(as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"), "-o",
                                f"-p {port} -k {sock} -c listen_addresses=127.0.0.1", "start"]),
                   check=True, capture_output=True, timeout=120)
    try:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE optuna")
            conn.execute("CREATE DATABASE mlflow")
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def mlflow_server(postgres, tmp_path):
    port = free_port()
    artifacts = tmp_path / "server-artifacts"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"{postgres}/mlflow", "--artifacts-destination", str(artifacts), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "mlflow-server.log", "w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            if proc.poll() is not None:
                pytest.fail("mlflow server exited: " + (tmp_path / "mlflow-server.log").read_text()[-2000:])
            try:
                if urllib.request.urlopen(f"{url}/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not come up: " + (tmp_path / "mlflow-server.log").read_text()[-2000:])
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_two_workers_share_a_postgres_study_and_an_mlflow_server(postgres, mlflow_server, tmp_path):
    storage = f"{postgres}/optuna"
    common = [sys.executable, "-m", "compress.sweep", "-m", "experiment=smoke", f"tracking.uri={mlflow_server}",
              f"hydra.sweeper.storage={storage}", "hydra.sweeper.n_trials=4", "paths.study=shared"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COMPRESS_THREADS": "1"}
    workers = [subprocess.Popen([*common, f"hydra.sweep.dir={tmp_path}/worker{i}"], cwd=ROOT, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for i in (0, 1)]
    outputs = [w.communicate(timeout=900)[0] for w in workers]
    for w, out in zip(workers, outputs):
        assert w.returncode == 0, out[-3000:]
    study = optuna.load_study(study_name="shared", storage=storage)
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    # both workers took part, each trial ran in exactly one of them
    folders = [sorted(p.name for p in (tmp_path / f"worker{i}").glob("trial_*")) for i in (0, 1)]
    assert all(folders) and sorted(folders[0] + folders[1]) == [f"trial_{n}" for n in range(4)]

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("fashion-mnist-compression-shared")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    trial_runs = [r for r in runs if r.data.tags.get(M.TAG_ROLE) == "trial"]
    parents = [r for r in runs if r.data.tags.get(M.TAG_ROLE) == "study"]
    assert len(parents) == 1
    assert sorted(int(r.data.tags[M.TAG_TRIAL]) for r in trial_runs) == [0, 1, 2, 3]
    assert all(r.info.status == "FINISHED" and r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
               for r in trial_runs)
    # the optimization result and the metrics agree across the two stores
    by_number = {int(r.data.tags[M.TAG_TRIAL]): r for r in trial_runs}
    for t in trials:
        assert t.values[0] == pytest.approx(by_number[t.number].data.metrics[M.VAL_ACCURACY])
    # artifacts went through the server to its artifact store
    assert {"model.tflite", "config.yaml"} <= {a.path for a in client.list_artifacts(trial_runs[0].info.run_id)}
