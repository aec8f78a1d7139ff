"""`python -m analysis.report`: report.md and its figures, generated from committed tables.

    python -m analysis.report --from-mlflow     # first write report/trials.csv from the MLflow store
    python -m analysis.report                   # then (or from a clean clone) build the report

Inputs, all in the repository: `report/trials.csv` (the study, `analysis.table`),
`report/bench.json` (`python -m compress.bench`), `report/speed.json` (`python -m compress.speed`),
`report/early_stop.json` and `report/samplers.json` (`python -m compress.search_quality`),
`report/paired_teacher.json` (`python -m compress.verify winner/winner.tflite --against models/teacher/teacher.keras
--save report/paired_teacher.json`),
`report/early_stop_replay.json` (`python -m analysis.replay_early_stop`),
`winner/winner.json` (the export)
and the teacher's card.  Output: `report.md` and `report/*.png`.  Nothing is typed by hand:
every figure in the text is computed here from those files, and building twice gives the
same bytes.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from analysis import finalists_section, main_job_timing, plots, pruning
from analysis.findings import (
    KB,
    advice,
    compute,
    coreml_rows,
    early_stop_table,
    family_rows,
    front_rows,
    latency_target,
    technique_rows,
)
from analysis.markdown import md_table, nbytes, pct, ratio
from analysis.report_inputs import Inputs, sampler_config, study_config, study_recipe, study_trials
from analysis.static_images import one_browser, write_png
from compress.config import paths, study_data
from compress.core import metrics as M
from compress.data.fashion_mnist import CLASS_NAMES, sha256_of
from compress.measure import machine
from compress.tracking import trials_table as T

FIGURES = ("pareto_size", "pareto_latency", "coreml_front", "techniques", "confusion", "learning_curves")


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
    with one_browser():
        for name, fig in figs.items():
            write_png(fig, out / f"{name}.png")
    return [f"{name}.png" for name in figs]


def paired_with_teacher(inp: Inputs) -> dict | None:
    """The winner against the user's teacher on the same test images (McNemar's exact test), from
    report/paired_teacher.json; None where that file is absent or was measured on another winner file: one of
    another digest, or (saved without one) of another size or test accuracy (a retrained winner may keep
    its size: trial 29's 30- and 60-epoch files are both 64,712 B)."""
    p, winner = inp.paired_teacher, inp.bench["winner"]
    if not p or int(p.get("size_bytes", -1)) != int(winner["size_bytes"]):
        return None
    if abs(float(p.get("accuracy", -1)) - float(winner["test_accuracy"])) > 5e-5:
        return None
    if p.get("sha256") and winner.get("file") and Path(winner["file"]).is_file() \
            and p["sha256"] != sha256_of(winner["file"]):
        return None
    return {**p, "differ": p["mcnemar_p"] < 0.05}


def render(inp: Inputs, fig_dir: str) -> str:
    """report.md's text: the figures computed here (`compute`, the composed config), the prose in
    analysis/templates/report.md.j2."""
    import jinja2

    f, b, w, card = compute(inp), inp.bench, inp.winner, inp.card
    teacher, wb = b["teacher_float32"], b["winner"]
    fin = inp.finalists
    wj = inp.winner_json
    class_names = wj["data"]["class_names"] if wj.get("data") else CLASS_NAMES
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
        "KB": KB, "latency_target": latency_target(inp), "fin": fin, "budget": float(study_cfg.finalize.budget),
        "machine": {"cpus": (inp.speed or {}).get("cpus")}, "paired": paired_with_teacher(inp),
        "latency_machine": machine.describe(inp.bench["winner"].get("cpu"), inp.bench["winner"].get("isa")),
        "finalists_md": finalists_section.render(fin, fig_dir) if fin else "",
        "pruning_md": pruning.render(inp.pruning) if inp.pruning else "",
        "space": dict(study_cfg.hydra.sweeper.params), "recipe": study_recipe(inp.trials),
        "sampler": sampler_config(), "measure": study_cfg.measure,
        "techniques_table": md_table(technique_rows(inp)), "front_table": md_table(front_rows(inp)),
        "family_table": md_table(family_rows(inp)),
        "coreml_table": md_table(coreml_rows(inp)), "winner_table": winner_table,
        "per_class": [(name, row[i] / max(1, sum(row))) for i, (name, row) in enumerate(zip(class_names,
                                                                                              wj["confusion"]))],
        "data": wj.get("data"),
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
        "main_job": inp.main_job, "main_job_classes": main_job_timing.against_targets(
            inp.main_job, inp.targets.size_classes, inp.targets.accuracy),
    }
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    env.filters.update({"pct": pct, "nbytes": nbytes, "ratio": ratio})
    return env.get_template("report.md.j2").render(**context)


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
    parser.add_argument("--teacher-card", type=Path, default=None,
                        help="the teacher's card (default models/teacher/card.json; a study on other data: "
                             "sweeps/<study>/teacher/card.json, written by its trials)")
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
    data = study_data.read(paths.SWEEPS_DIR, sp.study)
    card = args.teacher_card or (Path(paths.SWEEPS_DIR) / sp.study / "teacher" / "card.json" if data
                                 else Path("models/teacher/card.json"))
    if args.from_mlflow:
        paths.require_store(sp)
        fresh = study_trials(sp, folder / "trials.csv")
        paths.write_or_exit(folder / "trials.csv", lambda p: T.write(fresh, p))
    needed = {card: "the committed models/teacher/card.json, or python -m compress.teacher",
              folder / "trials.csv": f"python -m analysis.report --study {sp.study} --from-mlflow",
              folder / "bench.json": f"python -m compress.bench --study {sp.study}",
              winner / "winner.json": f"python -m compress.finalize {paths.study_overrides(sp.study)[0] if not sp.is_default else ''}".strip()}
    for path, how in needed.items():
        if not path.is_file():
            raise SystemExit(f"error: {path}: missing, the report of study {sp.study} needs it (make it with: {how})")
    path, written = build(folder, winner, card, out, not args.no_figures)
    print(f"wrote {path}" + ("" if args.no_figures else f" and {len(written)} figures in {folder}/"))


if __name__ == "__main__":
    main()
