"""One trial: distil a student, prune it, quantize and convert it, measure the .tflite file.

`run_trial(cfg, out_dir)` is plain Python (no Hydra) and returns the metrics dict; the
sweep's Optuna objectives are picked from it by name.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from compress.core import metrics as M
from compress.core.compat import keras, set_seed
from compress.core.options import QUANT
from compress.coreml import convert as coreml
from compress.measure import scoring
from compress.measure import tflite as measure
from compress.search import context, early_stop
from compress.search.preflight import preflight
from compress.tracking import run_logging
from compress.training import distill, prune, quantize
from compress.training.students import build_student, save_float_student

log = logging.getLogger(__name__)


def train_student(cfg, ctx: context.TrialContext) -> tuple[keras.Model, keras.Model, list[dict], dict]:
    """Distil, prune and (for qat) quantization-aware fine-tune a student.

    Returns the model to convert, the float model it came from (for MACs and parameter
    counts), the per-phase histories and the phase times.
    """
    s = ctx.splits
    seed = int(cfg.seed)
    set_seed(seed)
    train_targets, teacher_for_batches = ctx.distillation_targets(cfg.distill.teacher_logits)
    student = build_student(cfg.student, ctx.splits.num_classes, ctx.splits.image_shape)
    times = {}
    start = time.perf_counter()
    stop_checks = early_stop.callbacks(cfg, student, measure.count_macs(student))
    histories = [distill.fit(student, s.x_train, train_targets, s.x_val, ctx.val_targets, cfg.distill,
                             int(cfg.distill.epochs), float(cfg.distill.learning_rate), seed,
                             callbacks=stop_checks, teacher=teacher_for_batches, verbose=int(cfg.verbose),
                             steps_per_execution=int(cfg.distill.steps_per_execution),
                             views=ctx.training_views(cfg.distill))]
    times[M.TIME_TRAIN_S] = time.perf_counter() - start
    log.info("distilled: val acc %.4f (%.1fs)", histories[-1].get("val_accuracy", [float("nan")])[-1],
             times[M.TIME_TRAIN_S])
    start = time.perf_counter()
    if prune.runs(cfg.prune):
        student, history = prune.prune(student, s.x_train, ctx.train_targets, s.x_val, ctx.val_targets,
                                       cfg.distill, cfg.prune, seed, verbose=int(cfg.verbose))
        histories.append(history)
        log.info("pruned (%s) to %.2f: val acc %.4f", prune.method_of(cfg.prune), cfg.prune.sparsity,
                 history.get("val_accuracy", [float("nan")])[-1])
    times[M.TIME_PRUNE_S] = time.perf_counter() - start
    to_convert = student
    if QUANT[str(cfg.quant.mode)].fine_tunes:
        start = time.perf_counter()
        to_convert, history = quantize.quantization_aware(
            student, s.x_train, ctx.train_targets, s.x_val, ctx.val_targets, cfg.distill, cfg.quant,
            prune.leaves_zeros(cfg.prune), seed, verbose=int(cfg.verbose),
        )
        histories.append(history)
        times[M.TIME_TRAIN_S] += time.perf_counter() - start
    return to_convert, student, histories, times


def representative_images(cfg, ctx: context.TrialContext) -> np.ndarray:
    """A seeded sample of training images for int8 calibration."""
    rng = np.random.default_rng(int(cfg.seed))
    n = min(int(cfg.quant.representative_samples), len(ctx.splits.x_train))
    return ctx.splits.x_train[rng.choice(len(ctx.splits.x_train), n, replace=False)]


def run_trial(cfg, out_dir: str | Path) -> dict:
    """Run one trial of `cfg`, writing `model.tflite` and `config.yaml` into `out_dir`;
    returns every metric (also logged to MLflow when tracking is enabled)."""
    preflight(cfg, check_data=False)  # context.get below reads and checks the data files
    out_dir = Path(out_dir)
    start = time.perf_counter()
    # the teacher's logits once per process (the first trial pays for them); none on the labels alone
    ctx = context.get(cfg).ready_to_train(cfg.distill)
    context_seconds = time.perf_counter() - start
    total_start = time.perf_counter()
    with run_logging.trial_run(cfg, ctx.teacher_sha, ctx.splits) as run:
        try:
            to_convert, float_model, histories, times = train_student(cfg, ctx)
        except early_stop.StoppedEarly as stop:
            if run is not None:
                run_logging.log_stopped(stop.epochs, time.perf_counter() - total_start)
            raise
        start = time.perf_counter()
        flatbuffer = quantize.convert(to_convert, cfg.quant.mode, representative_images(cfg, ctx))
        tflite_path = quantize.write(flatbuffer, out_dir / "model.tflite")
        times[M.TIME_CONVERT_S] = time.perf_counter() - start

        start = time.perf_counter()
        s, m = ctx.splits, cfg.measure
        size, size_gz = measure.file_sizes(tflite_path)
        latency, teacher_latency = measure.latency_pair(
            tflite_path, ctx.teacher_tflite, s.x_test[0], int(m.latency_runs), int(m.warmup), int(m.threads)
        )
        params, nonzero = measure.parameter_counts(float_model)
        results = {
            M.VAL_ACCURACY: measure.accuracy(tflite_path, s.x_val, s.y_val, int(m.eval_batch)),
            M.TEST_ACCURACY: measure.accuracy(tflite_path, s.x_test, s.y_test, int(m.eval_batch)),
            M.KERAS_VAL_ACCURACY: measure.keras_accuracy(to_convert, s.x_val, s.y_val),
            M.SIZE_BYTES: size,
            M.SIZE_GZIP_BYTES: size_gz,
            M.LATENCY_MS: latency,
            M.TEACHER_LATENCY_MS: teacher_latency,
            M.LATENCY_RATIO: latency / teacher_latency,
            M.PARAMS: params,
            M.NONZERO_PARAMS: nonzero,
            M.MACS: measure.count_macs(float_model),
        }
        times[M.TIME_EVAL_S] = time.perf_counter() - start
        # the float weights the .tflite carries (for qat, those quantization-aware training left): what the
        # Core ML package and student.keras are made from
        fine_tuned = QUANT[str(cfg.quant.mode)].fine_tunes
        shipped_float = quantize.float_twin(to_convert, float_model) if fine_tuned else float_model
        if cfg.coreml.enabled:
            start = time.perf_counter()
            package = coreml.to_mlpackage(
                shipped_float, out_dir / "model.mlpackage", cfg.coreml.compression, prune.zero_sparsity(cfg.prune),
                metadata={"val_accuracy_tflite": f"{results[M.VAL_ACCURACY]:.4f}", "quant_mode": cfg.quant.mode},
                class_names=s.export_class_names,
            )
            results[M.COREML_SIZE_BYTES] = coreml.package_bytes(package)
            predicted = scoring.predictions(package, s.x_val, class_names=s.export_class_names)
            results[M.COREML_VAL_ACCURACY] = float(np.mean(predicted == s.y_val))
            times[M.TIME_COREML_S] = time.perf_counter() - start
        times[M.TIME_TOTAL_S] = time.perf_counter() - total_start
        results.update({k: round(v, 3) for k, v in times.items()})
        results[M.TIME_CONTEXT_S] = round(context_seconds, 3)
        curve = [round(v, 5) for v in histories[0].get("val_accuracy", [])]
        OmegaConf.save(cfg, out_dir / "config.yaml", resolve=True)
        save_float_student(shipped_float, out_dir / "student.keras")  # pruned; for qat, after its fine-tuning
        if run is not None:
            import mlflow

            mlflow.log_metrics({k: float(v) for k, v in results.items()})
            run_logging.log_history(histories)
            mlflow.log_artifact(str(tflite_path))
            mlflow.log_artifact(str(out_dir / "config.yaml"))
            mlflow.log_artifact(str(out_dir / "student.keras"))
            if cfg.coreml.enabled:
                mlflow.log_artifacts(str(out_dir / "model.mlpackage"), artifact_path="model.mlpackage")
        log.info(
            "trial: val %.4f test %.4f | %s bytes (%s gz) | %.3f ms = %.3fx teacher | %.0fs",
            results[M.VAL_ACCURACY], results[M.TEST_ACCURACY], f"{size:,}", f"{size_gz:,}", latency,
            results[M.LATENCY_RATIO], times[M.TIME_TOTAL_S],
        )
    return {**results, early_stop.CURVE_ATTR: curve}
