"""Range checks on a composed config, run before anything is trained or written.

Types are checked by the schemas at composition; this catches values a type cannot
rule out.  Each failure is a ConfigError with one line naming the field, the value
and what is allowed.
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

from compress.core.errors import ConfigError, StoreError
from compress.core.options import (
    AUGMENTS,
    CHANNEL_IMPORTANCE,
    ENSEMBLE_ARCHES,
    ENSEMBLE_OPTIMIZERS,
    ISAS,
    LOGIT_SOURCES,
    PRUNE_METHODS,
    TUTORS,
    WINNER_POLICIES,
    check,
    check_coreml_compression,
    check_distill_weights,
    check_in,
    check_quant_mode,
    check_sparsity,
    check_student,
)


def check_ensemble(e) -> None:
    """The `ensemble` group's values (the stronger teacher, compress/teacher/ensemble.py)."""
    check_in("ensemble.arch", e.arch, ENSEMBLE_ARCHES)
    check_in("ensemble.optimizer", e.optimizer, ENSEMBLE_OPTIMIZERS)
    for key in ("members", "epochs", "batch_size", "width"):
        check(e[key] >= 1, f"ensemble.{key}", e[key], "must be >= 1")
    check(e.learning_rate > 0, "ensemble.learning_rate", e.learning_rate, "must be > 0")
    check(0 <= e.erase <= 1, "ensemble.erase", e.erase, "allowed [0, 1]")
    check(0 <= e.max_shift <= 8, "ensemble.max_shift", e.max_shift, "allowed 0..8 pixels")


def validate(cfg) -> None:
    """Raise ConfigError on the first out-of-range value of `cfg`."""
    d, s, k, p, q, m = cfg.data, cfg.student, cfg.distill, cfg.prune, cfg.quant, cfg.measure
    check(0 < d.fraction <= 1, "data.fraction", d.fraction, "allowed (0, 1]")
    source = str(d.get("source", "fashion_mnist"))
    if source != "fashion_mnist" and "paths" in cfg and cfg.paths.study == cfg.paths.default_study:
        raise ConfigError(f"data={source} under the default study {cfg.paths.study}: its committed deliverables "
                          f"(report/, winner/) are Fashion-MNIST's; name a study of your own: paths.study=NAME")
    check(0 < d.val_size < 60000, "data.val_size", d.val_size, "allowed 1..59999")
    check_student(s)
    check_distill_weights(k.temperature, k.alpha)
    check(k.epochs >= 1, "distill.epochs", k.epochs, "must be >= 1")
    check(k.batch_size >= 1, "distill.batch_size", k.batch_size, "must be >= 1")
    check(k.steps_per_execution >= 1, "distill.steps_per_execution", k.steps_per_execution, "must be >= 1")
    check(k.learning_rate > 0, "distill.learning_rate", k.learning_rate, "must be > 0")
    check_in("distill.teacher_logits", k.teacher_logits, LOGIT_SOURCES)
    check_in("distill.teacher", k.get("teacher", "user"), TUTORS)
    check_in("distill.augment", k.get("augment", "none"), AUGMENTS)
    check(k.get("views", 1) >= 1, "distill.views", k.get("views"), "must be >= 1 (view 0 is the image itself)")
    check(0 <= k.get("max_shift", 0) <= 8, "distill.max_shift", k.get("max_shift"), "allowed 0..8 pixels")
    check(k.get("augment", "none") == "none" or k.teacher_logits == "cached", "distill.teacher_logits",
          k.teacher_logits, "augmented views need cached logits (distill.augment=none for online)")
    if "ensemble" in cfg:
        check_ensemble(cfg.ensemble)
    check_sparsity(p.sparsity)
    check_in("prune.method", p.get("method", "magnitude"), PRUNE_METHODS)
    check_in("prune.importance", p.get("importance", "bn"), CHANNEL_IMPORTANCE)
    check(p.epochs >= 1, "prune.epochs", p.epochs, "must be >= 1")
    check(p.learning_rate > 0, "prune.learning_rate", p.learning_rate, "must be > 0")
    check_quant_mode(q.mode)
    check(q.qat_epochs >= 1, "quant.qat_epochs", q.qat_epochs, "must be >= 1")
    check(q.representative_samples >= 1, "quant.representative_samples", q.representative_samples, "must be >= 1")
    e = cfg.early_stop
    check(e.slack >= 0, "early_stop.slack", e.slack, "must be >= 0")
    check(e.min_completed >= 1, "early_stop.min_completed", e.min_completed, "must be >= 1")
    # a check after the last distillation epoch never fires (the default [1, 2] under distill.epochs=1
    # keeps its first); one that none can reach would leave early stopping on in name only. The smallest
    # in 1..epochs says both: each is >= 1 and one is reached
    check(not e.enabled or min(map(int, e.check_epochs), default=0) in range(1, k.epochs + 1),
          "early_stop.check_epochs", list(e.check_epochs),
          f"each must be >= 1 and at least one in 1..distill.epochs ({k.epochs})")
    check_coreml_compression(cfg.coreml.compression)
    if "finalize" in cfg:
        _validate_finalize(cfg.finalize)
    check(m.latency_runs >= 1, "measure.latency_runs", m.latency_runs, "must be >= 1")
    check(m.warmup >= 0, "measure.warmup", m.warmup, "must be >= 0")
    check(m.threads >= 1, "measure.threads", m.threads, "must be >= 1")
    check(m.eval_batch >= 1, "measure.eval_batch", m.eval_batch, "must be >= 1")


