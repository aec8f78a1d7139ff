"""Export the winner: its .tflite as shipped by the trial, and a Core ML package made from
its float student with coremltools' own compression; both scored from disk."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from compress.core import metrics as M
from compress.core.options import QUANT
from compress.coreml import convert as coreml
from compress.data import fashion_mnist as data
from compress.measure.scoring import predictions, score
from compress.teacher.model import load_keras

MAX_FORMAT_GAP = 0.003  # Core ML and TFLite test accuracy may differ by at most 0.3 points


class ExportError(Exception):
    """The exported files do not reproduce the logged figures."""


def format_gap_allowed(n: int, agreement: float) -> float:
    """How far apart the Core ML and TFLite test accuracies may be: `MAX_FORMAT_GAP`, or more on a
    small slice where chance alone moves them further. The two files encode the weights differently
    (TFLite int8 activations, Core ML float16 ones), so the images where their top-1 differs flip
    either way; with m of them, the accuracy gap from chance has a standard deviation of about
    sqrt(m) images. Allowed: the larger of 0.3 points, two images and two such deviations. On the
    10,000 test images of a real winner (agreement 99.25%, m = 75) that is the 0.3 points; on a
    600-image smoke slice with m = 16, 1.3 points."""
    disagreements = (1.0 - float(agreement)) * n
    return max(MAX_FORMAT_GAP, 2.0 / n, 2.0 * np.sqrt(disagreements) / n)


def _zero_sparsity(row) -> float:
    """The share of zero weights the trial's model holds: its sparsity after magnitude pruning,
    none after channel pruning (the removed channels are gone)."""
    if str(row.get("prune.method") or "magnitude") == "channel":
        return 0.0
    return float(row.get("prune.sparsity") or 0.0)


def export_winner(tracking_uri: str, row: pd.Series, out_dir: Path, coreml_compression: str | None = None) -> dict:
    """Write winner.tflite, winner.mlpackage and winner.json to `out_dir`, log them on the run."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    run_id = row["run_id"]
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tflite = Path(client.download_artifacts(run_id, "model.tflite", tmp))
        student = Path(client.download_artifacts(run_id, "student.keras", tmp))
        config = Path(client.download_artifacts(run_id, "config.yaml", tmp))
        shutil.copyfile(tflite, out_dir / "winner.tflite")
        shutil.copyfile(config, out_dir / "config.yaml")  # the trial's recipe: the benchmark retrains it
        model = load_keras(student)

    fraction = float(row.get("data.fraction") or 1.0)  # 1.0 for a real study: the full test set
    splits = data.load()
    tflite_score = score(out_dir / "winner.tflite", fraction=fraction, splits=splits)
    if abs(tflite_score["accuracy"] - float(row[M.TEST_ACCURACY])) > 1e-9:
        raise ExportError(f"winner.tflite scores {tflite_score['accuracy']:.4f} from disk but the run logged "
                          f"{float(row[M.TEST_ACCURACY]):.4f}")
    compression = coreml_compression or QUANT[str(row["quant.mode"])].coreml  # the trial's mode, carried over
    meta = {
        "study": row.get("study"), "trial": int(row["trial"]), "val_accuracy": f"{float(row[M.VAL_ACCURACY]):.4f}",
        "tflite_test_accuracy": f"{tflite_score['accuracy']:.4f}", "tflite_size_bytes": int(row[M.SIZE_BYTES]),
        "latency_ratio_tflite": f"{float(row[M.LATENCY_RATIO]):.4f}",
    }
    logged = {"macs": int(row[M.MACS]), "size_gzip_bytes": int(row[M.SIZE_GZIP_BYTES]),
              "latency_ms": float(row[M.LATENCY_MS])}
    package = coreml.to_mlpackage(model, out_dir / "winner.mlpackage", compression,
                                  _zero_sparsity(row), metadata=meta)
    coreml_score = score(package, against=out_dir / "winner.tflite", fraction=fraction, splits=splits)
    gap = abs(coreml_score["accuracy"] - tflite_score["accuracy"])
    allowed = format_gap_allowed(coreml_score["n"], coreml_score["agreement"])
    if gap > allowed + 1e-12:
        raise ExportError(f"winner.mlpackage scores {100 * coreml_score['accuracy']:.2f}% but winner.tflite "
                          f"{100 * tflite_score['accuracy']:.2f}%: more than {100 * allowed:.2f} points apart")

    test = splits.sliced(fraction)
    predicted = predictions(out_dir / "winner.tflite", test.x_test)
    confusion = np.zeros((10, 10), dtype=int)
    np.add.at(confusion, (test.y_test, predicted), 1)
    logged["confusion"] = confusion.tolist()  # rows: true class, columns: predicted (winner.tflite, test set)
    summary = {**meta, **logged, "run_id": run_id, "coreml_compression": compression,
               "tflite": tflite_score, "coreml": coreml_score}
    (out_dir / "winner.json").write_text(json.dumps(summary, indent=2) + "\n")
    client.log_artifact(run_id, str(out_dir / "winner.tflite"), "export")
    client.log_artifacts(run_id, str(package), "export/winner.mlpackage")
    client.log_metric(run_id, "export_tflite_test_accuracy", tflite_score["accuracy"])
    client.log_metric(run_id, "export_coreml_test_accuracy", coreml_score["accuracy"])
    client.log_metric(run_id, "export_coreml_size_bytes", coreml_score["size_bytes"])
    client.set_tag(run_id, "winner", "true")
    return summary
