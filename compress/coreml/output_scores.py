"""Which output of a Core ML model holds its class scores (a classifier's probabilities, or the
tensor with one entry per class) and those scores in the data's class order."""

from __future__ import annotations

import numpy as np

from compress.core.errors import InterfaceError
from compress.coreml.reading import Reading
from compress.data.fashion_mnist import CLASS_NAMES


def _classify_labels(program) -> list:
    for op in program.functions["main"].operations:
        if op.op_type == "classify":
            classes = op.inputs["classes"].val
            return [c.item() if hasattr(c, "item") else c for c in np.asarray(classes).reshape(-1)]
    return []


def _class_count(shape) -> int | None:
    """The class axis of an output shaped (batch, ...): its last axis of more than one entry."""
    dims = [int(d) for d in list(shape)[1:] if isinstance(d, (int, np.integer)) and int(d) > 1]
    return dims[-1] if dims else None


def class_output(spec, program, least: int | None, wanted: str | None, notes: list) -> tuple[str, str, list, int]:
    """(output name, kind, classifier labels, the model's number of classes); `least`: the data's
    labels run up to least - 1, so the model must have at least that many classes."""
    desc = spec.description
    names = [o.name for o in desc.output]
    least = int(least or 1)
    if desc.predictedFeatureName:  # a classifier
        labels = _classify_labels(program)
        if len(labels) < least:
            raise InterfaceError(f"the classifier has {len(labels)} classes; the data's labels go up to {least - 1}")
        return desc.predictedProbabilitiesName or desc.predictedFeatureName, "classifier", labels, len(labels)
    program_shapes = {v.name: v.shape for v in program.functions["main"].outputs}
    counts = {}
    for o in desc.output:
        if o.type.WhichOneof("Type") == "multiArrayType":
            counts[o.name] = _class_count(o.type.multiArrayType.shape) or _class_count(program_shapes.get(o.name, ()))
    if wanted:
        if wanted not in counts:
            raise InterfaceError(f"--output {wanted}: the model's outputs are {', '.join(names)}")
        chosen = [wanted]
    else:  # the outputs with a class axis that holds every label, the smallest first
        chosen = sorted((n for n, k in counts.items() if k and k >= least), key=lambda n: counts[n])
    if not chosen or not counts[chosen[0]]:
        raise InterfaceError(f"no output holds scores for {least} or more classes (outputs: "
                             f"{', '.join(f'{n} {program_shapes.get(n)}' for n in names)})")
    if len(counts) > 1 or len(names) > 1:
        notes.append(f"of the outputs {', '.join(names)}, {chosen[0]!r} was used (--output to pick another)")
    if counts[chosen[0]] < least:
        raise InterfaceError(f"output {chosen[0]!r} has {counts[chosen[0]]} classes; the data's labels go up to "
                             f"{least - 1}")
    return chosen[0], "scores", [], counts[chosen[0]]


def class_scores(reading: Reading, outputs: dict) -> np.ndarray:
    """(n, the model's classes) scores in the data's class order from the program's outputs;
    labels of a classifier must be the class indices 0..n-1 (as numbers or digits) or the data's
    class names (`reading.data_class_names`; Fashion-MNIST's when none are given)."""
    n_classes = reading.n_classes
    names = [str(n) for n in (reading.data_class_names or CLASS_NAMES)]

    if reading.output_kind == "classifier":
        probs = np.asarray(outputs["__probabilities__"], np.float32).reshape(-1, n_classes)
        labels = reading.labels
        if all(isinstance(v, (int, np.integer)) for v in labels):
            order = [int(v) for v in labels]
        elif n_classes == len(names) and set(map(str, labels)) == set(names):
            order = [names.index(str(v)) for v in labels]
        elif sorted(str(v) for v in labels) == sorted(str(i) for i in range(n_classes)):
            order = [int(str(v)) for v in labels]
        else:
            raise InterfaceError(f"the classifier's labels {labels[:4]}... are neither 0..{n_classes - 1} nor the "
                                 f"data's class names")
        out = np.zeros_like(probs)
        out[:, order] = probs
        return out
    value = np.asarray(outputs[reading.output_name], np.float32)
    axes = [i for i, d in enumerate(value.shape) if d == n_classes and i > 0]
    if not axes:
        raise InterfaceError(f"output {reading.output_name!r} has shape {value.shape}: no axis of {n_classes} "
                             f"classes")
    scores = np.moveaxis(value, axes[-1], -1).reshape(len(value), -1, n_classes)[:, 0]
    probabilities = bool(np.all(scores >= -1e-6) and np.allclose(scores.sum(-1), 1, atol=1e-2))
    reading.output_kind = "probabilities" if probabilities else "logits (or other unnormalized scores)"
    return scores
