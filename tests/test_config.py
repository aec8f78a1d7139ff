"""The composed config: schema typing at composition, range checks with one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT, compose_config

from compress.config.validate import validate
from compress.core.errors import ConfigError


def test_default_config_composes_and_validates():
    cfg = compose_config()
    validate(cfg)
    assert cfg.quant.mode == "int8" and cfg.data.val_size == 5000 and cfg.tracking.uri.startswith("sqlite:///mlruns")


@pytest.mark.parametrize("override", ["student.widht=0.5", "student.width=wide", "quant.qat_epochs=1.5"])
def test_wrong_key_or_type_fails_at_composition(override):
    with pytest.raises(Exception) as err:
        compose_config([override])
    assert "widht" in str(err.value) or "width" in str(err.value) or "qat_epochs" in str(err.value)


@pytest.mark.parametrize(
    "override, field, allowed",
    [
        ("prune.sparsity=1.0", "prune.sparsity=1.0", "allowed [0, 1)"),
        ("prune.sparsity=-0.1", "prune.sparsity=-0.1", "allowed [0, 1)"),
        ("quant.mode=int4", "quant.mode=int4", "allowed float32, float16, dynamic, int8, qat"),
        ("student.width=0", "student.width=0.0", "must be > 0 (1.0 = the teacher's channels)"),
        ("distill.temperature=-1", "distill.temperature=-1.0", "must be > 0"),
        ("distill.alpha=1.5", "distill.alpha=1.5", "allowed [0, 1]"),
        ("data.fraction=0", "data.fraction=0.0", "allowed (0, 1]"),
        ("early_stop.check_epochs=[5,6]", "early_stop.check_epochs=[5, 6]",
         "each must be >= 1 and at least one in 1..distill.epochs (4)"),
        ("early_stop.check_epochs=[0,1]", "early_stop.check_epochs=[0, 1]",
         "each must be >= 1 and at least one in 1..distill.epochs (4)"),
        ("finalize.jobs=0", "finalize.jobs=0", "must be >= 1 (processes side by side)"),
        ("student.channel_multiple=3", "student.channel_multiple=3", "allowed 1, 2, 4, 8, 16"),
        ("finalize.max_latency_ratio=1.5", "finalize.max_latency_ratio=1.5",
         "allowed null (no latency budget) or (0, 1]: a fraction of the teacher's latency"),
        ("finalize.latency_preflight=0.5", "finalize.latency_preflight=0.5",
         "allowed null (train every finalist) or >= 1: a factor of the latency budget"),
    ],
)
def test_out_of_range_values_are_refused_with_the_field_and_what_is_allowed(override, field, allowed):
    with pytest.raises(ConfigError) as err:
        validate(compose_config([override]))
    assert str(err.value) == f"{field}: {allowed}"


def test_one_distillation_epoch_keeps_the_default_early_stop_valid():
    cfg = compose_config(["distill.epochs=1"])
    assert cfg.early_stop.enabled and list(cfg.early_stop.check_epochs) == [1, 2]
    validate(cfg)  # epoch 2's check never fires; epoch 1's still does


def test_bad_value_on_the_command_line_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "compress.sweep", "quant.mode=int4", f"tracking.uri=sqlite:///{tmp_path}/m.db",
         f"hydra.run.dir={tmp_path}/run"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: quant.mode=int4: allowed float32, float16, dynamic, int8, qat"
    assert not (tmp_path / "m.db").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("quant.mode=int4", "error: quant.mode=int4: allowed float32, float16, dynamic, int8, qat"),
        ("prune.sparsity=interval(0.1,1.2)", "error: prune.sparsity=1.2: allowed [0, 1)"),
        ("distill.alpha=choice(0.5,2.0)", "error: distill.alpha=2.0: allowed [0, 1]"),
        ("data.dir=/nonexistent/fmnist", "error: data.dir=/nonexistent/fmnist: no such folder"),
        ("teacher.path=/nonexistent/t.keras", "error: teacher.path=/nonexistent/t.keras: no such file"),
        ("teacher.path=pyproject.toml", "error: teacher.path=pyproject.toml: not a Keras model file"),
        ("tracking.uri=http://127.0.0.1:9/", "error: tracking.uri=http://127.0.0.1:9/: no MLflow server answers"),
        ("hydra.sweeper.storage=postgresql://nobody@127.0.0.1:9/none",
         "error: hydra.sweeper.storage=postgresql://nobody@127.0.0.1:9/none: cannot open the study"),
    ],
)
@pytest.mark.slow
def test_bad_study_input_stops_before_anything_is_stored(tmp_path, override, message):
    stores = [f"tracking.uri=sqlite:///{tmp_path}/m.db", f"hydra.sweeper.storage=sqlite:///{tmp_path}/o.db"]
    stores = [s for s in stores if s.split("=")[0] != override.split("=")[0]]
    proc = subprocess.run(
        [sys.executable, "-m", "compress.sweep", "-m", override, *stores, f"hydra.sweep.dir={tmp_path}/jobs"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr
    assert list(tmp_path.iterdir()) == []  # no study, no runs, no job folder


@pytest.mark.parametrize("fault, message", [
    ("truncated", "truncated or padded"),
    ("checksum", "does not match Fashion-MNIST's"),
    ("not_gzip", "magic number"),
])
@pytest.mark.slow
def test_a_corrupt_data_file_stops_the_study_before_anything_is_stored(tmp_path, fault, message):
    import gzip

    from conftest import have_dataset

    from compress.data import fashion_mnist as data

    if not have_dataset():
        pytest.skip("real Fashion-MNIST not installed")
    source, folder = data.locate(None), tmp_path / "data"
    folder.mkdir()
    for name in data.FILES.values():
        (folder / name).write_bytes((source / name).read_bytes())
    target = folder / data.FILES["test_labels"]
    raw = gzip.decompress(target.read_bytes())
    if fault == "truncated":
        target.write_bytes(gzip.compress(raw[:-10]))
    elif fault == "checksum":
        target.write_bytes(gzip.compress(raw[:-1] + bytes([(raw[-1] + 1) % 10])))
    else:
        target.write_bytes(b"\x00" * 64)
    out = tmp_path / "stores"
    proc = subprocess.run(
        [sys.executable, "-m", "compress.sweep", "-m", f"data.dir={folder}", f"tracking.uri=sqlite:///{out}/m.db",
         f"hydra.sweeper.storage=sqlite:///{out}/o.db", f"hydra.sweep.dir={out}/jobs"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(target) in lines[0] and message in lines[0], proc.stderr
    assert not out.exists()


def _every_option():
    """(group, option) for every YAML file of every config group the project owns."""
    conf = ROOT / "conf"
    return sorted((path.parent.relative_to(conf).as_posix(), path.stem) for path in conf.glob("*/*.yaml")
                  if path.parent.name != "hydra")


@pytest.mark.parametrize("group,option", _every_option())
def test_every_option_of_every_group_composes_and_validates(group, option):
    own = group == "data" and option != "fashion_mnist"  # other data runs under a study of its own
    cfg = compose_config([f"{group}={option}", *(["paths.study=own_data"] if own else [])], return_hydra_config=True)
    validate(cfg)
    if group == "experiment":  # each experiment's search space parses into a sweep or fixed values
        from hydra.core.override_parser.overrides_parser import OverridesParser

        params = cfg.hydra.sweeper.params
        parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
        assert any(o.is_sweep_override() for o in parsed)


def test_the_pruning_experiment_searches_method_with_sparsity_on_a_grid_in_its_own_study():
    cfg = compose_config(["experiment=pruning"], return_hydra_config=True)
    assert cfg.paths.study == "pruning" and "GridSampler" in cfg.hydra.sweeper.sampler._target_
    params = cfg.hydra.sweeper.params
    assert params["prune.method"] == "choice(magnitude, channel)" and params["quant.mode"] == "int8"


def test_the_schemas_defaults_agree_with_the_default_yaml():
    """A default stated twice (the typed schema, the group's YAML) must be the same default;
    keys the YAML fills by interpolation, and mandatory (???) ones, are the YAML's alone."""
    from omegaconf import OmegaConf

    from compress.config import schema

    def flat(node, prefix=""):
        out = {}
        for key, value in node.items():
            out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
        return out

    typed = flat(OmegaConf.to_container(OmegaConf.structured(schema.Config), resolve=False))
    composed = flat(OmegaConf.to_container(compose_config(), resolve=False))
    differ = {key: (value, composed.get(key)) for key, value in typed.items()
              if value != "???" and "${" not in str(composed.get(key, "")) and composed.get(key) != value}
    assert differ == {}


def test_a_retired_option_is_one_line_naming_its_replacement_and_old_tables_read_under_the_new_name(tmp_path):
    from analysis.report_inputs import _current_sampler_names

    proc = subprocess.run([sys.executable, "-m", "compress.sweep", "-m", "sampler=nsga2",
                           f"hydra.sweeper.storage=sqlite:///{tmp_path}/optuna.db"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and not list(tmp_path.iterdir())
    assert proc.stderr.strip() == "error: sampler=nsga2 is retired: use sampler=nsgaii (the same setting)"
    read = _current_sampler_names({"by_sampler": {"nsga2": {"mean": 1.0}, "tpe": {"mean": 0.9}},
                                   "arms": [{"sampler": "nsga2"}, {"sampler": "tpe"}]})
    assert list(read["by_sampler"]) == ["nsgaii", "tpe"] and [a["sampler"] for a in read["arms"]] == ["nsgaii", "tpe"]


def test_a_latency_budget_for_an_unknown_instruction_set_is_refused():
    with pytest.raises(ConfigError, match=r"finalize.latency_ratio_by_isa.avx3.*allowed instruction sets avx512_vnni"):
        validate(compose_config(["+finalize.latency_ratio_by_isa.avx3=0.1"]))
    with pytest.raises(ConfigError, match=r"finalize.latency_ratio_by_isa.avx2=1.5.*allowed \(0, 1\]"):
        validate(compose_config(["targets.latency_ratio_by_isa.avx2=1.5"]))
