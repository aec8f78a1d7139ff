"""The allowed values of the config's enumerated fields, in a module that imports nothing
heavy, so that checking a config does not wait for TensorFlow."""

from dataclasses import dataclass


@dataclass(frozen=True)
class QuantMode:
    """Everything that belongs to one `quant.mode` (compress/training/quantize.py converts by it); every
    reader (validation, early stopping, the winner's Core ML export, the figures) takes it from here."""

    name: str
    bytes_per_param: float  # weight bytes per parameter in the .tflite (early stopping's size bound)
    integer: bool  # full-integer: int8 weights and activations, int8 input and output
    coreml: str  # the Core ML weight compression that carries the mode over to the .mlpackage
    colour: str  # its colour in the figures


QUANT = {mode.name: mode for mode in (
    QuantMode("float32", 4.0, False, "none", "#4c78a8"),
    QuantMode("float16", 2.0, False, "none", "#72b7b2"),
    QuantMode("dynamic", 1.0, False, "linear8", "#f58518"),
    QuantMode("int8", 1.0, True, "linear8", "#e45756"),
    QuantMode("qat", 1.0, True, "linear8", "#54a24b"),
)}
QUANT_MODES = tuple(QUANT)
INTEGER_MODES = tuple(name for name, mode in QUANT.items() if mode.integer)
ACTIVATIONS = ("relu", "relu6")
HEADS = ("flatten", "gap")
ARCHS = ("cnn", "dsconv", "dsconv_s2", "dsconv_sp")  # student families (compress/training/students.py)
# The bytes a family's shipped int8 file carries beyond one byte per parameter (per-tensor scales, int32 biases,
# the graph), measured on the committed finalists (report/finalists.csv, ship_size_bytes - params, per-tensor and
# slimmed): cnn 3,381-3,584 B, dsconv 5,993-6,001 B. The finalists' size classes read the shipped size from it.
# dsconv_s2 and dsconv_sp: trial 5's recipe in either, shipped per-tensor, carried 5,831 and 6,015 B (side runs)
INT8_OVERHEAD_BYTES = {"cnn": 3_600, "dsconv": 6_000, "dsconv_s2": 6_000, "dsconv_sp": 6_000}
PRUNE_METHODS = ("magnitude", "channel")  # zeros in place (tfmot), or whole channels removed (compress/training/prune/)
CHANNEL_IMPORTANCE = ("bn", "l1")  # a channel's rank: its BatchNorm scale |gamma|, or its filter's L1 norm
AUGMENTS = ("none", "flip_shift")  # distillation views (compress/training/views.py)
# how the winner is picked among finalists (compress/finalize/winner_export.py)
WINNER_POLICIES = ("max_bytes", "smallest_within")
KERNEL_SIZES = (1, 3, 5)
CHANNEL_MULTIPLES = (1, 2, 4, 8, 16)  # student.channel_multiple (dsconv families)
LOGIT_SOURCES = ("cached", "online")
COREML_COMPRESSIONS = ("none", "linear8", "palettize8", "palettize6", "palettize4", "palettize2", "sparse")
DEFAULT_TEACHER_PATH = "models/teacher/teacher.keras"
