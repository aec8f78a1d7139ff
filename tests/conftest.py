"""Shared fixtures: the real composed config, shrunk; real data when installed."""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

# Each xdist worker, and every process its tests start, takes an equal share of the cores: TensorFlow's
# thread pools otherwise each claim all of them (two workers' trainings: four threads on two cores). Set
# before the project is imported: compress.core.compat reads it once. A test that sets it itself wins.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("COMPRESS_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

from compress.config.cli import compose
from compress.data import fashion_mnist as data

ROOT = Path(__file__).resolve().parent.parent
TEACHER = ROOT / "models" / "teacher" / "teacher.keras"


def have_dataset() -> bool:
    try:
        data.locate(None)
        return True
    except data.DataError:
        return False


needs_data = pytest.mark.skipif(
    not have_dataset(),
    reason="real Fashion-MNIST not installed (apt-get install dataset-fashion-mnist, or ~/.keras/datasets)",
)
needs_teacher = pytest.mark.skipif(not TEACHER.is_file(), reason=f"no committed teacher at {TEACHER}")


def compose_config(overrides: list[str] | None = None, return_hydra_config: bool = False):
    """The project's real config, composed as `python -m compress.sweep` would."""
    return compose(overrides, return_hydra_config=return_hydra_config)


@functools.lru_cache(maxsize=None)
def _composed(overrides: tuple[str, ...]):
    return compose(list(overrides))


def assert_same_choices(probs, expected, near: float = 1e-2) -> None:
    """Two runs of the same model (an fp16 executor against float32 Keras) choose the same class,
    except on images whose two best classes ``expected`` separates by at most ``near``: those
    near-ties may flip, at most 1% of them; any other disagreement fails."""
    import numpy as np

    chosen = np.argmax(probs, 1)
    flipped = np.flatnonzero(chosen != np.argmax(expected, 1))
    margins = expected[flipped].max(axis=1) - expected[flipped, chosen[flipped]]
    assert np.all(margins <= near), (flipped, margins)
    assert len(flipped) <= 0.01 * len(chosen), flipped


@functools.lru_cache(maxsize=None)
def student_options() -> dict[str, str]:
    """Each student family (`student.arch`) -> the conf/student file that selects it."""
    options = {}
    for path in sorted((ROOT / "conf" / "student").glob("*.yaml")):
        options[str(OmegaConf.load(path).arch)] = path.stem
    return options


def student_group(arch: str, **values):
    """The real student group of family `arch` (its own conf/student file) with `values` set."""
    return group("student", student_options()[arch], **values)


def group(name: str, option: str | None = None, **values):
    """One group of the real composed config (`option`: another file of the group, e.g.
    student=dsconv), as a fresh copy with `values` set: tests that need a student, a distillation
    or a pruning config take the project's own instead of writing a partial one by hand."""
    node = OmegaConf.create(OmegaConf.to_container(_composed((f"{name}={option}",) if option else ())[name],
                                                   resolve=True))
    for key, value in values.items():
        OmegaConf.update(node, key, value, force_add=False)
    return node


@pytest.fixture
def small_cfg(tmp_path):
    """The default config shrunk to a sliver of data and one short epoch, stores under tmp_path."""
    cfg = compose_config([
        "data.fraction=0.03", "distill.epochs=1", "prune.epochs=1", "quant.qat_epochs=1",
        "quant.representative_samples=50", "measure.latency_runs=20", "measure.warmup=2",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.artifact_root={tmp_path}/artifacts",
        f"paths.cache_dir={ROOT / '.cache'}",
    ])
    OmegaConf.set_readonly(cfg, False)
    return cfg


@pytest.fixture(scope="session")
def splits():
    if not have_dataset():
        pytest.skip("real Fashion-MNIST not installed")
    return data.load()


def smoke_stores(folder: Path) -> list[str]:
    """The smoke study's overrides with every store under `folder`."""
    return ["experiment=smoke", f"tracking.uri=sqlite:///{folder}/mlflow.db",
            f"tracking.artifact_root={folder}/artifacts", f"hydra.sweeper.storage=sqlite:///{folder}/optuna.db"]


def run_smoke_sweep(folder: Path, *extra: str) -> subprocess.CompletedProcess:
    """`python -m compress.sweep -m experiment=smoke`, its stores and jobs under `folder`."""
    cmd = [sys.executable, "-m", "compress.sweep", "-m", *smoke_stores(folder), f"hydra.sweep.dir={folder}/jobs",
           *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="session")
def smoke_study_once(tmp_path_factory, worker_id):
    """The 3-trial smoke study, run once per test session however many xdist workers need it: the first
    runs it under a lock in the folder the workers share, the others read it there (tests take a copy:
    `smoke_study`). Returns its folder and the sweep's process."""
    if worker_id == "master":  # no xdist
        folder = tmp_path_factory.mktemp("smoke_study")
        return folder, run_smoke_sweep(folder)
    shared = tmp_path_factory.getbasetemp().parent
    folder, record = shared / "smoke_study", shared / "smoke_study.json"
    with open(shared / "smoke_study.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not record.is_file():
            folder.mkdir(exist_ok=True)
            proc = run_smoke_sweep(folder)
            record.write_text(json.dumps({"args": proc.args, "returncode": proc.returncode, "stdout": proc.stdout,
                                          "stderr": proc.stderr}))
    done = json.loads(record.read_text())
    return folder, subprocess.CompletedProcess(done["args"], done["returncode"], done["stdout"], done["stderr"])


@pytest.fixture
def smoke_study(smoke_study_once, tmp_path) -> subprocess.CompletedProcess:
    """A finished 3-trial smoke study in this test's tmp_path (Optuna and MLflow stores, artifacts,
    the jobs' folders): a copy of the session's, every stored path moved to the copy, so that a
    test may resume or extend it without touching another test's. Returns the sweep's process."""
    base, proc = smoke_study_once
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    for db in ("mlflow.db", "optuna.db"):
        _move_paths(tmp_path / db, str(base), str(tmp_path))
    return proc


def _move_paths(db: Path, old: str, new: str) -> None:
    """Every text value in a SQLite store that names `old` names `new` instead (MLflow keeps
    absolute artifact locations)."""
    with sqlite3.connect(db) as con:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            for _, column, kind, *_ in con.execute(f'pragma table_info("{table}")').fetchall():
                if any(t in (kind or "").upper() for t in ("CHAR", "TEXT", "CLOB")):
                    con.execute(f'update "{table}" set "{column}" = replace("{column}", ?, ?) '
                                f'where instr("{column}", ?)', (old, new, old))


def colour_images(rng, n: int, side: int = 12):
    """`n` noisy uint8 RGB images of 4 classes told apart by colour alone, and their labels: learnt in a few
    steps, so that a model's BatchNorm statistics, not its capacity, decide its accuracy."""
    import numpy as np

    colours = np.array([[220, 40, 40], [40, 220, 40], [40, 40, 220], [220, 220, 40]])
    y = rng.integers(0, 4, n)
    return np.clip(colours[y][:, None, None] + rng.normal(0, 25, (n, side, side, 3)), 0, 255).astype(np.uint8), y
