#!/usr/bin/env bash
# The whole main job timed from empty stores: the default study's 60 trials, its finalists with the winner's and
# each size class leader's seeds, the benchmark and the report, each stage a README command, under a study name
# of its own (paths.study, default main_job_timed) so that no committed table is read or written, every store and
# cache (Optuna, MLflow, the teacher's logits) under $1 (default /tmp/compress_main_job). Its kept ledger,
# report/main_job_timing/, is summed in report.md; run it on a machine doing nothing else.
#
# Resumable: each stage's wall time is appended to $1/stages.csv when it ends or is stopped (Ctrl-C, kill); run
# the same command again and the finished stages are skipped, a stopped one resumes where its command stopped
# (the study and finalize resume by themselves). The total is the sum of the rows. A running stage also writes
# its time so far to $1/running every 30 s: where the script itself was killed (the machine stopped, kill -9),
# the next run books that as an "interrupted" row first, so at most 30 s of a stop goes unrecorded; and the
# machine's busy CPU time and this run's own to $1/cpu.csv, so that the summary says how much other work
# shared the cores. SUMMARY_ONLY=1 prints the sum of a kept ledger and runs nothing.
# STOP_AFTER=study (or finalize, bench) ends the run once that stage is done, so that each stage may run whole in
# a session of its own. Extra arguments are config overrides for every stage; JOBS=1 runs one at a time (default JOBS=2:
# hydra.sweeper.n_jobs=2 finalize.jobs=2); experiment=smoke finalize.max_latency_ratio=null tries it in minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
SCRATCH=${1:-/tmp/compress_main_job}
shift || true
STUDY=${STUDY:-main_job_timed}
JOBS=${JOBS:-2}
PY=${PYTHON:-python3}
LEDGER=$SCRATCH/stages.csv
summary() {  # the ledger's sum by stage, the machine(s) it ran on, how much other work shared the cores, and
  # (from finalize on) what the timed study's finalists reached, kept beside the ledger in outcome.json
  "$PY" -m analysis.main_job_timing "$SCRATCH" --study "$STUDY"
}

if [ "${SUMMARY_ONLY:-0}" = 1 ]; then summary; exit; fi  # e.g. of the committed report/main_job_timing/
mkdir -p "$SCRATCH"
# one run at a time on a scratch folder: the lock is held by this script and inherited by each stage's
# processes, so a stage that outlived a killed script still holds it
exec 9> "$SCRATCH/lock"
if ! flock -n 9; then
  echo "time_main_job: another run on $SCRATCH, or a stage of one, still runs (fuser -v $SCRATCH/lock);" \
    "stop it first" >&2
  exit 1
fi
[ -f "$LEDGER" ] || echo "stage,seconds,status,ended" > "$LEDGER"
RUNNING=$SCRATCH/running
MACHINE="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) ($(
  for isa in avx512_vnni avx_vnni avx512f avx2; do grep -qw $isa /proc/cpuinfo && { echo $isa; break; }; done))"
grep -qxF "$MACHINE" "$SCRATCH/machine.txt" 2>/dev/null || echo "$MACHINE" >> "$SCRATCH/machine.txt"
if [ -f "$RUNNING" ]; then  # a run killed without its trap: book its last heartbeat
  echo "$(cat "$RUNNING"),interrupted,$(date -u -r "$RUNNING" +%FT%TZ)" >> "$LEDGER"
  echo "time_main_job: the last run was killed in $(cut -d, -f1 "$RUNNING"); booked its $(cut -d, -f2 "$RUNNING") s"
  rm -f "$RUNNING"
fi
common=("paths.study=$STUDY" "paths.sweeps_dir=$SCRATCH/sweeps" "paths.cache_dir=$SCRATCH/cache"
        "tracking.uri=sqlite:///$SCRATCH/mlflow.db" "tracking.artifact_root=$SCRATCH/artifacts" "$@")
out=$SCRATCH/sweeps/$STUDY

gone() {  # gone PID SECONDS: wait until PID has exited, at most SECONDS; false if it still runs
  for _ in $(seq "$2"); do kill -0 "$1" 2>/dev/null || return 0; sleep 1; done
  ! kill -0 "$1" 2>/dev/null
}

GROUP=$(sed 's/.*) //' /proc/$$/stat | cut -d' ' -f3)  # this run's process group (procps need not be installed)
cpu_sample() {  # time,run,machine's busy CPU seconds since boot,this run's processes' (this process group's)
  local hz; hz=$(getconf CLK_TCK)
  echo "$(date -u +%FT%TZ),$GROUP,$(awk -v hz="$hz" '/^cpu /{print ($2+$3+$4+$7+$8+$9)/hz}' /proc/stat),$(
    cat /proc/[0-9]*/stat 2>/dev/null | sed 's/.*) //' | awk -v g="$GROUP" -v hz="$hz" '$3==g {s+=$12+$13+$14+$15}
      END {print s/hz}')"
}

