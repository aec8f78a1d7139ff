"""`python -m compress.bench`: the exported winner against the anchors, in one process and one run.

Five .tflite files measured the same way, side by side:

- `teacher_float32`: the user's teacher converted as it is (the latency reference);
- `teacher_dynamic`: the teacher with dynamic-range quantization, what the seed write-ups ship;
- `teacher_pruned50_int8`: the textbook tfmot recipe, the teacher pruned to 50% while fine-tuned
  on the labels, stripped and quantized to full int8;
- `student_no_distillation`: the winner's own recipe (width, head, pruning, quantization, epochs,
  seed) trained on the labels alone (`distill.alpha=1`: no teacher is loaded, no logits read), so the row
  shows what distillation buys;
- `winner`: the exported winner file.

For each: test accuracy scored from the file on the full test set, bytes, gzipped bytes, MACs,
single-image latency (one thread, median of `measure.latency_runs` after warm-up, all five
timed in alternating rounds) and its ratio to the teacher's.  The anchors that need training
are cached under `paths.cache_dir/anchors`, keyed by what they were made from.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from compress.bench.anchors import COLUMNS, run, table
from compress.config import paths
from compress.config.cli import console_logging
from compress.core.errors import CompressError
from compress.search.preflight import preflight


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compress.bench", description=__doc__.split("\n\n")[0])

    paths.add_study_arguments(parser, tracking=False)
    parser.add_argument("--winner", type=Path, default=None,
                        help="the exported winner's folder (default: winner/ for the default study, "
                             "sweeps/<study>/winner otherwise)")
    parser.add_argument("--json", type=Path, default=None,
                        help="where the rows are written as a JSON list (default: report/bench.json for the default "
                             "study, sweeps/<study>/report/bench.json otherwise); the report reads it")
    parser.add_argument("--prune-epochs", type=int, default=1,
                        help="fine-tuning epochs of the pruned teacher (default 1)")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. measure.latency_runs=400")
    args = parser.parse_args(argv)

    console_logging()
    try:
        cfg = paths.compose_for(args.study, ["tracking.enabled=false", *args.overrides])
        sp = paths.of(cfg)
        out_json = sp.check_writable(args.json or sp.report_dir / "bench.json", "--json")
        preflight(cfg)
        rows = run(cfg, args.winner or sp.winner_dir, args.prune_epochs)
    except CompressError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(table(rows))
    print(f"test accuracy on {rows[0]['n_test']:,} images from each file; latency: 1 image, "
          f"{cfg.measure.threads} thread, median of {cfg.measure.latency_runs} after {cfg.measure.warmup} warm-up, "
          f"all models in alternating rounds")
    out_json.parent.mkdir(parents=True, exist_ok=True)
    keys = (*COLUMNS, "file", "n_test", "cpu", "isa")  # cpu and isa: the machine the latencies ran on
    out_json.write_text(json.dumps([{k: r[k] for k in keys} for r in rows], indent=2) + "\n")
    print(f"-> {out_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
