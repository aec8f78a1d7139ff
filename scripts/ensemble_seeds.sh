#!/usr/bin/env bash
# Issue 30's measurement, resumable: the 64 KB (trial 5) and 16 KB (trial 62, widened to fill its class:
# finalize.fill_size_classes=[16384]) finalists' recipes distilled from the committed ensemble
# (distill.teacher=ensemble), seeds 0, 1 and 2, rows into report/teachers/finalists.csv
# (a row already there, found by its recipe hash, is not trained again: stop it any time and run it again).
# About an hour a trial-5 seed and 20 minutes a trial-62 seed on one thread; nothing is exported.
# Then: python -m compress.verify report/teachers/... --against winner/winner.tflite (McNemar), docs/teachers.md.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-sweeps/teachers}
mkdir -p "$WORK"
for seed in 0 1 2; do
  for trial in 62 5; do
    echo "ensemble_seeds: trial $trial seed $seed (log: $WORK/finalize.log)"
    "${PYTHON:-python3}" -m compress.finalize "finalize.trials=[$trial]" seed=$seed distill.teacher=ensemble \
      "finalize.fill_size_classes=[16384]" finalize.export=false finalize.max_latency_ratio=null finalize.out_dir=report/teachers \
      finalize.work_dir="$WORK/finalists" tracking.uri="sqlite:///$WORK/mlflow.db" \
      tracking.artifact_root="$WORK/artifacts" hydra.run.dir="$WORK/run" >> "$WORK/finalize.log" 2>&1 \
      || { echo "ensemble_seeds: trial $trial seed $seed failed, see $WORK/finalize.log" >&2; exit 1; }
  done
done
"${PYTHON:-python3}" scripts/teacher_table.py --trials 62 5
