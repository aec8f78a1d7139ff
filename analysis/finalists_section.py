"""report.md's finalists section: figures computed here from the committed finalists' table,
its summary and winner.json; the prose is a Jinja2 template (analysis/templates/finalists.md.j2)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from compress.core import metrics as M
from compress.finalize.winner_policy import pick_finalist

TEMPLATES = Path(__file__).resolve().parent / "templates"
INT8_COLUMNS = ("ptq_per_channel", "ptq_per_tensor", "qat_per_channel")  # finalize's int8 encodings, tried in turn


def figures(folder: Path, winner_json: dict, teacher_test_accuracy: float, targets,
            speed: dict | None = None, int8_tolerance: float | None = None) -> dict | None:
    """Everything the section quotes, or None when there is no finalists' table; `targets` is the
    study's `targets` group (the size classes, the accuracy each aims at, the latency budget the
    app's budget ships under), `speed` report/speed.json as the report read it (the views' epoch
    cost), None without it; `int8_tolerance` the study's `finalize.int8_tolerance` (when QAT is tried)."""
    path = folder / "finalists.csv"
    if not path.is_file():
        return None
    table = pd.read_csv(path)
    study = str(winner_json.get("study") or table["study"].iloc[-1])
    of_study = table[table["study"].astype(str) == study]
    rows = of_study
    summary = json.loads((folder / "finalists.json").read_text()) if (folder / "finalists.json").is_file() else {}
    if summary.get("study") == study and summary.get("finalists"):  # this selection under this recipe only
        keys = {(int(k["trial"]), int(k["seed"]), str(k["recipe"])) for k in summary["finalists"]}
        rows = rows[[(int(r["trial"]), int(r["seed"]), str(r["recipe"])) in keys for _, r in rows.iterrows()]]
    first = rows[rows["seed"].astype(int) == int(rows["seed"].astype(int).min())].sort_values(M.SHIP_SIZE_BYTES)
    finalists = [{
        "trial": int(r["trial"]), "seed": int(r["seed"]), "arch": r["arch"], "width": float(r["width"]),
        "head": r["head"],
        "mode": r["quant.mode"], "sparsity": float(r["prune.sparsity"]), "epochs": int(r["epochs"]),
        "augment": r["augment"], "teacher": _teacher(r), "search_val": float(r["search_val_accuracy"]),
        "final_val": float(r[M.VAL_ACCURACY]),
        "own_bytes": int(r[M.SIZE_BYTES]), "search_bytes": int(r["search_size_bytes"]),
        "encoding": r["ship_encoding"], "ship_bytes": int(r[M.SHIP_SIZE_BYTES]),
        "ship_val": float(r[M.SHIP_VAL_ACCURACY]), "ship_test": float(r[M.SHIP_TEST_ACCURACY]),
        "float_val": float(r[M.KERAS_VAL_ACCURACY]), "ratio": float(r[M.SHIP_LATENCY_RATIO]),
        "int8_val": {name: _maybe(r, f"int8_{name}_val_accuracy") for name in INT8_COLUMNS},
        "own_ratio": float(r[M.LATENCY_RATIO]), "own_test": float(r[M.TEST_ACCURACY]),
        "coreml_test": float(r[M.COREML_TEST_ACCURACY]), "coreml_bytes": int(r[M.COREML_SIZE_BYTES]),
        "weights": int(r["ship_bytes_weights"]), "quant_params": int(r["ship_bytes_quant_params"]),
        "names": int(r["ship_bytes_names"]), "structure": int(r["ship_bytes_structure"]),
        "params": int(r[M.PARAMS]), "minutes": float(r[M.TIME_TOTAL_S]) / 60,
        "bytes_per_point": int(r[M.SHIP_SIZE_BYTES]) / max(1e-9, 100 * float(r[M.SHIP_TEST_ACCURACY])),
    } for _, r in first.iterrows()]
    # every committed file counts, the winner's extra seeds too: in each class the one best on validation,
    # as the winner's shipped seed is chosen
    files = [{"trial": int(r["trial"]), "seed": int(r["seed"]), "ship_bytes": int(r[M.SHIP_SIZE_BYTES]),
              "ship_val": float(r[M.SHIP_VAL_ACCURACY]), "ship_test": float(r[M.SHIP_TEST_ACCURACY])}
             for _, r in rows.iterrows()]
    reached = [_class_target(int(size), float(accuracy), files, summary.get("size_classes", {}).get(str(size)))
               for size, accuracy in zip(targets.size_classes, targets.accuracy)]
    agreement = [{"scope": k, "n": v["n"], "rho": v["rho"]} for k, v in summary.get("rank_agreement", {}).items()]
    seeds = winner_json.get("seeds") or {}
    speed = speed or {}
    return {
        "study": study, "finalists": finalists, "targets": reached, "agreement": agreement,
        "preflight": summary.get("latency_preflight") or [],  # left out untrained, too slow for this CPU's budget
        "int8_tolerance": int8_tolerance,
        "under_speed_target": under_latency_budget(first, int(targets.max_bytes), targets.max_latency_ratio),
        "teacher_test": teacher_test_accuracy, "winner": winner_json, "seeds": seeds,
        "seed_std": seeds.get("std"), "n_rows": int(len(table)),
        "hours": float(rows[M.TIME_TOTAL_S].sum()) / 3600,
        "augmentation": augmentation_pairs(of_study),
        "longer": epoch_pairs(of_study),
        "views_cost": {k: speed[k] for k in ("epoch_s_views", "epoch_s_cached_logits", "epoch_s_teacher_in_step",
                                             "views_cost_vs_cached", "views_speedup_vs_teacher_in_step", "student")
                       if k in speed} if "epoch_s_views" in speed else None,
    }


