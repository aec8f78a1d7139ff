"""The user's teacher: the Colab "Fashion MNIST with Keras and TPUs" CNN, layer for layer.

`python -m compress.teacher` trains it (progress bar, cached by a hash of its config
and the data), writes it to `teacher.path` and a card beside it.  Training uses a
better recipe than the Colab's (cosine learning-rate decay, AdamW, light
augmentation); the layers stay the user's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from compress.core import atomic
from compress.core.compat import keras, set_seed, tf
from compress.core.errors import ConfigError
from compress.core.options import DEFAULT_TEACHER_PATH as DEFAULT_PATH
from compress.data import arrays, batches, sources
from compress.data.splits import Splits
from compress.teacher import cards
from compress.training import batchnorm

log = logging.getLogger(__name__)


def build_teacher(input_shape: tuple = (28, 28, 1), num_classes: int = 10,
                  name: str = "fashion_mnist_teacher") -> keras.Model:
    """The seed's network for images of `input_shape` and `num_classes` classes (on Fashion-MNIST:
    1,619,470 parameters, 386 of them non-trainable). On an input too small for its three 2x2 pools
    a pool that would leave less than 1x1 is left out (the image stays at its size)."""
    layers = keras.layers
    model = keras.Sequential(name=name)
    model.add(layers.BatchNormalization(input_shape=tuple(input_shape)))
    side = min(int(input_shape[0]), int(input_shape[1]))
    for filters in (64, 128, 256):
        if filters != 64:
            model.add(layers.BatchNormalization())
        model.add(layers.Conv2D(filters, (5, 5), padding="same", activation="elu"))
        if side >= 2:
            model.add(layers.MaxPooling2D(pool_size=(2, 2), strides=(2, 2)))
            side //= 2
        else:
            log.info("teacher: input %s too small for another 2x2 pool after its %d-filter conv: left out",
                     tuple(input_shape), filters)
        model.add(layers.Dropout(0.25))
    model.add(layers.Flatten())
    model.add(layers.Dense(256))
    model.add(layers.Activation("elu"))
    model.add(layers.Dropout(0.5))
    model.add(layers.Dense(num_classes))
    model.add(layers.Activation("softmax"))
    return model


def augment(images: tf.Tensor, seed: int, flips: bool = True) -> tf.Tensor:
    """Random horizontal flip (where the data allows it) and a random shift of up to two pixels."""
    if flips:
        images = tf.image.random_flip_left_right(images, seed=seed)
    padded = tf.pad(images, [[0, 0], [2, 2], [2, 2], [0, 0]])
    return tf.image.random_crop(padded, tf.shape(images), seed=seed)


def teacher_name(splits: Splits) -> str:
    """The network's name: Fashion-MNIST's as it always was, `teacher` for any other data."""
    return "fashion_mnist_teacher" if splits.kind == "fashion_mnist" else "teacher"


def train_config_hash(train_cfg: dict, splits: Splits) -> str:
    """Identifies a trained teacher: its recipe, the data and the split."""
    body = {"train": train_cfg, "data": splits.fingerprint, "val": [len(splits.val_index), int(splits.val_index.sum())]}
    if batchnorm.needs_recompute(train_steps(train_cfg, splits)):  # another teacher than one trained before that
        body["batchnorm"] = "recomputed"
    if train_cfg.get("augment") and not splits.flips:  # trained without flips: another teacher (and key)
        body["flips"] = False
    payload = json.dumps(body, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def train_steps(train_cfg: dict, splits: Splits) -> int:
    return int(np.ceil(len(splits.x_train) / train_cfg["batch_size"])) * int(train_cfg["epochs"])


def train_teacher(train_cfg: dict, splits: Splits, verbose: int = 1) -> tuple[keras.Model, dict, str]:
    """Train a fresh teacher; returns the model, its per-epoch history and how its BatchNorm
    statistics were set."""
    set_seed(train_cfg["seed"])
    model = build_teacher(splits.image_shape, splits.num_classes, teacher_name(splits))
    steps = int(np.ceil(len(splits.x_train) / train_cfg["batch_size"]))
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=steps * train_cfg["epochs"], warmup_target=train_cfg["learning_rate"], warmup_steps=steps
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=train_cfg["weight_decay"]),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    ds = batches.labelled(splits.x_train, splits.y_train, train_cfg["batch_size"], train_cfg["seed"])
    if train_cfg["augment"]:
        flips = splits.flips
        ds = ds.map(lambda x, y: (augment(x, train_cfg["seed"], flips), y), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    history = model.fit(ds, epochs=train_cfg["epochs"], validation_data=(arrays.unit(splits.x_val), splits.y_val),
                        verbose=verbose)
    history = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    total = train_steps(train_cfg, splits)
    note = batchnorm.settle(model, splits.x_train, total)
    if note is None:
        return model, history, f"moving averages over {total} training steps"
    log.info("teacher: BatchNorm statistics %s", note)
    return model, history, note


def load_keras(path: str | Path) -> keras.Model:
    """Load a user's Keras file in safe mode (no arbitrary code from the file)."""
    path = Path(path)
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except TypeError:  # .h5 files take no safe_mode
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - any failure means "not a usable Keras model"
        raise ConfigError(f"teacher.path={path}: not a loadable Keras model ({type(exc).__name__})") from None


