"""Students, in families (`student.arch`), each scaled by `student.width`:

- `cnn`: the teacher's three-block topology (conv, BatchNorm, ReLU, max pool) with its
  channel counts scaled, then a flatten or GAP head and a dense layer;
- `dsconv`: a parameter-efficient family: a 3x3 stem, then five depthwise-separable blocks
  (3x3 depthwise + 1x1 pointwise, each with BatchNorm and ReLU; max pooling after the 1st,
  3rd and 5th), global average pooling (or flatten: `student.head`) and one dense layer to
  the logits. A 1x1 pointwise
  conv costs c_in x c_out weights where a 3x3 conv costs 9x that, so at equal bytes the
  family is deeper and wider.
- `dsconv_s2` and `dsconv_sp`: dsconv with the same layers and weights, but the first
  downsampling moved from after the first block to the stem: a stride-2 stem (`s2`), or a
  max pool right after a full-resolution stem (`sp`). The 28x28 layers (stem, first
  depthwise and pointwise) are memory-bound: on one thread they are about 40% of a dsconv's
  int8 latency at under 25% of its MACs. They are not what a training step costs: the
  BatchNorms are (`BN_FUSED`), and dsconv_sp trains no faster than dsconv.
- In the dsconv families every conv's channel count is rounded to `student.channel_multiple`
  (8): XNNPACK's int8 kernels run channels in tiles of 8, so 18 channels cost what 24 do and
  16 a third less (`round_channels`, `scripts/bench_channel_multiple.py`).

Conv (no bias) + BatchNorm + ReLU folds into one int8 conv in TFLite and maps onto Core
ML's conv/batch_norm/relu; depthwise conv, MaxPool, Flatten/GAP and Dense are supported by
both targets and by tfmot's pruning and quantization-aware training. Students end in logits.
"""

from __future__ import annotations

import logging
import math

from compress.core.compat import keras
from compress.core.options import FAMILIES, check_student, check_width

log = logging.getLogger(__name__)

# BatchNorm as plain TensorFlow ops rather than the fused kernel: the same arithmetic (the same
# layer and weights, and byte-identical converted files), but on these CPUs the fused kernel's
# gradient dominates a small student's step. A dsconv at width 0.381 (11 BatchNorms) trained
# 12,800 images in 17.4 s fused and 9.3-10.2 s not, at one thread (scripts/bench_batchnorm.py).
# The fmnist_compress_v2 study and the finalists it had before channel rounding trained fused.
BN_FUSED = False
TEACHER_CHANNELS = (64, 128, 256)
TEACHER_DENSE = 256
# dsconv channels at width 1.0 (the stem, then each block's pointwise output and whether a max pool
# follows): twice a 56 K-parameter student, so that one `student.width` range spans both families'
# sizes (width 0.5: 24/48/96/96/144/144 channels, 55.8 K parameters; cnn at 0.22: 47 K)
DSCONV_STEM = 48
DSCONV_BLOCKS = ((96, True), (192, False), (192, True), (288, False), (288, True))


def channel_plan(width: float, min_channels: int = 4) -> tuple[tuple[int, ...], int]:
    """Conv channels and dense units of a student of this width."""
    check_width(width)
    convs = tuple(max(min_channels, int(round(c * width))) for c in TEACHER_CHANNELS)
    return convs, max(min_channels, int(round(TEACHER_DENSE * width)))


def round_channels(channels: int, multiple: int) -> int:
    """`channels` rounded to the nearest multiple of `multiple` (at least one multiple); a tie rounds
    down, to the fewer 8-channel tiles an int8 kernel runs."""
    return multiple * max(1, math.ceil(channels / multiple - 0.5))


def dsconv_plan(width: float, min_channels: int = 4, arch: str = "dsconv",
                multiple: int = 1) -> tuple[int, tuple[tuple[int, bool], ...]]:
    """Stem channels and (channels, pool) of each block of a dsconv-family student of this width,
    each rounded to `multiple` (`student.channel_multiple`); a family that downsamples in its stem
    has no pool after its first block."""
    check_width(width)
    scale = lambda c: round_channels(max(min_channels, int(round(c * width))), multiple)  # noqa: E731
    blocks = tuple((scale(c), pool) for c, pool in DSCONV_BLOCKS)
    if FAMILIES[arch].first_downsample != "block":
        blocks = ((blocks[0][0], False),) + blocks[1:]
    return scale(DSCONV_STEM), blocks


