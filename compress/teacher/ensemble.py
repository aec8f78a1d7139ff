"""A stronger teacher for distillation, kept apart from the user's reference: a few members trained
with crops, flips and random erasing on the training split only, their logits averaged.

The code takes the Keras module from its caller (`keras`): the project runs tf_keras (Keras 2), while
a machine with a GPU and PyTorch but no TensorFlow trains the same members under Keras 3 on the torch
backend. Both build the members layer for layer alike, so weights travel as plain arrays
(`weights.npz`) and load into either. Augmentation is numpy, for the same reason.

A member trains one epoch per `fit` call on a fresh augmented copy of the training images and writes a
checkpoint after each, so a stopped run resumes at its last finished epoch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np

from compress.core.options import ENSEMBLE_ARCHES
from compress.data import arrays

log = logging.getLogger(__name__)


def recipe_hash(recipe: dict, data_fingerprint: str, val_index_sum: int) -> str:
    """Identifies a member's training: its recipe (member index included), the data and the split."""
    payload = json.dumps({"recipe": recipe, "data": data_fingerprint, "val": val_index_sum}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


RECIPE_KEYS = ("arch", "width", "epochs", "batch_size", "optimizer", "learning_rate", "weight_decay", "flip",
               "max_shift", "erase", "seed")


def member_recipe(ensemble_cfg, member: int, image_shape: tuple, num_classes: int) -> dict:
    """What one member's training depends on: the `ensemble` config's recipe keys, its index and the data's shape."""
    recipe = {k: ensemble_cfg[k] for k in RECIPE_KEYS}
    recipe.update(member=int(member), input_shape=[int(v) for v in image_shape], num_classes=int(num_classes))
    return recipe


def _user_member(keras, input_shape: tuple, num_classes: int, width: int, name: str):
    """The user's network (compress/teacher/model.py) at `width` first-layer filters, ending in logits."""
    layers = keras.layers
    x = inputs = keras.Input(shape=tuple(input_shape))
    x = layers.BatchNormalization()(x)
    side = min(int(input_shape[0]), int(input_shape[1]))
    for i, filters in enumerate((width, 2 * width, 4 * width)):
        if i:
            x = layers.BatchNormalization()(x)
        x = layers.Conv2D(filters, (5, 5), padding="same", activation="elu")(x)
        if side >= 2:
            x = layers.MaxPooling2D(pool_size=(2, 2), strides=(2, 2))(x)
            side //= 2
        x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="elu")(x)
    x = layers.Dropout(0.5)(x)
    return keras.Model(inputs, layers.Dense(num_classes)(x), name=name)


def _resnet_member(keras, input_shape: tuple, num_classes: int, width: int, name: str):
    """A pre-activation residual network: a 3x3 stem, three stages of two blocks at `width`, 2x and 4x
    filters, the last two halving the image while it is at least 2 pixels wide, then global pooling."""
    layers = keras.layers

    def block(x, filters: int, stride: int):
        y = layers.Activation("relu")(layers.BatchNormalization()(x))
        shortcut = x
        if stride != 1 or x.shape[-1] != filters:
            shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False)(y)
        y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(y)
        y = layers.Activation("relu")(layers.BatchNormalization()(y))
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
        return layers.Add()([shortcut, y])

    x = inputs = keras.Input(shape=tuple(input_shape))
    x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
    side = min(int(input_shape[0]), int(input_shape[1]))
    for stage, filters in enumerate((width, 2 * width, 4 * width)):
        stride = 2 if stage and side >= 2 else 1
        side = side // stride
        x = block(x, filters, stride)
        x = block(x, filters, 1)
    x = layers.Activation("relu")(layers.BatchNormalization()(x))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(num_classes)(x), name=name)


def build_member(keras, arch: str, input_shape: tuple, num_classes: int, width: int, name: str = "member"):
    """One member, ending in logits."""
    if arch == "user":
        return _user_member(keras, input_shape, num_classes, width, name)
    if arch == "resnet":
        return _resnet_member(keras, input_shape, num_classes, width, name)
    raise ValueError(f"ensemble.arch={arch}: allowed {', '.join(ENSEMBLE_ARCHES)}")


def augment(images: np.ndarray, rng: np.random.Generator, flip: bool, max_shift: int, erase: float) -> np.ndarray:
    """A fresh augmented copy of `images` (n, H, W, C) in [0, 1]: a horizontal flip half the time (when
    `flip`), a shift of up to `max_shift` pixels with zeros filling the border, and with probability
    `erase` one rectangle of 2-25% of the image, of aspect 0.3-3.3, set to zero (random erasing)."""
    n, h, w = images.shape[:3]
    out = images.copy()
    if flip:
        flipped = rng.random(n) < 0.5
        out[flipped] = out[flipped, :, ::-1]
    if max_shift:
        m = max_shift
        padded = np.pad(out, ((0, 0), (m, m), (m, m), (0, 0)))
        dy, dx = rng.integers(-m, m + 1, n), rng.integers(-m, m + 1, n)
        for y in range(-m, m + 1):
            for x in range(-m, m + 1):
                sel = np.flatnonzero((dy == y) & (dx == x))
                if len(sel):
                    out[sel] = padded[sel, m - y: m - y + h, m - x: m - x + w]
    if erase:
        hit = rng.random(n) < erase
        area = rng.uniform(0.02, 0.25, n) * h * w
        aspect = np.exp(rng.uniform(np.log(0.3), np.log(1 / 0.3), n))
        eh = np.clip(np.round(np.sqrt(area * aspect)), 1, h).astype(int)
        ew = np.clip(np.round(np.sqrt(area / aspect)), 1, w).astype(int)
        top = (rng.random(n) * (h - eh + 1)).astype(int)
        left = (rng.random(n) * (w - ew + 1)).astype(int)
        rows, cols = np.arange(h)[None, :], np.arange(w)[None, :]
        in_rows = (rows >= top[:, None]) & (rows < (top + eh)[:, None])
        in_cols = (cols >= left[:, None]) & (cols < (left + ew)[:, None])
        mask = (in_rows[:, :, None] & in_cols[:, None, :]) & hit[:, None, None]
        out[mask] = 0.0
    return out


