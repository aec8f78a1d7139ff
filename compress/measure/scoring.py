"""Scoring an exported file from disk: a `.tflite` through LiteRT, a `.mlpackage` through Core ML
(macOS) or the NumPy reference executor (elsewhere), on the test split or a user's `.npz`.

The trial, the finalists, the winner's export and `python -m compress.verify` all score files
here, so that every accuracy the product prints is the file's own.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from compress.core.errors import CompressError, DataError
from compress.core.stats import mcnemar
from compress.coreml import executor as coreml_exec
from compress.coreml.package import package_bytes
from compress.data import arrays, sources
from compress.data import fashion_mnist as data
from compress.measure import tflite as measure

SUFFIXES = (".tflite", ".mlpackage", ".keras")  # .keras: a teacher, to compare against


def model_bytes(path: Path) -> int:
    """Bytes on disk: the file, or every file inside an .mlpackage folder."""
    if path.is_dir():
        return package_bytes(path)
    return path.stat().st_size


def predictions(path: Path, images: np.ndarray, **options) -> np.ndarray:
    """Top-1 class of each image from the exported file itself."""
    return _predict(path, images, **options)[0]


def _predict(path: Path, images: np.ndarray, n_classes: int | None = None, input_range: str = "0-1",
             output: str | None = None, precision: str = "fp32", class_names=None) -> tuple[np.ndarray, str | None]:
    """(top-1 classes, how the interface was read: None for a .tflite file). A .mlpackage's
    classes are the model's own; `n_classes` (labels run up to n_classes - 1) only bounds them, and
    a classifier's labels are matched to `class_names` (the data's; None: Fashion-MNIST's)."""
    if path.suffix == ".tflite":
        return np.argmax(measure.predict(path, images), axis=1), None
    if path.suffix == ".keras":  # safe mode: no code from the file runs
        from compress.core.compat import keras

        model = keras.models.load_model(path, compile=False, safe_mode=True)
        return np.argmax(arrays.predict(model, images), axis=1), None
    scores, reading = coreml_exec.predict(path, images, n_classes=n_classes, input_range=input_range,
                                          output=output, precision=precision, with_reading=True,
                                          class_names=class_names)
    return np.argmax(scores, axis=1), reading.describe()


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """A user's test set: `x` images (n, H, W) or (n, H, W, C), uint8 pixels or floats in [0, 1];
    `y` integer labels (or `x_test` and `y_test`, as `data=npz` files hold them). Returns images as
    floats in [0, 1], (n, H, W, C), labels, and a note saying which arrays were read and how."""
    try:
        arrays = np.load(path)
        names = ("x", "y") if "x" in arrays.files else ("x_test", "y_test")
        x, y = np.asarray(arrays[names[0]]), np.asarray(arrays[names[1]]).reshape(-1)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"--data {path}: not an .npz with arrays x and y, or x_test and y_test "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
    which = "" if names[0] == "x" else "x_test/y_test, "
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or len(x) != len(y) or not len(y):
        raise DataError(f"--data {path}: x has shape {x.shape} and y {y.shape}; expected x (n, H, W[, C]) and y (n,)")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise DataError(f"--data {path}: y must hold class indices 0..k-1 (it holds {y.dtype}, min {y.min()})")
    if np.issubdtype(x.dtype, np.integer):
        return x.astype(np.float32) / 255.0, y, f"{which}x read as pixels 0-255"
    if x.min() < 0 or x.max() > 1:
        raise DataError(f"--data {path}: float x must be in [0, 1] (it spans {x.min():.3g}..{x.max():.3g}); "
                        f"store pixels as uint8 instead")
    return x.astype(np.float32), y, f"{which}x read as floats in [0, 1]"


