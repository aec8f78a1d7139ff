"""The smoke study end to end through the real entry point, asserting on what the stores hold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from conftest import ROOT, needs_data, needs_teacher, run_smoke_sweep
from optuna.trial import TrialState

from compress.core import metrics as M


def prunable_weights(params: dict) -> int:
    """The conv and dense kernel weights (what tfmot's magnitude pruning zeroes: it leaves depthwise
    kernels, BatchNorm and biases whole) of a trial's student, rebuilt from its logged parameters. In
    a small dsconv those left whole are a third of its parameters."""
    from conftest import student_group

    from compress.training.students import build_student

    arch = params.get("student.arch", "cnn")
    model = build_student(student_group(arch, width=float(params["student.width"]),
                                        head=params.get("student.head", "flatten")))
    kernels = ("Conv2D", "Dense")
    total = sum(int(layer.weights[0].shape.num_elements()) for layer in model.layers if type(layer).__name__ in kernels)
    assert model.count_params() > total > 0
    return total

pytestmark = [needs_data, needs_teacher]


def trial_runs(tmp_path: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    (experiment,) = [e for e in client.search_experiments() if e.name == "fashion-mnist-compression-smoke"]
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get(M.TAG_ROLE) == "study"]
    children = [r for r in runs if r.data.tags.get(M.TAG_ROLE) == "trial"]
    return client, parents, children


@pytest.mark.slow
def test_smoke_study_fills_optuna_and_mlflow_and_resumes(tmp_path, monkeypatch, smoke_study):
    proc = smoke_study  # the session's study, copied here: this test resumes and extends it
    assert "Traceback" not in proc.stdout + proc.stderr
    study = optuna.load_study(study_name="smoke", storage=f"sqlite:///{tmp_path}/optuna.db")
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3

    client, parents, children = trial_runs(tmp_path)
    assert len(parents) == 1 and len(children) == 3
    by_number = {int(r.data.tags[M.TAG_TRIAL]): r for r in children}
    assert sorted(by_number) == [0, 1, 2]
    for trial in trials:
        run = by_number[trial.number]
        m, p, tags = run.data.metrics, run.data.params, run.data.tags
        assert run.info.status == "FINISHED"
        assert tags["mlflow.parentRunId"] == parents[0].info.run_id and tags[M.TAG_STUDY] == "smoke"
        assert len(tags[M.TAG_TEACHER]) == 64 and tags[M.TAG_GIT]
        assert tags["cpu"] and tags["isa"]  # the machine its latency ran on
        missing = [k for k in (*M.TRIAL_METRICS, *M.PHASE_TIMES) if k not in m]
        assert not missing, missing
        for name in M.SEARCHED_PARAMS:
            assert name in p
        # the Optuna objectives are the logged figures
        assert trial.values == pytest.approx([m[M.VAL_ACCURACY], m[M.SIZE_BYTES], m[M.LATENCY_MS]])
        assert float(p["student.width"]) == pytest.approx(trial.params["student.width"])
        assert p["quant.mode"] == trial.params["quant.mode"]
        # sanity of every figure
        assert 0.0 <= m[M.VAL_ACCURACY] <= 1.0 and 0.0 <= m[M.TEST_ACCURACY] <= 1.0
        # one epoch (26 steps) on a slice, distilled from a real teacher: well above chance (10%); a dsconv
        # student learns slower in so few steps than a cnn (25-45% against 40-55%)
        assert m[M.TEST_ACCURACY] > 0.2
        assert 0 < m[M.SIZE_GZIP_BYTES] <= m[M.SIZE_BYTES] * 1.01
        assert m[M.LATENCY_MS] > 0 and m[M.LATENCY_RATIO] == pytest.approx(m[M.LATENCY_MS] / m[M.TEACHER_LATENCY_MS])
        assert m[M.LATENCY_RATIO] < 1.0  # every student is faster than the 1.6 M-parameter teacher
        assert 0 < m[M.NONZERO_PARAMS] <= m[M.PARAMS] and m[M.MACS] > 0
        assert m[M.TIME_TOTAL_S] >= m[M.TIME_TRAIN_S] > 0
        if float(p["prune.sparsity"]) > 0:  # the prunable kernels lose that share
            assert m[M.NONZERO_PARAMS] <= m[M.PARAMS] - 0.8 * float(p["prune.sparsity"]) * prunable_weights(p)
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"model.tflite", "config.yaml", "student.keras", "model.mlpackage"} <= artifacts
        assert 0 < m[M.COREML_SIZE_BYTES] and 0.0 <= m[M.COREML_VAL_ACCURACY] <= 1.0
        # the Core ML file is the same student: its accuracy stays near the float model's (2- and 4-bit
        # palettization of a one-epoch student may cost more, and is measured, not assumed)
        if p["coreml.compression"] not in ("palettize2", "palettize4"):
            assert abs(m[M.COREML_VAL_ACCURACY] - m[M.KERAS_VAL_ACCURACY]) < 0.1 or p["quant.mode"] == "qat"
        local = Path(client.download_artifacts(run.info.run_id, "model.tflite", str(tmp_path / f"dl{trial.number}")))
        assert local.stat().st_size == m[M.SIZE_BYTES]
        assert (tmp_path / "jobs" / f"trial_{trial.number}" / "model.tflite").is_file()
        history = client.get_metric_history(run.info.run_id, M.EPOCH_VAL_ACCURACY)
        assert len(history) >= 1

    # the same command again, one more trial: the study continues under the same parent run
    run_smoke_sweep(tmp_path, "hydra.sweeper.n_trials=4")
    study = optuna.load_study(study_name="smoke", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert sorted(t.number for t in study.get_trials()) == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in study.get_trials())
    _, parents, children = trial_runs(tmp_path)
    assert len(parents) == 1 and len(children) == 4
    assert sorted(int(r.data.tags[M.TAG_TRIAL]) for r in children) == [0, 1, 2, 3]
    assert len({p.name for p in (tmp_path / "jobs").iterdir() if p.name.startswith("trial_")}) == 4

    # the analysis reads those runs back, marks the front and tags every finished trial
    proc = subprocess.run([sys.executable, "-m", "compress.pareto", "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db",
                           "--study", "smoke", "--out", str(tmp_path / "analysis"),
                           "--export-dir", str(tmp_path / "winner")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    client, _, children = trial_runs(tmp_path)
    tags = [r.data.tags.get("pareto") for r in children]
    assert set(tags) <= {"true", "false"} and "true" in tags
    import pandas as pd

    front = pd.read_csv(tmp_path / "analysis" / "pareto.csv")
    assert len(front) == tags.count("true")
    # the winner went out in both formats, each scored from disk, and is tagged on its run
    import json

    summary = json.loads((tmp_path / "winner" / "winner.json").read_text())
    (winner,) = [r for r in children if r.data.tags.get("winner") == "true"]
    assert summary["run_id"] == winner.info.run_id and winner.data.tags["pareto"] == "true"
    assert summary["tflite"]["accuracy"] == pytest.approx(winner.data.metrics[M.TEST_ACCURACY], abs=1e-9)
    gap = abs(summary["coreml"]["accuracy"] - summary["tflite"]["accuracy"])
    from compress.pareto.trial_export import format_gap_allowed

    # the export's own rule (0.3 points, or what chance makes over the images the two files disagree on),
    # on a slice where they agree on nearly every image. Which trial wins depends on the machine's latencies;
    # the least agreement is the qat trial's (one epoch of quantization-aware training: its int8 file and the
    # float weights under it agree on 93% of the slice; a package made from the weights before that training,
    # as before quantize.float_twin, agreed on 76%)
    allowed = format_gap_allowed(summary["coreml"]["n"], summary["coreml"]["agreement"])
    assert summary["coreml"]["agreement"] >= 0.90 and gap <= allowed + 1e-12, (gap, allowed)
    assert (tmp_path / "winner" / "winner.mlpackage" / "Manifest.json").is_file()
    exported = {a.path for a in client.list_artifacts(winner.info.run_id, "export")}
    assert exported == {"export/winner.tflite", "export/winner.mlpackage"}

    # the speed benchmark times a trial by phase and one epoch per logit source, in one run
    speed_json = tmp_path / "speed.json"
    proc = subprocess.run([sys.executable, "-m", "compress.speed", "--trials", "1", "--epoch-rounds", "1",
                           "--json", str(speed_json), "data.fraction=0.03", f"paths.cache_dir={tmp_path}/cache",
                           "distill.epochs=1", "distill.views=2", "quant.representative_samples=100",
                           "measure.latency_runs=40", "measure.warmup=5"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    speed = json.loads(speed_json.read_text())
    assert speed["median_" + M.TIME_TOTAL_S] >= speed["median_" + M.TIME_TRAIN_S] > 0
    assert speed["cached_speedup"] == pytest.approx(speed["epoch_s_teacher_in_step"] / speed["epoch_s_cached_logits"])
    assert all(len(speed[f"epoch_s_{k}_rounds"]) == 1 for k in ("cached_logits", "teacher_in_step", "online_teacher"))
    assert "teacher in the training step" in proc.stdout
    assert "speed: round 1 of 1, views epoch" in proc.stderr

    # the analysis notebook runs top to bottom against this study, with the benchmark's references
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("COMPRESS_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("COMPRESS_STUDY", "smoke")
    monkeypatch.setenv("COMPRESS_BENCH", str(ROOT / "report" / "bench.json"))  # the committed references
    # (the benchmark itself runs in test_finalize, on the finalized smoke study)
    notebook = nbformat.read(ROOT / "analysis" / "pareto.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "analysis")}}).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"4 finished trials of 'smoke', read from MLflow (sqlite:///{tmp_path}/mlflow.db); " \
           f"{tags.count('true')} on the front; 3 reference models" in text
    # no warning cells; choreographer (kaleido's Chrome driver) may log a devtools message it could not decode
    # and dropped on a loaded machine ("JSONError decoding message. Ignoring"): that line alone is not a warning
    noise = "JSONError decoding message. Ignoring"
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr" and not o.text.startswith(noise)]
    plotted = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(plotted) == 4  # size, latency, techniques, Core ML
    assert all("image/png" in o.data for o in plotted)  # every viewer outside JupyterLab shows the PNG
    from nbconvert import HTMLExporter

    html, _ = HTMLExporter().from_notebook_node(notebook)
    assert html.count('src="data:image/png;base64,') == 4
