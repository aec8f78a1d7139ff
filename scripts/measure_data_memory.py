"""How large a dataset fits: peak memory and time of reading a dataset of your size, and of 100 training
steps on it, each in a fresh process (issue 29; docs/own-data.md states the figures).

    python scripts/measure_data_memory.py --images 500000 --shape 32 32 3 --json report/data_memory.json

Writes a synthetic .npz (uint8 pixels, labels whose class shifts the mean pixel, so that training has
something to learn) of that size to a scratch folder, then runs, each in its own process: reading it as
`data=npz` (`compress.data.sources`), and reading it plus 100 steps of the shipped winner's student (dsconv, width 0.381) on
labels (batch 128) through the product's input pipeline (`compress.data.batches.distillation`: images held as
uint8, converted a batch at a time). Peak memory is the process's maximum resident set (`ru_maxrss`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_npz(path: Path, n: int, shape: tuple[int, int, int], classes: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    n_test = max(classes, n // 10)
    y = rng.integers(0, classes, size=n + n_test)
    x = rng.integers(0, 160, size=(n + n_test, *shape), dtype=np.uint8)
    x += (y * (90 // max(1, classes - 1))).astype(np.uint8)[:, None, None, None]  # the class moves the mean
    np.savez(path, x_train=x[:n], y_train=y[:n], x_test=x[n:], y_test=y[n:])


def stage(npz: str, steps: int, batch: int) -> dict:
    """In this process: read the data (and train `steps` steps when steps > 0); figures as a dict."""
    import resource

    from omegaconf import OmegaConf

    from compress.data import sources

    started = time.perf_counter()
    splits = sources.load_from_config(OmegaConf.create({"source": "npz", "path": npz, "val_share": 0.1,
                                                        "split_seed": 0, "fraction": 1.0, "flip": True}))
    out = {"read_s": time.perf_counter() - started, "train_images": int(len(splits.x_train)),
           "held_bytes": int(sum(a.nbytes for a in (splits.x_train, splits.x_val, splits.x_test)))}
    if steps:
        from compress.config.cli import compose
        from compress.core.compat import keras
        from compress.data import batches
        from compress.training.students import build_student

        student = compose(["student.arch=dsconv", "student.width=0.381"]).student  # the winner's family and width
        model = build_student(student, splits.num_classes, splits.image_shape)
        out["student_params"] = int(model.count_params())
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        started = time.perf_counter()
        pipeline = batches.distillation(splits.x_train, splits.y_train, batch, 0)  # the pipeline every training uses
        model.fit(pipeline, epochs=1, steps_per_epoch=steps, verbose=0)
        out["train_s"] = time.perf_counter() - started
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=500_000, help="training images (default 500000)")
    parser.add_argument("--shape", type=int, nargs=3, default=[32, 32, 3], metavar=("H", "W", "C"))
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--stage", help=argparse.SUPPRESS)  # internal: run one stage on this .npz
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(stage(args.stage, args.steps, args.batch)))
        return 0
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        npz = Path(tmp) / "data.npz"
        print(f"writing {args.images:,} images of {'x'.join(map(str, args.shape))} to {npz}", flush=True)
        write_npz(npz, args.images, tuple(args.shape), args.classes)
        result = {"images": args.images, "shape": args.shape, "npz_bytes": npz.stat().st_size,
                  "steps": args.steps, "batch": args.batch, "cpu": _cpu()}
        for name, steps in (("read", 0), ("read_and_train", args.steps)):
            print(f"{name}: a fresh process", flush=True)
            proc = subprocess.run([sys.executable, __file__, "--stage", str(npz), "--steps", str(steps),
                                   "--batch", str(args.batch)], capture_output=True, text=True, cwd=ROOT)
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                return 1
            result[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{name}: {result[name]}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


def _cpu() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