def _class_target(size: int, accuracy: float, files: list[dict], leader: dict | None) -> dict:
    """One size class's target counted on the committed files, as the mean of its leading recipe's seeds:
    the leader finalize named (finalists.json's `size_classes`: within the latency budget, with its file
    against the user's teacher), else the file best on validation at that size."""
    fits = [f for f in files if f["ship_bytes"] <= size]
    if leader:
        best = next((f for f in fits if (f["trial"], f["seed"]) == (leader["trial"], leader["shipped_seed"])), None)
    else:
        best = max(fits, key=lambda f: (f["ship_val"], -f["seed"])) if fits else None
    seeds = sorted((f for f in files if best and f["trial"] == best["trial"]), key=lambda f: f["seed"])
    tests = [f["ship_test"] for f in seeds]
    mean = sum(tests) / len(tests) if tests else None
    return {"bytes": size, "test_accuracy": accuracy, "best": best, "reached": bool(best and mean >= accuracy),
            "seeds": [f["seed"] for f in seeds], "seed_mean": mean, "seed_min": min(tests) if tests else None,
            "seed_max": max(tests) if tests else None, "paired": (leader or {}).get("paired_teacher"),
            "within_latency": bool(leader)}


def _maybe(row, column: str) -> float | None:
    """A finalist's figure, None where its row has none (an encoding that was not tried)."""
    value = row.get(column)
    return None if value is None or pd.isna(value) else float(value)


def _teacher(row) -> str:
    """Who taught the finalist: the user's teacher, or the named stronger one (`distill.teacher`); rows
    written before the column existed were all taught by the user's."""
    value = row.get("teacher")
    return "user's" if value is None or pd.isna(value) or str(value) in ("", "user") else f"`{value}`"


