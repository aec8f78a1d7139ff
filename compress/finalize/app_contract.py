"""winner/README.md: how an app calls each exported file, written from the files' own interface."""

from __future__ import annotations

from pathlib import Path

from compress.data.fashion_mnist import CLASS_NAMES


def coreml_interface(package: Path) -> dict:
    """Input and output names and types of an .mlpackage, read from its spec."""
    import coremltools as ct

    spec = ct.utils.load_spec(str(package))
    desc = spec.description
    return {"inputs": [(i.name, i.type.WhichOneof("Type")) for i in desc.input],
            "outputs": [(o.name, o.type.WhichOneof("Type")) for o in desc.output],
            "predicted_feature": desc.predictedFeatureName, "probabilities": desc.predictedProbabilitiesName}


def _data_words(summary: dict) -> dict:
    """How the contract names the data: Fashion-MNIST's words as they always were, or the study's own
    data (winner.json's `data` block: its source, image shape and class names)."""
    data = summary.get("data")
    if not data:
        return {"names": CLASS_NAMES, "test_set": "Fashion-MNIST test images", "image": "28x28 grayscale image",
                "pixels": "(a white garment on a black background, as in\n  Fashion-MNIST; invert a photo of a dark "
                          "garment on a light background first)"}
    h, w, c = data["image_shape"]
    colour = "grayscale" if c == 1 else "RGB"
    order = "" if c == 1 else ", channels in R, G, B order"
    return {"names": data["class_names"], "test_set": f"test images of {data['source']}",
            "image": f"{h}x{w} {colour} image",
            "pixels": f"(as the training images were read: {data['kind']} at\n  {data['source']}{order})"}


def render(summary: dict, coreml: dict) -> str:
    """The contract's text."""
    i, o = summary["io"]["input"], summary["io"]["output"]
    words = _data_words(summary)
    labels = "\n".join(f"| {k} | {name} |" for k, name in enumerate(words["names"]))
    quantized_in = i["dtype"] == "int8"
    arithmetic = (
        f"q = clamp(round(p / 255 / {i['scale']:.10g}) + ({i['zero_point']}), -128, 127)" if quantized_in
        else "x = p / 255 (float32)")
    out_math = (f"logit = (q_out - ({o['zero_point']})) * {o['scale']:.10g}" if o["dtype"] == "int8"
                else "the logits as they are")
    outputs = ", ".join(f"`{name}` ({kind})" for name, kind in coreml["outputs"])
    return f"""# The winner: how to call it

Chosen by policy `{summary['policy']}`: {summary['reason']}. Study `{summary['study']}`, search trial
{summary['trial']}, trained seed {summary['seed']}. Figures below are measured from these files on
{summary['tflite']['n']:,} {words['test_set']} (`python -m compress.verify winner/winner.tflite`).

## winner.tflite ({summary['size_bytes']:,} bytes, {100 * summary['test_accuracy']:.2f}% test accuracy)

- Input: tensor `{i['name']}`, shape `{i['shape']}` (batch, height, width, channels: NHWC), dtype `{i['dtype']}`,
  scale {i['scale']:.10g}, zero point {i['zero_point']}.
- From a {words['image']} with pixel values p in 0..255 {words['pixels']}, each input value is
  `{arithmetic}`.
- Output: tensor `{o['name']}`, shape `{o['shape']}`, dtype `{o['dtype']}`, scale {o['scale']:.10g}, zero point
  {o['zero_point']}: `{out_math}`. The class is the index of the largest value; softmax of the logits gives
  probabilities if the app wants them.
- Runs on LiteRT (TensorFlow Lite) with the builtin int8 kernels; no custom ops, no signature needed
  (call it by input and output index 0).

## winner.mlpackage ({summary['coreml']['size_bytes']:,} bytes, {100 * summary['coreml']['accuracy']:.2f}% test accuracy)

- Core ML ML Program (iOS 16 or later). Input: `{coreml['inputs'][0][0]}`, a {words['image']}
  (`{coreml['inputs'][0][1]}`); pass the pixels 0..255 as they are: the model scales them by 1/255 itself.
- Outputs: {outputs}. `{coreml['predicted_feature']}` is the class name; `{coreml['probabilities']}` maps each
  class name to its probability.

## Labels (output index: class)

| index | class |
|---|---|
{labels}
"""


def write_readme(path: Path, summary: dict) -> None:
    package = Path(path).with_name("winner.mlpackage")
    Path(path).write_text(render(summary, coreml_interface(package)))
