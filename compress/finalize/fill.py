"""A size class's recipe made as wide as its budget allows (`finalize.fill_size_classes`).

The search finds a recipe at the width it drew; a capacity-bound student that ships well under its
size class leaves bytes unused. For each class named, the finalist chosen for it (the most accurate
recipe whose int8 estimate fits, as the default selection chooses) is trained at the widest student
width whose int8 file is estimated at most `finalize.fill_share` of the class: the parameters of the
student built at that width, plus its family's int8 overhead (`selection.ship_estimate`'s reading).
Measured on the default study (docs/teachers.md): trial 62's recipe at width 0.160 instead of 0.111
shipped 15,128 bytes instead of 9,368 and 91.72% instead of 90.80% on test (seed 0). A finalist widened
for a class ships within it where one of its int8 encodings fits (`finalist_run.choose_encoding`): the
estimate reads per-tensor int8, and a depthwise family's per-channel file carries a scale per channel
(the timed main job's trial 60, dsconv_sp at width 0.148: 15,384 bytes per-tensor, 21,720 per-channel).
"""

from __future__ import annotations

import logging

import pandas as pd
from omegaconf import OmegaConf, open_dict

from compress.core import metrics as M
from compress.core.options import FAMILIES
from compress.finalize import selection as finalists
from compress.training.students import build_student

log = logging.getLogger(__name__)
FINAL_WIDTH = finalists.FINAL_WIDTH
WIDEST = 4.0  # a filled width is searched up to this many times the trial's


def estimate_at(student_cfg, arch: str, width: float, classes: int, image_shape: tuple) -> int:
    """The int8 file estimate (parameters plus the family's overhead) of the student at `width`."""
    cfg = OmegaConf.create(OmegaConf.to_container(student_cfg, resolve=True))
    with open_dict(cfg):
        cfg.arch, cfg.width = arch, float(width)
    params = build_student(cfg, classes, image_shape).count_params()
    return int(params + FAMILIES[arch].int8_overhead_bytes)


def student_of(student_cfg, row):
    """The `student` group as the trial's row sets it (its searched values over the config's)."""
    node = OmegaConf.create(OmegaConf.to_container(student_cfg, resolve=True))
    with open_dict(node):
        for name in M.SEARCHED_PARAMS:
            group, key = name.split(".")
            if group == "student" and name in row and not pd.isna(row[name]):
                node[key] = type(node[key])(row[name]) if key in node else row[name]
    return node


def filled_width(student_cfg, row, budget: float, classes: int, image_shape: tuple) -> tuple[float, int]:
    """The widest width (to 3 decimals, at least the trial's) whose estimate fits `budget` bytes, and
    that estimate; a recipe already over the budget keeps its trial's width."""
    node = student_of(student_cfg, row)
    arch, own = str(node.get("arch", "cnn")), float(node.width)
    low, high = round(own, 3), round(WIDEST * own, 3)
    if estimate_at(node, arch, low, classes, image_shape) > budget:
        return own, estimate_at(node, arch, own, classes, image_shape)
    while high - low > 0.0015:  # the largest width (in thousandths) whose estimate fits
        mid = round((low + high) / 2, 3)
        if estimate_at(node, arch, mid, classes, image_shape) <= budget:
            low = mid
        else:
            high = mid
    return low, estimate_at(node, arch, low, classes, image_shape)


def fill(selection: pd.DataFrame, f, student_cfg, classes: int, image_shape: tuple) -> pd.DataFrame:
    """`selection` with `final_width` set on the finalist chosen for each class of
    `f.fill_size_classes` (the most accurate one whose int8 estimate fits it); unchanged without any."""
    if not list(f.get("fill_size_classes") or []) or selection.empty:
        return selection
    out, estimated = selection.copy(), finalists.with_ship_estimate(selection.copy())
    for limit in sorted(int(c) for c in f.fill_size_classes):
        fits = estimated[estimated[finalists.SHIP_ESTIMATE] <= limit]
        if fits.empty:
            log.info("finalize.fill_size_classes: no finalist fits %s bytes: none widened", f"{limit:,}")
            continue
        index = fits.sort_values([M.VAL_ACCURACY, finalists.SHIP_ESTIMATE], ascending=[False, True]).index[0]
        row = out.loc[index]
        width, estimate = filled_width(student_cfg, row, float(f.fill_share) * limit, classes, image_shape)
        out.loc[index, FINAL_WIDTH] = width
        out.loc[index, finalists.FILLED_CLASS] = limit  # it ships within it where an encoding does (finalist_run)
        log.info("finalize.fill_size_classes: trial %d trains at width %.3f instead of %.3f (int8 file estimated "
                 "at %s bytes, at most %.0f%% of %s)", int(row["trial"]), width, float(row["student.width"]),
                 f"{estimate:,}", 100 * float(f.fill_share), f"{limit:,}")
    return out
