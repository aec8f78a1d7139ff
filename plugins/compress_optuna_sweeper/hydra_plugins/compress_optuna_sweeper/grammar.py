"""The override grammar as Optuna distributions, read as the released hydra-optuna-sweeper reads it
(choice, range with its stop included, shuffle, interval, int(...) casts, tag(log/int, ...)), the
deprecated `search_space` entries, the study's search space from `params` and the command line, and
a custom search space's extra suggestions."""

from __future__ import annotations

import warnings
from typing import Any, Callable, Dict, List

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep, Transformer
from hydra_plugins.compress_optuna_sweeper._errors import SweeperError  # noqa: F401 - re-exported
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def distribution_from_override(override: Override) -> BaseDistribution:
    """choice / range / interval (optionally cast or tagged log) as an Optuna distribution, read as
    the released hydra-optuna-sweeper reads them:

    - `choice(a, b)`, `a,b`, `shuffle(choice(...))`: categorical;
    - `range(start, stop[, step])`: integers (floats if any bound or the step is a float) from
      start to **stop included**, as the released plugin has it (Optuna's high is inclusive);
      `shuffle(range(...))`: the categorical of Hydra's own end-exclusive enumeration;
    - `interval(a, b)`: floats; `int(interval(a, b))` or `tag(int, interval(...))`: integers;
      `tag(log, ...)`: log scale.
    """
    value = override.value()
    key = override.get_key_element()
    if not override.is_sweep_override():
        raise SweeperError(f"{key}: '{override.input_line}' is not a sweep (use choice, range or interval)")
    if override.is_choice_sweep():
        if not isinstance(value, ChoiceSweep):
            raise SweeperError(f"{key}: '{override.input_line}' is not supported by the Optuna sweeper "
                               f"(use choice, range or interval)")
        choices = [x for x in override.sweep_iterator(transformer=Transformer.encode)]
        return CategoricalDistribution(choices)
    if override.is_range_sweep():
        assert isinstance(value, RangeSweep)
        if value.shuffle:
            return CategoricalDistribution([x for x in override.sweep_iterator(transformer=Transformer.encode)])
        start, stop, step = value.start, value.stop, value.step
        if all(_is_int(x) for x in (start, stop, step)):
            return IntDistribution(int(start), int(stop), step=int(step))
        return FloatDistribution(float(start), float(stop), step=float(step))
    if override.is_interval_sweep():
        assert isinstance(value, IntervalSweep)
        log_scale = "log" in value.tags
        if "int" in value.tags or (_is_int(value.start) and _is_int(value.end)):  # int(interval(...)) casts bounds
            return IntDistribution(int(value.start), int(value.end), log=log_scale)
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise SweeperError(f"{key}: '{override.input_line}' is not supported by the Optuna sweeper")


def distribution_from_config(name: str, spec: Any) -> BaseDistribution:
    """The deprecated `search_space` entry ({type: int|float|categorical, low, high, step, log,
    choices}) as a distribution, as the released plugin reads it."""
    spec = dict(spec)
    kind = spec.get("type")
    if kind == "categorical":
        return CategoricalDistribution(list(spec["choices"]))
    low, high, log_scale, step = spec.get("low"), spec.get("high"), bool(spec.get("log", False)), spec.get("step")
    if kind == "int":
        if log_scale:
            return IntDistribution(int(low), int(high), log=True)
        return IntDistribution(int(low), int(high), step=int(step or 1))
    if kind == "float":
        if log_scale:
            return FloatDistribution(float(low), float(high), log=True)
        return FloatDistribution(float(low), float(high), step=None if step is None else float(step))
    raise SweeperError(f"hydra.sweeper.search_space.{name}: type {kind!r}; allowed int, float, categorical")


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return repr(round(value, 10))
    return str(value)


def search_space(params: Dict[str, str], search_space_cfg: Any, arguments: List[str]
                 ) -> tuple[Dict[str, BaseDistribution], List[str]]:
    """Distributions from `params` (or the deprecated `search_space`) and command-line sweeps;
    plain values (in `params` or on the command line) are fixed for every trial, and a fixed
    value on the command line wins over a sweep of the same key."""
    parser = OverridesParser.create()
    space: Dict[str, BaseDistribution] = {}
    if search_space_cfg is not None and params:
        warnings.warn("Both hydra.sweeper.params and hydra.sweeper.search_space are configured.\n"
                      "Hydra will use hydra.sweeper.params for defining search space.", UserWarning)
    elif search_space_cfg is not None:
        warnings.warn("`hydra.sweeper.search_space` is deprecated and will be removed in the next major release. "
                      "Please configure with `hydra.sweeper.params`.", UserWarning)
        for key, spec in dict(search_space_cfg).items():
            space[str(key)] = distribution_from_config(str(key), spec)
    fixed: List[str] = []
    for key, text in params.items():
        (override,) = parser.parse_overrides([f"{key}={text}"])
        if override.is_sweep_override():
            space[override.get_key_element()] = distribution_from_override(override)
        else:  # a plain value in params is fixed for every trial, as in the released plugin
            fixed.append(override.input_line)
            space.pop(override.get_key_element(), None)
    for override in parser.parse_overrides(arguments):
        if override.is_sweep_override():
            space[override.get_key_element()] = distribution_from_override(override)
        else:
            fixed.append(override.input_line)
            space.pop(override.get_key_element(), None)  # a fixed value on the command line wins
    return space, fixed


def extend(trial: Any, fixed: List[str], custom_search_space: Callable[[Any, Any], None], config: Any) -> None:
    """`custom_search_space(cfg, trial)`: the user's function suggests more parameters (a key new
    to the app's config as '+key'); a parameter also fixed on the command line is an error."""
    for line in fixed:
        key = line.split("=", 1)[0]
        trial.set_user_attr(key, line.split("=", 1)[1] if "=" in line else None)
    custom_search_space(config, trial)
    overlap = set(trial.params) & {line.split("=", 1)[0] for line in fixed}
    if overlap:
        raise SweeperError(f"Overlapping fixed parameters and search space parameters found! {sorted(overlap)}")
