"""`python -m compress.finalize` on the smoke study, end to end through the real entry points:
finalists logged, files measured from disk, the winner picked among them, and a second run that
resumes without training a finished finalist again, two finalists (then two seeds) at once in
processes side by side (finalize.jobs=2).

Then the README's main job on a machine whose stores hold none, or only some, of the runs that the
committed tables name (the run ids in those tables are references to another store, never handles):
the MLflow store as it was before finalize (the trials, not the finalists nor the registered winner),
then every store deleted and only the committed-style tables and the exported winner kept, and the
whole main job again: `compress.sweep -m`, `compress.finalize`, `compress.bench`, `analysis.report
--from-mlflow`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, needs_data, needs_teacher, smoke_stores

from compress.config.cli import compose
from compress.core import metrics as M
from compress.core.errors import ConfigError
from compress.data.arrays import unit
from compress.data.fashion_mnist import sha256_of
from compress.finalize.paths import Paths


def test_only_the_default_study_writes_the_committed_deliverables():
    default = Paths.of(compose(return_hydra_config=True))
    assert default.table == Path("report/finalists.csv") and default.export == Path("winner")
    assert default.trials == Path("report/trials.csv")
    smoke = Paths.of(compose(["experiment=smoke"], return_hydra_config=True))
    for path in (smoke.trials, smoke.table, smoke.summary, smoke.export, smoke.work):
        assert path.parts[:2] == ("sweeps", "smoke"), path
    with pytest.raises(ConfigError, match="may not write the default study's committed winner"):
        Paths.of(compose(["experiment=smoke", "finalize.export_dir=winner"], return_hydra_config=True))


def run(tmp_path: Path, module: str, *extra: str) -> subprocess.CompletedProcess:
    assert module == "compress.finalize"  # the study itself: the session's smoke study, copied (conftest)
    # no latency budget: whether a one-epoch smoke finalist runs at 20x the teacher's speed depends on the
    # machine's load (the budget's own rule is tested in test_finalists)
    cmd = [sys.executable, "-m", module, *smoke_stores(tmp_path), "finalize.max_latency_ratio=null", *extra,
           f"finalize.out_dir={tmp_path}/out", f"finalize.export_dir={tmp_path}/winner",
           f"finalize.work_dir={tmp_path}/work", f"hydra.run.dir={tmp_path}/run"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@needs_data
@needs_teacher
@pytest.mark.slow
def test_finalize_smoke_study_end_to_end_and_resume(tmp_path, smoke_study):
    from mlflow.tracking import MlflowClient

    from compress.measure.scoring import score

    shutil.copyfile(tmp_path / "mlflow.db", tmp_path / "before_finalize.db")  # the trials only: for the end
    # two finalists in two processes side by side, then the same command with the winner's and each size class
    # leader's seed 1 (the default takes 0, 1 and 2: one seed more tests the same and starts fewer processes; the
    # split of several seeds into processes is test_finalists'): the second run resumes, trains only those seeds
    # (two at once where there are two) and nothing twice
    first = run(tmp_path, "compress.finalize", "finalize.max_finalists=2", "finalize.jobs=2")
    assert "finalize.jobs=2: 2 pending finalist(s) in 2 process(es) side by side" in first.stdout + first.stderr
    assert (first.stdout + first.stderr).count("in 2 process(es) side by side") == 1  # smoke: no extra seed yet
    table = pd.read_csv(tmp_path / "out" / "finalists.csv")
    assert len(table) == 2 and table["trial"].nunique() == 2 and set(table["seed"]) == {0}
    second = run(tmp_path, "compress.finalize", "finalize.max_finalists=2", "finalize.winner_seeds=[0,1]",
                 "finalize.jobs=2")
    output = second.stdout + second.stderr
    assert "already trained" in output and "Traceback" not in output + first.stdout + first.stderr
    full = pd.read_csv(tmp_path / "out" / "finalists.csv")
    keys = list(zip(full["trial"], full["seed"]))
    assert len(keys) == len(set(keys)) and full["trial"].nunique() == 2  # nothing trained twice
    winner = json.loads((tmp_path / "winner" / "winner.json").read_text())
    classes = json.loads((tmp_path / "out" / "finalists.json").read_text())["size_classes"]
    seeded = {c["trial"] for c in classes.values()} | {winner["trial"]}  # finalize.class_seeds: each class's leader
    assert {t for t, s in keys if s} == seeded
    assert sorted(full["seed"]) == sorted([0, 0] + [1] * len(seeded)) and set(full["selection"]) == {"default"}
    # the extra seeds alone, side by side where there are two
    assert output.count(f"{len(seeded)} pending finalist(s) in 2 process(es) side by side") == (len(seeded) == 2)
    logs = sorted((tmp_path / "run").glob("finalize_*_*/finalize.log"))  # one a worker process: 2 runs x 2 processes
    assert len(logs) == 4 and all("finalist trial" in p.read_text() for p in logs)
    for c in classes.values():  # each class's leader: its seeds' mean, and its file against the user's teacher
        assert c["seeds"] == [0, 1] and min(c["test_accuracy"]) <= c["mean"] <= max(c["test_accuracy"])
        assert c["paired_teacher"]["n"] == 600 and 0 <= c["paired_teacher"]["mcnemar_p"] <= 1
    from compress.measure import machine

    assert (full["isa"] == machine.record()["isa"]).all() and full["cpu"].astype(bool).all()
    # a seed of the winner's recipe: the same recipe, another seed
    again = full[(full["seed"] == 1) & (full["trial"] == winner["trial"])].iloc[0]
    original = full[(full["seed"] == 0) & (full["trial"] == again["trial"])].iloc[0]
    for column in ("arch", "width", "head", "quant.mode", "prune.sparsity", "distill.temperature", "distill.alpha"):
        assert again[column] == original[column], column
    winner_seeds = full[full["trial"] == winner["trial"]]
    table = full[full["seed"] == 0]
    trials = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert set(table["trial"]) <= set(trials.loc[trials["status"] == "FINISHED", "trial"])

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    (experiment,) = [e for e in client.search_experiments() if e.name == "fashion-mnist-compression-smoke"]
    runs = client.search_runs([experiment.experiment_id], max_results=200)
    (parent,) = [r for r in runs if r.data.tags.get(M.TAG_ROLE) == "study"]
    found = [r for r in runs if r.data.tags.get(M.TAG_ROLE) == "finalist"]
    assert len(found) == len(full)  # one run a row: the resumed run logged only the seeds it trained
    from compress.data import fashion_mnist as data
    from compress.measure.scoring import predictions
    from compress.teacher.model import load_keras

    test = data.load().sliced(0.06)
    for finalist in [r for r in found if r.data.params.get("seed") == "0"]:
        tags, metrics = finalist.data.tags, finalist.data.metrics
        assert tags["mlflow.parentRunId"] == parent.info.run_id and tags[M.TAG_STUDY] == "smoke"
        row = table[table["trial"] == int(tags[M.TAG_SEARCH_TRIAL])].iloc[0]
        assert row["run_id"] == finalist.info.run_id
        for name in (*M.TRIAL_METRICS, M.SHIP_VAL_ACCURACY, M.SHIP_TEST_ACCURACY, M.SHIP_SIZE_BYTES,
                     M.SHIP_LATENCY_RATIO, M.COREML_TEST_ACCURACY):
            assert name in metrics, name
        assert client.get_metric_history(finalist.info.run_id, M.EPOCH_VAL_ACCURACY)
        artifacts = {a.path for a in client.list_artifacts(finalist.info.run_id)}
        assert {"finalist.tflite", "model.tflite", "finalist.mlpackage", "config.yaml"} <= artifacts
        # the shipping file is int8, slimmed, and its logged figures are its own, from disk
        ship = tmp_path / "work" / f"trial_{int(row['trial'])}_seed0_{row['recipe']}" / "finalist.tflite"
        scored = score(ship, fraction=0.06)
        assert scored["accuracy"] == pytest.approx(metrics[M.SHIP_TEST_ACCURACY], abs=1e-12)
        assert scored["accuracy"] == pytest.approx(row[M.SHIP_TEST_ACCURACY], abs=1e-6)  # the table keeps 6 digits
        assert scored["size_bytes"] == row[M.SHIP_SIZE_BYTES] == metrics[M.SHIP_SIZE_BYTES]
        assert row["ship_encoding"] in {"ptq_per_channel", "ptq_per_tensor", "qat_per_channel"}
        assert row[f"int8_{row['ship_encoding']}_bytes"] == row[M.SHIP_SIZE_BYTES]
        assert row["ship_bytes_names"] < 100
        # student.keras (and the Core ML package made from it) is the network the shipped file carries, in
        # float: the two agree on nearly every image whichever encoding shipped
        float_top1 = load_keras(ship.parent / "student.keras").predict(unit(test.x_test), verbose=0).argmax(1)
        assert np.mean(float_top1 == predictions(ship, test.x_test)) >= 0.9
    assert winner["trial"] in set(table["trial"]) and winner["policy"] == "max_bytes"
    assert winner["latency_machine"].endswith(f"({machine.record()['isa']})")  # where its latency ratio ran
    assert winner["seeds"]["n"] == 2 and winner["seed"] == int(
        winner_seeds.sort_values([M.SHIP_VAL_ACCURACY, "seed"], ascending=[False, True]).iloc[0]["seed"])
    best = table[table[M.SHIP_SIZE_BYTES] <= 65_536].sort_values(M.SHIP_VAL_ACCURACY).iloc[-1]
    assert winner["trial"] == int(best["trial"])
    assert (tmp_path / "winner" / "winner.tflite").stat().st_size == winner["size_bytes"]
    assert (tmp_path / "winner" / "README.md").read_text().count("zero point") >= 2
    for trial in table["trial"]:
        assert (tmp_path / "winner" / "finalists" / f"trial_{trial}" / "finalist.tflite").is_file()
    summary = json.loads((tmp_path / "out" / "finalists.json").read_text())
    assert summary["rank_agreement"]["overall"]["n"] == 2
    assert len(summary["finalists"]) == len(full)  # the rows the report shows: both finalists and the seeds

    # a side measurement (the winner's recipe with augmented views) adds its row and touches nothing else
    before = {name: (tmp_path / name).read_bytes() for name in ("winner/winner.json", "out/finalists.json")}
    # (taught by the user's teacher: its views' logits take seconds, the ensemble's half a minute on a fresh clone)
    side = run(tmp_path, "compress.finalize", f"finalize.trials=[{winner['trial']}]", "finalize.augment=flip_shift",
               "finalize.export=false", "finalize.teacher=user")
    assert "finalize.export=false" in side.stdout + side.stderr
    rows = pd.read_csv(tmp_path / "out" / "finalists.csv")
    assert len(rows) == len(full) + 1
    assert list(rows.loc[rows["augment"] == "flip_shift", "trial"]) == [winner["trial"]]
    assert list(rows.loc[rows["augment"] == "flip_shift", "teacher"]) == ["user"]
    # named by hand, yet one of the default selection's trials: its row says so
    assert list(rows.loc[rows["augment"] == "flip_shift", "selection"]) == ["default"]
    assert {name: (tmp_path / name).read_bytes() for name in before} == before


    # the winner is a registered MLflow model, alias champion, over the shipped file
    registered = winner["registered_model"]
    assert registered == {"name": "fashion-mnist-winner-smoke", "alias": "champion",
                          "uri": "models:/fashion-mnist-winner-smoke@champion"}  # nothing of one store's
    version = client.get_model_version_by_alias(registered["name"], "champion")
    assert version.tags["trial"] == str(winner["trial"]) and version.tags["sha256"] == sha256_of(
        tmp_path / "winner" / "winner.tflite")
    serve_and_compare(tmp_path, registered["uri"], tmp_path / "winner" / "winner.tflite")
    shipped_row = full[(full["trial"] == winner["trial"]) & (full["seed"] == winner["seed"])].iloc[0]
    assert version.run_id == shipped_row["run_id"]  # where the finalist's run is here, the winner is logged on it
    main_job_on_a_fresh_machine(tmp_path, winner, version.run_id)


def main_job_step(*args: str) -> str:
    """One command of the main job; its console, which must hold no traceback."""
    proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, timeout=900,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Traceback" not in output, output[-4000:]
    return output


def main_job_on_a_fresh_machine(tmp_path: Path, winner: dict, first_run_id: str) -> None:
    """The finalized smoke study's main job again, where the store lacks the runs the tables name."""
    from mlflow.tracking import MlflowClient

    def finalize() -> str:
        proc = run(tmp_path, "compress.finalize", "finalize.max_finalists=2", "finalize.winner_seeds=[0,1]")
        return proc.stdout + proc.stderr

    def champion():
        client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
        return client, client.get_model_version_by_alias("fashion-mnist-winner-smoke", "champion")

    main_job_step("analysis.table", "--study", "smoke", "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db",
                  "--out", str(tmp_path / "out" / "trials_smoke.csv"))
    shipped = {name: (tmp_path / "winner" / name).read_bytes()
               for name in ("winner.json", "winner.tflite", "README.md")}

    # a store holding some of the runs (the trials) and not others (the finalists, the registered model)
    shutil.copyfile(tmp_path / "before_finalize.db", tmp_path / "mlflow.db")
    output = finalize()
    assert "already trained" in output and "distilling" not in output
    assert "is not in the store" in output and "logged in a new run 'winner'" in output
    client, version = champion()
    assert client.get_run(version.run_id).info.run_name == "winner" and version.run_id != first_run_id
    assert version.tags["sha256"] == sha256_of(tmp_path / "winner" / "winner.tflite")

    # a fresh machine: no store at all, only the committed-style tables and the exported files
    for store in ("mlflow.db", "optuna.db", "artifacts", "work", "jobs", "run"):  # no work folders: a fresh clone
        path = tmp_path / store
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    table = f"hydra.sweeper.trials_table={tmp_path}/out/trials_smoke.csv"
    output = main_job_step("compress.sweep", "-m", *smoke_stores(tmp_path), table, f"hydra.sweep.dir={tmp_path}/jobs")
    assert "3 of 3 trials done or running" in output
    output = finalize()
    assert "distilling" not in output and "logged in a new run 'winner'" in output
    assert {name: (tmp_path / "winner" / name).read_bytes() for name in shipped} == shipped  # the same winner, bytes
    assert (tmp_path / "winner" / "finalists" / f"trial_{winner['trial']}_seed1" / "config.yaml").is_file()
    client, version = champion()
    assert version.tags["trial"] == str(winner["trial"])
    assert version.tags["sha256"] == sha256_of(tmp_path / "winner" / "winner.tflite")
    # the benchmark measures the exported winner beside the anchors, from the files, in one run, its anchors
    # trained into a cache of its own
    bench_json = tmp_path / "out" / "bench.json"
    output = main_job_step("compress.bench", "--study", "smoke", "--winner", str(tmp_path / "winner"),
                           "--json", str(bench_json), f"paths.cache_dir={tmp_path}/cache",
                           "measure.latency_runs=40", "measure.warmup=5")
    rows = {r["name"]: r for r in json.loads(bench_json.read_text())}
    assert list(rows) == ["teacher_float32", "teacher_dynamic", "teacher_pruned50_int8", "student_no_distillation",
                          "winner"]
    assert "teacher_pruned50_int8" in output and "bench: the winner's recipe trained on the labels alone" in output
    for r in rows.values():
        assert {"test_accuracy", "size_bytes", "size_gzip_bytes", "macs", "latency_ms", "latency_ratio"} <= set(r)
        assert r["latency_ratio"] == pytest.approx(r["latency_ms"] / rows["teacher_float32"]["latency_ms"])
        assert Path(r["file"]).stat().st_size == r["size_bytes"] and 0 < r["size_gzip_bytes"] <= r["size_bytes"] * 1.01
    assert rows["winner"]["test_accuracy"] == pytest.approx(winner["test_accuracy"], abs=1e-9)
    assert rows["winner"]["size_bytes"] == winner["size_bytes"] and rows["winner"]["macs"] == winner["macs"]
    teacher = rows["teacher_float32"]
    assert teacher["test_accuracy"] > 0.85 and rows["teacher_dynamic"]["size_bytes"] < teacher["size_bytes"] / 3
    # half the weights are zero: the int8 file gzips well below the dense dynamic-range one
    assert rows["teacher_pruned50_int8"]["size_gzip_bytes"] < 0.8 * rows["teacher_dynamic"]["size_gzip_bytes"]
    assert rows["student_no_distillation"]["macs"] == rows["winner"]["macs"]
    anchors = sorted(p.name for p in (tmp_path / "cache" / "anchors").iterdir())
    assert any(n.startswith("teacher_pruned_") for n in anchors) and any(n.startswith("student_no_") for n in anchors)
    table_before = (tmp_path / "out" / "trials.csv").read_bytes()
    output = main_job_step("analysis.report", "--study", "smoke", "--from-mlflow", "--tracking-uri",
                           f"sqlite:///{tmp_path}/mlflow.db", "--folder", str(tmp_path / "out"), "--winner",
                           str(tmp_path / "winner"), "--out", str(tmp_path / "report.md"), "--no-figures")
    assert f"wrote {tmp_path / 'report.md'}" in output
    assert (tmp_path / "out" / "trials.csv").read_bytes() == table_before  # the committed table, written back as read


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_and_compare(tmp_path: Path, model_uri: str, tflite: Path) -> None:
    """`mlflow models serve` on 127.0.0.1 answers POST /invocations for real test images with the
    .tflite file's own predictions."""
    import time
    import urllib.request

    import numpy as np

    from compress.config.cli import compose
    from compress.data import fashion_mnist as data
    from compress.measure.tflite import predict

    splits = data.load_from_config(compose(["experiment=smoke"]).data)
    images = unit(splits.x_test[:64])
    expected = np.argmax(predict(tflite, images), axis=1)
    port = free_port()
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(["mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
                               "-h", "127.0.0.1", "-p", str(port)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"})
    try:
        body = json.dumps({"inputs": np.round(images[..., 0] * 255).tolist()}).encode()
        deadline = time.time() + 240
        while True:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=60) as reply:
                    served = json.loads(reply.read())["predictions"]
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    pytest.fail("mlflow models serve did not answer: " + (tmp_path / "serve.log").read_text()[-2000:])
                time.sleep(2)
        assert np.array_equal(np.asarray(served).reshape(-1), expected)
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
