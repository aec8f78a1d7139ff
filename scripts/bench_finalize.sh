#!/usr/bin/env bash
# The 90-minute target of the finalize stage: the default selection's six finalists trained from scratch with
# finalize.jobs=2 (two one-thread processes) and the winner exported, into scratch stores under $1 (default
# /tmp/compress_bench_finalize, emptied first), from the committed trials table. One seed (the winner's two
# extra seeds add about its own training time). Run it on a machine doing nothing else; it prints the wall time
# and each finalist's own time_total_s.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH=${1:-/tmp/compress_bench_finalize}
rm -rf "$SCRATCH" && mkdir -p "$SCRATCH"
echo "bench_finalize: six finalists into $SCRATCH (about 50 minutes on 2 cores); progress: $SCRATCH/run/finalize_finalists_*/finalize.log"
start=$(date +%s)
"${PYTHON:-python3}" -m compress.finalize finalize.jobs=2 'finalize.winner_seeds=[0]' \
  tracking.uri="sqlite:///$SCRATCH/mlflow.db" tracking.artifact_root="$SCRATCH/artifacts" \
  finalize.out_dir="$SCRATCH/out" finalize.export_dir="$SCRATCH/winner" finalize.work_dir="$SCRATCH/work" \
  finalize.trials_table=report/trials.csv hydra.run.dir="$SCRATCH/run" > "$SCRATCH/finalize.log" 2>&1 \
  || { echo "bench_finalize: compress.finalize failed, see $SCRATCH/finalize.log" >&2; exit 1; }
wall=$(( $(date +%s) - start ))
"${PYTHON:-python3}" - "$SCRATCH/out/finalists.csv" "$wall" <<'PY'
import sys
import pandas as pd
table, wall = pd.read_csv(sys.argv[1]), int(sys.argv[2])
for _, r in table.iterrows():
    print(f"  trial {int(r['trial'])} seed {int(r['seed'])}: {float(r['time_total_s']):,.0f} s, "
          f"{int(r['ship_size_bytes']):,} B, test {100 * float(r['ship_test_accuracy']):.2f}%")
print(f"bench_finalize: {len(table)} finalists and the export in {wall:,} s wall ({wall / 60:.1f} min; target 90 min)")
PY
