"""Students: the teacher's three-block topology with channel counts scaled by `width`.

Conv (no bias) + BatchNorm + ReLU folds into one int8 conv in TFLite and maps onto Core
ML's conv/batch_norm/relu; MaxPool, Flatten/GAP and Dense are supported by both targets
and by tfmot's pruning and quantization-aware training.  The student ends in logits.
"""

from __future__ import annotations

from compress.compat import keras
from compress.validate import check_student, check_width

TEACHER_CHANNELS = (64, 128, 256)
TEACHER_DENSE = 256


def channel_plan(width: float, min_channels: int = 4) -> tuple[tuple[int, ...], int]:
    """Conv channels and dense units of a student of this width."""
    check_width(width)
    convs = tuple(max(min_channels, int(round(c * width))) for c in TEACHER_CHANNELS)
    return convs, max(min_channels, int(round(TEACHER_DENSE * width)))


def build_student(student_cfg, num_classes: int = 10) -> keras.Model:
    """A student model of the configured width, returning logits."""
    check_student(student_cfg)
    convs, dense_units = channel_plan(float(student_cfg.width), int(student_cfg.min_channels))
    layers = keras.layers
    momentum = float(student_cfg.get("bn_momentum", 0.99))  # configs saved before the key existed
    inputs = keras.Input((28, 28, 1), name="image")
    x = inputs
    for i, filters in enumerate(convs, start=1):
        x = layers.Conv2D(filters, student_cfg.kernel_size, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(momentum=momentum, name=f"bn{i}")(x)
        x = layers.Activation(student_cfg.activation, name=f"act{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x) if student_cfg.head == "flatten" else layers.GlobalAveragePooling2D(name="gap")(x)
    if student_cfg.dropout:
        x = layers.Dropout(student_cfg.dropout, name="drop1")(x)
    x = layers.Dense(dense_units, activation=student_cfg.activation, name="fc")(x)
    if student_cfg.dropout:
        x = layers.Dropout(student_cfg.dropout, name="drop2")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name=f"student_w{float(student_cfg.width):.3f}")
