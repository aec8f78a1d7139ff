"""`python -m analysis.report`: report.md and its figures, generated from committed tables.

    python -m analysis.report --from-mlflow     # first write report/trials.csv from the MLflow store
    python -m analysis.report                   # then (or from a clean clone) build the report

Inputs, all in the repository: `report/trials.csv` (the study, `analysis.table`),
`report/bench.json` (`python -m compress.bench`), `report/speed.json` (`python -m compress.speed`),
`report/early_stop.json` and `report/samplers.json` (`python -m compress.search_quality`),
`report/early_stop_replay.json` (`python -m analysis.replay_early_stop`),
`winner/winner.json` (the export)
and the teacher's card.  Output: `report.md` and `report/*.png`.  Nothing is typed by hand:
every figure in the text is computed here from those files, and building twice gives the
same bytes.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import finalists_section, plots, pruning
from compress.config import paths
from compress.config.options import QUANT
from compress.config.paths import compose_for
from compress.core import metrics as M
from compress.core.front import COREML_OBJECTIVES, DEFAULT_OBJECTIVES, pareto_mask
from compress.data.fashion_mnist import CLASS_NAMES
from compress.tracking import trials_table as T

KB = 1024
TARGETS = ({"size": 64 * KB, "accuracy": 0.925}, {"size": 16 * KB, "accuracy": 0.90})
LATENCY_TARGET = 20.0  # times lower than the teacher's float32 TFLite
SEED_BAR = {"size_share": 0.5, "latency_share": 0.6, "points": 5.0}  # seed 001: 50% smaller, 40% faster, within 5 points
FIGURES = ("pareto_size", "pareto_latency", "coreml_front", "techniques", "confusion", "learning_curves")


def pct(v: float, digits: int = 2) -> str:
    return f"{100 * float(v):.{digits}f}%"


def nbytes(v: float) -> str:
    return f"{int(round(float(v))):,} B"


def ratio(v: float) -> str:
    return f"{float(v):.4f}x"


def md_table(rows: list[dict]) -> str:
    if not rows:
        return "_(none)_\n"
    heads = list(rows[0])
    out = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
    out += ["| " + " | ".join(str(r[h]) for h in heads) + " |" for r in rows]
    return "\n".join(out) + "\n"


class Inputs:
    """Everything the report is computed from, read once."""

    def __init__(self, folder: Path, winner_dir: Path, teacher_card: Path):
        self.folder = folder
        self.all = T.read(folder / "trials.csv")
        self.trials = T.finished(self.all)
        self.trials["pareto"] = pareto_mask(self.trials, DEFAULT_OBJECTIVES)
        self.bench = {r["name"]: r for r in json.loads((folder / "bench.json").read_text())}
        self.early_stop = _maybe_json(folder / "early_stop.json")
        self.early_stop_full = _maybe_json(folder / "early_stop_full.json")
        self.early_stop_replay = _maybe_json(folder / "early_stop_replay.json")
        self.samplers = _maybe_json(folder / "samplers.json")
        self.speed = _maybe_json(folder / "speed.json")
        self.pruning = _maybe_json(folder / "pruning.json")  # python -m analysis.pruning (experiment=pruning)
        self.winner_json = json.loads((winner_dir / "winner.json").read_text())
        self.card = json.loads(teacher_card.read_text())
        study = self.winner_json.get("study")
        if study and study not in set(self.trials["study"].astype(str)):
            raise SystemExit(f"error: the winner comes from study {study!r} but {folder / 'trials.csv'} holds "
                             f"{sorted(set(self.trials['study'].astype(str)))}: write that study's table first")
        hits = self.trials[self.trials["trial"] == int(self.winner_json["trial"])]
        if hits.empty:
            raise SystemExit(f"error: winner trial {self.winner_json['trial']} is not a finished trial of the table")
        self.winner = hits.iloc[0]

        # the finalists' figures (None without finalists), for the text and for their figure alike
        self.targets = study_config(study).targets  # the app's budgets, as the study's config sets them
        self.finalists = finalists_section.figures(folder, self.winner_json,
                                                   self.bench["teacher_float32"]["test_accuracy"], self.targets,
                                                   self.speed)


def _maybe_json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


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
    for target in TARGETS:
        r = best_within(t, target["size"])
        f["targets"].append({**target, "row": r, "reached": bool(r is not None and r[M.TEST_ACCURACY] >= target["accuracy"])})
    f["latency_x"] = 1.0 / w["latency_ratio"]
    f["latency_reached"] = f["latency_x"] >= LATENCY_TARGET
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


def figures(inp: Inputs, out: Path) -> list[str]:
    """Write the PNG figures (plotly's static export through kaleido and a Chrome binary)."""
    t = inp.trials
    refs = [inp.bench[k] for k in ("teacher_float32", "teacher_dynamic", "teacher_pruned50_int8")]
    w = inp.winner
    curves = {"validation": w["curve_val"], "training (batch statistics, with dropout)": w["curve_train"]}
    figs = {
        "pareto_size": plots.accuracy_against(t, M.SIZE_BYTES, refs, "Validation accuracy against .tflite size",
                                              int(w.trial)),
        "pareto_latency": plots.accuracy_against(t, M.LATENCY_RATIO, refs, "Validation accuracy against latency",
                                                 int(w.trial)),
        "coreml_front": plots.coreml_front(t),
        "techniques": plots.techniques(t),
        "confusion": plots.confusion(inp.winner_json["confusion"], list(CLASS_NAMES)),
        "learning_curves": plots.learning_curves(curves, f"Winner (trial {int(w.trial)}): accuracy per epoch"),
    }
    if inp.finalists:
        figs["finalists"] = plots.finalists(inp.finalists["finalists"], int(inp.winner_json["trial"]),
                                            list(inp.targets.size_classes))
    out.mkdir(parents=True, exist_ok=True)
    for name, fig in figs.items():
        fig.write_image(out / f"{name}.png", scale=1)
    return [f"{name}.png" for name in figs]


def render(inp: Inputs, fig_dir: str) -> str:
    """report.md's text: the figures computed here (`compute`, the composed config), the prose in
    analysis/templates/report.md.j2."""
    import jinja2

    f, b, w, card = compute(inp), inp.bench, inp.winner, inp.card
    teacher, wb = b["teacher_float32"], b["winner"]
    fin = inp.finalists
    wj = inp.winner_json
    study_cfg = study_config(f["study"])
    winner_table = md_table([
        {"model": "teacher, float32 TFLite", "bytes": f"{teacher['size_bytes']:,}", "MACs": f"{teacher['macs']:,}",
         "latency ms": f"{teacher['latency_ms']:.4f}", "latency / teacher": "1.0000x",
         "test accuracy": pct(teacher["test_accuracy"])},
        {"model": "winner.tflite", "bytes": f"{wb['size_bytes']:,}", "MACs": f"{wb['macs']:,}",
         "latency ms": f"{wb['latency_ms']:.4f}", "latency / teacher": ratio(wb["latency_ratio"]),
         "test accuracy": pct(wb["test_accuracy"])},
        {"model": "winner.mlpackage", "bytes": f"{wj['coreml']['size_bytes']:,}", "MACs": f"{wb['macs']:,}",
         "latency ms": "(iPhone only)", "latency / teacher": "-", "test accuracy": pct(wj["coreml"]["accuracy"])},
    ])
    s = inp.samplers
    context = {
        "f": f, "b": b, "w": w, "wb": wb, "wj": wj, "card": card, "teacher": teacher, "fig_dir": fig_dir,
        "KB": KB, "latency_target": LATENCY_TARGET, "fin": fin, "budget": float(study_cfg.finalize.budget),
        "machine": {"cpus": (inp.speed or {}).get("cpus")},
        "finalists_md": finalists_section.render(fin, fig_dir) if fin else "",
        "pruning_md": pruning.render(inp.pruning) if inp.pruning else "",
        "space": dict(study_cfg.hydra.sweeper.params), "recipe": study_recipe(inp.trials),
        "sampler": nsga2_config(), "measure": study_cfg.measure,
        "techniques_table": md_table(technique_rows(inp)), "front_table": md_table(front_rows(inp)),
        "family_table": md_table(family_rows(inp)),
        "coreml_table": md_table(coreml_rows(inp)), "winner_table": winner_table,
        "per_class": [(name, row[i] / max(1, sum(row))) for i, (name, row) in enumerate(zip(CLASS_NAMES,
                                                                                              wj["confusion"]))],
        "speed": inp.speed, "phases": [(k.removeprefix("time_").removesuffix("_s"), inp.speed["median_" + k])
                                       for k in (M.TIME_TRAIN_S, M.TIME_PRUNE_S, M.TIME_CONVERT_S, M.TIME_EVAL_S,
                                                 M.TIME_COREML_S)] if inp.speed else [],
        "study_median_s": float(inp.trials[M.TIME_TOTAL_S].median()) if M.TIME_TOTAL_S in inp.trials else None,
        "samplers": s,
        "samplers_table": md_table([{"sampler": k, "hypervolume (mean)": f"{v['mean']:.4f}", "std": f"{v['std']:.4f}",
                                     "per seed": ", ".join(f"{x:.4f}" for x in v["values"])}
                                    for k, v in s["by_sampler"].items()]) if s else "",
        "early_stop": inp.early_stop, "early_stop_full": inp.early_stop_full,
        "early_stop_tables": {name: early_stop_table(e) for name, e in (("proxy", inp.early_stop),
                                                                        ("full", inp.early_stop_full)) if e},
        "replay": inp.early_stop_replay, "advice": advice(f, inp),
    }
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    env.filters.update({"pct": pct, "nbytes": nbytes, "ratio": ratio})
    return env.get_template("report.md.j2").render(**context)


def study_config(study: str):
    """The study's composed config (its search space, measurement and finalize settings)."""
    return compose_for(study)


def study_recipe(trials: pd.DataFrame) -> dict:
    """What the study's trials ran (from the table, not the current defaults): distillation and
    pruning epochs, and the distillation views where the table records them (None: not recorded)."""
    def known(key):
        return trials[key].dropna() if key in trials else pd.Series(dtype=object)

    epochs = {key: int(known(key).median()) if len(known(key)) else None for key in ("distill.epochs", "prune.epochs")}
    views = sorted(set(known("distill.augment").astype(str)))
    return {"distill_epochs": epochs["distill.epochs"], "prune_epochs": epochs["prune.epochs"],
            "augment": {"flip_shift": "augmented views with the teacher's logits for each",
                        "none": "the plain images, the teacher's logits cached"}.get(views[0], views[0])
            if len(views) == 1 else None}


def early_stop_table(e: dict) -> str:
    """One early-stop comparison's arms (`compress.search_quality early-stop`) as a table."""
    labels = {"without": "without", "with": "with",
              "without_at_same_time": "without, first trials within the same trial time as with"}
    return md_table([{"early stop": labels.get(k, k), "hypervolume": f"{a['hypervolume']:.4f}",
                      "complete": a["complete"], "pruned": a["pruned"],
                      "training epochs": a.get("epochs_trained", "-"),
                      "trial time s": f"{a['trial_seconds']:.0f}"} for k, a in e["arms"].items()])


def nsga2_config():
    """The default study's sampler settings, from the composed config (not a file read by hand)."""
    return compose_for(None).hydra.sweeper.sampler


def early_stop_default() -> str:
    """The early_stop option the default study composes (its defaults list, as Hydra resolved it)."""
    return str(compose_for(None).hydra.runtime.choices.early_stop)


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
                          "population": int(nsga2_config().population_size)}
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


