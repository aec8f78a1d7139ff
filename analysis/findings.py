"""The figures report.md quotes, computed from its inputs (report_inputs.Inputs): the techniques
side by side, the front, the families, Core ML, the targets reached, and the advice that follows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.markdown import md_table, pct, ratio
from analysis.report_inputs import Inputs, early_stop_default, sampler_config, study_recipe
from compress.core import metrics as M
from compress.core.front import COREML_OBJECTIVES, pareto_mask
from compress.core.options import QUANT

KB = 1024
SEED_BAR = {"size_share": 0.5, "latency_share": 0.6, "points": 5.0}  # seed 001: 50% smaller, 40% faster, within 5 points


def size_targets(inp: Inputs) -> list[dict]:
    """The study's size classes and the test accuracy each aims at (conf/targets/), largest first."""
    pairs = zip(inp.targets.size_classes, inp.targets.accuracy)
    return [{"size": int(size), "accuracy": float(accuracy)} for size, accuracy in sorted(pairs, reverse=True)]


def latency_target(inp: Inputs) -> float:
    """How many times lower than the teacher's float32 TFLite the winner's latency aims to be."""
    ratio = inp.targets.max_latency_ratio
    return 1.0 / float(ratio) if ratio else 1.0


def best_within(trials: pd.DataFrame, size: float) -> pd.Series | None:
    """The most accurate trial on validation among those of at most `size` bytes."""
    small = trials[trials[M.SIZE_BYTES] <= size]
    return None if small.empty else small.sort_values([M.VAL_ACCURACY, M.SIZE_BYTES], ascending=[False, True]).iloc[0]


def technique_rows(inp: Inputs) -> list[dict]:
    """Each technique alone and combined: the anchors from the benchmark, and for each
    combination in the study its most accurate trial on validation."""
    t, teacher = inp.trials, inp.bench["teacher_float32"]
    dense, sparse = t["prune.sparsity"] == 0, t["prune.sparsity"] > 0
    floaty = t["quant.mode"].isin(["float32"])
    groups = [
        ("distillation into a smaller student (float32, dense)", dense & floaty),
        ("distillation + quantization (dense)", dense & ~floaty),
        ("distillation + pruning (float32)", sparse & floaty),
        ("distillation + pruning + quantization", sparse & ~floaty),
    ]
    rows = []

    def add(name, size, gz, lat, acc, source):
        rows.append({"technique": name, "bytes": f"{int(size):,}", "gzip bytes": f"{int(gz):,}",
                     "size / teacher": f"{size / teacher['size_bytes']:.4f}", "latency / teacher": ratio(lat),
                     "test accuracy": pct(acc), "source": source})

    labels = {"teacher_float32": "none (teacher, float32 TFLite)",
              "teacher_dynamic": "quantization alone (teacher, dynamic range)",
              "teacher_pruned50_int8": "pruning 50% + int8 (teacher, tfmot recipe)",
              "student_no_distillation": "winner's recipe without distillation"}
    for key, label in labels.items():
        b = inp.bench[key]
        add(label, b["size_bytes"], b["size_gzip_bytes"], b["latency_ratio"], b["test_accuracy"], "bench")
    for label, mask in groups:
        sub = t[mask]
        if len(sub):
            r = sub.sort_values(M.VAL_ACCURACY, ascending=False).iloc[0]
            add(label, r[M.SIZE_BYTES], r[M.SIZE_GZIP_BYTES], r[M.LATENCY_RATIO], r[M.TEST_ACCURACY],
                f"trial {int(r.trial)}")
    w = inp.bench["winner"]
    add("all combined: the exported winner", w["size_bytes"], w["size_gzip_bytes"], w["latency_ratio"],
        w["test_accuracy"], "bench")
    return rows


