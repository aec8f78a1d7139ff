"""The study's figures with plotly, shared by the notebook and the report.

Every function takes the trial table (one row per finished trial, as `compress.tracking.trial_runs` or
`analysis.table` give it, with a boolean `pareto` column) and returns a plotly Figure.
Trials are drawn at their validation accuracy, the figure the study chooses on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from compress.core import metrics as M
from compress.core.front import COREML_OBJECTIVES, TFLITE_2D_OBJECTIVES, pareto_mask
from compress.core.options import QUANT

QUANT_COLOURS = {name: mode.colour for name, mode in QUANT.items()}
REFERENCE_SYMBOLS = {"teacher_float32": "star", "teacher_dynamic": "diamond", "teacher_pruned50_int8": "x"}
LAYOUT = dict(template="plotly_white", width=900, height=520, legend=dict(orientation="h", y=-0.18))


def _hover(df: pd.DataFrame) -> list[str]:
    return [f"trial {int(r.trial)}: {r['quant.mode']}, width {r['student.width']:.3f}, sparsity {r['prune.sparsity']:g}"
            for _, r in df.iterrows()]


def accuracy_against(trials: pd.DataFrame, x: str, references: list[dict] | None = None,
                     title: str = "", winner_trial: int | None = None) -> go.Figure:
    """Validation accuracy (what the study chooses on) against `x` (size_bytes or latency_ratio),
    coloured by quantization mode. The study's front has three objectives (accuracy, bytes,
    latency), so its members are ringed, not joined: on two axes they need not form a line. The
    line is the front on these two axes. Reference models (the benchmark's, scored on the test
    set only) and the winner's search trial are marked; labels are in the legend, not on the plot."""
    fig = go.Figure()
    for mode, colour in QUANT_COLOURS.items():
        sub = trials[trials["quant.mode"] == mode]
        if len(sub):
            fig.add_trace(go.Scatter(x=sub[x], y=100 * sub[M.VAL_ACCURACY], mode="markers", name=mode,
                                     marker=dict(color=colour, size=8, opacity=0.75), text=_hover(sub)))
    front3 = trials[trials["pareto"]]
    if len(front3):
        fig.add_trace(go.Scatter(x=front3[x], y=100 * front3[M.VAL_ACCURACY], mode="markers",
                                 name="on the study's 3-objective front", text=_hover(front3),
                                 marker=dict(symbol="circle-open", size=14, color="black", line=dict(width=1.5))))
    front2 = trials[pareto_mask(trials, {M.VAL_ACCURACY: "max", x: "min"})].sort_values(x)
    if len(front2):
        fig.add_trace(go.Scatter(x=front2[x], y=100 * front2[M.VAL_ACCURACY], mode="lines", line_shape="hv",
                                 name="front on these two axes", line=dict(color="black", width=1, dash="dot")))
    hit = trials[trials["trial"] == winner_trial] if winner_trial is not None else trials.iloc[:0]
    if len(hit):
        fig.add_trace(go.Scatter(x=hit[x], y=100 * hit[M.VAL_ACCURACY], mode="markers",
                                 name=f"winner's recipe (trial {int(winner_trial)}, as searched)", text=_hover(hit),
                                 marker=dict(symbol="star", size=18, color="#f2c80f", line=dict(color="black",
                                                                                                width=1))))
    for ref in references or []:
        fig.add_trace(go.Scatter(x=[ref[x]], y=[100 * ref["test_accuracy"]], mode="markers",
                                 name=f"{ref['name']} (test accuracy)", text=[ref["name"]],
                                 marker=dict(symbol=REFERENCE_SYMBOLS.get(ref["name"], "square"), size=13,
                                             color="#333333")))
    fig.update_xaxes(type="log", title="file size (bytes, log scale)" if x == M.SIZE_BYTES
                     else "latency / teacher float32 TFLite (log scale)")
    fig.update_yaxes(title="validation accuracy (%)")
    fig.update_layout(title=title, **{**LAYOUT, "height": 600, "legend": dict(orientation="h", y=-0.2),
                                      "margin": dict(b=150)})
    return fig


def coreml_front(trials: pd.DataFrame) -> go.Figure:
    """Core ML package size against its validation accuracy (NumPy executor), by compression,
    with the TFLite files of the same trials for comparison (trials without a Core ML branch
    are left out)."""
    trials = trials.dropna(subset=[M.COREML_SIZE_BYTES, M.COREML_VAL_ACCURACY])
    fig = go.Figure()
    for comp, sub in trials.groupby("coreml.compression"):
        fig.add_trace(go.Scatter(x=sub[M.COREML_SIZE_BYTES], y=100 * sub[M.COREML_VAL_ACCURACY], mode="markers",
                                 name=f"Core ML {comp}", marker=dict(size=8, opacity=0.8), text=_hover(sub)))
    front = trials[pareto_mask(trials, COREML_OBJECTIVES)].sort_values(M.COREML_SIZE_BYTES)
    fig.add_trace(go.Scatter(x=front[M.COREML_SIZE_BYTES], y=100 * front[M.COREML_VAL_ACCURACY], mode="lines",
                             line_shape="hv", name="Core ML front", line=dict(color="black", dash="dot")))
    tfl = trials[pareto_mask(trials, TFLITE_2D_OBJECTIVES)].sort_values(M.SIZE_BYTES)
    fig.add_trace(go.Scatter(x=tfl[M.SIZE_BYTES], y=100 * tfl[M.VAL_ACCURACY], mode="lines",
                             line_shape="hv", name="TFLite front (same trials)", line=dict(color="#999999")))
    fig.update_xaxes(type="log", title="file size (bytes)")
    fig.update_yaxes(title="validation accuracy (%)")
    fig.update_layout(title="The iPhone file: Core ML front against the TFLite front", **LAYOUT)
    return fig


