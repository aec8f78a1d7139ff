"""`python -m compress.remeasure_coreml --fixed-in COMMIT`: redo the Core ML branch of trial
runs logged by code older than a fix to that branch.

A study outlives the code it started with.  When the Core ML export changes (as when
coremltools 9's 8-bit k-means was found to corrupt small tensors, fixed in 45d42a9), runs
logged before the fix carry Core ML figures the current code would not produce.  For each
finished trial run of the study whose `git_commit` tag does not contain COMMIT, this rebuilds
`model.mlpackage` from the run's own `student.keras` with the current code, re-scores it on
the validation split through the executor, logs `coreml_size_bytes` / `coreml_val_accuracy`
again (MLflow keeps the old values in the metric's history), replaces the artifact and tags
the run `coreml_remeasured_by=<this commit>`.  The TFLite figures are not touched.  A qat run
logged before `QAT_WEIGHTS_FIX` is left as logged, and said so: its student.keras is not the
network its .tflite carries.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from compress.config.cli import ROOT
from compress.plumbing import metrics as M


def contains(commit: str, fix: str) -> bool:
    """Whether the code at `commit` (a git_commit tag, maybe '-dirty') already has `fix`."""
    sha = commit.removesuffix("-dirty")
    done = subprocess.run(["git", "merge-base", "--is-ancestor", fix, sha], cwd=ROOT, capture_output=True)
    return done.returncode == 0


# the commit from which a qat trial's student.keras holds the weights quantization-aware training left
# (quantize.float_twin); before it, it held those the training started from, and the weights the .tflite
# carries were never stored as floats: such a run's Core ML figures cannot be redone, only retrained
QAT_WEIGHTS_FIX = "02aaeda"


def not_redoable(params: dict, commit: str) -> str | None:
    """Why a stale run's Core ML branch cannot be redone from its student.keras, or None."""
    if params.get("quant.mode") == "qat" and not contains(commit, QAT_WEIGHTS_FIX):
        return (f"quant.mode=qat logged before {QAT_WEIGHTS_FIX}: its student.keras holds the weights before "
                f"quantization-aware training, not those its .tflite carries (retrain the trial to redo it)")
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m compress.remeasure_coreml", description=__doc__.split("\n\n")[0])
    from compress.config import paths

    parser.add_argument("--fixed-in", required=True,
                        help="the commit that changed the Core ML branch: runs logged by code before it are redone")
    paths.add_study_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="list the runs only, change nothing")
    args = parser.parse_args(argv)
    sp = paths.from_args(args, needs_store=True)
    from mlflow.tracking import MlflowClient

    from compress.coreml import convert as coreml
    from compress.pipeline import data
    from compress.pipeline.teacher import load_keras
    from compress.plumbing.tracking import git_commit
    from compress.verify import predictions

    client = MlflowClient(tracking_uri=sp.tracking_uri)
    exp = client.get_experiment_by_name(sp.experiment)
    if exp is None:
        raise SystemExit(paths.no_trials_message(sp))
    runs = client.search_runs([exp.experiment_id], max_results=1000, filter_string=(
        f"tags.`{M.TAG_ROLE}` = 'trial' and tags.`{M.TAG_STUDY}` = '{sp.study}' and attributes.status = 'FINISHED'"))
    stale = [r for r in runs if M.COREML_SIZE_BYTES in r.data.metrics
             and not contains(r.data.tags.get(M.TAG_GIT, ""), args.fixed_in)]
    print(f"{len(stale)} of {len(runs)} finished trial runs predate {args.fixed_in}")
    if args.dry_run or not stale:
        return
    splits = data.load_from_config(paths.compose_for(args.study).data)
    for run in sorted(stale, key=lambda r: int(r.data.tags[M.TAG_TRIAL])):
        p = run.data.params
        why = not_redoable(p, run.data.tags.get(M.TAG_GIT, ""))
        if why:
            print(f"trial {run.data.tags[M.TAG_TRIAL]}: left as logged: {why}")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            model = load_keras(Path(client.download_artifacts(run.info.run_id, "student.keras", tmp)))
            package = coreml.to_mlpackage(model, Path(tmp) / "model.mlpackage", p["coreml.compression"],
                                          float(p["prune.sparsity"]), metadata={  # as the trial wrote it
                "val_accuracy_tflite": f"{run.data.metrics[M.VAL_ACCURACY]:.4f}", "quant_mode": p["quant.mode"]})
            size = coreml.package_bytes(package)
            accuracy = float(np.mean(predictions(package, splits.x_val) == splits.y_val))
            client.log_artifacts(run.info.run_id, str(package), "model.mlpackage")
        old = run.data.metrics
        client.log_metric(run.info.run_id, M.COREML_SIZE_BYTES, size)
        client.log_metric(run.info.run_id, M.COREML_VAL_ACCURACY, accuracy)
        client.set_tag(run.info.run_id, "coreml_remeasured_by", git_commit())
        print(f"trial {run.data.tags[M.TAG_TRIAL]} ({p['coreml.compression']}): {int(old[M.COREML_SIZE_BYTES]):,} B "
              f"{old[M.COREML_VAL_ACCURACY]:.4f} -> {size:,} B {accuracy:.4f}")


if __name__ == "__main__":
    main()
