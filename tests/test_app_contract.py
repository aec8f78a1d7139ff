"""The app developer's contract: winner/README.md alone says how to call each committed file.
Following that text from raw 0-255 test pixels gives exactly the accuracy winner.json logs."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import ROOT, needs_data

WINNER = ROOT / "winner"
pytestmark = [needs_data, pytest.mark.skipif(not (WINNER / "README.md").is_file(), reason="no committed winner/README.md")]


def raw_test_set():
    """The test images as the bytes an app would have (0..255), and their labels."""
    from compress.data import fashion_mnist as data

    folder = data.locate(None)
    pixels = data.read_idx(folder / data.FILES["test_images"], "images")
    labels = data.read_idx(folder / data.FILES["test_labels"], "labels")
    return pixels, labels.astype(np.int64)


def contract():
    text = (WINNER / "README.md").read_text()
    inp = re.search(r"Input: tensor `(\w+)`, shape `\[1, 28, 28, 1\]`.*?dtype `(\w+)`,\s+scale ([\d.e-]+), "
                    r"zero point (-?\d+)", text, re.S)
    out = re.search(r"Output: tensor `(\w+)`, shape `\[1, 10\]`, dtype `(\w+)`, scale ([\d.e-]+), zero point\s+(-?\d+)",
                    text, re.S)
    assert inp and out, "winner/README.md no longer states the input and output the way an app reads them"
    assert "q = clamp(round(p / 255 / " in text and "The class is the index of the largest value" in text
    return inp.groups(), out.groups()


def test_the_tflite_contract_reproduces_the_logged_accuracy():
    from ai_edge_litert.interpreter import Interpreter

    (in_name, in_dtype, in_scale, in_zero), (out_name, *_rest) = contract()
    assert in_dtype == "int8"
    pixels, labels = raw_test_set()
    q = np.clip(np.round(pixels.astype(np.float64) / 255 / float(in_scale)) + int(in_zero), -128, 127).astype(np.int8)
    interp = Interpreter(model_path=str(WINNER / "winner.tflite"))
    detail = interp.get_input_details()[0]
    assert detail["name"] == in_name and interp.get_output_details()[0]["name"] == out_name
    interp.resize_tensor_input(detail["index"], [1000, 28, 28, 1])
    interp.allocate_tensors()
    predicted = []
    for start in range(0, len(q), 1000):
        interp.set_tensor(detail["index"], q[start:start + 1000, :, :, None])
        interp.invoke()
        predicted.append(np.argmax(interp.get_tensor(interp.get_output_details()[0]["index"]), axis=1))
    accuracy = float(np.mean(np.concatenate(predicted) == labels))
    logged = json.loads((WINNER / "winner.json").read_text())
    assert accuracy == pytest.approx(logged["test_accuracy"], abs=1e-12)


@pytest.mark.slow
def test_the_core_ml_contract_reproduces_the_logged_accuracy():
    from compress.coreml.executor import Program

    text = (WINNER / "README.md").read_text()
    assert "pass the pixels 0..255 as they are" in text
    pixels, labels = raw_test_set()
    program = Program(WINNER / "winner.mlpackage")
    nchw = pixels[:, None].astype(np.float32)  # the image input: one gray channel of 0..255 values
    probs = np.concatenate([program.run(nchw[i:i + 1000]) for i in range(0, len(nchw), 1000)])
    accuracy = float(np.mean(np.argmax(probs, 1) == labels))
    logged = json.loads((WINNER / "winner.json").read_text())
    assert accuracy == pytest.approx(logged["coreml"]["accuracy"], abs=1e-12)


@pytest.mark.slow
def test_the_verifier_scores_the_package_within_a_third_of_a_point_of_the_tflite_file():
    """`python -m compress.verify`'s scoring, on the committed files themselves and the full test
    set: the Core ML package and the LiteRT file ship the same model, so their accuracies differ
    by at most 0.3 points, and each is the figure winner.json logged for it."""
    from compress.measure.scoring import score

    logged = json.loads((WINNER / "winner.json").read_text())
    result = score(WINNER / "winner.mlpackage", against=WINNER / "winner.tflite")
    assert result["n"] == 10000
    assert abs(result["accuracy"] - result["against_accuracy"]) <= 0.003, result
    assert result["accuracy"] == pytest.approx(logged["coreml"]["accuracy"], abs=1e-3)
    assert result["against_accuracy"] == pytest.approx(logged["tflite"]["accuracy"], abs=1e-3)
    assert "image scale 0.00392157, bias 0" in result["interface"]  # the package's own 1/255, read from it
