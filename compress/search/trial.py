"""One trial: distil a student, prune it, quantize and convert it, measure the .tflite file.

`run_trial(cfg, out_dir)` is plain Python (no Hydra) and returns the metrics dict; the
sweep's Optuna objectives are picked from it by name. It reads its config once, into the objects
each stage is built from (where the data and teacher come from, the student's recipe, the
early-stop rule, the run it logs to, how files are measured and packaged), and then wires them.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from compress.core import metrics as M
from compress.coreml import convert as coreml
from compress.coreml.package import package_bytes
from compress.data import arrays
from compress.measure import model_counts, scoring
from compress.measure import tflite as measure
from compress.search import context, early_stop
from compress.tracking import run_logging
from compress.training import quantize
from compress.training.recipe import StudentRecipe, Trained
from compress.training.students import save_float_student

log = logging.getLogger(__name__)


def run_trial(cfg, out_dir: str | Path) -> dict:
    """Run one trial of `cfg` (checked beforehand: `compress.search.preflight`), writing `model.tflite`,
    `config.yaml` and `student.keras` into `out_dir`; returns every metric (also logged to MLflow when
    tracking is on)."""
    setup = context.Setup.of(cfg)
    stop_rule = early_stop.StopRule.of(cfg)
    recipe = StudentRecipe.of(cfg)
    trial_log = run_logging.TrialLog.of(cfg)
    measurement = measure.Measurement.of(cfg.measure)
    package_export = coreml.PackageExport.of(cfg.coreml)
    out_dir = Path(out_dir)
    start = time.perf_counter()
    # the teacher's logits once per process (the first trial pays for them); none on the labels alone
    ctx = recipe.ready(setup.load())
    context_seconds = time.perf_counter() - start
    total_start = time.perf_counter()
    with trial_log.run(ctx.teacher_sha, ctx.splits) as run:
        try:
            trained = recipe.train(ctx, stop_rule.callbacks if stop_rule else None)
        except early_stop.StoppedEarly as stop:
            if run is not None:
                run_logging.log_stopped(stop.epochs, time.perf_counter() - total_start)
            raise
        times = trained.times
        start = time.perf_counter()
        tflite_path = quantize.write(recipe.convert(trained, ctx.splits.x_train), out_dir / "model.tflite")
        times[M.TIME_CONVERT_S] = time.perf_counter() - start

        start = time.perf_counter()
        results = _figures(measurement, tflite_path, ctx, trained)
        times[M.TIME_EVAL_S] = time.perf_counter() - start
        shipped_float = recipe.shipped_float(trained)
        if package_export.enabled:
            start = time.perf_counter()
            results.update(_package_figures(package_export, shipped_float, out_dir, ctx.splits, recipe, results))
            times[M.TIME_COREML_S] = time.perf_counter() - start
        times[M.TIME_TOTAL_S] = time.perf_counter() - total_start
        results.update({k: round(v, 3) for k, v in times.items()})
        results[M.TIME_CONTEXT_S] = round(context_seconds, 3)
        curve = [round(v, 5) for v in trained.histories[0].get("val_accuracy", [])]
        OmegaConf.save(cfg, out_dir / "config.yaml", resolve=True)
        save_float_student(shipped_float, out_dir / "student.keras")  # pruned; for qat, after its fine-tuning
        if run is not None:
            run_logging.log_trial_outcome(results, trained.histories, out_dir, package_export.enabled)
        log.info(
            "trial: val %.4f test %.4f | %s bytes (%s gz) | %.3f ms = %.3fx teacher | %.0fs",
            results[M.VAL_ACCURACY], results[M.TEST_ACCURACY], f"{results[M.SIZE_BYTES]:,}",
            f"{results[M.SIZE_GZIP_BYTES]:,}", results[M.LATENCY_MS], results[M.LATENCY_RATIO], times[M.TIME_TOTAL_S],
        )
    return {**results, early_stop.CURVE_ATTR: curve}


def _figures(measurement: measure.Measurement, tflite_path: Path, ctx: context.TrialContext, trained: Trained) -> dict:
    """The trial's metrics from its .tflite file (beside the teacher's reference) and its Keras models."""
    s = ctx.splits
    file = measurement.file_figures(tflite_path, s, ctx.teacher_tflite)
    params, nonzero = model_counts.parameter_counts(trained.float_model)
    return {
        M.VAL_ACCURACY: file["val"],
        M.TEST_ACCURACY: file["test"],
        M.KERAS_VAL_ACCURACY: arrays.keras_accuracy(trained.to_convert, s.x_val, s.y_val),
        M.SIZE_BYTES: file["bytes"],
        M.SIZE_GZIP_BYTES: file["gzip"],
        M.LATENCY_MS: file["latency"],
        M.TEACHER_LATENCY_MS: file["teacher_latency"],
        M.LATENCY_RATIO: file["latency"] / file["teacher_latency"],
        M.PARAMS: params,
        M.NONZERO_PARAMS: nonzero,
        M.MACS: model_counts.count_macs(trained.float_model),
    }


def _package_figures(export: coreml.PackageExport, shipped_float, out_dir: Path, splits, recipe: StudentRecipe,
                     results: dict) -> dict:
    """The Core ML package of the weights the .tflite carries (`model.mlpackage`): its bytes and its
    validation accuracy, scored by Core ML's own runtime where there is one."""
    package = coreml.to_mlpackage(
        shipped_float, out_dir / "model.mlpackage", export.compression, recipe.zero_sparsity,
        metadata={"val_accuracy_tflite": f"{results[M.VAL_ACCURACY]:.4f}", "quant_mode": recipe.mode},
        class_names=splits.export_class_names,
    )
    predicted = scoring.predictions(package, splits.x_val, class_names=splits.export_class_names)
    return {M.COREML_SIZE_BYTES: package_bytes(package),
            M.COREML_VAL_ACCURACY: float(np.mean(predicted == splits.y_val))}
