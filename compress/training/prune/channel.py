"""Channel pruning: remove whole channels and rebuild a genuinely narrower model.

Every conv's filters and every hidden dense layer's units are ranked, and the least important
`prune.sparsity` share of each is removed (each keeps round((1 - s) * c), at least one). The
output layer keeps every class. Importance (`prune.importance`):

- `bn` (the default): |gamma| of the BatchNorm right after the conv. BatchNorm renormalises the
  conv's output, so a filter's own norm says little about what its channel passes on; the scale
  the normalised channel is multiplied by does (network slimming, Liu et al. 2017). A conv with no
  BatchNorm after it falls back to `l1`.
- `l1`: the L1 norm of the filter's weights over its surviving inputs (Li et al. 2017).

Dense units are ranked by the L1 norm of their incoming weights (no BatchNorm follows them).

The rebuild walks the model's chain of layers carrying which channels of the current tensor
survive: a conv keeps its kernel's surviving input channels and its own surviving filters; a
depthwise conv, a BatchNorm, activations and pooling keep the surviving channels; Flatten maps
them to their positions in the flattened features (channels last: position * channels +
channel); a dense layer keeps the rows of the surviving features. Before fine-tuning the narrow
model computes exactly what the original computes with every removed channel's activation set to
zero; it is then fine-tuned with the teacher for `prune.epochs`. A model that is not a single
chain of these layers (a residual add, a concat) is refused in one line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from compress.core.compat import keras
from compress.core.errors import ConfigError
from compress.core.options import check_sparsity
from compress.training import distill

log = logging.getLogger(__name__)

L = keras.layers
# layers that pass every channel through unchanged (no weights)
PASS_THROUGH = (L.Activation, L.ReLU, L.MaxPooling2D, L.AveragePooling2D, L.GlobalAveragePooling2D,
                L.GlobalMaxPooling2D, L.Dropout)


@dataclass
class Narrowed:
    """The rebuilt model and, for each layer with channels, which of its original channels
    (or, for a dense layer, units) survive."""

    model: keras.Model
    kept: dict[str, np.ndarray]


def keep_count(channels: int, sparsity: float) -> int:
    """How many of `channels` survive removing a `sparsity` share (at least one)."""
    return max(1, int(round((1.0 - sparsity) * channels)))


def _strongest(importance: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` most important entries, in their original order (ties: the first)."""
    order = np.argsort(-importance, kind="stable")
    return np.sort(order[:count])


def _conv_importance(kernel: np.ndarray, inputs: np.ndarray, following, importance: str) -> np.ndarray:
    if importance == "bn" and isinstance(following, L.BatchNormalization) and following.scale:
        return np.abs(following.gamma.numpy())
    return np.abs(kernel[:, :, inputs, :]).sum(axis=(0, 1, 2))


def _chain(model: keras.Model) -> list:
    """The model's layers after its input, refused unless each feeds only the next."""
    layers = [layer for layer in model.layers if not isinstance(layer, L.InputLayer)]
    for layer in layers:
        if isinstance(layer.input, (list, tuple)) or len(layer._inbound_nodes) != 1:
            raise ConfigError(f"prune.method=channel: layer {layer.name} ({type(layer).__name__}) has several "
                              f"inputs or uses; channel pruning takes a single chain of layers")
    return layers


