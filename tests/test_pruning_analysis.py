"""analysis.pruning on a grid the test writes: the equal-bytes pairs, the magnitude shares, the
fine-tuning recovery, and the report section that quotes them."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from analysis import pruning
from compress.core import metrics as M


def grid_row(trial, width, method, sparsity, val, size, gzip, macs, curve):
    return {"study": "pruning", "trial": trial, "status": "FINISHED", "student.width": width, "prune.method": method,
            "prune.sparsity": sparsity, "distill.epochs": 2, M.VAL_ACCURACY: val, M.TEST_ACCURACY: val - 0.002,
            M.SIZE_BYTES: size, M.SIZE_GZIP_BYTES: gzip, M.COREML_SIZE_BYTES: size + 5000, M.PARAMS: size - 3000,
            M.MACS: macs, M.LATENCY_MS: 0.01, "curve_val": curve}


@pytest.fixture
def grid():
    return pd.DataFrame([
        grid_row(0, 0.25, "magnitude", 0.0, 0.880, 20_000, 18_000, 400_000, [0.85, 0.88]),
        grid_row(1, 0.25, "channel", 0.0, 0.886, 20_100, 18_000, 400_000, [0.85, 0.88, 0.884, 0.886, 0.886]),
        grid_row(2, 0.5, "magnitude", 0.0, 0.900, 70_000, 64_000, 1_500_000, [0.87, 0.90]),
        grid_row(3, 0.5, "channel", 0.5, 0.893, 21_000, 19_000, 410_000, [0.87, 0.90, 0.85, 0.889, 0.893]),
        grid_row(4, 0.5, "magnitude", 0.5, 0.897, 70_000, 40_000, 1_500_000, [0.87, 0.90, 0.89, 0.897, 0.897]),
    ])


def test_channel_pruning_is_paired_with_the_narrow_student_of_nearest_bytes(grid):
    fig = pruning.compute(grid)
    assert fig["distill_epochs"] == 2 and fig["fine_tune_epochs"] == 3
    assert [r["method"] for r in fig["rows"]] == ["none", "none, fine-tuned as long", "none", "channel", "magnitude"]
    (pair,) = fig["comparisons"]
    # the fair pair is trial 1 (narrow, trained as long); trial 0 is the narrow student as distilled
    assert pair["narrow_at_equal_bytes"]["trial"] == 1 and pair["narrow_as_distilled"]["trial"] == 0
    assert pair["unpruned"]["trial"] == 2 and pair["magnitude"]["trial"] == 4
    assert pair["val_points_over_narrow"] == pytest.approx(0.7)
    assert pair["file_share_of_unpruned"] == pytest.approx(0.3) and pair["macs_share_of_unpruned"] == pytest.approx(0.41 / 1.5)
    # 0.889 at the second fine-tuning epoch reaches the narrow student's final 0.886; 0.85 does not
    assert pair["epochs_to_match_narrow"] == 2 and pair["still_rising"] and pair["narrow_still_rising"]
    assert pair["magnitude_at_equal_bytes"] is None  # trial 4's 70,000 B is no match for 21,000 B
    (mag,) = fig["magnitude"]
    assert mag["file_share"] == 1.0 and mag["gzip_share"] == pytest.approx(40 / 64)
    # width 0.5 has no narrow student trained as long: its magnitude row is read against the one as distilled
    assert mag["against"] == "none" and mag["val_points"] == pytest.approx(-0.3)
    assert fig["channel_beats_narrow"] == 1 and fig["n_pairs"] == 1


def test_magnitude_pruning_is_read_against_the_student_trained_as_long_and_at_equal_bytes(grid):
    # width 0.25 pruned by magnitude to half: a file as big as the channel-pruned one (21,000 B)
    more = pd.concat([grid, pd.DataFrame([grid_row(5, 0.25, "magnitude", 0.5, 0.878, 20_000, 15_000, 400_000,
                                                   [0.85, 0.88, 0.86, 0.875, 0.878])])], ignore_index=True)
    fig = pruning.compute(more)
    (pair,) = fig["comparisons"]
    assert pair["magnitude_at_equal_bytes"]["trial"] == 5
    assert pair["val_points_over_magnitude"] == pytest.approx(1.5)  # 0.893 against 0.878
    quarter = next(m for m in fig["magnitude"] if m["width"] == 0.25)
    # against trial 1 (0.886, the narrow student fine-tuned as long), not trial 0 (0.880, as distilled)
    assert quarter["against"] == "none, fine-tuned as long" and quarter["val_points"] == pytest.approx(-0.8)
    text = pruning.render(fig)
    assert "magnitude pruning at equal bytes: width 0.250 to 0.5\n  (20,000 B), +1.50 validation" in text
    assert "against the unpruned student trained as long" in text
    assert "after **2 of 3**" in text


def test_a_pruned_model_that_never_reaches_the_narrow_student_says_so(grid):
    worse = grid.copy()
    worse.at[3, "curve_val"] = [0.87, 0.90, 0.85, 0.86, 0.87]
    worse.loc[3, M.VAL_ACCURACY] = 0.87
    fig = pruning.compute(worse)
    assert fig["comparisons"][0]["epochs_to_match_narrow"] is None
    assert "did not reach the narrow student's final validation accuracy in 3 epochs" in pruning.render(fig)


def test_a_pruned_model_with_no_narrow_student_of_its_size_is_not_paired(grid):
    smaller = grid.copy()
    smaller.loc[3, M.SIZE_BYTES] = 12_000  # no narrow student within 10% of 12,000 B
    (pair,) = pruning.compute(smaller)["comparisons"]
    assert pair["narrow_at_equal_bytes"] is None and pair["val_points_over_narrow"] is None
    assert "narrow width from the start: none of the grid is within 10% of its bytes" in pruning.render(pruning.compute(smaller))


def test_the_section_says_which_pruning_shrinks_the_shipped_file(grid):
    text = pruning.render(json.loads(json.dumps(pruning.compute(grid, val_images=5000))))
    assert "| 0.500 | channel | 0.5 | 21,000 B |" in text
    assert "| 0.250 | none, fine-tuned as long | 0 | 20,100 B |" in text
    assert "the `.tflite` is\n  100% of the unpruned file's bytes (zipped: 62%)" in text
    assert "beat training narrow from the start in **1 of 1**" in text
    # +0.70 points against one standard error of 0.62 (2 x 0.893 x 0.107 / 5000): not yet worth it
    assert "about 0.62 points" in text and "not yet worth a finalist's" in text


def test_a_grid_with_mixed_recipes_or_no_finished_trial_is_refused(grid):
    mixed = grid.copy()
    mixed.loc[0, "distill.epochs"] = 4
    with pytest.raises(SystemExit, match="ran \\[2, 4\\] distillation epochs"):
        pruning.compute(mixed)
    with pytest.raises(SystemExit, match="no finished trial"):
        pruning.compute(grid.assign(status="FAILED"))
