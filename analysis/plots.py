"""The study's figures with plotly, shared by the notebook and the report.

Every function takes the trial table (one row per finished trial, as `analysis.runs` or
`analysis.table` give it, with a boolean `pareto` column) and returns a plotly Figure.
Trials are drawn at their test accuracy; the front is the one chosen on validation
accuracy, so a front trial can sit below a dominated one on these axes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.front import COREML_OBJECTIVES, TFLITE_2D_OBJECTIVES, pareto_mask
from compress import metrics as M

QUANT_COLOURS = {"float32": "#4c78a8", "float16": "#72b7b2", "dynamic": "#f58518", "int8": "#e45756", "qat": "#54a24b"}
REFERENCE_SYMBOLS = {"teacher_float32": "star", "teacher_dynamic": "diamond", "teacher_pruned50_int8": "x"}
LAYOUT = dict(template="plotly_white", width=900, height=520, legend=dict(orientation="h", y=-0.18))


def _hover(df: pd.DataFrame) -> list[str]:
    return [f"trial {int(r.trial)}: {r['quant.mode']}, width {r['student.width']:.3f}, sparsity {r['prune.sparsity']:g}"
            for _, r in df.iterrows()]


def accuracy_against(trials: pd.DataFrame, x: str, references: list[dict] | None = None,
                     title: str = "") -> go.Figure:
    """Test accuracy against `x` (size_bytes or latency_ratio), coloured by quantization mode,
    front trials ringed and joined, reference models marked."""
    fig = go.Figure()
    for mode, colour in QUANT_COLOURS.items():
        sub = trials[trials["quant.mode"] == mode]
        if len(sub):
            fig.add_trace(go.Scatter(x=sub[x], y=100 * sub[M.TEST_ACCURACY], mode="markers", name=mode,
                                     marker=dict(color=colour, size=8, opacity=0.75), text=_hover(sub)))
    front = trials[trials["pareto"]].sort_values(x)
    if len(front):
        fig.add_trace(go.Scatter(x=front[x], y=100 * front[M.TEST_ACCURACY], mode="lines+markers",
                                 name="Pareto front (validation)", text=_hover(front),
                                 line=dict(color="black", width=1, dash="dot"),
                                 marker=dict(symbol="circle-open", size=14, color="black")))
    for ref in references or []:
        fig.add_trace(go.Scatter(x=[ref[x]], y=[100 * ref["test_accuracy"]], mode="markers+text", name=ref["name"],
                                 text=[ref["name"]], textposition="top center",
                                 marker=dict(symbol=REFERENCE_SYMBOLS.get(ref["name"], "square"), size=14,
                                             color="#333333")))
    fig.update_xaxes(type="log", title="file size (bytes)" if x == M.SIZE_BYTES else "latency / teacher float32 TFLite")
    fig.update_yaxes(title="test accuracy (%)")
    fig.update_layout(title=title, **LAYOUT)
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
                             name="Core ML front", line=dict(color="black", dash="dot")))
    tfl = trials[pareto_mask(trials, TFLITE_2D_OBJECTIVES)].sort_values(M.SIZE_BYTES)
    fig.add_trace(go.Scatter(x=tfl[M.SIZE_BYTES], y=100 * tfl[M.VAL_ACCURACY], mode="lines",
                             name="TFLite front (same trials)", line=dict(color="#999999")))
    fig.update_xaxes(type="log", title="file size (bytes)")
    fig.update_yaxes(title="validation accuracy (%)")
    fig.update_layout(title="The iPhone file: Core ML front against the TFLite front", **LAYOUT)
    return fig


def techniques(trials: pd.DataFrame) -> go.Figure:
    """One panel per searched knob: what it does to accuracy (top) and size (bottom)."""
    knobs = [("prune.sparsity", "sparsity"), ("quant.mode", "quantization"), ("student.width", "width"),
             ("distill.temperature", "temperature")]
    fig = make_subplots(rows=2, cols=4, shared_xaxes=False, vertical_spacing=0.12, horizontal_spacing=0.06,
                        subplot_titles=[k for _, k in knobs] + [""] * 4)
    colours = [QUANT_COLOURS.get(m, "#777777") for m in trials["quant.mode"]]
    for col, (key, _) in enumerate(knobs, start=1):
        x = trials[key]
        for row, (metric, scale) in enumerate(((M.TEST_ACCURACY, 100.0), (M.SIZE_BYTES, 1.0)), start=1):
            fig.add_trace(go.Scatter(x=x, y=scale * trials[metric], mode="markers", showlegend=False,
                                     marker=dict(color=colours, size=7, opacity=0.75), text=_hover(trials)),
                          row=row, col=col)
        fig.update_yaxes(type="log", row=2, col=col)
    fig.update_yaxes(title_text="test accuracy (%)", row=1, col=1)
    fig.update_yaxes(title_text="bytes", row=2, col=1)
    fig.update_layout(title="What each technique buys (colour: quantization mode)",
                      **{**LAYOUT, "width": 1200, "height": 640})
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
