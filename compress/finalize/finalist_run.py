"""One finalist: train a recipe the long way, convert it in its own mode and in the shipping
int8 encoding, measure both files from disk, make its Core ML package, log it to MLflow."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from compress.core import metrics as M
from compress.core.compat import keras
from compress.coreml import convert as coreml
from compress.coreml.package import package_bytes
from compress.data import arrays
from compress.finalize import selection as finalists
from compress.measure import machine, model_counts, scoring
from compress.measure import tflite as measure
from compress.measure.tflite import Measurement
from compress.tracking import run_logging
from compress.training import encode, prune, quantize
from compress.training.recipe import StudentRecipe
from compress.training.students import save_float_student

log = logging.getLogger(__name__)


# every int8 encoding a finalist may try, by the name its row's columns carry (int8_<name>_bytes, ..._val_accuracy)
QAT_ENCODING = "qat_per_channel"
SHIP_ENCODINGS = (*(f"ptq_{granularity}" for granularity in encode.GRANULARITIES), QAT_ENCODING)


def shipping_encodings(cfg, ctx, float_model: keras.Model, qat_model: keras.Model | None, workdir: Path,
                       keras_val: float, filled_class: int | None = None) -> tuple[str, dict, keras.Model]:
    """Every int8 encoding tried (post-training per-channel and per-tensor, and quantization-aware
    when those lose more than `finalize.int8_tolerance` against the float model), each slimmed and
    scored on validation; returns the chosen one's name (`choose_encoding`: the smallest file within
    `finalize.encoding_tolerance` of the best validation accuracy, within the budget), all of them,
    and the float model whose weights the chosen file carries (for the Core ML package and student.keras)."""
    f, s = cfg.finalize, ctx.splits
    recipe = StudentRecipe.of(cfg)
    representative = recipe.representative_images(s.x_train)
    tried: dict[str, dict] = {}

    def add(name: str, model: keras.Model, granularity: str) -> None:
        path = quantize.write(encode.slim(quantize.convert(model, "int8", representative, granularity)),
                              workdir / f"int8_{name}.tflite")
        tried[name] = {"path": str(path), "bytes": path.stat().st_size,
                       "val": measure.accuracy(path, s.x_val, s.y_val, int(cfg.measure.eval_batch))}
        log.info("  int8 %s: %s bytes, validation %.2f%% (float %.2f%%)", name, f"{tried[name]['bytes']:,}",
                 100 * tried[name]["val"], 100 * keras_val)

    for granularity in encode.GRANULARITIES:
        add(f"ptq_{granularity}", float_model, granularity)
    if keras_val - max(t["val"] for t in tried.values()) > float(f.int8_tolerance):
        if qat_model is None:
            log.info("  post-training int8 loses more than %.1f points: %d epoch(s) of quantization-aware training",
                     100 * float(f.int8_tolerance), int(cfg.quant.qat_epochs))
            qat_model, _ = recipe.quantization_aware(ctx, float_model)
        add(QAT_ENCODING, qat_model, "per_channel")
    chosen = choose_encoding(tried, f, filled_class)
    return chosen, tried, quantize.float_twin(qat_model, float_model) if chosen == QAT_ENCODING else float_model


def choose_encoding(tried: dict, f, filled_class: int | None = None) -> str:
    """The int8 encoding that ships, from those tried ({name: {"bytes", "val"}}): the smallest file
    within `finalize.encoding_tolerance` of the best validation accuracy. When that file is over the
    budget and another fits, the most accurate one that fits: the budget is `finalize.max_bytes` under
    the `max_bytes` policy (a file over the app's budget is of no use to it, however accurate: trial 5
    of the default study, per-channel 68,232 B at 92.88% against per-tensor 50,640 B at 92.60%), and
    the size class a finalist was widened to fill (`filled_class`, finalize/fill.py), whatever the policy."""
    best = max(t["val"] for t in tried.values())
    near = {k: t for k, t in tried.items() if t["val"] >= best - float(f.encoding_tolerance)}
    chosen = min(near, key=lambda k: (near[k]["bytes"], -near[k]["val"]))
    budgets = [int(f.max_bytes)] if str(f.policy) == "max_bytes" else []
    budgets += [int(filled_class)] if filled_class else []
    for budget in sorted(budgets):  # the tightest budget that a file fits
        if tried[chosen]["bytes"] <= budget:
            break
        fits = {k: t for k, t in tried.items() if t["bytes"] <= budget}
        if fits:
            chosen = max(fits, key=lambda k: (fits[k]["val"], -fits[k]["bytes"]))
            break
    return chosen


def tried_from_row(row) -> dict:
    """The encodings a finalist's row says were tried, with their bytes and validation accuracy."""
    out = {}
    for name in SHIP_ENCODINGS:
        size, val = row.get(f"int8_{name}_bytes"), row.get(f"int8_{name}_val_accuracy")
        if size is not None and val is not None and not (np.isnan(float(size)) or np.isnan(float(val))):
            out[name] = {"bytes": int(size), "val": float(val)}
    return out


