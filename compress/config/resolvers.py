"""The OmegaConf resolvers conf/ uses to name a study's folders and MLflow experiment from the study
alone (`${per_study:...}`, `${per_study_experiment:...}`): the rule itself is told in paths.py."""

from __future__ import annotations

from omegaconf import OmegaConf

RESOLVERS = ("per_study", "per_study_experiment")


def _paths_node(root):
    return root.paths


def per_study(name: str, *, _root_) -> str:
    """`name` for the default study, `<sweeps_dir>/<study>/<name>` for any other."""
    p = _paths_node(_root_)
    return name if p.study == p.default_study else f"{p.sweeps_dir}/{p.study}/{name}"


def per_study_experiment(base: str, *, _root_) -> str:
    """The MLflow experiment: `base` for the default study, `base-<study>` for any other."""
    p = _paths_node(_root_)
    return base if p.study == p.default_study else f"{base}-{p.study}"


def register_resolvers() -> None:
    """Make `${per_study:...}` and `${per_study_experiment:...}` known to OmegaConf (idempotent)."""
    for name, fn in (("per_study", per_study), ("per_study_experiment", per_study_experiment)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
