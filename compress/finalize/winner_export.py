"""The winner's export: its files and every finalist's, their figures scored from disk, the app contract
and the registered model. Which finalist wins is compress/finalize/winner_policy.py's.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from compress.config import study_data
from compress.core import metrics as M
from compress.core.errors import CompressError
from compress.finalize.app_contract import write_readme
from compress.finalize.latency_budget import latency_budget
from compress.finalize.paths import work_name
from compress.finalize.winner_policy import shipped_seed, teacher_val_accuracy
from compress.measure import machine
from compress.measure.scoring import predictions, score
from compress.tracking.serving import register_winner
from compress.training import encode

log = logging.getLogger(__name__)


def kept_name(row, cfg) -> str:
    """A finalist's folder under winner/finalists/: trial_N for the study's seed, trial_N_seedS for others."""
    trial, seed = int(row["trial"]), int(row["seed"])
    return f"trial_{trial}" if seed == int(cfg.seed) else f"trial_{trial}_seed{seed}"


def _files_of(row, cfg, paths) -> Path:
    """Where a finalist's files are: its work folder, or (a fresh clone) the committed copy of an
    earlier export when that copy is of the same recipe; else one line saying what to do."""
    work = Path(paths.work) / work_name(int(row["trial"]), int(row["seed"]), str(row["recipe"]))
    if (work / "finalist.tflite").is_file():
        return work
    kept = Path(paths.export) / "finalists" / kept_name(row, cfg)
    if (kept / "finalist.json").is_file() and json.loads((kept / "finalist.json").read_text()).get("recipe") == str(
            row["recipe"]) and (kept / "config.yaml").is_file():
        return kept

    raise CompressError(f"finalist trial {int(row['trial'])} seed {int(row['seed'])} (recipe {row['recipe']}): its "
                        f"files are in neither {work} nor {kept}; delete its row from the finalists' table to train it "
                        f"again")


def data_record(data_cfg, splits) -> dict:
    """What the exported files were trained and scored on: enough to read the same splits again."""
    return {**study_data.entry(data_cfg, splits.kind, splits.fingerprint, splits.source),
            "image_shape": list(splits.image_shape), "class_names": list(splits.class_names)}


def export(rows: pd.DataFrame, winner: pd.Series, reason: str, cfg, paths, study: str, splits) -> dict:
    """Copy the winner (`shipped_seed`: the best of its seeds on validation within the policy) and
    every finalist's files to `paths.export`, score the winner's files from disk on `splits` (the
    finalists' data), write winner.json and README.md."""
    out = paths.export
    seeds = rows[rows["trial"].astype(int) == int(winner["trial"])].sort_values("seed")
    f, latency = cfg.finalize, latency_budget(cfg.finalize)
    shipped = shipped_seed(seeds, str(f.policy), int(f.max_bytes), float(f.budget), teacher_val_accuracy(cfg),
                           latency)
    sources = {kept_name(row, cfg): _files_of(row, cfg, paths) for _, row in rows.iterrows()}
    work = sources[kept_name(shipped, cfg)]
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(work / "finalist.tflite", out / "winner.tflite")
    shutil.copyfile(work / "config.yaml", out / "config.yaml")
    _copy_tree(work / "finalist.mlpackage", out / "winner.mlpackage")
    # every finalist's files (the extra seeds of the winner's recipe too), with its config and row: small,
    # committed, and what a re-export on a machine without the work folders reads back
    staged = out / ".finalists.tmp"
    shutil.rmtree(staged, ignore_errors=True)
    for _, row in rows.iterrows():
        name = kept_name(row, cfg)
        src, dst = sources[name], staged / name
        dst.mkdir(parents=True)
        for file in ("finalist.tflite", "config.yaml"):
            shutil.copyfile(src / file, dst / file)
        _copy_tree(src / "finalist.mlpackage", dst / "finalist.mlpackage")
        (dst / "finalist.json").write_text(json.dumps(_plain(row), indent=2) + "\n")
    shutil.rmtree(out / "finalists", ignore_errors=True)  # earlier selections' files go with them
    staged.replace(out / "finalists")
    tflite = score(out / "winner.tflite", splits=splits)
    # the table keeps 6 significant digits (a row written by another process is read back from it)
    if not math.isclose(tflite["accuracy"], float(shipped[M.SHIP_TEST_ACCURACY]), rel_tol=5e-6, abs_tol=1e-9):
        raise CompressError(f"{out / 'winner.tflite'} scores {tflite['accuracy']:.4f} from disk but the finalist "
                            f"logged {float(shipped[M.SHIP_TEST_ACCURACY]):.4f}")
    package = score(out / "winner.mlpackage", against=out / "winner.tflite", splits=splits)
    confusion = np.zeros((splits.num_classes, splits.num_classes), dtype=int)
    np.add.at(confusion, (splits.y_test, predictions(out / "winner.tflite", splits.x_test)), 1)
    tests = seeds[M.SHIP_TEST_ACCURACY].astype(float)
    summary = {
        "study": study, "policy": str(f.policy), "reason": reason,
        "max_latency_ratio": latency.default if latency else None,
        "latency_ratio_by_isa": dict(latency.by_isa) if latency else None,
        "trial": int(shipped["trial"]),
        "seed": int(shipped["seed"]), "encoding": str(shipped["ship_encoding"]),
        "size_bytes": int(shipped[M.SHIP_SIZE_BYTES]), "val_accuracy": float(shipped[M.SHIP_VAL_ACCURACY]),
        "test_accuracy": float(tflite["accuracy"]), "latency_ratio": float(shipped[M.SHIP_LATENCY_RATIO]),
        "latency_machine": machine.describe(shipped.get("cpu"), shipped.get("isa")),  # where that ratio ran
        "seeds": {"n": int(len(seeds)), "seeds": seeds["seed"].astype(int).tolist(),
                  "test_accuracy": tests.round(4).tolist(), "mean": float(tests.mean()),
                  "std": float(tests.std(ddof=1)) if len(tests) > 1 else None},
        "bytes": {k: int(shipped[f"ship_bytes_{k}"]) for k in ("weights", "quant_params", "names", "structure")},
        "recipe": {k: _plain(shipped)[k] for k in ("arch", "width", "head", "quant.mode", "prune.sparsity",
                                                  "distill.temperature", "distill.alpha", "epochs", "augment")},
        "macs": int(shipped[M.MACS]), "params": int(shipped[M.PARAMS]),
        "coreml_compression": str(cfg.finalize.coreml_compression),
        "tflite": tflite, "coreml": package, "io": encode.io_details(out / "winner.tflite"),
        "confusion": confusion.tolist(),  # rows: true class, columns: predicted (winner.tflite, test set)
    }
    if splits.kind != "fashion_mnist":  # the study's own data: what verify reads by default, and the contract
        summary["data"] = data_record(cfg.data, splits)
    gap = abs(package["accuracy"] - tflite["accuracy"])
    if gap > 0.003:
        log.warning("winner.mlpackage scores %.2f%%, winner.tflite %.2f%%: %.2f points apart",
                    100 * package["accuracy"], 100 * tflite["accuracy"], 100 * gap)
    if cfg.tracking.enabled:
        run_id = shipped.get("run_id")
        run_id = str(run_id) if isinstance(run_id, str) and run_id else None
        summary["registered_model"] = register_winner(cfg.tracking, run_id, out / "winner.tflite", splits.x_test,
                                                      summary)
    (out / "winner.json").write_text(json.dumps(summary, indent=2) + "\n")

    write_readme(out / "README.md", summary)
    return summary


def _copy_tree(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)


def _plain(row: pd.Series) -> dict:
    """A table row as JSON-ready Python values."""
    out = {}
    for key, value in row.items():
        if isinstance(value, (np.integer,)):
            value = int(value)
        elif isinstance(value, (np.floating, float)):
            value = None if np.isnan(value) else float(value)
        out[str(key)] = value
    return out
