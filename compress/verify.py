"""`python -m compress.verify PATH [--against OTHER] [--data FILE.npz] [--json] [--save FILE]`: score a model.

Runs a `.tflite` file through LiteRT or any `.mlpackage` classifier through Core ML (macOS) or
the NumPy reference executor (elsewhere), or a `.keras` model (to compare against a teacher), on
the full test set of the study's data (Fashion-MNIST, or the data a study's winner.json records;
or your own test set: `--data file.npz` with arrays `x` and `y`, or `x_test` and `y_test`), and
prints one line: accuracy, images, bytes, how the model's
interface was read (input layout and scale, which output), with `--against` how often its top-1
agrees with another model's and whether their accuracies differ beyond chance (McNemar's exact
test), and with `--precision fp16` how often float16 activations (what the GPU and Neural Engine
compute in) change the answer.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from compress.core.errors import CompressError, DataError
from compress.data.fashion_mnist import sha256_of
from compress.measure.scoring import line, score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compress.verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, help="a .tflite file or a .mlpackage folder")
    parser.add_argument("--against", type=Path, help="another model to compare top-1 predictions with")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a line")
    parser.add_argument("--save", type=Path, help="also write that JSON object to this file (e.g. "
                                                  "report/paired_teacher.json, which report.md states)")
    parser.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files (default: the usual places)")
    parser.add_argument("--data", type=Path, help="your own test set instead: an .npz with arrays x (n, H, W[, C]; "
                                                  "uint8 pixels or floats in [0, 1]) and y (class indices)")
    parser.add_argument("--input-range", choices=("0-1", "0-255"), default="0-1",
                        help="how a float multiarray input is scaled, where the model cannot say (default 0-1, the "
                             "Keras convention); image inputs take pixels and scale them themselves")
    parser.add_argument("--output", help="the output holding the class scores, when a model has several "
                                         "(default: the classifier's, else the one with a class axis)")
    parser.add_argument("--precision", choices=("fp32", "fp16"), default="fp32",
                        help="fp16: also run the .mlpackage with float16 activations and report how often the "
                             "answer changes (default fp32)")
    args = parser.parse_args(argv)
    try:
        result = score(args.path, args.against, args.data_dir, data_file=args.data, input_range=args.input_range,
                       output=args.output, precision=args.precision, paired_test=True)
    except (CompressError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else line(result))
    if args.save:  # with the file's digest: a reader can tell it from another file of the same size
        saved = {**result, "sha256": sha256_of(args.path)} if Path(args.path).is_file() else result
        args.save.parent.mkdir(parents=True, exist_ok=True)
        partial = args.save.with_suffix(".partial")
        partial.write_text(json.dumps(saved, indent=1) + "\n")
        partial.replace(args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