def _compiled(keras, recipe: dict, steps_per_epoch: int):
    model = build_member(keras, recipe["arch"], tuple(recipe["input_shape"]), recipe["num_classes"],
                         recipe["width"], name=f"member_{recipe['member']}")
    total = steps_per_epoch * recipe["epochs"]
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, total - steps_per_epoch), warmup_target=recipe["learning_rate"],
        warmup_steps=steps_per_epoch)
    if recipe["optimizer"] == "sgd":
        optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True, weight_decay=recipe["weight_decay"])
    else:
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=recipe["weight_decay"])
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def train_member(keras, recipe: dict, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                 y_val: np.ndarray, folder: Path, deadline: float | None = None) -> dict:
    """Train one member into `folder` (checkpoint.keras and state.json after every epoch), resuming
    from the last finished epoch; at the end writes weights.npz and member.json and returns the latter.
    Stops early (returning a state with "finished": false) once `deadline` (time.time()) has passed."""
    folder.mkdir(parents=True, exist_ok=True)
    state_path, ckpt = folder / "state.json", folder / "checkpoint.keras"
    steps = int(np.ceil(len(x_train) / recipe["batch_size"]))
    state = {"recipe": recipe, "epochs_done": 0, "history": [], "train_seconds": 0.0, "finished": False}
    if state_path.is_file() and ckpt.is_file():
        state = json.loads(state_path.read_text())
        model = keras.models.load_model(ckpt)
        log.info("member %d: resuming after epoch %d of %d", recipe["member"], state["epochs_done"], recipe["epochs"])
    else:
        model = _compiled(keras, recipe, steps)
    for epoch in range(state["epochs_done"], recipe["epochs"]):
        if deadline is not None and time.time() > deadline:
            return state
        start = time.time()
        rng = np.random.default_rng([recipe["seed"], recipe["member"], epoch])
        x_aug = augment(arrays.unit(x_train), rng, recipe["flip"], recipe["max_shift"], recipe["erase"])
        keras.utils.set_random_seed(int(recipe["seed"]) * 1000 + recipe["member"] * 100 + epoch)
        fit = model.fit(x_aug, y_train, batch_size=recipe["batch_size"], epochs=epoch + 1, initial_epoch=epoch,
                        shuffle=True, verbose=0)
        val = arrays.keras_accuracy(model, x_val, y_val)
        seconds = time.time() - start
        state["history"].append({"epoch": epoch + 1, "loss": float(fit.history["loss"][-1]),
                                 "train_accuracy": float(fit.history["accuracy"][-1]), "val_accuracy": val,
                                 "seconds": round(seconds, 1)})
        state["epochs_done"], state["train_seconds"] = epoch + 1, round(state["train_seconds"] + seconds, 1)
        model.save(folder / "checkpoint.tmp.keras")
        (folder / "checkpoint.tmp.keras").replace(ckpt)
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(state_path)
        log.info("member %d: epoch %d of %d, val %.4f, %.1fs", recipe["member"], epoch + 1, recipe["epochs"],
                 val, seconds)
    state["finished"], state["val_accuracy"] = True, arrays.keras_accuracy(model, x_val, y_val)
    save_weights(model, folder / "weights.npz", state)
    (folder / "member.json").write_text(json.dumps(state, indent=1))
    return state


def save_weights(model, path: Path, state: dict) -> None:
    """The member's weights as plain arrays, in layer order, with its state (recipe, history) beside them."""
    arrays = {f"w{i:03d}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, state=np.array(json.dumps(state)), **arrays)
    tmp.replace(path)


def load_weights(keras, path: Path):
    """A member rebuilt from `weights.npz` under `keras`, and its state."""
    with np.load(path) as stored:
        state = json.loads(str(stored["state"]))
        weights = [stored[k] for k in sorted(k for k in stored.files if k.startswith("w"))]
    recipe = state["recipe"]
    model = build_member(keras, recipe["arch"], tuple(recipe["input_shape"]), recipe["num_classes"],
                         recipe["width"], name=f"member_{recipe['member']}")
    model.set_weights(weights)
    return model, state


def assemble(keras, members: list, input_shape: tuple, name: str = "ensemble"):
    """One model whose output is the mean of the members' logits."""
    inputs = keras.Input(shape=tuple(input_shape))
    outs = [m(inputs) for m in members]
    out = outs[0] if len(outs) == 1 else keras.layers.Average()(outs)
    return keras.Model(inputs, out, name=name)