def front_rows(inp: Inputs) -> list[dict]:
    front = inp.trials[inp.trials["pareto"]].sort_values(M.SIZE_BYTES)
    return [{"trial": int(r.trial), "family": family(r), "quant": r["quant.mode"],
             "width": f"{r['student.width']:.3f}",
             "head": r["student.head"], "sparsity": f"{r['prune.sparsity']:g}", "T": f"{r['distill.temperature']:.2f}",
             "alpha": f"{r['distill.alpha']:.2f}", "val acc": pct(r[M.VAL_ACCURACY]), "test acc": pct(r[M.TEST_ACCURACY]),
             "bytes": f"{int(r[M.SIZE_BYTES]):,}", "gzip": f"{int(r[M.SIZE_GZIP_BYTES]):,}",
             "latency / teacher": ratio(r[M.LATENCY_RATIO])} for _, r in front.iterrows()]


def family(row) -> str:
    """A trial's student family; tables from before `student.arch` existed hold cnn students only
    (the schema's default)."""
    arch = row.get("student.arch")
    return "cnn" if arch is None or pd.isna(arch) else str(arch)


def family_rows(inp: Inputs) -> list[dict]:
    """Bytes per point of accuracy for each student family: its trials on the study's front (search
    files, validation) and its finalists (shipped int8 files, test)."""
    front = inp.trials[inp.trials["pareto"]]
    arch = pd.Series([family(r) for _, r in front.iterrows()], index=front.index, dtype=object)
    per_point = front[M.SIZE_BYTES] / (100 * front[M.VAL_ACCURACY])
    shipped = {}
    for f in (inp.finalists or {}).get("finalists", []):
        shipped.setdefault(f["arch"], []).append(f["bytes_per_point"])
    rows = []
    for name in sorted(set(arch) | set(shipped)):
        mine = per_point[arch == name]
        ship = shipped.get(name, [])
        rows.append({
            "family": name, "front trials": f"{len(mine)}",
            "search file, B per validation point (min / median)":
                f"{mine.min():,.0f} / {mine.median():,.0f}" if len(mine) else "-",
            "finalists": f"{len(ship)}",
            "shipped int8, B per test point (min / median)":
                f"{min(ship):,.0f} / {float(np.median(ship)):,.0f}" if ship else "-"})
    return rows


def coreml_rows(inp: Inputs) -> list[dict]:
    t = inp.trials.dropna(subset=[M.COREML_SIZE_BYTES, M.COREML_VAL_ACCURACY]).copy()
    front = t[pareto_mask(t, COREML_OBJECTIVES)].sort_values(M.COREML_SIZE_BYTES)
    return [{"trial": int(r.trial), "Core ML compression": r["coreml.compression"], "width": f"{r['student.width']:.3f}",
             "sparsity": f"{r['prune.sparsity']:g}", "package bytes": f"{int(r[M.COREML_SIZE_BYTES]):,}",
             "val acc (Core ML)": pct(r[M.COREML_VAL_ACCURACY]), "TFLite bytes": f"{int(r[M.SIZE_BYTES]):,}",
             "val acc (TFLite)": pct(r[M.VAL_ACCURACY])} for _, r in front.iterrows()]


def smallest_reaching(t: pd.DataFrame, acc_col: str, size_col: str, accuracy: float):
    ok = t[t[acc_col] >= accuracy]
    return None if ok.empty else ok.sort_values(size_col).iloc[0]