def techniques(trials: pd.DataFrame) -> go.Figure:
    """One panel per searched knob: what it does to validation accuracy (top) and size (bottom);
    colour: quantization mode (legend)."""
    knobs = [("prune.sparsity", "sparsity"), ("quant.mode", "quantization"), ("student.width", "width"),
             ("distill.temperature", "temperature")]
    fig = make_subplots(rows=2, cols=4, shared_xaxes=False, vertical_spacing=0.14, horizontal_spacing=0.07,
                        subplot_titles=[k for _, k in knobs] + [""] * 4)
    for mode, colour in QUANT_COLOURS.items():
        sub = trials[trials["quant.mode"] == mode]
        if sub.empty:
            continue
        for col, (key, _) in enumerate(knobs, start=1):
            for row, (metric, scale) in enumerate(((M.VAL_ACCURACY, 100.0), (M.SIZE_BYTES, 1.0)), start=1):
                fig.add_trace(go.Scatter(x=sub[key], y=scale * sub[metric], mode="markers", name=mode,
                                         legendgroup=mode, showlegend=(row, col) == (1, 1),
                                         marker=dict(color=colour, size=7, opacity=0.75), text=_hover(sub)),
                              row=row, col=col)
    for col in range(1, 5):
        fig.update_yaxes(type="log", row=2, col=col)
    fig.update_yaxes(title_text="validation accuracy (%)", row=1, col=1)
    fig.update_yaxes(title_text="bytes (log scale)", row=2, col=1)
    fig.update_layout(title="What each technique buys (colour: quantization mode)", template="plotly_white",
                      width=1100, height=700, margin=dict(l=70, r=30, t=90, b=110),
                      legend=dict(orientation="h", y=-0.12, title="quantization"))
    return fig


def confusion(matrix: list[list[int]], labels: list[str]) -> go.Figure:
    """A confusion matrix as a heat map with counts (rows: true class)."""
    z = np.asarray(matrix)
    fig = go.Figure(go.Heatmap(z=z, x=labels, y=labels, colorscale="Blues", text=z, texttemplate="%{text}",
                               showscale=False))
    fig.update_yaxes(autorange="reversed", title="true class")
    fig.update_xaxes(title="predicted class")
    fig.update_layout(title="Winner on the test set (winner.tflite)", template="plotly_white", width=760, height=680)
    return fig


def learning_curves(curves: dict[str, list[float]], title: str) -> go.Figure:
    """Per-epoch curves (accuracy in [0, 1]) across a trial's training phases."""
    fig = go.Figure()
    for name, values in curves.items():
        fig.add_trace(go.Scatter(x=list(range(1, len(values) + 1)), y=[100 * v for v in values],
                                 mode="lines+markers", name=name))
    fig.update_xaxes(title="epoch (distillation, then pruning / QAT fine-tuning)", dtick=1)
    fig.update_yaxes(title="accuracy (%)")
    fig.update_layout(title=title, **{**LAYOUT, "width": 760, "height": 460})
    return fig


def finalists(rows: list[dict], winner_trial: int | None = None, budgets: list[int] = ()) -> go.Figure:
    """The finalists (analysis.finalists_section's rows): left, the short search's validation
    accuracy against the final training's (same quantization mode; on the dashed line the search
    predicted the final figure); right, the final front: each shipped int8 file's validation
    accuracy against its bytes, beside the search trial it came from (hollow), with the app's
    `budgets` (the size classes of conf/targets/)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Search against final (validation, own mode)",
                                                        "Final front: shipped int8 files"))
    palette = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#9d755d", "#bab0ac"]
    low = min([r["search_val"] for r in rows] + [r["final_val"] for r in rows]) * 100 - 1
    high = max([r["search_val"] for r in rows] + [r["final_val"] for r in rows]) * 100 + 1
    fig.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", name="final = search",
                             line=dict(color="grey", dash="dash", width=1)), row=1, col=1)
    for i, r in enumerate(sorted(rows, key=lambda r: r["ship_bytes"])):
        colour = palette[i % len(palette)]
        star = " (winner)" if winner_trial is not None and r["trial"] == winner_trial else ""
        label = f"trial {r['trial']}{star}: {r['arch']} w{r['width']:.3f} {r['head']}"
        fig.add_trace(go.Scatter(x=[100 * r["search_val"]], y=[100 * r["final_val"]], mode="markers", name=label,
                                 legendgroup=label, marker=dict(color=colour, size=11)), row=1, col=1)
        fig.add_trace(go.Scatter(x=[r["search_bytes"], r["ship_bytes"]], y=[100 * r["search_val"], 100 * r["ship_val"]],
                                 mode="lines+markers", legendgroup=label, showlegend=False,
                                 line=dict(color=colour, width=1, dash="dot"),
                                 marker=dict(color=colour, size=[9, 13], symbol=["circle-open", "star" if star
                                                                                 else "circle"])), row=1, col=2)
    for budget in budgets:
        fig.add_vline(x=budget, line=dict(color="black", width=1, dash="dot"), row=1, col=2)
    fig.update_xaxes(title="search validation accuracy (%)", row=1, col=1)
    fig.update_yaxes(title="final validation accuracy (%)", row=1, col=1)
    fig.update_xaxes(type="log", title="bytes (log; hollow: the search's file, filled: the shipped int8)", row=1, col=2)
    fig.update_yaxes(title="validation accuracy (%)", row=1, col=2)
    fig.update_layout(**{**LAYOUT, "width": 1100, "height": 560, "legend": dict(orientation="h", y=-0.22),
                         "margin": dict(b=160)})
    return fig
