"""The sweeper as a drop-in successor of hydra-optuna-sweeper: small apps of our own, shaped like
the released plugin's examples (one objective, two objectives, a custom search space, a grid),
checked for the properties the released plugin's tests check, with only the
`override hydra/sweeper: compress_optuna` line naming our plugin. No TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf
from optuna.trial import TrialState

APPS = Path(__file__).parent / "apps" / "dropin"


def run(tmp_path, app: str, *overrides: str, config: str | None = None, check: bool = True):
    args = [sys.executable, str(APPS / app), "-m", f"hydra.sweep.dir={tmp_path}/sweep", *overrides]
    if config:
        args[3:3] = ["--config-name", config]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
                              str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH")]))})
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def results(tmp_path):
    return OmegaConf.load(tmp_path / "sweep" / "optimization_results.yaml")


@pytest.mark.slow
@pytest.mark.parametrize("with_commandline", [True, False])
def test_sphere_example(tmp_path, with_commandline):
    storage = f"sqlite:///{tmp_path}/sphere.db"
    extra = ["x=choice(0, 1, 2)", "y=0"] if with_commandline else []
    run(tmp_path, "sphere.py", f"hydra.sweeper.storage={storage}", "hydra.sweeper.study_name=sphere",
        "hydra.sweeper.n_trials=20", "hydra.sweeper.n_jobs=1", "hydra/sweeper/sampler=tpe",
        "hydra.sweeper.sampler.seed=123", "~z", *extra)
    out = results(tmp_path)
    best = optuna.load_study(study_name="sphere", storage=storage).best_trial
    assert out.name == "optuna" and out.best_params.x == best.params["x"]
    if with_commandline:
        assert "y" not in out.best_params and "y" not in best.params
    else:
        assert out.best_params.y == best.params["y"]
    assert out.best_value == best.value and out.best_value <= 2.27


def test_grid_sampler_exhausts_its_grid_and_writes_results(tmp_path):
    run(tmp_path, "sphere.py", config="grid")
    out = results(tmp_path)
    assert out.best_params.x in [-1, 1] and out.best_params.y in [-1.0, 0.0] and out.best_params.z in ["foo", "bar"]
    assert len(list((tmp_path / "sweep").glob("[0-9]*"))) == 8  # the 2 x 2 x 2 grid, not n_trials=20


@pytest.mark.slow
@pytest.mark.parametrize("with_commandline", [True, False])
def test_multi_objective_example(tmp_path, with_commandline):
    extra = ["x=range(0, 5)", "y=range(0, 3)"] if with_commandline else []
    run(tmp_path, "multi_objective.py", "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=123", *extra)
    out = results(tmp_path)
    assert out.name == "optuna" and len(out.solutions) >= 1
    for solution in out.solutions:
        for value in (solution.params.x, solution.params.y):
            assert (value % 1 == 0) if with_commandline else (value % 1 in (0, 0.5))
    points = [tuple(s["values"]) for s in out.solutions]
    for a in points:  # no solution dominates another
        assert not any(b != a and b[0] <= a[0] and b[1] <= a[1] for b in points)


def test_custom_search_space_example(tmp_path):
    run(tmp_path, "custom_search_space.py", "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=123",
        "max_z_difference_from_x=0.3")
    out = results(tmp_path)
    assert abs(out.best_params.x - out.best_params.z) <= 0.3
    assert 0.0 <= out.best_params["+w"] <= 1.0 and out.name == "optuna"


def test_the_deprecated_search_space_still_works_with_a_warning(tmp_path):
    proc = run(tmp_path, "sphere.py", config="deprecated")
    assert "search_space` is deprecated" in proc.stderr
    out = results(tmp_path)
    assert out.name == "optuna" and abs(out.best_params.x) <= 5.5


@pytest.mark.slow
@pytest.mark.parametrize("max_failure_rate", [0.5, 1.0])
def test_failure_rate(tmp_path, max_failure_rate):
    proc = run(tmp_path, "sphere.py", "error=true", "hydra.sweeper.n_jobs=2", "hydra/sweeper/sampler=random",
               f"hydra.sweeper.max_failure_rate={max_failure_rate}", check=False)
    if max_failure_rate < 1.0:
        assert proc.returncode != 0 and "RuntimeError: cfg.error is True" in proc.stderr
    else:
        assert proc.returncode == 0 and "RuntimeError: cfg.error is True" not in proc.stderr


def test_n_jobs_without_a_storage_runs_every_trial(tmp_path):
    proc = run(tmp_path, "sphere.py", "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=5")
    assert "without a storage" in proc.stdout + proc.stderr
    assert len(list((tmp_path / "sweep").glob("[0-9]*"))) == 5


@pytest.mark.slow
def test_a_pruner_prunes_single_objective_trials_from_reported_steps(tmp_path):
    storage = f"sqlite:///{tmp_path}/pruned.db"
    run(tmp_path, "sphere.py", "steps=5", "hydra.sweeper.n_trials=12", "hydra/sweeper/sampler=random",
        "hydra.sweeper.sampler.seed=0", f"hydra.sweeper.storage={storage}",
        "++hydra.sweeper.pruner={_target_: optuna.pruners.MedianPruner, n_startup_trials: 3}")
    trials = optuna.load_study(study_name="sphere", storage=storage).get_trials()
    states = [t.state for t in trials]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    assert all(len(t.intermediate_values) >= 1 for t in trials)


def test_a_pruner_on_a_multi_objective_study_is_refused_in_one_line(tmp_path):
    proc = run(tmp_path, "multi_objective.py", "++hydra.sweeper.pruner={_target_: optuna.pruners.MedianPruner}",
               check=False)
    assert proc.returncode == 2 and "single-objective studies only" in proc.stderr


@pytest.mark.slow
def test_n_trials_scope_run_adds_n_trials_on_every_run(tmp_path):
    storage = f"sqlite:///{tmp_path}/runs.db"
    common = ["hydra.sweeper.n_trials=3", f"hydra.sweeper.storage={storage}", "hydra/sweeper/sampler=random"]
    run(tmp_path, "sphere.py", *common, "hydra.sweeper.n_trials_scope=run")
    run(tmp_path, "sphere.py", *common, "hydra.sweeper.n_trials_scope=run")
    assert len(optuna.load_study(study_name="sphere", storage=storage).get_trials()) == 6
    run(tmp_path, "sphere.py", *common)  # the default: n_trials is the study's total, already reached
    assert len(optuna.load_study(study_name="sphere", storage=storage).get_trials()) == 6


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_a_seeded_sampler_finds_the_same_best_trial_as_plain_optuna(tmp_path, sampler):
    """The same seed over the same distributions: our sweep and a plain Optuna loop draw alike."""
    run(tmp_path, "sphere.py", f"hydra/sweeper/sampler={sampler}", "hydra.sweeper.sampler.seed=7",
        "hydra.sweeper.n_trials=15")
    ours = results(tmp_path)
    make = {"random": lambda: optuna.samplers.RandomSampler(seed=7),
            "tpe": lambda: optuna.samplers.TPESampler(seed=7)}[sampler]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=make())

    def objective(trial):
        x = trial.suggest_float("x", -5.5, 5.5, step=0.5)  # range(-5.5, 5.5, step=0.5)
        y = trial.suggest_categorical("y", [-5, 0, 5])  # choice(-5, 0, 5)
        return x**2 + y**2

    study.optimize(objective, n_trials=15)
    assert dict(ours.best_params) == study.best_params and ours.best_value == study.best_value


def test_the_plugin_is_a_distribution_of_its_own_without_tensorflow():
    import tomllib

    root = Path(__file__).resolve().parent.parent / "plugins" / "compress_optuna_sweeper"
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    heavy = ("tensorflow", "tf-keras", "mlflow", "coremltools", "compress")
    assert not [d for d in deps if d.lower().startswith(heavy) and not d.startswith("compress-optuna")]
    code = ("import sys, hydra_plugins.compress_optuna_sweeper._impl, hydra_plugins.compress_optuna_sweeper.sweeper;"
            "print([m for m in ('tensorflow', 'mlflow', 'compress', 'keras') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=root)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr[-500:]
