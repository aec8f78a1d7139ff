"""Teacher cards: what a teacher file is (its data, parameters, epochs, accuracy, sha256), written
beside it when it is published, and for a study on other data in `sweeps/<study>/teacher/`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from compress.core.compat import keras
from compress.data.arrays import keras_accuracy
from compress.data.fashion_mnist import sha256_of
from compress.data.splits import Splits


def publish(model_path: Path, target: Path) -> dict:
    """Copy a cached teacher and its card to `target`, adding the file's sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_path, target)
    card = json.loads((model_path.parent / "card.json").read_text())
    card["sha256"] = sha256_of(target)
    card["size_bytes"] = target.stat().st_size
    target.with_name("card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def card_for_study(model: keras.Model, path: Path, splits: Splits, folder: Path) -> Path:
    """`folder`/card.json for a study on data other than Fashion-MNIST: the card of the teacher trained
    here (the file published beside it), or one measured now for the user's own file. Rewritten only
    when the teacher file changed."""
    card_path, sha = folder / "card.json", sha256_of(path)
    if card_path.is_file() and json.loads(card_path.read_text()).get("sha256") == sha:
        return card_path
    trained_card = Path(path).parent / "card.json"
    if trained_card.is_file() and Path(path).name == "teacher.keras":
        publish(Path(path), folder / "teacher.keras")
        return card_path
    card = {"name": model.name, "path": str(path), "data": {"source": splits.source, "kind": splits.kind,
            "image_shape": list(splits.image_shape), "class_names": list(splits.class_names)},
            "params": int(model.count_params()), "epochs": None, "val_size": int(len(splits.y_val)),
            "val_accuracy": keras_accuracy(model, splits.x_val, splits.y_val),
            "test_accuracy": keras_accuracy(model, splits.x_test, splits.y_test), "sha256": sha,
            "size_bytes": Path(path).stat().st_size}
    folder.mkdir(parents=True, exist_ok=True)
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return card_path
