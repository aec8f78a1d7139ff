"""The preflight: each job's config composed at the search space's corners and checked by the app's
function (the sweeper's `preflight`, a dotted path) before the study is created or any job runs."""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Dict, List, Sequence

from hydra_plugins.compress_optuna_sweeper.grammar import _format_value
from optuna.distributions import BaseDistribution, CategoricalDistribution


def corner_overrides(space: Dict[str, BaseDistribution], fixed: List[str]) -> List[List[str]]:
    """Override lists that put each parameter, in turn, at each end (or each choice) of its
    range, the others at their first value: enough to find any out-of-range bound."""
    def ends(dist: BaseDistribution) -> List[Any]:
        if isinstance(dist, CategoricalDistribution):
            return list(dist.choices)
        return [dist.low, dist.high]

    base = {k: ends(d)[0] for k, d in space.items()}
    batches = [dict(base)]
    for key, dist in space.items():
        for value in ends(dist)[1:]:
            batches.append({**base, key: value})
    return [fixed + [f"{k}={_format_value(v)}" for k, v in b.items()] for b in batches]


def run_preflight(dotted: str | Sequence[str] | None, compose: Callable[[List[str]], Any],
                  space: Dict[str, BaseDistribution], fixed: List[str]) -> None:
    """Compose (`compose(overrides)`) and check the jobs' configs before anything is stored; exit 2
    with the check's message on one line at the first bad value. Several checks (a list, cheapest
    first) each run over every corner before the next: a value out of range at the last corner is
    refused before a costlier check (loading a model, say) runs at the first."""
    if not dotted:
        return
    names = [dotted] if isinstance(dotted, str) else list(dotted)
    checks = []
    for name in names:
        module_name, _, func_name = str(name).rpartition(".")
        checks.append(getattr(importlib.import_module(module_name), func_name))  # named in config: loaded by name
    try:
        configs = [compose(list(overrides)) for overrides in corner_overrides(space, fixed)]
        for check in checks:
            for cfg in configs:
                check(cfg)
    except Exception as exc:  # noqa: BLE001 - the check (or the composition) decides what is wrong
        print(f"error: {exc}".splitlines()[0], file=sys.stderr)
        raise SystemExit(2) from None
