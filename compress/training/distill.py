"""Knowledge distillation from cached teacher logits.

The teacher's logits are computed once per (teacher file, data, split) and kept on
disk; students then train on targets that pack the one-hot label with the teacher's
logits, so a plain `model.fit` (and tfmot's pruning and QAT wrappers) can run the
distillation loss without the teacher in the loop.  `teacher_logits=online` runs the
teacher on every batch instead, in the input pipeline; `TeacherInStep` runs it inside the
training step (both for the benchmark that shows what the cache saves).
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from compress.core import shared_parts
from compress.core.compat import keras, tf
from compress.core.options import check_distill_weights
from compress.data import arrays, batches
from compress.training import batchnorm

log = logging.getLogger(__name__)


def logits_cache_path(cache_dir: str | Path, teacher_sha: str, data_fingerprint: str, index: np.ndarray) -> Path:
    """Where the logits of one teacher on one set of training images live."""
    index_hash = hashlib.sha256(np.ascontiguousarray(index, dtype=np.int64).tobytes()).hexdigest()[:12]
    return Path(cache_dir) / "logits" / f"{teacher_sha[:16]}_{data_fingerprint[:12]}_{index_hash}.npy"


LOGIT_PIECE = 5_000  # images a process computes the logits of at a time: a multiple of arrays.PREDICT_BATCH


def cached_logits(teacher_logits: Callable[[], keras.Model], x: np.ndarray, path: Path, classes: int) -> np.ndarray:
    """Teacher logits (n, classes) for `x`, read from `path` or computed once (inference mode) and saved, in
    pieces of LOGIT_PIECE images shared with the other processes that need them now
    (compress/core/shared_parts.py). `teacher_logits` gives the model up to its logits and is called only where
    the file is missing or wrong: a process reading its logits from disk never loads who teaches (the
    ensemble's load, check and validation accuracy took 14 s of each finalist process)."""
    if path.is_file():
        logits = np.load(path)
        if logits.shape == (len(x), classes):
            return logits
        log.warning("logit cache %s has shape %s, expected %s: recomputing", path, logits.shape, (len(x), classes))
        path.unlink(missing_ok=True)  # another process may have seen it wrong too
    log.info("teacher logits for %s images -> %s (once)", f"{len(x):,}", path)
    teacher_logits_model = teacher_logits()
    pieces = max(1, -(-len(x) // LOGIT_PIECE))

    def compute(k: int) -> np.ndarray:
        chunk = x[k * LOGIT_PIECE:(k + 1) * LOGIT_PIECE]
        return arrays.predict(teacher_logits_model, chunk)

    computed, waiting = shared_parts.progress(log, "teacher logits", f"piece of {LOGIT_PIECE:,} images", pieces)
    logits = shared_parts.build(path, pieces, compute, computed, waiting, join=np.concatenate)
    return logits.astype(np.float32, copy=False)


def labels_alone(distill_cfg) -> bool:
    """Whether the loss gives the teacher's soft term no weight (`alpha=1`): a training on the labels alone,
    whose targets need no teacher logits (zeros in their place train the same weights, bit for bit)."""
    return float(distill_cfg.alpha) == 1.0


def pack_targets(labels: np.ndarray, teacher_logits: np.ndarray) -> np.ndarray:
    """[one-hot label | teacher logits], shape (n, 2k) for k classes: what DistillationLoss unpacks."""
    onehot = np.eye(teacher_logits.shape[1], dtype=np.float32)[labels]
    return np.concatenate([onehot, teacher_logits.astype(np.float32)], axis=1)


class DistillationLoss(keras.losses.Loss):
    """alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(softmax(t/T) || softmax(s/T)).

    The T^2 factor keeps the soft term's gradients on the scale of the hard term's
    as T changes (Hinton et al., 2015).
    """

    def __init__(self, temperature: float, alpha: float, name: str = "distillation", **kwargs):
        super().__init__(name=name, **kwargs)
        check_distill_weights(temperature, alpha)
        self.temperature = float(temperature)
        self.alpha = float(alpha)

    def call(self, y_true, y_pred):
        k = tf.shape(y_pred)[-1]  # the classes: the student's outputs
        labels, teacher = y_true[:, :k], y_true[:, k:]
        hard = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=y_pred)
        t = self.temperature
        log_p_teacher = tf.nn.log_softmax(teacher / t, axis=-1)
        log_p_student = tf.nn.log_softmax(y_pred / t, axis=-1)
        kl = tf.reduce_sum(tf.exp(log_p_teacher) * (log_p_teacher - log_p_student), axis=-1)
        return self.alpha * hard + (1.0 - self.alpha) * (t**2) * kl

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "alpha": self.alpha}


def packed_accuracy(y_true, y_pred):
    """Top-1 accuracy against the label half of packed targets."""
    return tf.cast(tf.equal(tf.argmax(y_true[:, :tf.shape(y_pred)[-1]], -1), tf.argmax(y_pred, -1)), tf.float32)


packed_accuracy.__name__ = "accuracy"


def compile_for_distillation(model: keras.Model, distill_cfg, learning_rate: float, steps: int,
                             steps_per_execution: int = 1) -> None:
    """Compile `model` with the distillation loss and a cosine learning-rate decay over `steps`.

    `steps_per_execution` > 1 runs that many batches per call into the graph: small students
    on two cores spend a good part of each step in Python, so this saves about a fifth of an
    epoch. Batch-level callbacks then fire once per execution, so phases that rely on them
    (tfmot's pruning step) keep 1.
    """
    schedule = keras.optimizers.schedules.CosineDecay(float(learning_rate), decay_steps=max(1, steps), alpha=0.05)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=DistillationLoss(distill_cfg.temperature, distill_cfg.alpha),
        metrics=[packed_accuracy],
        steps_per_execution=int(steps_per_execution),
    )


