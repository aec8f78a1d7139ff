"""Students: the teacher's three-block topology with channel counts scaled by `width`.

Conv (no bias) + BatchNorm + ReLU folds into one int8 conv in TFLite and maps onto Core
ML's conv/batch_norm/relu; MaxPool, Flatten/GAP and Dense are supported by both targets
and by tfmot's pruning and quantization-aware training.  The student ends in logits.
"""

from __future__ import annotations

from compress.compat import keras
from compress.errors import ConfigError
from compress.options import ACTIVATIONS, HEADS, KERNEL_SIZES

TEACHER_CHANNELS = (64, 128, 256)
TEACHER_DENSE = 256


def channel_plan(width: float, min_channels: int = 4) -> tuple[tuple[int, ...], int]:
    """Conv channels and dense units of a student of this width."""
    if not width > 0:
        raise ConfigError(f"student.width={width}: must be > 0 (1.0 is the teacher's channel count)")
    convs = tuple(max(min_channels, int(round(c * width))) for c in TEACHER_CHANNELS)
    return convs, max(min_channels, int(round(TEACHER_DENSE * width)))


def build_student(student_cfg, num_classes: int = 10) -> keras.Model:
    """A student model of the configured width, returning logits."""
    if student_cfg.activation not in ACTIVATIONS:
        raise ConfigError(f"student.activation={student_cfg.activation}: allowed {', '.join(ACTIVATIONS)}")
    if student_cfg.head not in HEADS:
        raise ConfigError(f"student.head={student_cfg.head}: allowed {', '.join(HEADS)}")
    if student_cfg.kernel_size not in KERNEL_SIZES:
        raise ConfigError(f"student.kernel_size={student_cfg.kernel_size}: allowed 1, 3, 5")
    if not 0 <= student_cfg.dropout < 1:
        raise ConfigError(f"student.dropout={student_cfg.dropout}: allowed [0, 1)")
    convs, dense_units = channel_plan(float(student_cfg.width), int(student_cfg.min_channels))
    layers = keras.layers
    inputs = keras.Input((28, 28, 1), name="image")
    x = inputs
    for i, filters in enumerate(convs, start=1):
        x = layers.Conv2D(filters, student_cfg.kernel_size, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
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
