"""How a Core ML model's interface was read: the input fed, the output that holds the class scores,
and the sentence that says so (`describe`), so that no reading of a model is silent."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Reading:
    """How the data is fed and the outputs read (what `describe` prints)."""

    input_name: str
    input_kind: str  # image | array
    layout: str  # e.g. "image 28x28 grayscale", "array (1, 28, 28, 1) NHWC float32"
    scale: str  # e.g. "pixels 0-255 (the model scales them)", "floats in [0, 1] (Keras convention)"
    output_name: str
    output_kind: str  # classifier | probabilities | logits
    labels: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    feed: object = None  # images (n, H, W, C) float pixels 0-255 -> the model's input array
    n_classes: int = 0  # the model's own: its labels, or its output's class axis
    reversed_channels: bool = False  # RGB data fed to a BGR image input (the executor reverses them)
    data_class_names: tuple = ()  # the data's class names in label order (empty: Fashion-MNIST's)

    def describe(self) -> str:
        text = (f"input {self.input_name!r}: {self.layout}, {self.scale}; output {self.output_name!r}: "
                f"{self.output_kind}")
        if self.labels:
            text += f" ({len(self.labels)} classes, the model's order)"
        elif self.n_classes:
            text += f" ({self.n_classes} classes)"
        return text + "".join(f"; {n}" for n in self.notes)
