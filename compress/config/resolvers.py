"""The OmegaConf resolvers conf/ uses to name a study's folders and MLflow experiment from the study
alone (`${per_study:...}`, `${per_study_experiment:...}`): the rule itself is told in paths.py."""

from __future__ import annotations

from omegaconf import OmegaConf

from compress.core.options import FAMILIES, QUANT

RESOLVERS = ("per_study", "per_study_experiment", "choice_of")


def _paths_node(root):
    return root.paths


def per_study(name: str, *, _root_) -> str:
    """`name` for the default study, `<sweeps_dir>/<study>/<name>` for any other."""
    p = _paths_node(_root_)
    return name if p.study == p.default_study else f"{p.sweeps_dir}/{p.study}/{name}"


def per_study_experiment(base: str, *, _root_) -> str:
    """An MLflow name (experiment, registered model): `base` for the default study, `base-<study>` for any
    other on Fashion-MNIST, `<study>-<base less its fashion-mnist- prefix>` on any other data (its names
    say nothing of Fashion-MNIST)."""
    p = _paths_node(_root_)
    source = _root_.data.get("source", "fashion_mnist") if "data" in _root_ else "fashion_mnist"
    if source != "fashion_mnist":
        return f"{p.study}-{base.removeprefix('fashion-mnist-')}"
    return base if p.study == p.default_study else f"{base}-{p.study}"


def choice_of(table: str) -> str:
    """`${choice_of:quant_modes}`, `${choice_of:student_families}`: a search space's choice over every
    entry of that table of compress/core/options.py, in its order, so that a mode or family added
    there is searched without another edit."""
    tables = {"quant_modes": QUANT, "student_families": FAMILIES}
    if table not in tables:
        raise ValueError(f"choice_of:{table}: allowed {', '.join(tables)}")
    return f"choice({', '.join(tables[table])})"


def register_resolvers() -> None:
    """Make `${per_study:...}`, `${per_study_experiment:...}` and `${choice_of:...}` known to OmegaConf (idempotent)."""
    for name, fn in (("per_study", per_study), ("per_study_experiment", per_study_experiment),
                     ("choice_of", choice_of)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
