"""Metric, param and tag names: defined once, used by the trial, the sweep and analysis."""

VAL_ACCURACY = "val_accuracy"
TEST_ACCURACY = "test_accuracy"
SIZE_BYTES = "size_bytes"
SIZE_GZIP_BYTES = "size_gzip_bytes"
LATENCY_MS = "latency_ms"
TEACHER_LATENCY_MS = "teacher_latency_ms"
LATENCY_RATIO = "latency_ratio"
PARAMS = "params"
NONZERO_PARAMS = "nonzero_params"
MACS = "macs"
KERAS_VAL_ACCURACY = "keras_val_accuracy"
COREML_SIZE_BYTES = "coreml_size_bytes"  # every file inside the .mlpackage
COREML_VAL_ACCURACY = "coreml_val_accuracy"  # through the NumPy executor (Core ML itself on macOS)
TIME_COREML_S = "time_coreml_s"

TIME_TRAIN_S = "time_train_s"
TIME_PRUNE_S = "time_prune_s"
TIME_CONVERT_S = "time_convert_s"
TIME_EVAL_S = "time_eval_s"
TIME_TOTAL_S = "time_total_s"  # the trial's own work: train, prune, convert, evaluate
TIME_CONTEXT_S = "time_context_s"  # data, teacher and logit cache loading (first trial of a process only)

# metrics every completed trial must carry
TRIAL_METRICS = (
    VAL_ACCURACY, TEST_ACCURACY, SIZE_BYTES, SIZE_GZIP_BYTES, LATENCY_MS, LATENCY_RATIO,
    PARAMS, NONZERO_PARAMS, MACS,
)
PHASE_TIMES = (TIME_TRAIN_S, TIME_PRUNE_S, TIME_CONVERT_S, TIME_EVAL_S, TIME_TOTAL_S)

# per-epoch curves (logged with step = epoch)
EPOCH_TRAIN_ACCURACY = "epoch_train_accuracy"
EPOCH_VAL_ACCURACY = "epoch_val_accuracy"
EPOCH_LOSS = "epoch_loss"

# the searched hyperparameters, as MLflow params
SEARCHED_PARAMS = ("student.arch", "student.width", "distill.temperature", "distill.alpha", "prune.method", "prune.sparsity", "quant.mode",
                   "student.head",
                   "coreml.compression")

TAG_STUDY = "optuna.study_name"
TAG_TRIAL = "optuna.trial_number"
TAG_GIT = "git_commit"
TAG_TEACHER = "teacher_sha256"
TAG_ROLE = "role"  # "study" for the parent run, "trial" or "finalist" for a child
TAG_SEARCH_TRIAL = "search_trial"  # on a finalist: the study trial whose recipe it trained the long way
TAG_OPTUNA_STATE = "optuna_state"  # "PRUNED" on a trial run stopped early (the run itself ends KILLED)

# a finalist's shipping file (full-integer int8, slimmed: compress/training/encode.py), beside the metrics
# above, which for a finalist describe the file in its trial's own quantization mode
SHIP_VAL_ACCURACY = "ship_val_accuracy"
SHIP_TEST_ACCURACY = "ship_test_accuracy"
SHIP_SIZE_BYTES = "ship_size_bytes"
SHIP_LATENCY_MS = "ship_latency_ms"
SHIP_LATENCY_RATIO = "ship_latency_ratio"
COREML_TEST_ACCURACY = "coreml_test_accuracy"