def build(folder: Path, winner_dir: Path, teacher_card: Path, out_md: Path,
          with_figures: bool = True) -> tuple[Path, list[str]]:
    """Write `out_md` (and the figures into `folder`) from the committed inputs; the report's path
    and the figures' file names."""
    inp = Inputs(folder, winner_dir, teacher_card)
    fig_dir = Path(shutil.os.path.relpath(folder, out_md.parent)).as_posix()
    text = render(inp, fig_dir)
    written = figures(inp, folder) if with_figures else []
    tmp = out_md.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(out_md)
    return out_md, written


def study_trials(sp, report_table: Path | None = None) -> pd.DataFrame:
    """The study's trials from its MLflow runs plus the rows MLflow lacks from its committed table,
    then from the report's own `report_table` (as finalize reads them). A fresh clone's study is
    rebuilt from those tables and has no runs in MLflow: its report reads the tables, and says so.
    SystemExit with one line when none holds a trial."""
    fresh = T.from_mlflow(sp.tracking_uri, sp.experiment, sp.study)
    table = fresh
    for committed in dict.fromkeys(p for p in (sp.study_table, report_table) if p is not None):
        before = len(table)
        table = T.with_committed(table, committed, sp.study)  # trials run on another machine
        if len(table) > before:
            print(f"study {sp.study}: {len(table) - before} trial(s) MLflow does not hold, from {committed}")
    if table.empty:
        raise SystemExit(paths.no_trials_message(sp))
    print(f"study {sp.study}: {len(fresh)} trial runs from MLflow, {len(table) - len(fresh)} from committed tables")
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analysis.report", description=__doc__.split("\n\n")[0])

    paths.add_study_arguments(parser)
    parser.add_argument("--from-mlflow", action="store_true",
                        help="first write the study's trials.csv (in --folder) from its MLflow runs")
    parser.add_argument("--folder", type=Path, default=None,
                        help="the report's inputs (trials.csv, bench.json, finalists.csv, ...) and figures "
                             "(default: report/ for the default study, sweeps/<study>/report otherwise)")
    parser.add_argument("--winner", type=Path, default=None,
                        help="the finalized winner's folder (default: winner/, or sweeps/<study>/winner)")
    parser.add_argument("--teacher-card", type=Path, default=Path("models/teacher/card.json"),
                        help="the teacher's card (default models/teacher/card.json)")
    parser.add_argument("--out", type=Path, default=None,
                        help="the Markdown file to write (default: report.md, or sweeps/<study>/report.md)")
    parser.add_argument("--no-figures", action="store_true", help="text only (no Chrome binary needed)")
    args = parser.parse_args(argv)
    sp = paths.from_args(args)
    try:
        folder = sp.check_writable(args.folder or sp.report_dir, "--folder")
        out = sp.check_writable(args.out or sp.report_md, "--out")
    except paths.ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    winner = args.winner or sp.winner_dir
    if args.from_mlflow:
        paths.require_store(sp)
        fresh = study_trials(sp, folder / "trials.csv")
        paths.write_or_exit(folder / "trials.csv", lambda p: T.write(fresh, p))
    needed = {args.teacher_card: "the committed models/teacher/card.json, or python -m compress.teacher",
              folder / "trials.csv": f"python -m analysis.report --study {sp.study} --from-mlflow",
              folder / "bench.json": f"python -m compress.bench --study {sp.study}",
              winner / "winner.json": f"python -m compress.finalize {paths.study_overrides(sp.study)[0] if not sp.is_default else ''}".strip()}
    for path, how in needed.items():
        if not path.is_file():
            raise SystemExit(f"error: {path}: missing, the report of study {sp.study} needs it (make it with: {how})")
    path, written = build(folder, winner, args.teacher_card, out, not args.no_figures)
    print(f"wrote {path}" + ("" if args.no_figures else f" and {len(written)} figures in {folder}/"))


if __name__ == "__main__":
    main()