def _validate_finalize(f) -> None:
    check(f.max_finalists >= 1, "finalize.max_finalists", f.max_finalists, "must be >= 1")
    check(f.jobs >= 1, "finalize.jobs", f.jobs, "must be >= 1 (processes side by side)")
    check(f.prune_epochs >= 1, "finalize.prune_epochs", f.prune_epochs, "must be >= 1")
    check(0 <= f.min_search_accuracy < 1, "finalize.min_search_accuracy", f.min_search_accuracy,
          "must be in [0, 1)")
    check(all(int(c) > 0 for c in f.size_classes), "finalize.size_classes", list(f.size_classes),
          "each must be a positive number of bytes")
    check(f.epochs >= 1, "finalize.epochs", f.epochs, "must be >= 1")
    check(f.small_class_epochs >= 1, "finalize.small_class_epochs", f.small_class_epochs, "must be >= 1")
    check(f.learning_rate > 0, "finalize.learning_rate", f.learning_rate, "must be > 0")
    check_in("finalize.augment", f.augment, AUGMENTS)
    check(f.qat_epochs >= 1, "finalize.qat_epochs", f.qat_epochs, "must be >= 1")
    check(f.get("temperature") is None or f.temperature > 0, "finalize.temperature", f.get("temperature"),
          "allowed null (each trial's) or > 0")
    check(f.get("alpha") is None or 0 <= f.alpha <= 1, "finalize.alpha", f.get("alpha"),
          "allowed null (each trial's) or [0, 1]")
    check(f.get("width") is None or f.width > 0, "finalize.width", f.get("width"),
          "allowed null (each trial's) or > 0")
    check(f.get("teacher") is None or f.teacher in TUTORS, "finalize.teacher", f.get("teacher"),
          f"allowed null (as distill.teacher) or {', '.join(TUTORS)}")
    fill = [int(c) for c in f.get("fill_size_classes") or []]
    check(set(fill) <= {int(c) for c in f.size_classes}, "finalize.fill_size_classes", fill,
          f"each must be one of finalize.size_classes {[int(c) for c in f.size_classes]}")
    check(0 < f.get("fill_share", 0.95) <= 1, "finalize.fill_share", f.get("fill_share"), "allowed (0, 1]")
    check(0 <= f.int8_tolerance < 1, "finalize.int8_tolerance", f.int8_tolerance, "allowed [0, 1)")
    check(0 <= f.encoding_tolerance < 1, "finalize.encoding_tolerance", f.encoding_tolerance, "allowed [0, 1)")
    check_coreml_compression(f.coreml_compression, "finalize.coreml_compression")
    check_in("finalize.policy", f.policy, WINNER_POLICIES)
    check(f.max_bytes > 0, "finalize.max_bytes", f.max_bytes, "must be > 0")
    check(0 <= f.budget < 1, "finalize.budget", f.budget, "allowed [0, 1)")
    latency = f.get("max_latency_ratio")
    check(latency is None or 0 < latency <= 1, "finalize.max_latency_ratio", latency,
          "allowed null (no latency budget) or (0, 1]: a fraction of the teacher's latency")
    preflight = f.get("latency_preflight")
    check(preflight is None or preflight >= 1, "finalize.latency_preflight", preflight,
          "allowed null (train every finalist) or >= 1: a factor of the latency budget")
    for isa, ratio in (f.get("latency_ratio_by_isa") or {}).items():
        check(isa in ISAS, f"finalize.latency_ratio_by_isa.{isa}", ratio,
              f"allowed instruction sets {', '.join(ISAS)}")
        check(0 < ratio <= 1, f"finalize.latency_ratio_by_isa.{isa}", ratio, "allowed (0, 1]")
    check(len(f.winner_seeds) >= 1, "finalize.winner_seeds", list(f.winner_seeds), "at least one seed")


def check_tracking(uri: str) -> None:
    """An MLflow server must answer; a local SQLite store's folder must be creatable."""
    if uri.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5).read()
        except Exception as exc:  # noqa: BLE001 - any failure means "cannot reach"
            raise StoreError(f"tracking.uri={uri}: no MLflow server answers ({type(exc).__name__})") from None
    elif uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///"):]).parent
        probe = folder
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir() or not os.access(probe, os.W_OK):
            raise StoreError(f"tracking.uri={uri}: cannot create {folder}")
