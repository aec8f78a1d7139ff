"""What a trial costs, measured on the full data: trials timed by phase, and one distillation epoch timed
each way a student can see its teacher (logits cached, the teacher in the input pipeline or in the
training step, augmented views); `python -m compress.speed` prints and stores them."""

from __future__ import annotations

import logging
import tempfile
import time

import numpy as np
from omegaconf import OmegaConf

from compress.config.cli import compose
from compress.core import metrics as M
from compress.data import batches
from compress.search import context
from compress.search.preflight import preflight
from compress.search.trial import run_trial
from compress.training import distill
from compress.training.students import build_student

log = logging.getLogger(__name__)


def trial_times(n: int, overrides: list[str]) -> list[dict]:
    """Run `n` default trials in this process (the first pays for loading the context)."""
    cfg = compose(["tracking.enabled=false", *overrides])
    preflight(cfg, check_data=False)
    out = []
    for i in range(n):
        with tempfile.TemporaryDirectory() as tmp:
            cfg.seed = i
            results = run_trial(cfg, tmp)
        out.append({k: results.get(k, 0.0) for k in (*M.PHASE_TIMES, M.TIME_COREML_S, M.TIME_CONTEXT_S, M.VAL_ACCURACY)})
    return out


EPOCH_MODES = ("cached", "in_step", "online", "views")


def _epoch_runner(mode: str, overrides: list[str]):
    """A compiled default student and its full-data pipeline for one of `EPOCH_MODES`;
    returns a function that trains one epoch and gives its seconds."""
    cfg = compose([f"distill.teacher_logits={'cached' if mode == 'cached' else 'online'}", *overrides])
    ctx = context.get(cfg)
    s = ctx.splits
    targets, teacher = ctx.distillation_targets(cfg.distill.teacher_logits)
    student = build_student(cfg.student, s.num_classes, s.image_shape)
    if mode == "in_step":
        student, teacher = distill.TeacherInStep(student, teacher), None
    steps = int(np.ceil(len(s.x_train) / cfg.distill.batch_size))
    distill.compile_for_distillation(student, cfg.distill, float(cfg.distill.learning_rate), steps,
                                     int(cfg.distill.steps_per_execution))
    # a warm-up pass on a slice traces the training graph (and the online teacher's), so the
    # timed epochs measure training alone, as in a trial's later epochs
    if mode == "views":
        view_images, view_logits = ctx.training_views(OmegaConf.merge(cfg.distill, {"augment": "flip_shift"}))
        labels = np.argmax(targets[:, :10], axis=1)
        student.fit(batches.views(view_images[:, :2048], view_logits[:, :2048], labels[:2048],
                                         cfg.distill.batch_size, 0), verbose=0)
        full = batches.views(view_images, view_logits, labels, cfg.distill.batch_size, 0)
    else:
        student.fit(batches.distillation(s.x_train[:2048], targets[:2048], cfg.distill.batch_size, 0, teacher), verbose=0)
        full = batches.distillation(s.x_train, targets, cfg.distill.batch_size, 0, teacher)

    def one_epoch() -> float:
        start = time.perf_counter()
        student.fit(full, epochs=1, verbose=0)
        return time.perf_counter() - start

    return one_epoch


def epoch_seconds(overrides: list[str], rounds: int = 3) -> dict[str, list[float]]:
    """Seconds per distillation epoch in each of `EPOCH_MODES`, timed in alternating rounds so
    that machine noise hits all alike."""
    runners = {mode: _epoch_runner(mode, overrides) for mode in EPOCH_MODES}
    times: dict[str, list[float]] = {mode: [] for mode in runners}
    for i in range(rounds):
        for mode, one_epoch in runners.items():
            times[mode].append(one_epoch())
            log.info("speed: round %d of %d, %s epoch %.1f s", i + 1, rounds, mode, times[mode][-1])
    return times
