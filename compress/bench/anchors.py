"""The benchmark's anchors, each built once and cached by what it was made from (the teacher as it is and
dynamic-range, the textbook tfmot recipe, the winner's recipe without distillation), and the five files
measured together in one process; `python -m compress.bench` (__main__.py) prints them."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from omegaconf import OmegaConf

from compress.config.schema import Config
from compress.core import metrics as M
from compress.core.compat import keras, set_seed
from compress.core.errors import DataError
from compress.measure import machine, model_counts
from compress.measure import tflite as measure
from compress.search import context
from compress.search.preflight import preflight
from compress.search.trial import run_trial
from compress.teacher.model import logits_model
from compress.training import prune, quantize
from compress.training.recipe import StudentRecipe

log = logging.getLogger(__name__)

PRUNED_SPARSITY = 0.5
COLUMNS = ("name", "test_accuracy", "size_bytes", "size_gzip_bytes", "macs", "latency_ms", "latency_ratio")


def teacher_dynamic(ctx, cache: Path) -> Path:
    """The teacher with dynamic-range quantization (weights int8, activations float)."""
    path = cache / f"teacher_{ctx.teacher_sha[:16]}_dynamic.tflite"
    if not path.is_file():
        quantize.write(quantize.convert(ctx.teacher, "dynamic"), path)
    return path


def teacher_pruned_int8(cfg, ctx, cache: Path, epochs: int) -> Path:
    """The teacher pruned to 50% by tfmot while fine-tuned `epochs` on the labels, then int8."""
    key = (f"{ctx.teacher_sha[:16]}_{ctx.splits.fingerprint[:12]}_s{PRUNED_SPARSITY}_e{epochs}_seed{int(cfg.seed)}"
           f"_r{int(cfg.quant.representative_samples)}")
    path = cache / f"teacher_pruned_{key}_int8.tflite"
    if path.is_file():
        return path
    log.info("bench: the teacher pruned to %.0f%% on the labels, %d epoch(s), then int8 (once; cached as %s)",
             100 * PRUNED_SPARSITY, epochs, path.name)
    set_seed(int(cfg.seed))
    teacher_logits = logits_model(ctx.teacher)
    model = keras.models.clone_model(teacher_logits)
    model.set_weights(teacher_logits.get_weights())
    labels_only = OmegaConf.merge(cfg.distill, {"alpha": 1.0})  # no distillation: cross-entropy on the labels
    prune_cfg = OmegaConf.create({"sparsity": PRUNED_SPARSITY, "epochs": epochs, "learning_rate": 1e-4})
    s = ctx.splits
    ctx = ctx.labels_only()  # no teacher logits: the loss reads the labels alone
    pruned, _ = prune.prune(model, s.x_train, ctx.train_targets, s.x_val, ctx.val_targets, labels_only,
                            prune_cfg, int(cfg.seed))
    representative = StudentRecipe.of(cfg).representative_images(s.x_train)
    return quantize.write(quantize.convert(pruned, "int8", representative), path)


def undistilled_student(cfg, winner_config: Path, cache: Path) -> tuple[Path, int]:
    """The winner's trial recipe retrained with `distill.alpha=1` (labels only); its file and MACs."""
    # onto today's defaults: a winner exported by an earlier version lacks the keys added since
    recipe = OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(winner_config))
    recipe = OmegaConf.merge(recipe, {
        "distill": {"alpha": 1.0}, "tracking": {"enabled": False}, "coreml": {"enabled": False},
        "early_stop": {"enabled": False}, "data": OmegaConf.to_container(cfg.data), "paths": {"cache_dir": cfg.paths.cache_dir},
        "teacher": {"path": cfg.teacher.path},
    })
    keyed = OmegaConf.masked_copy(recipe, [k for k in recipe if k != "targets"])  # the app's targets train nothing
    key = hashlib.sha256(OmegaConf.to_yaml(keyed, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache / f"student_no_distillation_{key}"
    done = folder / "metrics.json"
    if not done.is_file():
        preflight(recipe, check_data=False)  # an earlier version's recipe is refused in one line, before any file
        log.info("bench: the winner's recipe trained on the labels alone, %d epochs (once; cached in %s)",
                 int(recipe.distill.epochs), folder)
        folder.mkdir(parents=True, exist_ok=True)
        results = run_trial(recipe, folder)
        partial = done.with_suffix(".json.tmp")  # the marker is written last, atomically
        partial.write_text(json.dumps({M.MACS: int(results[M.MACS])}))
        partial.replace(done)
    return folder / "model.tflite", int(json.loads(done.read_text())[M.MACS])


def run(cfg, winner_dir: Path, prune_epochs: int) -> list[dict]:
    """Build or fetch every entry, then measure all of them together."""
    winner_file, winner_json = winner_dir / "winner.tflite", winner_dir / "winner.json"
    for needed in (winner_file, winner_json, winner_dir / "config.yaml"):
        if not needed.is_file():
            raise DataError(f"{needed}: missing; finalize the study first (python -m compress.finalize), "
                            f"or name an exported winner's folder with --winner")
    ctx = context.get(cfg)
    cache = Path(cfg.paths.cache_dir) / "anchors"
    teacher_macs = model_counts.count_macs(ctx.teacher)
    student_file, student_macs = undistilled_student(cfg, winner_dir / "config.yaml", cache)
    entries = [
        ("teacher_float32", ctx.teacher_tflite, teacher_macs),
        ("teacher_dynamic", teacher_dynamic(ctx, cache), teacher_macs),
        ("teacher_pruned50_int8", teacher_pruned_int8(cfg, ctx, cache, prune_epochs), teacher_macs),
        ("student_no_distillation", student_file, student_macs),
        ("winner", winner_file, int(json.loads(winner_json.read_text())[M.MACS])),
    ]
    m, s = cfg.measure, ctx.splits
    log.info("bench: latency of the %d files in alternating rounds (%d runs each after %d warm-up), then test accuracy",
             len(entries), int(m.latency_runs), int(m.warmup))
    latency = measure.latencies([path for _, path, _ in entries], s.x_test[0], int(m.latency_runs), int(m.warmup),
                                int(m.threads))
    rows = []
    for (name, path, macs), ms in zip(entries, latency):
        size, size_gz = measure.file_sizes(path)
        rows.append({
            "name": name,
            "test_accuracy": measure.accuracy(path, s.x_test, s.y_test, int(m.eval_batch)),
            "size_bytes": size, "size_gzip_bytes": size_gz, "macs": int(macs),
            "latency_ms": ms, "latency_ratio": ms / latency[0],
            "file": str(path), "n_test": int(len(s.y_test)), **machine.record(),  # where the latency ran
        })
    return rows


def table(rows: list[dict]) -> str:
    """The rows as a fixed-width text table."""
    head = f"{'model':<26}{'test acc':>9}{'bytes':>12}{'gzip':>12}{'MACs':>14}{'latency ms':>12}{'x teacher':>11}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['name']:<26}{100 * r['test_accuracy']:>8.2f}%{r['size_bytes']:>12,}{r['size_gzip_bytes']:>12,}"
                     f"{r['macs']:>14,}{r['latency_ms']:>12.4f}{r['latency_ratio']:>11.4f}")
    return "\n".join(lines)
