"""A finalist's recipe: its trial's searched values under the final training recipe, and the hash
that identifies what it trained (the finalists' table is keyed by it)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
from omegaconf import OmegaConf, open_dict

from compress.core import metrics as M
from compress.finalize import selection as finalists


def final_epochs(f, row) -> int:
    """`finalize.small_class_epochs` for a recipe whose int8 file (estimated from its trial's
    parameters, as the selection reads it) fits the smallest size class, else `finalize.epochs`."""
    estimate = finalists.ship_estimate(row)
    small = bool(f.size_classes) and estimate is not None and estimate <= min(int(c) for c in f.size_classes)
    return int(f.small_class_epochs) if small else int(f.epochs)


def copied(cfg, values: dict | None = None):
    """A writable copy of `cfg` (interpolations kept) with each dotted key of `values` set."""
    out = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    for key, value in (values or {}).items():
        OmegaConf.update(out, key, value, force_add=True)
    return out


def taught(cfg):
    """`cfg` with the finalists' teacher (`finalize.teacher`: user or ensemble, docs/teachers.md) as
    `distill.teacher`; null leaves the study's. The search's trials keep the teacher they ran with."""
    teacher = cfg.finalize.get("teacher")
    if teacher is None or str(teacher) == str(cfg.distill.get("teacher", "user")):
        return cfg
    return copied(cfg, {"distill.teacher": str(teacher)})


def finalist_config(cfg, row, seed: int):
    """The trial's searched recipe under the final training recipe."""
    f = cfg.finalize
    out = copied(taught(cfg))
    with open_dict(out):
        for name in M.SEARCHED_PARAMS:
            value = row.get(name)
            if value is None or (isinstance(value, float) and np.isnan(value)):
                continue
            group, key = name.split(".")
            current = out[group][key]
            out[group][key] = type(current)(value) if isinstance(current, (int, float, str)) else value
        final_width = row.get(finalists.FINAL_WIDTH)  # widened to fill its size class (finalize/fill.py)
        if final_width is not None and not (isinstance(final_width, float) and np.isnan(final_width)):
            out.student.width = float(final_width)
        for group, key in (("distill", "temperature"), ("distill", "alpha"), ("student", "width")):
            if f.get(key) is not None:  # set for every finalist instead of its trial's (null: the trial's)
                out[group][key] = float(f[key])
        out.distill.epochs = final_epochs(f, row)
        out.distill.learning_rate = float(f.learning_rate)
        out.distill.augment = str(f.augment)
        out.quant.qat_epochs = int(f.qat_epochs)
        if float(out.prune.sparsity) > 0:  # unpruned recipes keep their hash: prune.epochs does not touch them
            out.prune.epochs = max(int(out.prune.epochs), int(f.prune_epochs))
        out.early_stop.enabled = False
        out.seed = int(seed)
        out.study.study_name = None
        out.study.trial_number = None
        out.study.storage = None
    return out


def _table_precision(node):
    """Floats at the 6 significant digits the trials table keeps (analysis.table.write): a recipe
    read from MLflow and the same recipe read from the committed table are the same recipe."""
    if isinstance(node, dict):
        return {k: _table_precision(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_table_precision(v) for v in node]
    return float(f"{node:.6g}") if isinstance(node, float) else node


def recipe_hash(cfg) -> str:
    """Identifies what a finalist trained: the resolved config less bookkeeping, its floats at
    the trials table's precision (so a fresh clone, reading the committed table, finds the
    finalists trained here from MLflow's full-precision values)."""
    body = _table_precision(OmegaConf.to_container(cfg, resolve=True))
    for key in ("tracking", "study", "finalize", "targets", "measure", "verbose", "paths"):
        body.pop(key, None)
    ensemble = body.pop("ensemble", None)
    if body.get("distill", {}).get("teacher", "user") == "user":  # the user's teacher: hashes as before the option
        body.get("distill", {}).pop("teacher", None)
    else:  # who taught is part of what trained
        body["ensemble"] = {k: v for k, v in (ensemble or {}).items() if k not in ("path", "members_from")}
    if body.get("student", {}).get("arch", "cnn") == "cnn":  # a key the cnn family ignores: its recipes
        body["student"].pop("channel_multiple", None)  # hash as they did before it
    if body.get("prune", {}).get("method", "magnitude") == "magnitude":  # keys added with channel pruning:
        body["prune"].pop("method", None)  # magnitude recipes hash as they did before them
        body["prune"].pop("importance", None)
    data = body.get("data", {})
    if data.get("source", "fashion_mnist") == "fashion_mnist":  # keys added with other sources: Fashion-MNIST's
        for key in ("source", "path", "val_share", "channels", "image_size"):  # recipes hash as they did before
            data.pop(key, None)
        if data.get("flip", True):  # flips allowed, as they always were: no key; without flips, another recipe
            data.pop("flip", None)
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:12]
