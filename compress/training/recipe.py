"""A student's recipe: its network, distillation, pruning and quantization, and its seed, read from
their config groups once. A search trial and a finalist both train a student by it.

`StudentRecipe.of(cfg)` takes the groups; its methods take the data (a trial context: the splits and
the teacher's targets) and hand back models, so that no config travels further down than this.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from compress.core import metrics as M
from compress.core.compat import keras, set_seed
from compress.core.options import QUANT
from compress.measure.model_counts import count_macs
from compress.training import distill, prune, quantize
from compress.training.students import build_student

log = logging.getLogger(__name__)

# callbacks for a student before its distillation (the search's early stop): (model, MACs) -> callbacks
StopChecks = Callable[[keras.Model, int], list]


@dataclass
class Trained:
    """A trained student: the model its .tflite is converted from (for qat, the quantization-aware
    model), the float model it came from (MACs, parameter counts), each phase's history and its
    time by phase."""

    to_convert: keras.Model
    float_model: keras.Model
    histories: list[dict]
    times: dict[str, float]


@dataclass(frozen=True)
class StudentRecipe:
    student: Any  # the config groups as composed (DictConfig)
    distill: Any
    prune: Any
    quant: Any
    seed: int
    verbose: int = 0

    @classmethod
    def of(cls, cfg) -> StudentRecipe:
        return cls(cfg.student, cfg.distill, cfg.prune, cfg.quant, int(cfg.seed), int(cfg.verbose))

    @property
    def mode(self) -> str:
        """The quantization mode (a key of core.options.QUANT)."""
        return str(self.quant.mode)

    @property
    def fine_tunes(self) -> bool:
        """Whether the mode trains on after pruning (quantization-aware training)."""
        return QUANT[self.mode].fine_tunes

    @property
    def zero_sparsity(self) -> float:
        """The share of zero weights pruning leaves in place (what Core ML's sparse encoding may use)."""
        return prune.zero_sparsity(self.prune)

    def ready(self, ctx):
        """`ctx` with the teacher's logits (and this recipe's augmented views) read before a timed training."""
        return ctx.ready_to_train(self.distill)

    def train(self, ctx, stop_checks: StopChecks | None = None) -> Trained:
        """Distil, prune and (for qat) quantization-aware fine-tune a student on `ctx`'s data."""
        s, d = ctx.splits, self.distill
        set_seed(self.seed)
        train_targets, teacher_for_batches = ctx.distillation_targets(d.teacher_logits)
        student = build_student(self.student, s.num_classes, s.image_shape)
        times = {}
        start = time.perf_counter()
        callbacks = stop_checks(student, count_macs(student)) if stop_checks else []
        histories = [distill.fit(student, s.x_train, train_targets, s.x_val, ctx.val_targets, d, int(d.epochs),
                                 float(d.learning_rate), self.seed, callbacks=callbacks, teacher=teacher_for_batches,
                                 verbose=self.verbose, steps_per_execution=int(d.steps_per_execution),
                                 views=ctx.training_views(d))]
        times[M.TIME_TRAIN_S] = time.perf_counter() - start
        log.info("distilled: val acc %.4f (%.1fs)", histories[-1].get("val_accuracy", [float("nan")])[-1],
                 times[M.TIME_TRAIN_S])
        start = time.perf_counter()
        if prune.runs(self.prune):
            student, history = prune.prune(student, s.x_train, ctx.train_targets, s.x_val, ctx.val_targets,
                                           d, self.prune, self.seed, verbose=self.verbose)
            histories.append(history)
            log.info("pruned (%s) to %.2f: val acc %.4f", prune.method_of(self.prune), self.prune.sparsity,
                     history.get("val_accuracy", [float("nan")])[-1])
        times[M.TIME_PRUNE_S] = time.perf_counter() - start
        to_convert = student
        if self.fine_tunes:
            start = time.perf_counter()
            to_convert, history = self.quantization_aware(ctx, student)
            histories.append(history)
            times[M.TIME_TRAIN_S] += time.perf_counter() - start
        return Trained(to_convert, student, histories, times)

    def quantization_aware(self, ctx, model: keras.Model) -> tuple[keras.Model, dict]:
        """`model` fine-tuned quantization-aware by this recipe on `ctx`'s data (a qat trial's last phase; a
        finalist whose post-training int8 loses too much), and the phase's history."""
        s = ctx.splits
        return quantize.quantization_aware(model, s.x_train, ctx.train_targets, s.x_val, ctx.val_targets,
                                           self.distill, self.quant, prune.leaves_zeros(self.prune), self.seed,
                                           verbose=self.verbose)

    def representative_images(self, x_train: np.ndarray) -> np.ndarray:
        """A seeded sample of training images for int8 calibration."""
        rng = np.random.default_rng(self.seed)
        n = min(int(self.quant.representative_samples), len(x_train))
        return x_train[rng.choice(len(x_train), n, replace=False)]

    def convert(self, trained: Trained, x_train: np.ndarray) -> bytes:
        """The trained student as a .tflite flatbuffer in this recipe's own mode."""
        return quantize.convert(trained.to_convert, self.mode, self.representative_images(x_train))

    def shipped_float(self, trained: Trained) -> keras.Model:
        """The float weights the .tflite carries (for qat, those quantization-aware training left): what
        the Core ML package and student.keras are made from."""
        if self.fine_tunes:
            return quantize.float_twin(trained.to_convert, trained.float_model)
        return trained.float_model