class EpochProgress(keras.callbacks.Callback):
    """Where training is, each epoch: loss, validation accuracy and the time left.

    On a terminal, one line updated in place as batches go by (tqdm, on stderr); otherwise (a
    log file, a sweep's job) one plain log line per epoch."""

    def __init__(self, epochs: int, label: str = "distilling", live: bool | None = None):
        super().__init__()
        self.epochs, self.label = int(epochs), label
        self.live = sys.stderr.isatty() if live is None else live
        self.bar = None

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()
        if self.live:
            from tqdm import tqdm

            steps = (self.params or {}).get("steps") or None
            self.bar = tqdm(total=self.epochs * steps if steps else None, desc=self.label, unit="batch",
                            leave=False, dynamic_ncols=True, file=sys.stderr)

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is not None:
            steps = (self.params or {}).get("steps") or 0
            self.bar.n = self._epoch * steps + batch + 1
            self.bar.set_postfix_str(f"epoch {self._epoch + 1}/{self.epochs} loss {(logs or {}).get('loss', 0):.4f}",
                                     refresh=False)
            self.bar.refresh()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        done = time.perf_counter() - self.start
        left = done / (epoch + 1) * (self.epochs - epoch - 1)
        logs = logs or {}
        val, loss = logs.get("val_accuracy"), logs.get("loss")
        line = (f"{self.label}: epoch {epoch + 1} of {self.epochs}, loss {loss:.4f}, validation "
                f"{f'{100 * val:.2f}%' if val is not None else 'n/a'} ({done:.0f} s, about {left:.0f} s left)")
        if self.bar is not None:
            self.bar.clear()  # the line goes to the console and the log file, the bar is redrawn below it
        log.info(line)
        if self.bar is not None:
            self.bar.refresh()

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class TeacherInStep(keras.Model):
    """The student trained with the teacher's forward pass inside every training step, one
    after the other: how the keras.io distillation example the user started from does it
    (its `Distiller`), and the reference the speed benchmark sets the cached logits against.

    Takes the same packed targets (their logit half is ignored and refilled from the teacher),
    loss, optimizer and `steps_per_execution` as the cached path, so the two differ only in
    where the teacher's logits come from.
    """

    def __init__(self, student: keras.Model, teacher_logits: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.student, self.teacher = student, teacher_logits

    def call(self, x, training=False):
        return self.student(x, training=training)

    def train_step(self, data):
        x, y = data
        y = tf.concat([y[:, :int(self.teacher.output_shape[-1])], self.teacher(x, training=False)], axis=1)
        with tf.GradientTape() as tape:
            pred = self.student(x, training=True)
            loss = self.compiled_loss(y, pred, regularization_losses=self.student.losses)
        variables = self.student.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self.compiled_metrics.update_state(y, pred)
        return {m.name: m.result() for m in self.metrics}


def fit(model: keras.Model, x, targets, x_val, targets_val, distill_cfg, epochs: int, learning_rate: float,
        seed: int, callbacks=(), teacher: keras.Model | None = None, verbose: int = 0,
        steps_per_execution: int = 1, views: tuple[np.ndarray, np.ndarray] | None = None,
        label: str = "distilling") -> dict:
    """Compile and train `model` on the distillation objective; returns its history.

    With `views` (the uint8 view images and the teacher's logits for them, from
    `compress.training.views`) each epoch draws one view per image instead of the plain images."""
    steps = int(np.ceil(len(x) / distill_cfg.batch_size)) * epochs
    compile_for_distillation(model, distill_cfg, learning_rate, steps, steps_per_execution)
    labels = np.argmax(targets[:, :int(model.output_shape[-1])], axis=1)
    train = (batches.views(views[0], views[1], labels, distill_cfg.batch_size, seed) if views is not None
             else batches.distillation(x, targets, distill_cfg.batch_size, seed, teacher))
    history = model.fit(
        train,
        validation_data=(arrays.unit(x_val), targets_val) if len(x_val) else None,  # a float copy while it trains
        epochs=epochs, callbacks=[*callbacks, EpochProgress(epochs, label)], verbose=verbose,
    )
    settled = batchnorm.settle(model, x, steps)  # a few dozen steps (a small dataset) leave them unsettled
    if settled:
        log.info("%s: BatchNorm statistics %s", label, settled)
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}