def compute(inp: Inputs) -> dict:
    """Every figure the text quotes, in one place."""
    t, teacher, w = inp.trials, inp.bench["teacher_float32"], inp.bench["winner"]
    f = {"n_runs": len(inp.all), "n_finished": len(t),
         "n_failed": int((inp.all["status"] == "FAILED").sum()), "n_killed": int((inp.all["status"] == "KILLED").sum()),
         "n_pruned": int((inp.all["status"] == "PRUNED").sum()),
         "n_front": int(t["pareto"].sum()), "median_trial_s": float(t[M.TIME_TOTAL_S].median()),
         # what the study cost: finished trials and the ones stopped early (they log their time too)
         "total_trial_h": float(inp.all[M.TIME_TOTAL_S].sum()) / 3600, "study": str(t["study"].iloc[0])}
    f["targets"] = []
    for target in size_targets(inp):
        r = best_within(t, target["size"])
        f["targets"].append({**target, "row": r, "reached": bool(r is not None and r[M.TEST_ACCURACY] >= target["accuracy"])})
    f["latency_x"] = 1.0 / w["latency_ratio"]
    f["latency_reached"] = f["latency_x"] >= latency_target(inp)
    f["seed_bar"] = {
        "size_share": w["size_bytes"] / teacher["size_bytes"], "latency_share": w["latency_ratio"],
        "points": 100 * (teacher["test_accuracy"] - w["test_accuracy"]),
    }
    f["seed_bar"]["met"] = bool(f["seed_bar"]["size_share"] <= SEED_BAR["size_share"]
                                and f["seed_bar"]["latency_share"] <= SEED_BAR["latency_share"]
                                and f["seed_bar"]["points"] <= SEED_BAR["points"])
    # quantization: bytes per parameter and accuracy lost at conversion (float model -> file), dense trials
    dense = t[t["prune.sparsity"] == 0]
    f["quant"] = []
    for mode in QUANT:  # every mode, in the table's order
        sub = dense[dense["quant.mode"] == mode]
        if len(sub):
            f["quant"].append({"mode": mode, "n": len(sub), "bytes_per_param": float((sub[M.SIZE_BYTES] / sub[M.PARAMS]).median()),
                               "conversion_points": float(100 * (sub[M.KERAS_VAL_ACCURACY] - sub[M.VAL_ACCURACY]).median())})
    # pruning: accuracy after distillation -> final, and the gzip gain, per sparsity
    f["prune"] = []
    for s, sub in t.groupby("prune.sparsity"):
        end_of_distill = [c[int(k) - 1] if len(c) >= int(k) else np.nan for c, k in zip(sub["curve_val"], sub["distill.epochs"])]
        f["prune"].append({"sparsity": float(s), "n": len(sub),
                           "points": float(100 * np.nanmedian(np.asarray(end_of_distill) - sub[M.KERAS_VAL_ACCURACY])),
                           "gzip_share": float((sub[M.SIZE_GZIP_BYTES] / sub[M.SIZE_BYTES]).median())})
    # width along the front: accuracy points per halving of the file
    front = t[t["pareto"]]
    if len(front) >= 3:
        slope = np.polyfit(np.log2(front[M.SIZE_BYTES].astype(float)), 100 * front[M.VAL_ACCURACY].astype(float), 1)[0]
        f["points_per_halving"] = float(slope)
    f["distillation"] = distillation_gain(inp)
    # Core ML against TFLite: the smallest file within one point of the best TFLite validation accuracy
    cm = t.dropna(subset=[M.COREML_SIZE_BYTES, M.COREML_VAL_ACCURACY])
    bar = float(t[M.VAL_ACCURACY].max()) - 0.01
    f["coreml_bar"] = bar
    f["smallest_tflite"] = smallest_reaching(t, M.VAL_ACCURACY, M.SIZE_BYTES, bar)
    f["smallest_coreml"] = smallest_reaching(cm, M.COREML_VAL_ACCURACY, M.COREML_SIZE_BYTES, bar)
    p4 = cm[cm["coreml.compression"] == "palettize4"]
    int8 = t[t["quant.mode"].isin([m for m, q in QUANT.items() if q.weights == "int8"])]
    f["palettize4"] = {"n": len(p4), "bytes_per_param": float((p4[M.COREML_SIZE_BYTES] / p4[M.PARAMS]).median()) if len(p4) else None,
                       "points": float(100 * (p4[M.KERAS_VAL_ACCURACY] - p4[M.COREML_VAL_ACCURACY]).median()) if len(p4) else None,
                       "int8_bytes_per_param": float((int8[M.SIZE_BYTES] / int8[M.PARAMS]).median()) if len(int8) else None}
    return f


