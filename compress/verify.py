"""`python -m compress.verify PATH [--against OTHER] [--json]`: score an exported model file.

Runs a `.tflite` file through LiteRT or a `.mlpackage` through Core ML (macOS) or the NumPy
reference executor (elsewhere) on the full Fashion-MNIST test set, and prints one line:
accuracy, images, bytes and, with --against, how often its top-1 agrees with another model's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from compress.errors import CompressError, DataError

SUFFIXES = (".tflite", ".mlpackage")


def model_bytes(path: Path) -> int:
    """Bytes on disk: the file, or every file inside an .mlpackage folder."""
    if path.is_dir():
        from compress.coreml import package_bytes

        return package_bytes(path)
    return path.stat().st_size


def predictions(path: Path, images: np.ndarray) -> np.ndarray:
    """Top-1 class of each image from the exported file itself."""
    if path.suffix == ".tflite":
        from compress import measure

        return np.argmax(measure.predict(path, images), axis=1)
    from compress import coreml_exec

    return np.argmax(coreml_exec.predict(path, images), axis=1)


def check_path(path: Path) -> Path:
    if path.suffix not in SUFFIXES:
        raise CompressError(f"{path}: not a model file; allowed {', '.join(SUFFIXES)}")
    if not path.exists():
        raise CompressError(f"{path}: no such file")
    return path


def score(path: Path, against: Path | None = None, data_dir: str | None = None, fraction: float = 1.0,
          splits=None) -> dict:
    """Accuracy of `path` on the full test set (or the head `fraction` of it, as a smoke study
    used), and top-1 agreement with `against`.  Pass `splits` to score several files on data
    loaded once."""
    from compress import data

    path = check_path(Path(path))
    against = check_path(Path(against)) if against else None
    if splits is None:
        splits = data.load(data_dir)
    splits = splits.sliced(fraction)
    preds = predictions(path, splits.x_test)
    result = {"path": str(path), "accuracy": float(np.mean(preds == splits.y_test)), "n": int(len(preds)),
              "size_bytes": model_bytes(path)}
    if against is not None:
        other = predictions(against, splits.x_test)
        result.update({"against": str(against), "agreement": float(np.mean(preds == other)),
                       "against_accuracy": float(np.mean(other == splits.y_test))})
    return result


def line(result: dict) -> str:
    text = (f"{result['path']}: test accuracy {100 * result['accuracy']:.2f}% on {result['n']:,} images, "
            f"{result['size_bytes']:,} bytes")
    if "agreement" in result:
        text += (f"; top-1 agrees with {result['against']} ({100 * result['against_accuracy']:.2f}%) "
                 f"on {100 * result['agreement']:.2f}% of images")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compress.verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, help="a .tflite file or a .mlpackage folder")
    parser.add_argument("--against", type=Path, help="another model to compare top-1 predictions with")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a line")
    parser.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files (default: the usual places)")
    args = parser.parse_args(argv)
    try:
        result = score(args.path, args.against, args.data_dir)
    except (CompressError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else line(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