def ship_figures(ship_path: Path, ctx, cfg, chosen: str) -> dict:
    """The shipped file's columns of a finalist's row, measured from the file."""
    ship = Measurement.of(cfg.measure).file_figures(ship_path, ctx.splits, ctx.teacher_tflite)
    parts = encode.breakdown(ship_path)
    return {"ship_encoding": chosen, M.SHIP_VAL_ACCURACY: ship["val"], M.SHIP_TEST_ACCURACY: ship["test"],
            M.SHIP_SIZE_BYTES: ship["bytes"], M.SHIP_LATENCY_MS: ship["latency"],
            M.SHIP_LATENCY_RATIO: ship["latency"] / ship["teacher_latency"],
            **{f"ship_bytes_{k}": v for k, v in parts.items() if k != "total"}}


def reship(cfg, ctx, row, workdir: Path, filled_class: int | None = None) -> dict | None:
    """A finalist trained under an earlier choice of encoding, shipped by today's (`choose_encoding`
    on the encodings its row records): the new file copied from its work folder and measured; the
    row's changed columns, or None when the choice stands or the files are not on this machine."""
    tried = tried_from_row(row)
    if not tried:
        return None
    chosen = choose_encoding(tried, cfg.finalize, filled_class)
    if chosen == str(row["ship_encoding"]):
        return None
    source = Path(workdir) / f"int8_{chosen}.tflite"
    if not source.is_file():
        log.warning("finalist trial %d seed %d ships %s under today's encoding choice, but %s is not on this "
                    "machine: it keeps %s", int(row["trial"]), int(row["seed"]), chosen, source, row["ship_encoding"])
        return None
    shutil.copyfile(source, Path(workdir) / "finalist.tflite")
    figures = ship_figures(Path(workdir) / "finalist.tflite", ctx, cfg, chosen)
    log.info("finalist trial %d seed %d: ships %s now (%s bytes, validation %.2f%%), was %s (%s bytes)",
             int(row["trial"]), int(row["seed"]), chosen, f"{figures[M.SHIP_SIZE_BYTES]:,}",
             100 * figures[M.SHIP_VAL_ACCURACY], row["ship_encoding"], f"{int(row[M.SHIP_SIZE_BYTES]):,}")
    return figures