def narrow(model: keras.Model, sparsity: float, importance: str = "bn") -> Narrowed:
    """`model` with the least important `sparsity` share of each layer's channels removed."""
    check_sparsity(sparsity)
    if importance not in ("bn", "l1"):
        raise ConfigError(f"prune.importance={importance}: allowed bn, l1")
    layers = _chain(model)
    last_dense = max((i for i, layer in enumerate(layers) if isinstance(layer, L.Dense)), default=-1)
    shape = tuple(model.input.shape[1:])
    current = np.arange(shape[-1])  # the surviving channels (or features) of the tensor between layers
    kept: dict[str, np.ndarray] = {}
    plan = []  # (layer class, config, weights) of the narrow model
    for i, layer in enumerate(layers):
        config, weights = layer.get_config(), layer.get_weights()
        following = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(layer, L.DepthwiseConv2D):
            if int(layer.depth_multiplier) != 1:
                raise ConfigError(f"prune.method=channel: {layer.name} has depth_multiplier "
                                  f"{layer.depth_multiplier}; allowed 1")
            weights = [weights[0][:, :, current, :], *[w[current] for w in weights[1:]]]
        elif isinstance(layer, L.Conv2D):
            if int(getattr(layer, "groups", 1)) != 1:
                raise ConfigError(f"prune.method=channel: {layer.name} is a grouped conv ({layer.groups} groups); "
                                  f"allowed 1")
            kernel = weights[0]
            out = _strongest(_conv_importance(kernel, current, following, importance),
                             keep_count(kernel.shape[-1], sparsity))
            weights = [kernel[:, :, current, :][..., out], *[w[out] for w in weights[1:]]]
            config["filters"] = len(out)
            current = out
        elif isinstance(layer, L.BatchNormalization):
            weights = [w[current] for w in weights]
        elif isinstance(layer, L.Flatten):
            positions = int(np.prod(layer.input.shape[1:-1]))
            channels = int(layer.input.shape[-1])
            current = (np.arange(positions)[:, None] * channels + current[None, :]).reshape(-1)
        elif isinstance(layer, L.Dense):
            kernel = weights[0][current]
            units = (np.arange(kernel.shape[1]) if i == last_dense
                     else _strongest(np.abs(kernel).sum(axis=0), keep_count(kernel.shape[1], sparsity)))
            weights = [kernel[:, units], *[w[units] for w in weights[1:]]]
            config["units"] = len(units)
            current = units
        elif not isinstance(layer, PASS_THROUGH):
            raise ConfigError(f"prune.method=channel: layer {layer.name} ({type(layer).__name__}) is not supported; "
                              f"allowed Conv2D, DepthwiseConv2D, BatchNormalization, Dense, Flatten, pooling, "
                              f"activations, Dropout")
        if layer.weights:
            kept[layer.name] = current.copy()
        plan.append((type(layer), config, weights))
    source = [layer for layer in model.layers if isinstance(layer, L.InputLayer)]
    inputs = keras.Input(shape, name=source[0].name if source else "image")
    x = inputs
    built = []
    for cls, config, weights in plan:
        layer = cls.from_config(config)
        x = layer(x)
        built.append((layer, weights))
    for layer, weights in built:
        if weights:
            layer.set_weights(weights)
    return Narrowed(keras.Model(inputs, x, name=f"{model.name}_channels{1 - sparsity:.2f}"), kept)


def prune(model: keras.Model, x, targets, x_val, targets_val, distill_cfg, prune_cfg, seed: int,
          verbose: int = 0) -> tuple[keras.Model, dict]:
    """Remove `prune_cfg.sparsity` of every layer's channels, then fine-tune the narrow model on
    the distillation objective; returns it and the fine-tuning history."""
    sparsity = float(prune_cfg.sparsity)
    result = narrow(model, sparsity, str(prune_cfg.get("importance", "bn")))
    log.info("channel pruning: %s -> %s parameters (%.0f%% of each layer's channels removed, by %s)",
             f"{model.count_params():,}", f"{result.model.count_params():,}", 100 * sparsity,
             prune_cfg.get("importance", "bn"))
    history = distill.fit(
        result.model, x, targets, x_val, targets_val, distill_cfg, int(prune_cfg.epochs),
        float(prune_cfg.learning_rate), seed, verbose=verbose,
        label=f"fine-tuning with {sparsity:.0%} of channels removed" if sparsity else "fine-tuning, every channel kept",
    )
    return result.model, history