def under_latency_budget(first: pd.DataFrame, max_bytes: int, ratio: float) -> dict:
    """The finalist the max_bytes policy picks when a latency budget is added
    (`finalize.max_latency_ratio`), on the ratio each file ran at in its own finalist run."""
    row, reason = pick_finalist(first, "max_bytes", max_bytes, 0.0, float("nan"), max_latency_ratio=ratio)
    out = {"max_bytes": max_bytes, "ratio": ratio, "reason": reason, "row": None}
    if row is not None:
        out["row"] = {"trial": int(row["trial"]), "seed": int(row["seed"]), "arch": row["arch"],
                      "width": float(row["width"]), "head": row["head"], "ship_bytes": int(row[M.SHIP_SIZE_BYTES]),
                      "ship_val": float(row[M.SHIP_VAL_ACCURACY]), "ship_test": float(row[M.SHIP_TEST_ACCURACY]),
                      "ratio": float(row[M.SHIP_LATENCY_RATIO])}
    return out


# what makes two finalists the same recipe; `params` tells apart one student built two ways at the same width
# (a dsconv with its channels rounded to eights, student.channel_multiple, or with the width's own counts)
RECIPE_KEYS = ("trial", "arch", "width", "head", "quant.mode", "prune.sparsity", "distill.temperature", "distill.alpha",
               "epochs", "seed", "params")


def augmentation_pairs(rows: pd.DataFrame) -> list[dict]:
    """Finalists trained twice, once with each distillation view set (`finalize.augment`) and
    otherwise the same recipe and seed: what augmentation did to their shipped files."""
    out = []
    if "augment" not in rows or rows["augment"].nunique() < 2:
        return out
    for key, same in rows.groupby([k for k in RECIPE_KEYS if k in rows], sort=False, dropna=False):
        by = {str(a): g.iloc[-1] for a, g in same.groupby("augment")}  # the latest row of each view set
        if not {"none", "flip_shift"} <= set(by):
            continue
        aug, plain = by["flip_shift"], by["none"]
        out.append({"trial": int(aug["trial"]), "arch": aug["arch"], "width": float(aug["width"]),
                    "head": aug["head"], "sparsity": float(aug["prune.sparsity"]), "seed": int(aug["seed"]),
                    "epochs": int(aug["epochs"]),
                    **{f"{name}_{k}": float(r[col]) for name, r in (("aug", aug), ("plain", plain))
                       for k, col in (("val", M.SHIP_VAL_ACCURACY), ("test", M.SHIP_TEST_ACCURACY),
                                      ("bytes", M.SHIP_SIZE_BYTES))},
                    "test_points": 100 * (float(plain[M.SHIP_TEST_ACCURACY]) - float(aug[M.SHIP_TEST_ACCURACY])),
                    "val_points": 100 * (float(plain[M.SHIP_VAL_ACCURACY]) - float(aug[M.SHIP_VAL_ACCURACY]))})
    return sorted(out, key=lambda r: r["aug_bytes"])


def epoch_pairs(rows: pd.DataFrame) -> list[dict]:
    """Finalists trained for two or more numbers of epochs and otherwise the same recipe, seed and
    views (side runs, `finalize.epochs=N`): what the longer schedules did to their shipped files.
    Each entry's `runs` are its schedules, shortest first."""
    out = []
    keys = [k for k in (*RECIPE_KEYS, "augment") if k in rows and k != "epochs"]
    for _, same in rows.groupby(keys, sort=False, dropna=False):
        by = {int(e): g.iloc[-1] for e, g in same.groupby("epochs")}
        if len(by) < 2:
            continue
        last = by[max(by)]
        runs = [{"epochs": e, **{k: float(by[e][col]) for k, col in (
            ("val", M.SHIP_VAL_ACCURACY), ("test", M.SHIP_TEST_ACCURACY), ("float_val", M.KERAS_VAL_ACCURACY),
            ("bytes", M.SHIP_SIZE_BYTES), ("seconds", M.TIME_TOTAL_S))}} for e in sorted(by)]
        out.append({"trial": int(last["trial"]), "seed": int(last["seed"]), "arch": last["arch"],
                    "width": float(last["width"]), "head": last["head"], "augment": str(last["augment"]),
                    "runs": runs})
    return sorted(out, key=lambda r: (r["runs"][-1]["bytes"], r["trial"], r["seed"]))


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
