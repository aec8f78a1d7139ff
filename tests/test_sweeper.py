"""The project's Hydra sweeper on Optuna 5: grammar, failed jobs, resume, numbering."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra_plugins.compress_optuna_sweeper.grammar import SweeperError, distribution_from_override
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

APP = Path(__file__).parent / "apps" / "toy_app.py"


def parse(text: str):
    (override,) = OverridesParser.create().parse_overrides([text])
    return distribution_from_override(override)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a=choice(float32, int8)", CategoricalDistribution(["float32", "int8"])),
        ("a=choice(0.0, 0.5)", CategoricalDistribution([0.0, 0.5])),
        # as the released hydra-optuna-sweeper reads them: range's stop is included
        ("a=range(1, 5)", IntDistribution(1, 5)),
        ("a=range(0, 10, 2)", IntDistribution(0, 10, step=2)),
        ("a=range(0.5, 5.5, step=1)", FloatDistribution(0.5, 5.5, step=1.0)),
        ("a=shuffle(range(1, 3))", CategoricalDistribution([1, 2])),
        ("a=int(interval(1, 5))", IntDistribution(1, 5)),
        ("a=tag(log, int(interval(1, 5)))", IntDistribution(1, 5, log=True)),
        ("a=choice(true, false)", CategoricalDistribution([True, False])),
        ("a=interval(0.1, 0.9)", FloatDistribution(0.1, 0.9)),
        ("a=interval(2, 8)", FloatDistribution(2.0, 8.0)),
        ("a=tag(int, interval(2, 8))", IntDistribution(2, 8)),
        ("a=tag(int, log, interval(2, 64))", IntDistribution(2, 64, log=True)),
        ("a=tag(log, interval(0.001, 1.0))", FloatDistribution(0.001, 1.0, log=True)),
    ],
)
def test_override_grammar_becomes_optuna_distributions(text, expected):
    got = parse(text)
    if "shuffle" in text:  # the order is shuffled: the choices are what count
        assert isinstance(got, CategoricalDistribution) and sorted(got.choices) == sorted(expected.choices)
    else:
        assert got == expected


def test_a_plain_value_in_params_is_fixed_for_every_trial_as_in_the_released_plugin():
    from hydra_plugins.compress_optuna_sweeper.grammar import search_space

    params = {"a": "choice(1, 2)", "b": "cnn", "c": "interval(0, 1)"}
    space, fixed = search_space(params, None, ["c=0.5", "d=range(1, 3)"])
    assert sorted(space) == ["a", "d"] and fixed == ["b=cnn", "c=0.5"]


def test_a_fixed_value_is_not_a_search_space_and_glob_is_refused():
    with pytest.raises(SweeperError, match="not a sweep"):
        parse("a=3")
    with pytest.raises(SweeperError, match="not supported by the Optuna sweeper"):
        parse("a=glob(*)")


@pytest.mark.parametrize("spec, expected", [
    ({"type": "categorical", "choices": [1, 2, 3]}, CategoricalDistribution([1, 2, 3])),
    ({"type": "int", "low": 0, "high": 10}, IntDistribution(0, 10)),
    ({"type": "int", "low": 0, "high": 10, "step": 2}, IntDistribution(0, 10, step=2)),
    ({"type": "int", "low": 1, "high": 100, "log": True}, IntDistribution(1, 100, log=True)),
    ({"type": "float", "low": 0, "high": 1}, FloatDistribution(0, 1)),
    ({"type": "float", "low": 0, "high": 10, "step": 2}, FloatDistribution(0, 10, step=2)),
    ({"type": "float", "low": 1, "high": 100, "log": True}, FloatDistribution(1, 100, log=True)),
])
def test_the_deprecated_search_space_entries_become_distributions(spec, expected):
    from hydra_plugins.compress_optuna_sweeper.grammar import distribution_from_config

    assert distribution_from_config("a", spec) == expected


def run_toy(tmp_path, *overrides, check=True):
    env = {**os.environ, "TOY_SWEEP_DIR": str(tmp_path / "jobs")}
    storage = f"sqlite:///{tmp_path}/toy.db"
    proc = subprocess.run([sys.executable, str(APP), "-m", f"hydra.sweeper.storage={storage}", *overrides],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, storage


def test_preflight_checks_run_cheapest_first_each_over_every_corner(monkeypatch, capsys):
    """A value out of range at the last corner is refused by the cheap check before the costly one (a model
    loaded, say) has run at any corner; one dotted path alone still works."""
    import types

    from hydra_plugins.compress_optuna_sweeper.preflight import run_preflight

    calls = []

    def values(cfg):
        calls.append(("values", cfg["x"]))
        if cfg["x"] > 1:
            raise ValueError(f"x={cfg['x']}: allowed [0, 1]")

    checks = types.ModuleType("fake_checks")
    checks.values, checks.costly = values, lambda cfg: calls.append(("costly", cfg["x"]))
    monkeypatch.setitem(sys.modules, "fake_checks", checks)
    space = {"x": FloatDistribution(0.0, 2.0)}
    compose = lambda overrides: {"x": float(overrides[-1].split("=")[1])}  # noqa: E731
    with pytest.raises(SystemExit) as stop:
        run_preflight(["fake_checks.values", "fake_checks.costly"], compose, space, [])
    assert stop.value.code == 2 and capsys.readouterr().err.strip() == "error: x=2.0: allowed [0, 1]"
    assert calls == [("values", 0.0), ("values", 2.0)]  # the costly check never ran
    calls.clear()
    run_preflight("fake_checks.costly", compose, {"x": FloatDistribution(0.0, 1.0)}, [])
    assert calls == [("costly", 0.0), ("costly", 1.0)]


@pytest.mark.slow
def test_failed_jobs_are_failed_trials_and_the_study_continues_then_resumes(tmp_path):
    _, storage = run_toy(tmp_path)
    study = optuna.load_study(study_name="toy", storage=storage)
    trials = study.get_trials()
    assert len(trials) == 6
    failed = [t for t in trials if t.state == TrialState.FAIL]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(failed) + len(complete) == 6 and failed and complete  # seed 1 samples some x < 0
    for t in failed:
        assert t.params["x"] < 0 and "ValueError" in t.user_attrs["error"] and "negative" in t.user_attrs["error"]
    for t in complete:
        x, y = t.params["x"], t.params["y"]
        assert t.values == pytest.approx([x**2 + y, (x - 2) ** 2 - y])
    assert study.metric_names == ["a", "b"]

    # the same command with a larger total continues the study: new numbers, new folders
    run_toy(tmp_path, "hydra.sweeper.n_trials=9")
    study = optuna.load_study(study_name="toy", storage=storage)
    numbers = [t.number for t in study.get_trials()]
    assert sorted(numbers) == list(range(9))
    assert sorted(int(p.name) for p in (tmp_path / "jobs").iterdir() if p.is_dir()) == list(range(9))
    # no returned solution dominates another
    front = study.best_trials
    for a in front:
        for b in front:
            assert not (all(u <= v for u, v in zip(a.values, b.values)) and a.values != b.values)
    assert (tmp_path / "jobs" / "optimization_results.yaml").is_file()

    # and a run with nothing left to do adds nothing
    run_toy(tmp_path, "hydra.sweeper.n_trials=9")
    assert len(optuna.load_study(study_name="toy", storage=storage).get_trials()) == 9


def test_study_stops_when_failures_pass_the_rate(tmp_path):
    proc, storage = run_toy(tmp_path, "x=interval(-3.0,-1.0)", "hydra.sweeper.n_trials=8",
                            "hydra.sweeper.max_failure_rate=0.5", check=False)
    assert proc.returncode != 0
    assert "max_failure_rate=0.5" in proc.stderr
    trials = optuna.load_study(study_name="toy", storage=storage).get_trials()
    assert 4 <= len(trials) < 8 and all(t.state == TrialState.FAIL for t in trials)


@pytest.mark.slow
def test_kill_9_mid_trial_then_resume_loses_and_repeats_nothing(tmp_path):
    import signal
    import time

    env = {**os.environ, "TOY_SWEEP_DIR": str(tmp_path / "jobs")}
    storage = f"sqlite:///{tmp_path}/toy.db"
    args = [sys.executable, str(APP), "-m", f"hydra.sweeper.storage={storage}", "hydra.sweeper.n_trials=4",
            "hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=2", "hydra.sweeper.max_retry=1",
            "x=interval(0.0,3.0)"]
    proc = subprocess.Popen([*args, "sleep=2.0"], env=env, cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (tmp_path / "jobs" / "1").is_dir():
        assert time.time() < deadline and proc.poll() is None, "trial 1 never started"
        time.sleep(0.1)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    study = optuna.load_study(study_name="toy", storage=storage)
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE, TrialState.RUNNING]
    killed_params = study.get_trials()[1].params
    time.sleep(3)  # past the grace period: the dead trial's heartbeat is stale

    done = subprocess.run([*args, "sleep=0.0"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    trials = optuna.load_study(study_name="toy", storage=storage).get_trials()
    assert trials[1].state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == 1]
    assert len(retries) == 1 and retries[0].params == killed_params and retries[0].state == TrialState.COMPLETE
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 4 and len({t.number for t in complete}) == 4
    assert len({tuple(sorted(t.params.items())) for t in complete}) == 4  # none repeated
    assert "lost its heartbeat" in done.stderr + done.stdout


def test_a_pruned_job_is_a_pruned_trial_and_reported_figures_are_kept(tmp_path):
    _, storage = run_toy(tmp_path, "x=interval(0.0,3.0)", "prune_above=1.5")
    trials = optuna.load_study(study_name="toy", storage=storage).get_trials()
    assert len(trials) == 6
    for t in trials:
        if t.params["x"] > 1.5:
            assert t.state == TrialState.PRUNED and "above 1.5" in t.user_attrs["pruned_reason"]
        else:
            assert t.state == TrialState.COMPLETE and t.user_attrs["trial"] == t.number
    assert {t.state for t in trials} == {TrialState.PRUNED, TrialState.COMPLETE}


@pytest.mark.slow
def test_n_jobs_2_runs_two_workers_on_one_study_without_losing_or_repeating_trials(tmp_path):
    _, storage = run_toy(tmp_path, "x=interval(0.0,3.0)", "sleep=1.5", "hydra.sweeper.n_jobs=2",
                         "hydra.sweeper.n_trials=8")
    trials = optuna.load_study(study_name="toy", storage=storage).get_trials()
    assert 8 <= len(trials) <= 9  # two workers may both start the last trial
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    assert len({t.user_attrs["pid"] for t in trials}) == 2
    assert len({tuple(sorted(t.params.items())) for t in trials}) == len(trials)
    assert (tmp_path / "jobs" / "worker_1.log").is_file()
    # the two workers' trials ran at the same time
    a = [t.user_attrs for t in trials]
    assert any(p["pid"] != q["pid"] and p["start"] < q["end"] and q["start"] < p["end"] for p in a for q in a)


def test_a_study_creation_race_is_retried_and_other_errors_are_not(tmp_path):
    from hydra_plugins.compress_optuna_sweeper.storage import open_study

    calls = []

    def racing():
        calls.append(1)
        if len(calls) == 1:  # what PostgreSQL says when two workers create the schema at once
            raise RuntimeError('(psycopg.errors.UniqueViolation) duplicate key value violates unique constraint')
        return f"sqlite:///{tmp_path}/race.db"

    study = open_study("race", racing, ["maximize"])
    assert len(calls) == 2 and study.study_name == "race"

    def unreachable():
        calls.append(1)
        raise RuntimeError("could not connect to server")

    calls.clear()
    with pytest.raises(RuntimeError, match="could not connect"):
        open_study("race", unreachable, ["maximize"])
    assert len(calls) == 1


def test_a_job_whose_config_does_not_compose_is_a_failed_trial(tmp_path):
    """The launcher itself raises (the sampled option does not exist): that trial fails, the study goes on."""
    run_toy(tmp_path, "db=choice(sqlite,nope)", "hydra.sweeper.max_failure_rate=1.0")
    study = optuna.load_study(study_name="toy", storage=f"sqlite:///{tmp_path}/toy.db")
    trials = study.get_trials()
    assert len(trials) == 6
    for t in trials:
        if t.params["db"] == "nope":
            assert t.state == TrialState.FAIL and "nope" in t.user_attrs["error"]
        elif t.params["x"] >= 0:
            assert t.state == TrialState.COMPLETE
    assert {t.params["db"] for t in trials} == {"sqlite", "nope"}  # seed 1 draws both


@pytest.mark.slow
def test_skip_repeats_tells_a_repeated_recipe_its_earlier_outcome_without_running_it(tmp_path):
    # four recipes in all (x in {0.5, 2.5}, y in {0, 1}; 2.5 is stopped by prune_above): eight draws repeat some
    _, storage = run_toy(tmp_path, "x=choice(0.5,2.5)", "prune_above=1.5", "hydra.sweeper.n_trials=8",
                         "hydra.sweeper.skip_repeats=true")
    trials = optuna.load_study(study_name="toy", storage=storage).get_trials()
    assert len(trials) == 8
    ran = [t for t in trials if "repeat_of" not in t.user_attrs]
    repeats = [t for t in trials if "repeat_of" in t.user_attrs]
    assert repeats and len({tuple(sorted(t.params.items())) for t in ran}) == len(ran) <= 4
    jobs = sorted(int(p.name) for p in (tmp_path / "jobs").iterdir() if p.is_dir())
    assert jobs == sorted(t.number for t in ran)  # a repeat runs no job
    by_number = {t.number: t for t in trials}
    for t in repeats:
        first = by_number[t.user_attrs["repeat_of"]]
        assert first.number < t.number and first.params == t.params and "repeat_of" not in first.user_attrs
        assert t.state == first.state and t.values == first.values
    # the released behaviour (the default): every draw runs
    (tmp_path / "plain").mkdir()
    _, storage = run_toy(tmp_path / "plain", "x=choice(0.5,2.5)", "hydra.sweeper.n_trials=8")
    plain = optuna.load_study(study_name="toy", storage=storage).get_trials()
    assert len(plain) == 8 and not any("repeat_of" in t.user_attrs for t in plain)
