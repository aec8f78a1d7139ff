"""The README's main job on a machine whose stores hold none, or only some, of the runs that the
committed tables name: the run ids in those tables are references to another store, never handles.

At smoke scale: a smoke study and its finalize; then the MLflow store as it was before finalize (it
holds the trials, not the finalists nor the registered winner); then every store deleted and only
the committed-style tables and the exported winner kept, and the whole main job again:
`compress.sweep -m`, `compress.finalize`, `compress.bench`, `analysis.report --from-mlflow`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, needs_data, needs_teacher, smoke_stores

from compress.data.fashion_mnist import sha256_of


def main_job_step(tmp_path: Path, *args: str) -> str:
    """One command of the main job on the smoke study, every store and output under `tmp_path`;
    its console, which must hold no traceback."""
    proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, timeout=900,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Traceback" not in output, output[-4000:]
    return output


def finalize(tmp_path: Path) -> str:
    # no latency budget: whether a smoke finalist runs at 20x the teacher's speed depends on the machine's load
    return main_job_step(tmp_path, "compress.finalize", *smoke_stores(tmp_path), "finalize.max_finalists=1",
                         "finalize.max_latency_ratio=null",
                         f"finalize.out_dir={tmp_path}/out", f"finalize.export_dir={tmp_path}/winner",
                         f"finalize.work_dir={tmp_path}/work", f"hydra.run.dir={tmp_path}/run")


def champion(tmp_path: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    version = client.get_model_version_by_alias("fashion-mnist-winner-smoke", "champion")
    return client, version


@needs_data
@needs_teacher
@pytest.mark.slow
def test_main_job_completes_where_the_store_lacks_the_runs_the_committed_tables_name(tmp_path, smoke_study):
    shutil.copyfile(tmp_path / "mlflow.db", tmp_path / "before_finalize.db")
    finalize(tmp_path)
    main_job_step(tmp_path, "analysis.table", "--study", "smoke", "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db",
                  "--out", str(tmp_path / "out" / "trials_smoke.csv"))
    finalists = pd.read_csv(tmp_path / "out" / "finalists.csv")
    shipped = {name: (tmp_path / "winner" / name).read_bytes()
               for name in ("winner.json", "winner.tflite", "README.md")}
    _, first = champion(tmp_path)
    assert first.run_id == finalists["run_id"].iloc[0]  # where the finalist's run is here, the winner is logged on it

    # a store holding some of the runs (the trials) and not others (the finalists, the registered model)
    shutil.copyfile(tmp_path / "before_finalize.db", tmp_path / "mlflow.db")
    output = finalize(tmp_path)
    assert "already trained" in output and "distilling" not in output
    assert "is not in the store" in output and "logged in a new run 'winner'" in output
    client, version = champion(tmp_path)
    assert client.get_run(version.run_id).info.run_name == "winner" and version.run_id != first.run_id
    assert version.tags["sha256"] == sha256_of(tmp_path / "winner" / "winner.tflite")

    # a fresh machine: no store at all, only the committed-style tables and the exported files
    for store in ("mlflow.db", "optuna.db", "artifacts", "work", "jobs", "run"):
        path = tmp_path / store
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    table = f"hydra.sweeper.trials_table={tmp_path}/out/trials_smoke.csv"
    output = main_job_step(tmp_path, "compress.sweep", "-m", *smoke_stores(tmp_path), table,
                           f"hydra.sweep.dir={tmp_path}/jobs")
    assert "3 of 3 trials done or running" in output
    output = finalize(tmp_path)
    assert "distilling" not in output and "logged in a new run 'winner'" in output
    assert {name: (tmp_path / "winner" / name).read_bytes() for name in shipped} == shipped  # the same winner, bytes
    client, version = champion(tmp_path)
    assert version.tags["trial"] == str(finalists["trial"].iloc[0])
    assert version.tags["sha256"] == sha256_of(tmp_path / "winner" / "winner.tflite")
    main_job_step(tmp_path, "compress.bench", "--study", "smoke", "--winner", str(tmp_path / "winner"),
                  "--json", str(tmp_path / "out" / "bench.json"), f"paths.cache_dir={ROOT / '.cache'}")
    table_before = (tmp_path / "out" / "trials.csv").read_bytes()
    output = main_job_step(tmp_path, "analysis.report", "--study", "smoke", "--from-mlflow", "--tracking-uri",
                           f"sqlite:///{tmp_path}/mlflow.db", "--folder", str(tmp_path / "out"), "--winner",
                           str(tmp_path / "winner"), "--out", str(tmp_path / "report.md"), "--no-figures")
    assert f"wrote {tmp_path / 'report.md'}" in output
    assert (tmp_path / "out" / "trials.csv").read_bytes() == table_before  # the committed table, written back as read
