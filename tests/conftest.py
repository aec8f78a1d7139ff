"""Shared fixtures: the real composed config, shrunk; real data when installed."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from compress.config.cli import compose
from compress.pipeline import data

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