def train_finalist(cfg, ctx, row, workdir: Path, study: str) -> dict:
    """Train, convert, measure and log one finalist; returns its row of the finalists' table."""
    workdir = Path(workdir)
    if workdir.exists():
        shutil.rmtree(workdir)  # a half-finished earlier attempt
    workdir.mkdir(parents=True)
    s = ctx.splits
    start = time.perf_counter()
    recipe = StudentRecipe.of(cfg)
    trained = recipe.train(ctx)
    to_convert, float_model, histories = trained.to_convert, trained.float_model, trained.histories
    train_s = time.perf_counter() - start
    mode = recipe.mode
    own_path = quantize.write(recipe.convert(trained, s.x_train), workdir / "model.tflite")
    own = Measurement.of(cfg.measure).file_figures(own_path, ctx.splits, ctx.teacher_tflite)
    keras_val = arrays.keras_accuracy(float_model, s.x_val, s.y_val)
    fine_tuned = to_convert if recipe.fine_tunes else None
    chosen, tried, shipped_float = shipping_encodings(cfg, ctx, float_model, fine_tuned, workdir, keras_val,
                                                      finalists.filled_class(row))
    ship_path = workdir / "finalist.tflite"
    shutil.copyfile(tried[chosen]["path"], ship_path)
    shipped = ship_figures(ship_path, ctx, cfg, chosen)
    package = coreml.to_mlpackage(shipped_float, workdir / "finalist.mlpackage", str(cfg.finalize.coreml_compression),
                                  recipe.zero_sparsity,
                                  metadata={"study": study, "search_trial": str(int(row["trial"])),
                                            "seed": str(int(cfg.seed))},
                                  class_names=s.export_class_names)
    coreml_test = float(np.mean(scoring.predictions(package, s.x_test, class_names=s.export_class_names)
                                == s.y_test))
    params, nonzero = model_counts.parameter_counts(float_model)
    result = {
        "arch": cfg.student.arch, "width": float(cfg.student.width), "head": cfg.student.head,
        "quant.mode": mode, "prune.method": prune.method_of(cfg.prune), "prune.sparsity": float(cfg.prune.sparsity),
        "distill.temperature": float(cfg.distill.temperature), "distill.alpha": float(cfg.distill.alpha),
        "epochs": int(cfg.distill.epochs), "augment": cfg.distill.augment,
        # who taught: the user's teacher, or the ensemble's name (distill.teacher; docs/teachers.md)
        "teacher": "user" if cfg.distill.get("teacher", "user") == "user" else str(cfg.ensemble.name),
        **machine.record(),  # the CPU and instruction set its latencies ran with
        "search_val_accuracy": float(row[M.VAL_ACCURACY]), "search_test_accuracy": float(row[M.TEST_ACCURACY]),
        "search_size_bytes": int(row[M.SIZE_BYTES]),
        M.VAL_ACCURACY: own["val"], M.TEST_ACCURACY: own["test"], M.SIZE_BYTES: own["bytes"],
        M.SIZE_GZIP_BYTES: own["gzip"], M.LATENCY_MS: own["latency"], M.TEACHER_LATENCY_MS: own["teacher_latency"],
        M.LATENCY_RATIO: own["latency"] / own["teacher_latency"], M.KERAS_VAL_ACCURACY: keras_val,
        M.PARAMS: params, M.NONZERO_PARAMS: nonzero, M.MACS: model_counts.count_macs(float_model),
        **shipped,
        **{f"int8_{k}_bytes": t["bytes"] for k, t in tried.items()},
        **{f"int8_{k}_val_accuracy": t["val"] for k, t in tried.items()},
        M.COREML_SIZE_BYTES: package_bytes(package), M.COREML_TEST_ACCURACY: coreml_test,
        "coreml_compression": str(cfg.finalize.coreml_compression),
        M.TIME_TRAIN_S: round(train_s, 1), M.TIME_TOTAL_S: round(time.perf_counter() - start, 1),
        "curve_val": ";".join(f"{v:.4f}" for v in histories[0].get("val_accuracy", [])),
    }
    OmegaConf.save(cfg, workdir / "config.yaml", resolve=True)
    save_float_student(shipped_float, workdir / "student.keras")
    result["run_id"] = run_logging.log_finalist(cfg, ctx.teacher_sha, study, int(row["trial"]), result, histories,
                                             workdir, ctx.splits)
    log.info("finalist trial %d: %s %s bytes, validation %.2f%%, test %.2f%% (own mode %s: %.2f%%, %s bytes; "
             "search %.2f%%) | Core ML %.2f%% | %.0f s", int(row["trial"]), chosen, f"{shipped[M.SHIP_SIZE_BYTES]:,}",
             100 * shipped[M.SHIP_VAL_ACCURACY], 100 * shipped[M.SHIP_TEST_ACCURACY], mode, 100 * own["val"],
             f"{own['bytes']:,}",
             100 * float(row[M.VAL_ACCURACY]), 100 * coreml_test, result[M.TIME_TOTAL_S])
    return result
