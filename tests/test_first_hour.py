"""A new user's first hour: a study's stores and outputs follow from its name, analysis cannot
clobber the committed deliverables, bad input gets one line and leaves the stores as they were."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, needs_data, needs_teacher

from compress.config import paths

COMMITTED = [ROOT / "winner" / "winner.tflite", ROOT / "winner" / "winner.json", ROOT / "report.md",
             ROOT / "report" / "trials.csv"]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, timeout=600,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def digests() -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in COMMITTED if p.is_file()}


def one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode != 0, proc.stdout[-1000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_a_study_s_stores_and_outputs_follow_from_its_name():
    default = paths.resolve()
    assert default.is_default and default.study == paths.default_study()
    assert (default.report_dir, default.winner_dir, default.report_md) == (Path("report"), Path("winner"),
                                                                           Path("report.md"))
    assert default.experiment == "fashion-mnist-compression"
    smoke = paths.resolve("smoke")  # named like the preset: composed with it
    assert smoke.storage == "sqlite:///sweeps/smoke.db" and smoke.experiment == "fashion-mnist-compression-smoke"
    for folder in (smoke.report_dir, smoke.winner_dir, smoke.report_md, smoke.analysis_dir):
        assert folder.parts[:2] == ("sweeps", "smoke"), folder
    mine = paths.resolve("mine")
    assert mine.report_dir == Path("sweeps/mine/report") and mine.storage == "sqlite:///sweeps/mine.db"
    assert paths.compose_for("smoke").data.fraction == 0.06 and paths.compose_for("mine").data.fraction == 1.0
    with pytest.raises(paths.ConfigError, match="may not write the default study's committed winner"):
        smoke.check_writable(Path("winner/x"), "--export-dir")
    assert default.check_writable(Path("winner"), "--export-dir") == Path("winner")
    # a study's own resume table is named for it: any study may write that one file in report/, nothing else there
    assert mine.check_writable(Path("report/trials_mine.csv"), "--out") == Path("report/trials_mine.csv")
    for other in ("report/trials_smoke.csv", "report/trials.csv"):
        with pytest.raises(paths.ConfigError, match="may not write"):
            mine.check_writable(Path(other), "--out")


@pytest.mark.slow
def test_analysis_of_another_study_refuses_to_write_the_committed_deliverables(tmp_path):
    before = digests()
    for args in (["compress.pareto", "--study", "smoke", "--export-dir", "winner"],
                 ["analysis.report", "--study", "smoke", "--out", "report.md"],
                 ["analysis.table", "--study", "smoke", "--out", "report/trials.csv"]):
        one_line_error(run(*args, "--tracking-uri", f"sqlite:///{tmp_path}/none.db"), "may not write", "smoke")
    proc = run("compress.bench", "--study", "smoke", "--json", "report/bench.json")
    one_line_error(proc, "--json=report/bench.json", "may not write")
    assert digests() == before


@pytest.mark.slow
def test_reading_commands_never_create_a_store_and_say_what_to_run(tmp_path):
    missing = tmp_path / "nowhere" / "mlflow.db"
    line = one_line_error(run("analysis.summary", "--tracking-uri", f"sqlite:///{missing}"), "no MLflow store")
    assert "python -m compress.sweep -m" in line and not missing.parent.exists()
    one_line_error(run("compress.pareto", "--tracking-uri", "http://127.0.0.1:9"), "no MLflow server answers")
    empty = tmp_path / "empty.db"
    run("mlflow", "gc", "--backend-store-uri", f"sqlite:///{empty}")  # an empty, valid store
    if empty.is_file():
        one_line_error(run("analysis.summary", "--study", "smoke", "--tracking-uri", f"sqlite:///{empty}"),
                       "no finished trial runs of study 'smoke'", "experiment=smoke")
    one_line_error(run("compress.pareto", "--budget", "2"), "--budget=2.0", "between 0 and 1")
    one_line_error(run("analysis.table", "--study", "smoke", "--tracking-uri", "http://127.0.0.1:9"),
                   "tracking.uri=http://127.0.0.1:9")


@pytest.mark.parametrize("override, message", [
    ("hydra.sweeper.n_trials=0", "hydra.sweeper.n_trials=0: must be an integer >= 1"),
    ("hydra.sweeper.n_jobs=0", "hydra.sweeper.n_jobs=0: must be an integer >= 1"),
    ("hydra.sweeper.max_failure_rate=1.5", "hydra.sweeper.max_failure_rate=1.5: must be between 0 and 1"),
    ("hydra.sweeper.max_retry=-1", "hydra.sweeper.max_retry=-1: must be an integer >= 0"),
])
@pytest.mark.slow
def test_sweeper_settings_out_of_range_stop_before_any_store(tmp_path, override, message):
    storage = tmp_path / "optuna.db"
    proc = run("compress.sweep", "-m", "experiment=smoke", override, f"hydra.sweeper.storage=sqlite:///{storage}",
               f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"hydra.sweep.dir={tmp_path}/jobs")
    one_line_error(proc, message)
    assert not storage.exists() and not (tmp_path / "mlflow.db").exists()


@needs_data
@needs_teacher
@pytest.mark.parametrize("shape, message", [
    ((32, 32, 3), "takes input shape (32, 32, 3); the data's images are (28, 28, 1)"),
    ((28, 28, 1), "gives output shape (5,); the data has 10 classes: (10,)"),
])
@pytest.mark.slow
def test_a_teacher_that_does_not_fit_the_data_is_one_line(tmp_path, shape, message):
    from compress.core.compat import keras

    classes = 10 if shape != (28, 28, 1) else 5
    model = keras.Sequential([keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(classes)])
    model.save(tmp_path / "teacher.keras")
    storage = tmp_path / "optuna.db"
    proc = run("compress.sweep", "-m", "experiment=smoke", f"teacher.path={tmp_path}/teacher.keras",
               f"hydra.sweeper.storage=sqlite:///{storage}", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
               f"hydra.sweep.dir={tmp_path}/jobs")
    one_line_error(proc, f"teacher.path={tmp_path}/teacher.keras", message)
    assert not storage.exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("retired, replacement", [("analysis.pareto", "python -m compress.pareto"),
                                                  ("analysis.search_quality", "python -m compress.search_quality"),
                                                  ("analysis.remeasure_coreml", "python -m compress.sweep -m"),
                                                  ("compress.remeasure_coreml", "python -m compress.sweep -m")])
def test_a_retired_command_fails_with_one_line_naming_its_replacement(retired, replacement):
    proc = run(retired, "--help")
    assert proc.returncode != 0 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and replacement in proc.stderr, proc.stderr