"""The options every stage understands (the quantization modes, the student families and the other
allowed values) and the one-line refusal of a value outside them. On the ground floor, importing nothing
heavy: the stages (students, distillation, pruning, quantization, Core ML) guard their own arguments with
these checks without reaching up into the config layer, and the whole-config pass before a run
(compress/config/validate.py) calls the same checks, without waiting for TensorFlow."""

from dataclasses import dataclass

from compress.core.errors import ConfigError


@dataclass(frozen=True)
class QuantMode:
    """Everything that belongs to one `quant.mode`: what the converter does with it
    (compress/training/quantize.py reads `weights`, `optimize` and `integer`), whether the student
    is fine-tuned with fake quantization first (`fine_tunes`), and what every other reader takes
    from it (validation, early stopping, the Core ML export, the figures). No mode is named in
    code outside this table."""

    name: str
    bytes_per_param: float  # weight bytes per parameter in the .tflite (early stopping's size bound)
    weights: str  # the converter's weight type: float32 (as trained), float16, or int8
    integer: bool  # full-integer: int8 weights and activations, int8 input and output (a representative set)
    fine_tunes: bool  # quantization-aware fine-tuning before the conversion
    coreml: str  # the Core ML weight compression that carries the mode over to the .mlpackage
    colour: str  # its colour in the figures

    @property
    def optimize(self) -> bool:
        """Whether the converter quantizes at all (tf.lite.Optimize.DEFAULT)."""
        return self.weights != "float32"


QUANT = {mode.name: mode for mode in (
    QuantMode("float32", 4.0, "float32", False, False, "none", "#4c78a8"),
    QuantMode("float16", 2.0, "float16", False, False, "none", "#72b7b2"),
    QuantMode("dynamic", 1.0, "int8", False, False, "linear8", "#f58518"),
    QuantMode("int8", 1.0, "int8", True, False, "linear8", "#e45756"),
    QuantMode("qat", 1.0, "int8", True, True, "linear8", "#54a24b"),
)}
ACTIVATIONS = ("relu", "relu6")
HEADS = ("flatten", "gap")


@dataclass(frozen=True)
class StudentFamily:
    """Everything that belongs to one `student.arch`: how compress/training/students.py builds it and
    what the finalists' selection reads from it. Each family also has its conf/student/<file>.yaml."""

    name: str
    blocks: str  # cnn: the teacher's conv blocks, scaled; dsconv: a stem and depthwise-separable blocks
    first_downsample: str  # where it first halves the image: after its first block, stem_stride or stem_pool
    # the bytes a shipped int8 file carries beyond one byte per parameter (per-tensor scales, int32 biases,
    # the graph), measured on the committed finalists (report/finalists.csv, ship_size_bytes - params,
    # per-tensor and slimmed): cnn 3,381-3,584 B, dsconv 5,993-6,001 B; trial 5's recipe as dsconv_s2 and
    # dsconv_sp, shipped per-tensor, carried 5,831 and 6,015 B (side runs). The size classes read it.
    int8_overhead_bytes: int


FAMILIES = {family.name: family for family in (
    StudentFamily("cnn", "cnn", "block", 3_600),
    StudentFamily("dsconv", "dsconv", "block", 6_000),
    StudentFamily("dsconv_s2", "dsconv", "stem_stride", 6_000),
    StudentFamily("dsconv_sp", "dsconv", "stem_pool", 6_000),
)}
ARCHS = tuple(FAMILIES)
PRUNE_METHODS = ("magnitude", "channel")  # zeros in place (tfmot), or whole channels removed (compress/training/prune/)
CHANNEL_IMPORTANCE = ("bn", "l1")  # a channel's rank: its BatchNorm scale |gamma|, or its filter's L1 norm
AUGMENTS = ("none", "flip_shift")  # distillation views (compress/training/views.py)
# how the winner is picked among finalists (compress/finalize/winner_policy.py)
WINNER_POLICIES = ("max_bytes", "smallest_within")
KERNEL_SIZES = (1, 3, 5)
CHANNEL_MULTIPLES = (1, 2, 4, 8, 16)  # student.channel_multiple (dsconv families)
LOGIT_SOURCES = ("cached", "online")
TUTORS = ("user", "ensemble")  # distill.teacher: who teaches (compress/search/context.py)
ENSEMBLE_ARCHES = ("resnet", "user")  # ensemble.arch (compress/teacher/ensemble.py)
ENSEMBLE_OPTIMIZERS = ("sgd", "adamw")
# a CPU's best instruction set for int8 kernels, best first, with the /proc/cpuinfo flags that show it
# (compress/measure/machine.py); the latency budget may differ by it (targets.latency_ratio_by_isa)
ISA_FLAGS = {"avx512_vnni": ("avx512_vnni",), "avx_vnni": ("avx_vnni",), "avx512": ("avx512f",), "avx2": ("avx2",),
             "sse4": ("sse4_2", "sse4_1")}
ISAS = (*ISA_FLAGS, "baseline", "arm64_dotprod", "arm64_neon")
COREML_COMPRESSIONS = ("none", "linear8", "palettize8", "palettize6", "palettize4", "palettize2", "sparse")
DEFAULT_TEACHER_PATH = "models/teacher/teacher.keras"


def check(condition: bool, field: str, value, allowed: str) -> None:
    """One line naming the field, its value and what is allowed, unless `condition` holds."""
    if not condition:
        raise ConfigError(f"{field}={value}: {allowed}")


def check_in(field: str, value, allowed) -> None:
    """One line naming the field, its value and the allowed values, unless `value` is one of them."""
    check(value in allowed, field, value, f"allowed {', '.join(map(str, allowed))}")


def check_width(width) -> None:
    check(width > 0, "student.width", width, "must be > 0 (1.0 = the teacher's channels)")


def check_student(s) -> None:
    """The `student` group's values (the whole-config pass, compress/config/validate.py, and build_student
    for a library caller both check them here)."""
    check_width(s.width)
    check_in("student.arch", s.get("arch", "cnn"), FAMILIES)
    check_in("student.activation", s.activation, ACTIVATIONS)
    check_in("student.head", s.head, HEADS)
    check_in("student.kernel_size", s.kernel_size, KERNEL_SIZES)
    check(0 <= s.dropout < 1, "student.dropout", s.dropout, "allowed [0, 1)")
    check(s.min_channels >= 1, "student.min_channels", s.min_channels, "must be >= 1")
    check(0 < s.get("bn_momentum", 0.99) < 1, "student.bn_momentum", s.get("bn_momentum"), "allowed (0, 1)")
    check_in("student.channel_multiple", s.get("channel_multiple", 1), CHANNEL_MULTIPLES)


def check_distill_weights(temperature, alpha) -> None:
    check(temperature > 0, "distill.temperature", temperature, "must be > 0")
    check(0 <= alpha <= 1, "distill.alpha", alpha, "allowed [0, 1]")


def check_sparsity(sparsity) -> None:
    check(0 <= sparsity < 1, "prune.sparsity", sparsity, "allowed [0, 1)")


def check_quant_mode(mode) -> None:
    check_in("quant.mode", mode, QUANT)


def check_coreml_compression(compression, field: str = "coreml.compression") -> None:
    check_in(field, compression, COREML_COMPRESSIONS)
