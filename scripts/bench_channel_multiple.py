"""Int8 latency of dsconv-family students with channel counts rounded to a multiple or not
(`student.channel_multiple`), beside the teacher's float32 TFLite in the same process.

    python scripts/bench_channel_multiple.py --widths 0.30 0.35 0.381 0.42 --archs dsconv dsconv_s2

For each family and width, builds the student twice (channel_multiple 1 and `--multiple`), with
random weights and BatchNorm statistics, converts both to full-integer int8 per-tensor (the shipping
encoding, slimmed) on `--samples` real training images, and times every file and the teacher's in
alternating rounds (`compress.measure.tflite.latencies`: one image, one thread, median of `--runs`).
Prints one row per student: channels, parameters, bytes and the latency ratio to the teacher in each
of `--repeats` timing passes. Latency does not depend on the weights' values, so random ones do.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["dsconv"], help="dsconv families (student.arch)")
    parser.add_argument("--widths", nargs="+", type=float, default=[0.381])
    parser.add_argument("--head", default="flatten", choices=("flatten", "gap"))
    parser.add_argument("--multiple", type=int, default=8)
    parser.add_argument("--samples", type=int, default=64, help="representative images for the int8 scales")
    parser.add_argument("--runs", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)

    from omegaconf import open_dict

    from compress.config.cli import compose
    from compress.measure import tflite as measure
    from compress.search import context
    from compress.training import encode, quantize, students

    cfg = compose([])
    ctx = context.get(cfg)  # the data and the teacher's float32 TFLite, as a trial has them
    splits, teacher = ctx.splits, ctx.teacher_tflite
    representative = splits.x_train[: args.samples]
    rows, paths = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.archs:
            for width in args.widths:
                for multiple in (1, args.multiple):
                    student = cfg.student.copy()
                    with open_dict(student):
                        student.arch, student.width, student.head = arch, width, args.head
                        student.channel_multiple = multiple
                    model = students.build_student(student)
                    path = Path(tmp) / f"{arch}_{width}_{multiple}.tflite"
                    quantize.write(encode.slim(quantize.convert(model, "int8", representative, "per_tensor")), path)
                    stem, blocks = students.dsconv_plan(width, int(student.min_channels), arch, multiple)
                    rows.append((arch, width, multiple, [stem] + [c for c, _ in blocks], model.count_params(),
                                 path.stat().st_size))
                    paths.append(path)
        image = splits.x_test[0]
        ratios = []
        for _ in range(args.repeats):
            times = measure.latencies([*paths, teacher], image, runs=args.runs)
            ratios.append([t / times[-1] for t in times[:-1]])
    print("family | width | channel_multiple | channels | parameters | int8 bytes | latency / teacher")
    for i, (arch, width, multiple, channels, params, size) in enumerate(rows):
        per_pass = " / ".join(f"{r[i]:.4f}" for r in ratios)
        print(f"{arch} | {width} | {multiple} | {','.join(map(str, channels))} | {params:,} | {size:,} | {per_pass}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
