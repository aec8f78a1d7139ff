"""The allowed values of the config's enumerated fields, in a module that imports nothing
heavy, so that checking a config does not wait for TensorFlow."""

QUANT_MODES = ("float32", "float16", "dynamic", "int8", "qat")
INTEGER_MODES = ("int8", "qat")
ACTIVATIONS = ("relu", "relu6")
HEADS = ("flatten", "gap")
ARCHS = ("cnn", "dsconv")  # student families (compress/students.py)
PRUNE_METHODS = ("magnitude", "channel")  # zeros in place (tfmot), or whole channels removed (compress/prune/)
CHANNEL_IMPORTANCE = ("bn", "l1")  # a channel's rank: its BatchNorm scale |gamma|, or its filter's L1 norm
AUGMENTS = ("none", "flip_shift")  # distillation views (compress/views.py)
WINNER_POLICIES = ("max_bytes", "smallest_within")  # how the winner is picked among finalists (compress/winner_export.py)
KERNEL_SIZES = (1, 3, 5)
LOGIT_SOURCES = ("cached", "online")
COREML_COMPRESSIONS = ("none", "linear8", "palettize8", "palettize6", "palettize4", "palettize2", "sparse")
DEFAULT_TEACHER_PATH = "models/teacher/teacher.keras"