def build_student(student_cfg, num_classes: int = 10, input_shape: tuple = (28, 28, 1)) -> keras.Model:
    """A student model of the configured family and width for images of `input_shape` (H, W, C),
    returning `num_classes` logits. On an input too small for a family's 2x2 pools, a pool that would
    leave less than 1x1 is left out (and said once): the block after it runs at the same size."""
    check_student(student_cfg)
    arch = student_cfg.get("arch", "cnn")  # configs saved before the key existed are cnn
    if FAMILIES[arch].blocks == "dsconv":
        return _build_dsconv(student_cfg, num_classes, arch, tuple(input_shape))
    convs, dense_units = channel_plan(float(student_cfg.width), int(student_cfg.min_channels))
    layers = keras.layers
    momentum = float(student_cfg.get("bn_momentum", 0.99))  # configs saved before the key existed
    inputs = keras.Input(tuple(input_shape), name="image")
    x = inputs
    for i, filters in enumerate(convs, start=1):
        x = layers.Conv2D(filters, student_cfg.kernel_size, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(momentum=momentum, fused=BN_FUSED, name=f"bn{i}")(x)
        x = layers.Activation(student_cfg.activation, name=f"act{i}")(x)
        x = _pool(layers, x, f"pool{i}")
    x = _head(layers, student_cfg.head)(x)
    if student_cfg.dropout:
        x = layers.Dropout(student_cfg.dropout, name="drop1")(x)
    x = layers.Dense(dense_units, activation=student_cfg.activation, name="fc")(x)
    if student_cfg.dropout:
        x = layers.Dropout(student_cfg.dropout, name="drop2")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name=f"student_w{float(student_cfg.width):.3f}")


def save_float_student(model: keras.Model, path) -> None:
    """`model` saved uncompiled (no custom loss in the file) as the run's student.keras: the float
    network its shipped file carries, what a Core ML export starts from."""
    bare = keras.models.clone_model(model)
    bare.set_weights(model.get_weights())
    bare.save(path)


def _head(layers, head: str):
    return layers.Flatten(name="flatten") if head == "flatten" else layers.GlobalAveragePooling2D(name="gap")


def _pool(layers, x, name: str):
    """A 2x2 max pool, or `x` as it is where the map is already below 2x2."""
    if min(int(x.shape[1]), int(x.shape[2])) >= 2:
        return layers.MaxPooling2D(2, name=name)(x)
    log.info("student: a %dx%d map is too small for %s: left out", int(x.shape[1]), int(x.shape[2]), name)
    return x


def _build_dsconv(student_cfg, num_classes: int, arch: str, input_shape: tuple = (28, 28, 1)) -> keras.Model:
    # configs saved before channel_multiple existed rebuild with the width's own counts
    multiple = int(student_cfg.get("channel_multiple", 1))
    stem, blocks = dsconv_plan(float(student_cfg.width), int(student_cfg.min_channels), arch, multiple)
    downsample = FAMILIES[arch].first_downsample
    layers = keras.layers
    momentum = float(student_cfg.get("bn_momentum", 0.99))
    act = student_cfg.activation

    def bn_act(x, name):
        x = layers.BatchNormalization(momentum=momentum, fused=BN_FUSED, name=f"bn_{name}")(x)
        return layers.Activation(act, name=f"act_{name}")(x)

    inputs = keras.Input(input_shape, name="image")
    stride = 2 if downsample == "stem_stride" else 1
    x = layers.Conv2D(stem, 3, strides=stride, padding="same", use_bias=False, name="stem")(inputs)
    x = bn_act(x, "stem")
    if downsample == "stem_pool":
        x = _pool(layers, x, "pool_stem")
    for i, (filters, pool) in enumerate(blocks, start=1):
        x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"dw{i}")(x)
        x = bn_act(x, f"dw{i}")
        x = layers.Conv2D(filters, 1, use_bias=False, name=f"pw{i}")(x)
        x = bn_act(x, f"pw{i}")
        if pool:
            x = _pool(layers, x, f"pool{i}")
    x = _head(layers, student_cfg.head)(x)
    if student_cfg.dropout:
        x = layers.Dropout(student_cfg.dropout, name="drop")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name=f"{arch}_w{float(student_cfg.width):.3f}")
