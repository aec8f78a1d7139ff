"""The tf.data pipelines every training reads: the teacher's (images and labels), the students'
(images and packed distillation targets) and the augmented views' (a cached view of each image and the
teacher's logits for it).

Each shuffles positions and gathers its batches: the same batches, in the same order, as shuffling
the (image, target) pairs themselves (tf.data's order depends on the seed and the buffer's size alone),
without a second copy of the images in the shuffle buffer. Images held as uint8 pixels become floats a
batch at a time, with the bits `arrays.to_unit` gives (`arrays.UNIT_TABLE`)."""

from __future__ import annotations

import numpy as np

from compress.core.compat import tf
from compress.data import arrays


def _positions(n: int, batch_size: int, seed: int):
    """Positions 0..n-1, reshuffled every epoch, in batches."""
    return tf.data.Dataset.range(n).shuffle(n, seed=seed, reshuffle_each_iteration=True).batch(batch_size)


def _as_float(held: np.ndarray):
    """A function turning a gathered batch of `held` images into float32 in [0, 1]."""
    if held.dtype != np.uint8:
        return lambda xb: xb
    table = tf.constant(arrays.UNIT_TABLE)
    return lambda xb: tf.gather(table, tf.cast(xb, tf.int32))


def labelled(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int):
    """Shuffled (image, target) batches, not yet prefetched (a caller may map augmentation on them)."""
    held, goal, as_float = tf.constant(x), tf.constant(y), _as_float(x)
    return _positions(len(x), batch_size, seed).map(lambda i: (as_float(tf.gather(held, i)), tf.gather(goal, i)))


def distillation(x: np.ndarray, targets: np.ndarray, batch_size: int, seed: int, teacher=None):
    """Shuffled, prefetched (image, packed target) batches (`compress.training.distill.pack_targets`).
    With `teacher` (online mode) the targets hold only the one-hot labels and the teacher's logits are
    computed on every batch."""
    ds = labelled(x, targets, batch_size, seed)
    if teacher is not None:
        k = int(teacher.output_shape[-1])
        ds = ds.map(lambda xb, yb: (xb, tf.concat([yb[:, :k], teacher(xb, training=False)], axis=1)))
    return ds.prefetch(tf.data.AUTOTUNE)


def views(view_images: np.ndarray, view_logits: np.ndarray, labels: np.ndarray, batch_size: int, seed: int):
    """Batches of (image, packed target) where every image appears once an epoch in one of its
    cached views, drawn anew each epoch, with the teacher's logits for that same view.

    `view_images` is (views, n, H, W, C) uint8 and `view_logits` (views, n, classes): the student
    and the teacher see the same augmented image (consistent distillation) without the teacher
    running here."""
    n_views = view_images.shape[0]
    onehot = tf.constant(np.eye(view_logits.shape[-1], dtype=np.float32)[labels])
    images, logits = tf.constant(view_images), tf.constant(view_logits.astype(np.float32))
    as_float = _as_float(view_images)
    draws = tf.data.Dataset.random(seed=int(seed), rerandomize_each_iteration=True)  # one draw a batch

    def pick(i, draw):
        k = tf.random.stateless_uniform([tf.shape(i)[0]], seed=tf.stack([draw, tf.constant(seed, tf.int64)]),
                                        maxval=n_views, dtype=tf.int32)
        at = tf.stack([k, tf.cast(i, tf.int32)], axis=1)  # view k of image i
        return as_float(tf.gather_nd(images, at)), tf.concat([tf.gather(onehot, i), tf.gather_nd(logits, at)], axis=1)

    positions = _positions(len(labels), batch_size, seed)
    return tf.data.Dataset.zip((positions, draws)).map(pick).prefetch(tf.data.AUTOTUNE)
