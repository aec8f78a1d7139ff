"""report.md's finalists section: figures computed here from the committed finalists' table,
its summary and winner.json; the prose is a Jinja2 template (analysis/templates/finalists.md.j2)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from compress.plumbing import metrics as M

TEMPLATES = Path(__file__).resolve().parent / "templates"
# the targets that count finalists' shipping files (brief: "Our targets")
SHIP_TARGETS = ({"bytes": 16_384, "test_accuracy": 0.90}, {"bytes": 65_536, "test_accuracy": 0.925})


def figures(folder: Path, winner_json: dict, teacher_test_accuracy: float) -> dict | None:
    """Everything the section quotes, or None when there is no finalists' table."""
    path = folder / "finalists.csv"
    if not path.is_file():
        return None
    table = pd.read_csv(path)
    study = str(winner_json.get("study") or table["study"].iloc[-1])
    rows = table[table["study"].astype(str) == study]
    summary = json.loads((folder / "finalists.json").read_text()) if (folder / "finalists.json").is_file() else {}
    if summary.get("study") == study and summary.get("finalists"):  # this selection under this recipe only
        keys = {(int(k["trial"]), int(k["seed"]), str(k["recipe"])) for k in summary["finalists"]}
        rows = rows[[(int(r["trial"]), int(r["seed"]), str(r["recipe"])) in keys for _, r in rows.iterrows()]]
    first = rows[rows["seed"].astype(int) == int(rows["seed"].astype(int).min())].sort_values(M.SHIP_SIZE_BYTES)
    finalists = [{
        "trial": int(r["trial"]), "arch": r["arch"], "width": float(r["width"]), "head": r["head"],
        "mode": r["quant.mode"], "sparsity": float(r["prune.sparsity"]), "epochs": int(r["epochs"]),
        "augment": r["augment"], "search_val": float(r["search_val_accuracy"]), "final_val": float(r[M.VAL_ACCURACY]),
        "own_bytes": int(r[M.SIZE_BYTES]), "search_bytes": int(r["search_size_bytes"]),
        "encoding": r["ship_encoding"], "ship_bytes": int(r[M.SHIP_SIZE_BYTES]),
        "ship_val": float(r[M.SHIP_VAL_ACCURACY]), "ship_test": float(r[M.SHIP_TEST_ACCURACY]),
        "float_val": float(r[M.KERAS_VAL_ACCURACY]), "ratio": float(r[M.SHIP_LATENCY_RATIO]),
        "own_ratio": float(r[M.LATENCY_RATIO]), "own_test": float(r[M.TEST_ACCURACY]),
        "coreml_test": float(r[M.COREML_TEST_ACCURACY]), "coreml_bytes": int(r[M.COREML_SIZE_BYTES]),
        "weights": int(r["ship_bytes_weights"]), "quant_params": int(r["ship_bytes_quant_params"]),
        "names": int(r["ship_bytes_names"]), "structure": int(r["ship_bytes_structure"]),
        "params": int(r[M.PARAMS]), "minutes": float(r[M.TIME_TOTAL_S]) / 60,
        "bytes_per_point": int(r[M.SHIP_SIZE_BYTES]) / max(1e-9, 100 * float(r[M.SHIP_TEST_ACCURACY])),
    } for _, r in first.iterrows()]
    targets = []
    for target in SHIP_TARGETS:
        fits = [f for f in finalists if f["ship_bytes"] <= target["bytes"]]
        best = max(fits, key=lambda f: f["ship_val"]) if fits else None
        targets.append({**target, "best": best,
                        "reached": bool(best and best["ship_test"] >= target["test_accuracy"])})
    agreement = [{"scope": k, "n": v["n"], "rho": v["rho"]} for k, v in summary.get("rank_agreement", {}).items()]
    seeds = winner_json.get("seeds") or {}
    return {
        "study": study, "finalists": finalists, "targets": targets, "agreement": agreement,
        "teacher_test": teacher_test_accuracy, "winner": winner_json, "seeds": seeds,
        "seed_std": seeds.get("std"), "n_rows": int(len(table)),
        "hours": float(rows[M.TIME_TOTAL_S].sum()) / 3600,
    }


def render(fig: dict, fig_dir: str = "report") -> str:
    """The section's Markdown."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["pct"] = lambda v, digits=2: "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) \
        else f"{100 * v:.{digits}f}%"
    env.filters["kb"] = lambda v: f"{v:,} B ({v / 1024:.1f} KB)"
    env.filters["rho"] = lambda v: "n/a (too few)" if v is None or (isinstance(v, float) and math.isnan(v)) \
        else f"{v:+.2f}"
    return env.get_template("finalists.md.j2").render(**fig, fig_dir=fig_dir)
