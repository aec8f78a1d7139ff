"""The stronger teacher's stage: its members from the cache, from a folder of members trained elsewhere
(`ensemble.members_from`), or trained here (resumable, an epoch at a time); then assembled into one
Keras file with a card beside it (data, seeds, epochs, each member's and the whole's accuracy, where
and how long each member trained). The user's teacher is never touched."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from compress.core.compat import keras
from compress.core.errors import ConfigError
from compress.core.options import DEFAULT_TEACHER_PATH
from compress.data import arrays
from compress.data.fashion_mnist import sha256_of
from compress.data.splits import Splits
from compress.teacher import ensemble
from compress.teacher.model import check_fits, load_keras

log = logging.getLogger(__name__)


def member_folder(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / "ensembles" / key


def _import(members_from: str | None, key: str, folder: Path) -> bool:
    """Copy a member trained elsewhere whose file name ends in its recipe hash."""
    if not members_from:
        return False
    found = sorted(Path(members_from).glob(f"*_{key}.npz"))
    if not found:
        return False
    with np.load(found[0]) as stored:
        state = json.loads(str(stored["state"]))
    if not state.get("finished"):
        log.warning("ensemble: %s stopped after epoch %d of %d: not taken", found[0], state["epochs_done"],
                    state["recipe"]["epochs"])
        return False
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(found[0], folder / "weights.npz")
    log.info("ensemble: member %s taken from %s (trained on %s)", key, found[0], state.get("device", "?"))
    return True


def members(ensemble_cfg, splits: Splits, cache_dir: str | Path) -> list[tuple]:
    """(model, state, recipe hash) for every member, training the missing ones."""
    e = OmegaConf.to_container(ensemble_cfg, resolve=True) if not isinstance(ensemble_cfg, dict) else ensemble_cfg
    out = []
    for k in range(int(e["members"])):
        recipe = ensemble.member_recipe({**e, "flip": bool(e["flip"]) and splits.flips}, k, splits.image_shape,
                                        splits.num_classes)
        key = ensemble.recipe_hash(recipe, splits.fingerprint, int(splits.val_index.sum()))
        folder = member_folder(cache_dir, key)
        if not (folder / "weights.npz").is_file() and not _import(e.get("members_from"), key, folder):
            log.info("ensemble: training member %d of %d (%s, %d epochs, recipe %s) in %s", k + 1, e["members"],
                     e["arch"], e["epochs"], key, folder)
            ensemble.train_member(keras, recipe, splits.x_train, splits.y_train, splits.x_val, splits.y_val, folder)
        model, state = ensemble.load_weights(keras, folder / "weights.npz")
        out.append((model, state, key))
    return out


def target_path(ensemble_cfg, kind: str, sweeps_dir: str, study: str) -> Path:
    """Where the assembled file goes: `ensemble.path`, or the study's folder for data (of `kind`, the
    splits' source) other than Fashion-MNIST when the path is the committed one's."""
    path = Path(str(ensemble_cfg.path))
    if path.resolve() == Path(DEFAULT_TEACHER_PATH).resolve():
        raise ConfigError(f"ensemble.path={path}: that is the user's teacher; the ensemble goes elsewhere")
    if kind != "fashion_mnist" and str(path).startswith("models/"):
        path = Path(sweeps_dir) / study / "ensemble" / path.name
    return path


def build(ensemble_cfg, splits: Splits, cache_dir: str | Path, target: Path) -> dict:
    """Assemble the members into `target` and write its card; returns the card."""
    parts = members(ensemble_cfg, splits, cache_dir)
    model = ensemble.assemble(keras, [m for m, _, _ in parts], splits.image_shape, name=str(ensemble_cfg.name))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.stem + ".tmp.keras")
    model.save(tmp)
    tmp.replace(target)
    cards = []
    for m, state, key in parts:
        cards.append({"recipe_hash": key, "seed": [state["recipe"]["seed"], state["recipe"]["member"]],
                      "epochs": state["epochs_done"], "trained_on": state.get("device", "this machine"),
                      "train_seconds": state["train_seconds"],
                      "val_accuracy": arrays.keras_accuracy(m, splits.x_val, splits.y_val),
                      "test_accuracy": arrays.keras_accuracy(m, splits.x_test, splits.y_test)})
        log.info("ensemble: member %s val %.4f test %.4f", key, cards[-1]["val_accuracy"], cards[-1]["test_accuracy"])
    card = {
        "name": str(ensemble_cfg.name),
        "kind": "ensemble: the mean of its members' logits",
        "data": {"source": splits.source, "kind": splits.kind, "image_shape": list(splits.image_shape),
                 "class_names": list(splits.class_names), "fingerprint": splits.fingerprint,
                 "val_size": int(len(splits.y_val))},
        "recipe": {k: v for k, v in OmegaConf.to_container(ensemble_cfg, resolve=True).items()
                   if k in ensemble.RECIPE_KEYS or k == "members"},
        "params": int(model.count_params()),
        "members": cards,
        "val_accuracy": arrays.keras_accuracy(model, splits.x_val, splits.y_val),
        "test_accuracy": arrays.keras_accuracy(model, splits.x_test, splits.y_test),
        "train_seconds": round(sum(c["train_seconds"] for c in cards), 1),
        "sha256": sha256_of(target),
        "size_bytes": target.stat().st_size,
    }
    target.with_name("card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def check_present(path: Path) -> None:
    """One line unless the assembled ensemble is at `path`."""
    if not path.is_file():
        raise ConfigError(f"distill.teacher=ensemble: no ensemble at {path}; build it: python -m compress.ensemble "
                          f"(with the same data and ensemble options)")


def load(path: Path, splits: Splits) -> keras.Model:
    """The assembled ensemble at `path`, checked against the data, its validation accuracy logged."""
    check_present(path)
    model = check_fits(load_keras(path), path, splits.image_shape, splits.num_classes)
    log.info("ensemble teacher: %s (%s parameters), validation accuracy %.2f%%", path, f"{model.count_params():,}",
             100 * arrays.keras_accuracy(model, splits.x_val, splits.y_val))
    return model
