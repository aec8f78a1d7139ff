"""BatchNorm statistics recomputed from the training images when training was too short to settle them.

Keras predicts with a moving average of each BatchNormalization layer's batch statistics; after n
training steps the initial ones (mean 0, variance 1) still weigh momentum**n (0.99**80 = 45%). A model
trained in a few dozen steps (a folder of a few hundred images) therefore predicts with statistics its
data never had: 100% on its training batches, near chance on validation. Recomputing each layer's mean
and variance over the training images, layer after layer ("precise BN"), gives it its data's own.
"""

from __future__ import annotations

import numpy as np

from compress.core.compat import keras
from compress.data import arrays

# the initial statistics' weight above which they are recomputed: 5%, under 300 steps at 0.99. One epoch of
# Fashion-MNIST (430 steps: the search's pruning phase) leaves 1.3% and is left as it trained
STALE = 0.05


def stale_weight(steps: int, momentum: float = 0.99) -> float:
    """What the initial statistics still weigh after `steps` updates at `momentum` (Keras' default 0.99)."""
    return float(momentum) ** max(int(steps), 0)


def needs_recompute(steps: int, momentum: float = 0.99) -> bool:
    return stale_weight(steps, momentum) > STALE


def model_stale_weight(model: keras.Model, steps: int) -> float:
    """`stale_weight` of the model's BatchNormalization layer that forgets slowest (0 without one)."""
    return max((stale_weight(steps, layer.momentum) for layer in model.layers
                if isinstance(layer, keras.layers.BatchNormalization)), default=0.0)


def settle(model: keras.Model, images: np.ndarray, steps: int) -> str | None:
    """After `steps` of training: where the initial statistics still weigh over `STALE` in a layer's moving
    averages, recompute them over `images` (uint8, as the data holds them) and return what was done, in
    words; None where training settled them."""
    stale = model_stale_weight(model, steps)
    if stale <= STALE:
        return None
    layers = recompute(model, arrays.unit(images))
    return (f"recomputed over the {len(images)} training images ({layers} layers): {steps} training steps left "
            f"{100 * stale:.0f}% of the initial statistics in the moving averages") if layers else None


def recompute(model: keras.Model, images: np.ndarray, batch_size: int = 256) -> int:
    """Set every BatchNormalization layer's moving mean and variance to its input's over `images`
    (float, as the model takes them), first layer first so that each sees its predecessors' new
    statistics. Returns how many layers were set."""
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in layers:
        features = keras.Model(model.inputs, layer.input)
        axis = layer.axis[0] if isinstance(layer.axis, (list, tuple)) else layer.axis
        total = squares = None
        count = 0
        for start in range(0, len(images), batch_size):
            x = np.moveaxis(features(images[start:start + batch_size], training=False).numpy(), axis, -1)
            x = x.reshape(-1, x.shape[-1]).astype(np.float64)
            total = x.sum(0) if total is None else total + x.sum(0)
            squares = (x * x).sum(0) if squares is None else squares + (x * x).sum(0)
            count += len(x)
        mean = total / count
        layer.moving_mean.assign(mean.astype(np.float32))
        layer.moving_variance.assign(np.maximum(squares / count - mean * mean, 0.0).astype(np.float32))
    return len(layers)
