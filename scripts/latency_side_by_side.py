"""Single-image latency of .tflite files timed together in alternating rounds on this machine, each as a
ratio of the first (the reference, e.g. the teacher's float32 TFLite), with the machine it ran on.

    python scripts/latency_side_by_side.py .cache/reference/teacher_*_float32.tflite winner/winner.tflite ...
"""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="the reference first, then the files to compare")
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    from compress.data import fashion_mnist
    from compress.measure import machine
    from compress.measure import tflite as measure

    image = fashion_mnist.load(None).x_test[0]
    ms = measure.latencies(args.files, image, args.runs, args.warmup, args.threads)
    here = machine.record()
    print(f"machine: {machine.describe(here['cpu'], here['isa'])}; {args.runs} runs, {args.threads} thread(s)")
    for path, value in zip(args.files, ms):
        print(f"{path}: {value:.4f} ms, {value / ms[0]:.4f} of the first")
    return 0


if __name__ == "__main__":
    sys.exit(main())
