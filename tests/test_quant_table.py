"""compress.core.options.QUANT is the one table of quantization modes: every reader takes its
modes and their facts from it. A mode added to the table and missed by any reader fails here."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import compose_config, group
from hydra.core.override_parser.overrides_parser import OverridesParser

from compress.core.options import COREML_COMPRESSIONS, QUANT, check_quant_mode
from compress.search import early_stop
from compress.training import quantize
from compress.training.students import build_student

MODES = sorted(QUANT)


def searched_modes() -> list[str]:
    """The quant.mode choices of the default study's search space, as the sweeper parses them."""
    cfg = compose_config(return_hydra_config=True)
    line = f"quant.mode={cfg.hydra.sweeper.params['quant.mode']}"
    (override,) = OverridesParser.create().parse_overrides([line])
    return [str(v) for v in override.sweep_iterator()]


def test_the_search_space_offers_exactly_the_tables_modes():
    assert sorted(searched_modes()) == MODES


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_every_reader_handles_the_mode(mode, tmp_path):
    fact = QUANT[mode]
    check_quant_mode(mode)  # validation: accepted
    cfg = compose_config([f"quant.mode={mode}"])  # the schema composes it
    assert cfg.quant.mode == mode
    assert fact.coreml in COREML_COMPRESSIONS  # the export carries the mode over to Core ML with this
    assert re.fullmatch(r"#[0-9a-f]{6}", fact.colour)  # the figures' colour
    assert 0 < fact.bytes_per_param <= 4
    # early stopping bounds a trial's file by its parameters times the mode's bytes per parameter: a rival
    # just inside the bound stops a hopeless trial, one just outside it does not
    bound = 10_000 * fact.bytes_per_param

    def rivals(size):
        return [early_stop.Reference(0.95, size, 1, (0.5, 0.9)) for _ in range(3)]

    assert early_stop.hopeless(0.3, 1, 10_000, mode, 1, rivals(bound - 1), 0.0, 3) is not None
    assert early_stop.hopeless(0.3, 1, 10_000, mode, 1, rivals(bound + 1), 0.0, 3) is None
    # the converter makes a file for it (a QAT model is converted as full integer, as the trial does)
    model = build_student(group("student", width=0.0625, head="gap", dropout=0.0))
    images = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    flatbuffer = quantize.convert(model, mode, images)
    assert flatbuffer[4:8] == b"TFL3"


def test_the_report_and_the_figures_cover_every_mode():
    from analysis import plots

    assert set(plots.QUANT_COLOURS) == set(QUANT)
    assert len(set(plots.QUANT_COLOURS.values())) == len(QUANT)  # one colour each