def distillation_gain(inp: Inputs) -> dict | None:
    """What distillation adds: the benchmark's undistilled student (the winner's recipe on the labels
    alone, converted in the recipe's own mode) against the distilled file of the same size, which
    is the shipped winner or (when that is shipped in another encoding) the winner finalist's file in
    its own mode. None when no distilled file has the undistilled one's size: not comparable."""
    plain, shipped = inp.bench["student_no_distillation"], inp.bench["winner"]
    if int(plain["size_bytes"]) == int(shipped["size_bytes"]):
        return {"against": "the shipped file", "test_accuracy": float(shipped["test_accuracy"]),
                "plain": plain, "points": 100 * (float(shipped["test_accuracy"]) - float(plain["test_accuracy"]))}
    shipped_seed = int(inp.winner_json.get("seed", 0))  # the finalists' rows are first seeds: the same file?
    own = [f for f in (inp.finalists or {}).get("finalists", []) if f["trial"] == int(inp.winner_json["trial"])
           and f["seed"] == shipped_seed]
    if own and own[0]["own_bytes"] == int(plain["size_bytes"]):
        return {"against": f"the winner finalist converted in its own mode ({own[0]['mode']})",
                "test_accuracy": own[0]["own_test"], "plain": plain,
                "points": 100 * (own[0]["own_test"] - float(plain["test_accuracy"]))}
    return None


def early_stop_table(e: dict) -> str:
    """One early-stop comparison's arms (`compress.search_quality early-stop`) as a table."""
    labels = {"without": "without", "with": "with",
              "without_at_same_time": "without, first trials within the same trial time as with"}
    return md_table([{"early stop": labels.get(k, k), "hypervolume": f"{a['hypervolume']:.4f}",
                      "complete": a["complete"], "pruned": a["pruned"],
                      "training epochs": a.get("epochs_trained", "-"),
                      "trial time s": f"{a['trial_seconds']:.0f}"} for k, a in e["arms"].items()])


def advice(f: dict, inp: Inputs) -> dict:
    """The figures the recommendations rest on (the template says what follows from them)."""
    out = {"targets_missed": any(not tg["reached"] for tg in f["targets"]), "recipe": study_recipe(inp.trials),
           "quant": {q["mode"]: q for q in f["quant"]},
           "heavy_prune": next((p for p in f["prune"] if p["sparsity"] >= 0.75), None)}
    if inp.samplers:
        by = inp.samplers["by_sampler"]
        ranked = sorted(by, key=lambda k: by[k]["mean"], reverse=True)
        out["sampler"] = {"best": ranked[0], "gap": by[ranked[0]]["mean"] - by[ranked[-1]]["mean"],
                          "spread": max(v["std"] for v in by.values()), "by": by, "trials": inp.samplers["trials"],
                          "population": int(sampler_config().population_size)}
    e = inp.early_stop_full or inp.early_stop
    if e:
        arms = e["arms"]
        spread = (max(v["std"] / v["mean"] for v in inp.samplers["by_sampler"].values())
                  if inp.samplers else float("inf"))
        change = arms["with"]["hypervolume"] / arms["without"]["hypervolume"] - 1
        out["early_stop"] = {
            "where": "on the default study" if e is inp.early_stop_full else "on the proxy", "trials": e["trials"],
            "saved": e["time_saved_share"], "change": change, "spread": spread,
            "same_time": (arms["without_at_same_time"]["hypervolume"] / arms["with"]["hypervolume"] - 1
                          if "without_at_same_time" in arms else None),
            "replay_saved": (inp.early_stop_replay["time_saved_share"]
                             if inp.early_stop_replay and e is inp.early_stop else None),
            "on_proxy": e is inp.early_stop, "default": early_stop_default(),
            "pays": e["time_saved_share"] >= 1 / 3 and abs(change) <= spread}
    return out
