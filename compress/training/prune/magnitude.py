"""Magnitude pruning with tfmot: ramp every conv and dense kernel to the target sparsity
while fine-tuning on the distillation objective, then strip the wrappers. The model keeps its
shape: the zeros shrink the zipped file and Core ML's sparse encoding, not the .tflite."""

from __future__ import annotations

import numpy as np

from compress.core.compat import keras, tfmot
from compress.core.errors import ConfigError
from compress.core.options import check_sparsity
from compress.training import distill


def schedule_for(sparsity: float, total_steps: int):
    """A polynomial ramp from 0 to `sparsity` that ends on a pruning step at ~80% of training,
    so the final masks hold for the last fifth of the fine-tuning."""
    frequency = max(1, int(total_steps * 0.8) // 8)
    end_step = frequency * max(1, int(total_steps * 0.8) // frequency)
    return tfmot().sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=float(sparsity), begin_step=0, end_step=end_step, frequency=frequency
    )


def prune(model: keras.Model, x, targets, x_val, targets_val, distill_cfg, prune_cfg, seed: int,
          verbose: int = 0) -> tuple[keras.Model, dict]:
    """Prune `model` to `prune_cfg.sparsity`; returns the stripped model and the fine-tuning history."""
    sparsity = float(prune_cfg.sparsity)
    check_sparsity(sparsity)
    if prune_cfg.epochs < 1:
        raise ConfigError(f"prune.epochs={prune_cfg.epochs}: must be >= 1 when prune.sparsity > 0")
    sparsity_api = tfmot().sparsity.keras
    steps = int(np.ceil(len(x) / distill_cfg.batch_size)) * int(prune_cfg.epochs)
    wrapped = sparsity_api.prune_low_magnitude(model, pruning_schedule=schedule_for(sparsity, steps))
    history = distill.fit(
        wrapped, x, targets, x_val, targets_val, distill_cfg, int(prune_cfg.epochs), float(prune_cfg.learning_rate),
        seed, callbacks=[sparsity_api.UpdatePruningStep()], verbose=verbose,
        label=f"pruning to {sparsity:.0%} sparsity",
    )
    return sparsity_api.strip_pruning(wrapped), history