def check_fits(model: keras.Model, path: Path, image: tuple = (28, 28, 1), num_classes: int = 10) -> keras.Model:
    """`model` itself, or one line saying how the user's teacher does not fit the data: it must
    take the images as they are (height, width, channels) and give one score per class."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConfigError(f"teacher.path={path}: has {len(model.inputs)} input(s) and {len(model.outputs)} output(s); "
                          f"a teacher needs one image input {image} and one output of {num_classes} class scores")
    given = tuple(model.inputs[0].shape[1:])
    if len(given) != len(image) or any(g is not None and g != w for g, w in zip(given, image)):
        raise ConfigError(f"teacher.path={path}: takes input shape {given}; the data's images are {image} "
                          f"(height, width, channels)")
    classes = model.outputs[0].shape[-1]
    if len(model.outputs[0].shape) != 2 or classes != num_classes:
        raise ConfigError(f"teacher.path={path}: gives output shape {tuple(model.outputs[0].shape[1:])}; "
                          f"the data has {num_classes} classes: ({num_classes},), one score per class")
    return model


def obtain(teacher_cfg, splits: Splits, cache_dir: str | Path, verbose: int = 1) -> tuple[keras.Model, Path]:
    """The teacher model and its file: loaded from `teacher.path`, or trained (cached) when
    the default path holds none yet."""
    path, trained = (Path(teacher_cfg.path) if teacher_cfg.path else None), False
    if path is not None and str(teacher_cfg.path) == DEFAULT_PATH and splits.kind != "fashion_mnist":
        path = None  # the committed teacher is Fashion-MNIST's: other data gets its own, trained and cached
    if path is not None and path.is_file():
        model = check_fits(load_keras(path), path, splits.image_shape, splits.num_classes)
    elif path is not None and str(teacher_cfg.path) != DEFAULT_PATH:
        raise ConfigError(f"teacher.path={teacher_cfg.path}: no such file (point it at a trained Keras model)")
    else:
        model, path = train_cached(teacher_cfg, splits, cache_dir, verbose)
        trained = True
    accuracy = arrays.keras_accuracy(model, splits.x_val, splits.y_val)
    log.info("teacher: %s (%s parameters), validation accuracy %.2f%%", path, f"{model.count_params():,}",
             100 * accuracy)
    chance = 1.0 / splits.num_classes
    if accuracy <= 1.5 * chance:
        raise ConfigError(f"teacher.path={path}: scores {100 * accuracy:.2f}% on the validation split, near chance "
                          f"({100 * chance:.2f}% for {splits.num_classes} classes): it has not learned this data "
                          + ("(the teacher trained here for it: raise teacher.train.epochs)" if trained else
                             "(train one: python -m compress.teacher, with the same data options)"))
    return model, path


def train_cached(teacher_cfg, splits: Splits, cache_dir: str | Path, verbose: int = 1) -> tuple[keras.Model, Path]:
    """Train the teacher unless one with the same recipe and data is cached."""
    from omegaconf import OmegaConf

    train_cfg = OmegaConf.to_container(teacher_cfg.train, resolve=True)
    key = train_config_hash(train_cfg, splits)
    folder = Path(cache_dir) / "teachers" / key
    model_path = folder / "teacher.keras"
    with atomic.one_at_a_time(folder, log, f"teacher {key}"):  # trials started together train it once
        if model_path.is_file():
            log.info("teacher: cached %s", model_path)
            return load_keras(model_path), model_path
        log.info("teacher: training %s epochs (recipe %s)", train_cfg["epochs"], key)
        start = time.time()
        model, history, batchnorm_note = train_teacher(train_cfg, splits, verbose)
        tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        # an uncompiled copy: the file carries no optimizer state
        bare = build_teacher(splits.image_shape, splits.num_classes, teacher_name(splits))
        bare.set_weights(model.get_weights())
        bare.save(tmp / "teacher.keras")
        card = {
            "name": teacher_name(splits),
            "data": {"source": splits.source, "image_shape": list(splits.image_shape),
                     "class_names": list(splits.class_names)},
            "recipe_hash": key,
            "config": train_cfg,
            "seed": train_cfg["seed"],
            "epochs": train_cfg["epochs"],
            "params": int(model.count_params()),
            "val_accuracy": arrays.keras_accuracy(model, splits.x_val, splits.y_val),
            "test_accuracy": arrays.keras_accuracy(model, splits.x_test, splits.y_test),
            "train_seconds": round(time.time() - start, 1),
            "data_fingerprint": splits.fingerprint,
            "val_size": int(len(splits.x_val)),
            "batchnorm": batchnorm_note,
            "history": history,
        }
        (tmp / "card.json").write_text(json.dumps(card, indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
        return model, model_path


def logits_model(teacher: keras.Model, sample: np.ndarray | None = None) -> keras.Model:
    """The teacher up to its logits: the input of a final softmax when there is one; else the model
    itself when its scores on `sample` are not probabilities (rows of non-negative numbers summing to
    1), else their logarithm. Which reading was used is logged."""
    last = teacher.layers[-1]
    if isinstance(last, (keras.layers.Activation, keras.layers.Softmax)) and (
        isinstance(last, keras.layers.Softmax) or last.get_config().get("activation") == "softmax"
    ):
        return keras.Model(teacher.inputs, last.input)
    if sample is not None:
        scores = teacher.predict(arrays.unit(sample), batch_size=256, verbose=0)
        if scores.min() < 0 or not np.allclose(scores.sum(axis=1), 1.0, atol=1e-3):
            log.info("teacher %s: its output read as logits (not probabilities: negative or not summing to 1)",
                     teacher.name)
            return teacher
    log.info("teacher %s: its output read as probabilities; distilling from their logarithm", teacher.name)
    probs = teacher.outputs[0]
    return keras.Model(teacher.inputs, tf.math.log(tf.clip_by_value(probs, 1e-12, 1.0)))


def main(cfg) -> dict:
    """Train (or fetch from the cache) the teacher of `cfg` and publish it to `teacher.path`."""
    splits = sources.load_from_config(cfg.data, str(cfg.paths.cache_dir))
    _, cached = train_cached(cfg.teacher, splits, cfg.paths.cache_dir, verbose=1 if sys.stdout.isatty() else 2)
    target = Path(cfg.teacher.path or DEFAULT_PATH)
    if splits.kind != "fashion_mnist" and str(target) == DEFAULT_PATH:  # never over the committed teacher
        target = Path(str(cfg.paths.sweeps_dir)) / str(cfg.paths.study) / "teacher" / "teacher.keras"
    card = cards.publish(cached, target)
    print(f"teacher: val {card['val_accuracy']:.4f}  test {card['test_accuracy']:.4f}  "
          f"{card['size_bytes']:,} bytes  -> {target}")
    return card
