"""Before a finalist trains: would its shipped file meet the latency budget on this CPU?

A finalist's shipped int8 file has its recipe's architecture, and TFLite's kernels run as fast on
trained weights as on untrained ones (magnitude pruning keeps the shape; zeros are not skipped). So
the student built untrained, converted to each post-training int8 encoding and timed beside the
teacher, shows before any training whether the long run could ship on this machine. On a CPU with
AVX-512 VNNI the default study's depthwise-separable finalists ran at 0.060-0.065 of the teacher's
latency against a budget of 0.05 (report/finalists.csv) after about an hour of training each; the
preflight skips them in seconds. A channel-pruned recipe's shape is known only after training and is
always trained.
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

from compress.finalize.latency_budget import latency_budget
from compress.finalize.recipe import recipe_hash
from compress.measure import machine
from compress.measure import tflite as measure
from compress.training import encode, prune, quantize
from compress.training.recipe import StudentRecipe
from compress.training.students import build_student

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preflight:
    """One recipe's untrained shipping file against the budget of the CPU it ran on."""

    trial: int
    ratio: float  # the fastest post-training int8 encoding's latency over the teacher's
    limit: float  # the latency budget for this CPU's instruction set
    factor: float  # finalize.latency_preflight: skip above limit * factor
    cpu: str
    isa: str
    recipe: str = ""  # the finalist's recipe hash ("": recorded before it was kept)

    @property
    def skip(self) -> bool:
        return self.ratio > self.limit * self.factor

    def words(self) -> str:
        verdict = "over" if self.skip else "within"
        return (f"trial {self.trial}: its untrained int8 file runs at {self.ratio:.4f} of the teacher's latency, "
                f"{verdict} {self.factor:g} x the budget {self.limit:g} on {self.cpu} ({self.isa})")


def applies(cfg) -> bool:
    """Whether finalize checks latency before training: a budget is set and `finalize.latency_preflight`
    is not null."""
    return latency_budget(cfg.finalize) is not None and cfg.finalize.get("latency_preflight") is not None


def recorded(entries, fcfg, trial_number: int) -> Preflight | None:
    """The verdict an earlier run recorded for this trial (finalists.json's `latency_preflight`) under the
    budget this CPU's instruction set has, with the same factor (and recipe, where recorded). Another
    machine of that instruction set keeps it: which finalists train, and so which winner ships, does not
    turn on the machine a run gets (the default study's trials 5 and 6: 0.060 of the teacher on an Intel
    Xeon, 0.033-0.037 on an AMD EPYC, both AVX-512 VNNI). Another instruction set's budget measures again."""
    limit = latency_budget(fcfg.finalize).limit(machine.record()["isa"])
    factor = float(fcfg.finalize.latency_preflight)
    for e in entries or ():
        same_budget = (math.isclose(float(e.get("limit", -1)), limit)
                       and math.isclose(float(e.get("factor", -1)), factor))
        same_recipe = e.get("recipe", "") in ("", recipe_hash(fcfg))
        if int(e.get("trial", -1)) == int(trial_number) and same_budget and same_recipe:
            return Preflight(int(trial_number), float(e["ratio"]), limit, factor, str(e["cpu"]), str(e["isa"]),
                             str(e.get("recipe", "")))
    return None


def measure_recipe(fcfg, ctx, trial_number: int) -> Preflight | None:
    """The preflight of one finalist's config (`recipe.finalist_config`), or None where its shipped shape is
    not known before training (channel pruning)."""
    if prune.method_of(fcfg.prune) == "channel" and float(fcfg.prune.sparsity) > 0:
        return None
    here = machine.record()
    student = build_student(fcfg.student, ctx.splits.num_classes, ctx.splits.image_shape)
    representative = StudentRecipe.of(fcfg).representative_images(ctx.splits.x_train)
    m = fcfg.measure
    with tempfile.TemporaryDirectory(prefix="latency_preflight_") as tmp:
        paths = [quantize.write(encode.slim(quantize.convert(student, "int8", representative, granularity)),
                                Path(tmp) / f"{granularity}.tflite") for granularity in encode.GRANULARITIES]
        # both encodings and the teacher in one set of alternating rounds: the teacher is timed once
        *student_ms, teacher_ms = measure.latencies([*paths, ctx.teacher_tflite], ctx.splits.x_test[0],
                                                    int(m.latency_runs), int(m.warmup), int(m.threads))
    return Preflight(int(trial_number), min(student_ms) / teacher_ms, latency_budget(fcfg.finalize).limit(here["isa"]),
                     float(fcfg.finalize.latency_preflight), here["cpu"], here["isa"], recipe_hash(fcfg))
