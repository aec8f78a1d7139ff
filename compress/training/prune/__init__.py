"""Pruning, by `prune.method` (conf/prune/), one module each with the same interface:

- `magnitude` (magnitude.py): tfmot zeroes the smallest weights in place. The model keeps its
  shape, so the .tflite keeps its size; the zipped file and Core ML's sparse encoding shrink.
- `channel` (channel.py): whole filters and hidden units are removed and a genuinely narrower
  model is rebuilt from the surviving weights, so both exported files shrink and MACs fall.

`prune(model, ...)` returns the pruned model and its fine-tuning history either way.
"""

from __future__ import annotations

from compress.core.compat import keras
from compress.core.errors import ConfigError
from compress.core.options import PRUNE_METHODS
from compress.training.prune import channel, magnitude


def method_of(prune_cfg) -> str:
    """The configured method; configs saved before `prune.method` existed are magnitude."""
    method = str(prune_cfg.get("method", "magnitude"))
    if method not in PRUNE_METHODS:
        raise ConfigError(f"prune.method={method}: allowed {', '.join(PRUNE_METHODS)}")
    return method


def leaves_zeros(prune_cfg) -> bool:
    """Whether the pruned model holds its pruning as zero weights (magnitude pruning): what
    quantization-aware training must preserve and Core ML can store as sparse weights."""
    return method_of(prune_cfg) == "magnitude" and float(prune_cfg.sparsity) > 0


def runs(prune_cfg) -> bool:
    """Whether the pruning step runs: at any sparsity above 0, and for channel pruning at 0 too,
    where it keeps every channel and still fine-tunes `prune.epochs` with the teacher: the
    unpruned model trained as long as a pruned one, the baseline a fair comparison needs
    (experiment=pruning). Magnitude pruning at 0 skips the step, as it always has."""
    return float(prune_cfg.sparsity) > 0 or method_of(prune_cfg) == "channel"


def zero_sparsity(prune_cfg) -> float:
    """The share of zero weights the pruned model's kernels hold (0 after channel pruning: the
    removed channels are gone, the survivors are dense)."""
    return float(prune_cfg.sparsity) if leaves_zeros(prune_cfg) else 0.0


def prune(model, x, targets, x_val, targets_val, distill_cfg, prune_cfg, seed: int, verbose: int = 0):
    """Prune `model` by `prune_cfg.method` to `prune_cfg.sparsity` and fine-tune it on the
    distillation objective; returns (pruned model, history)."""
    chosen = {"channel": channel, "magnitude": magnitude}[method_of(prune_cfg)]
    return chosen.prune(model, x, targets, x_val, targets_val, distill_cfg, prune_cfg, seed, verbose=verbose)


def kernel_sparsity(model) -> dict[str, float]:
    """Share of exact zeros in each conv and dense kernel, by layer name."""
    import numpy as np

    return {layer.name: float(np.mean(layer.kernel.numpy() == 0)) for layer in model.layers
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))}