def study_data(path: Path):
    """The splits a study's exported file was trained on, when a winner.json beside it (or two folders
    up, for winner/finalists/<name>/) names data other than Fashion-MNIST; None for Fashion-MNIST. The
    data is read again and must have the digest it had then."""
    for folder in (path.parent, path.parent.parent.parent):
        record = folder / "winner.json"
        if record.is_file():
            data_block = json.loads(record.read_text()).get("data")
            if not data_block:
                return None
            splits = sources.load_from_config(OmegaConf.create(data_block["config"]))
            if splits.fingerprint != data_block["fingerprint"]:
                raise DataError(f"{path}: trained on {data_block['source']} with digest "
                                f"{data_block['fingerprint'][:12]}, which now reads as {splits.fingerprint[:12]}: "
                                f"the data changed (pass --data)")
            return splits
    return None


def check_path(path: Path) -> Path:
    if path.suffix not in SUFFIXES:
        raise CompressError(f"{path}: not a model file; allowed {', '.join(SUFFIXES)}")
    if not path.exists():
        raise CompressError(f"{path}: no such file")
    return path


def score(path: Path, against: Path | None = None, data_dir: str | None = None, fraction: float = 1.0,
          splits=None, data_file: Path | None = None, input_range: str = "0-1", output: str | None = None,
          precision: str = "fp32", paired_test: bool = False) -> dict:
    """Accuracy of `path` on the full test set (or the head `fraction` of it, as a smoke study
    used, or `data_file`'s arrays), and top-1 agreement with `against`.  Pass `splits` to score
    several files on data loaded once. With `precision='fp16'`, also the top-1 agreement of
    float16 activations with float32 (a .mlpackage)."""
    path = check_path(Path(path))
    against = check_path(Path(against)) if against else None
    note = None
    if data_file is not None:
        x, y, note = load_npz(Path(data_file))
    else:
        if splits is None and data_dir is None:
            splits = study_data(path)
            if splits is not None:
                note = f"the study's data, {splits.kind} at {splits.source}, as winner.json records it"
        if splits is None:
            splits = data.load(data_dir)
        splits = splits.sliced(fraction)
        x, y = splits.x_test, splits.y_test
    # the model says how many classes it has; the labels only bound it (a test set may lack a class)
    options = {"n_classes": int(y.max()) + 1, "input_range": input_range, "output": output,
               "class_names": splits.export_class_names if splits is not None else None}
    preds, reading = _predict(path, x, **options)
    result = {"path": str(path), "accuracy": float(np.mean(preds == y)), "n": int(len(preds)),
              "size_bytes": model_bytes(path)}
    if reading:
        result["interface"] = reading
    if note:
        result["data"] = f"{data_file} ({note})" if data_file is not None else note
    if precision == "fp16" and path.suffix == ".mlpackage":
        half, _ = _predict(path, x, precision="fp16", **options)
        result.update({"fp16_accuracy": float(np.mean(half == y)), "fp16_agreement": float(np.mean(half == preds))})
    if against is not None:
        other, _ = _predict(against, x, **options)
        result.update({"against": str(against), "agreement": float(np.mean(preds == other)),
                       "against_accuracy": float(np.mean(other == y))})
        if paired_test:  # are the two accuracies different beyond chance? (verify --against)
            test = mcnemar(preds == y, other == y)
            result.update({"only_this_right": test["only_a"], "only_against_right": test["only_b"],
                           "mcnemar_p": test["p_value"]})
    return result


def line(result: dict) -> str:
    text = (f"{result['path']}: test accuracy {100 * result['accuracy']:.2f}% on {result['n']:,} images, "
            f"{result['size_bytes']:,} bytes")
    if "agreement" in result:
        text += (f"; top-1 agrees with {result['against']} ({100 * result['against_accuracy']:.2f}%) "
                 f"on {100 * result['agreement']:.2f}% of images")
    if "mcnemar_p" in result:
        text += (f"; right where the other is wrong on {result['only_this_right']:,} images, the reverse on "
                 f"{result['only_against_right']:,} (McNemar's exact test: p = {result['mcnemar_p']:.2g})")
    if "fp16_agreement" in result:
        text += (f"; with float16 activations {100 * result['fp16_accuracy']:.2f}%, the same answer on "
                 f"{100 * result['fp16_agreement']:.2f}% of images")
    if "interface" in result:
        text += f"\n  read as: {result['interface']}"
    if "data" in result:
        text += f"\n  data: {result['data']}"
    return text