descendants() {  # descendants PID: every process under PID, from /proc (procps need not be installed)
  local kid
  for kid in $(grep -l "^PPid:[[:space:]]*$1$" /proc/[0-9]*/status 2>/dev/null | cut -d/ -f3); do
    echo "$kid"; descendants "$kid"
  done
}

STOP_WAIT_S=${STOP_WAIT_S:-60}  # how long a stop waits on each signal (twice that on TERM)
stop_stage() {  # the trap of `stage` (its name, start, pid and beat are in scope): end the stage for good
  # the command's own Ctrl-C first (it marks its running trials), then TERM where that was ignored (a background
  # start ignores SIGINT) or took over a minute, then KILL where TERM has waited two minutes on a long TensorFlow
  # call; then whatever the stage started and left running (a worker whose parent died on TERM): TERM, then KILL.
  # Nothing of the stage runs on after its row
  local tree; tree=$(descendants "$pid")
  kill -INT "$pid" 2>/dev/null
  gone "$pid" "$STOP_WAIT_S" || { tree="$tree $(descendants "$pid")"; kill -TERM "$pid" 2>/dev/null
    gone "$pid" $((2 * STOP_WAIT_S)); } || { tree="$tree $(descendants "$pid")"; kill -KILL "$pid" 2>/dev/null; }
  local left; left=$(for p in $tree; do kill -0 "$p" 2>/dev/null && echo "$p"; done | sort -u)
  if [ -n "$left" ]; then
    echo "time_main_job: $name left processes running ($(echo $left)): stopping them" >&2
    kill -TERM $left 2>/dev/null
    for p in $left; do gone "$p" 10 || kill -KILL "$p" 2>/dev/null; done
  fi
  wait "$beat" 2>/dev/null  # the stage is gone: the heartbeat ends within a second
  rm -f "$RUNNING"
  echo "$name,$(( $(date +%s) - start )),stopped,$(date -u +%FT%TZ)" >> "$LEDGER"
  echo "time_main_job: $name stopped; run the same command to resume"
  exit 130
}

stage() {  # stage NAME COMMAND...: run it unless the ledger says it finished; log its wall time either way
  local name=$1; shift
  if grep -q "^$name,.*,done," "$LEDGER"; then echo "time_main_job: $name already done, skipped"; return 0; fi
  echo "time_main_job: $name ($(date -u +%H:%M:%S) UTC); its console: $SCRATCH/$name.log"
  local start; start=$(date +%s)
  "$@" >> "$SCRATCH/$name.log" 2>&1 &
  local pid=$!
  # the heartbeat, every 30 s while the stage runs; it ends by itself within a second of the stage and is waited
  # for, never killed (killed mid-mv, its mv finished after the file was removed: a finished stage was booked as
  # interrupted on the next start); off the console, where a sleep of its could hold a pipe open
  ( while kill -0 $pid 2>/dev/null; do echo "$name,$(( $(date +%s) - start ))" > "$RUNNING.tmp"
      mv "$RUNNING.tmp" "$RUNNING"; cpu_sample >> "$SCRATCH/cpu.csv"; gone $pid 30; done ) > /dev/null 2>&1 &
  local beat=$!
  trap stop_stage INT TERM
  wait $pid
  local rc=$?
  trap - INT TERM
  wait $beat 2>/dev/null; rm -f "$RUNNING"
  local seconds=$(( $(date +%s) - start ))
  if [ $rc -ne 0 ]; then
    echo "$name,$seconds,failed,$(date -u +%FT%TZ)" >> "$LEDGER"
    echo "time_main_job: $name failed (exit $rc), see $SCRATCH/$name.log" >&2; exit $rc
  fi
  echo "$name,$seconds,done,$(date -u +%FT%TZ)" >> "$LEDGER"
  echo "time_main_job: $name done in $seconds s"
}

pause_after() {  # STOP_AFTER=NAME ends the run once stage NAME is done, e.g. one stage a session (no stop booked)
  [ "${STOP_AFTER:-}" = "$1" ] || return 0
  echo "time_main_job: paused after $1 (STOP_AFTER=$1); run the same command without it to go on"
  summary; exit 0
}

stage study "$PY" -m compress.sweep -m "${common[@]}" "hydra.sweeper.n_jobs=$JOBS" "hydra.sweep.dir=$SCRATCH/jobs"
pause_after study
stage finalize "$PY" -m compress.finalize "${common[@]}" "finalize.jobs=$JOBS" "hydra.run.dir=$SCRATCH/run"
pause_after finalize
stage bench "$PY" -m compress.bench --study "$STUDY" "${common[@]}"
pause_after bench
stage report "$PY" -m analysis.report --study "$STUDY" --from-mlflow --tracking-uri "sqlite:///$SCRATCH/mlflow.db" \
  --folder "$out/report" --winner "$out/winner" --out "$out/report.md"
summary
