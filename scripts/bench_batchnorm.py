"""Training time of a student with BatchNorm fused or not (`compress.training.students.BN_FUSED`).

    python scripts/bench_batchnorm.py --arch dsconv --width 0.381 --fused 1
    farm-bench -n 3 --timeout 900 -- python scripts/bench_batchnorm.py --fused 0 \
        --vs 'python scripts/bench_batchnorm.py --fused 1'

Trains the student on the distillation loss for `--epochs` passes over `--images` seeded-noise
images (the time of a step does not depend on the pixels) at `--threads` threads, after one
untimed pass, and prints the seconds a pass took. The study's and the finalists' own times are
logged per trial (`time_train_s`); this isolates the one switch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="dsconv", help="a student family (student.arch)")
    parser.add_argument("--width", type=float, default=0.381)
    parser.add_argument("--head", default="flatten", choices=("flatten", "gap"))
    parser.add_argument("--fused", type=int, choices=(0, 1), required=True)
    parser.add_argument("--images", type=int, default=12_800)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import numpy as np

    from compress.config.cli import compose
    from compress.core.compat import tf
    from compress.data import batches
    from compress.training import distill, students

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    cfg = compose([f"student.arch={args.arch}", f"student.width={args.width}", f"student.head={args.head}"])
    students.BN_FUSED = bool(args.fused)
    model = students.build_student(cfg.student)
    rng = np.random.default_rng(0)
    x = rng.random((args.images, 28, 28, 1)).astype(np.float32)
    targets = distill.pack_targets(rng.integers(0, 10, len(x)), rng.normal(size=(len(x), 10)).astype(np.float32))
    distill.compile_for_distillation(model, cfg.distill, 1e-3, 1_000, int(cfg.distill.steps_per_execution))
    data = batches.distillation(x, targets, int(cfg.distill.batch_size), 0)
    model.fit(data, epochs=1, verbose=0)  # graph building and warm-up, not timed
    start = time.perf_counter()
    model.fit(data, epochs=args.epochs, verbose=0)
    per_pass = (time.perf_counter() - start) / args.epochs
    print(f"{args.arch} w{args.width} BatchNorm {'fused' if args.fused else 'not fused'}, {args.threads} thread(s): "
          f"{per_pass:.2f} s per {args.images:,} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
