"""The winner as an MLflow model: a pyfunc over the shipped .tflite file, registered with an alias.

`mlflow models serve -m models:/<name>@champion --env-manager local` then answers
`POST /invocations` with `{"inputs": [[H rows of W pixels, 0-255], ...]}` (for Fashion-MNIST 28 rows of
28; colour images as H x W x 3) and returns the class index of each image, computed by the very .tflite
file the app ships (LiteRT), so the served predictions are the file's.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from mlflow.pyfunc import PythonModel

from compress.data import arrays
from compress.data.fashion_mnist import sha256_of
from compress.measure.tflite import image_shape, predict
from compress.tracking import runs as tracking

log = logging.getLogger(__name__)
ALIAS = "champion"


class TFLiteClassifier(PythonModel):
    """Images of the file's own size with pixels 0-255 in (H x W for grayscale, H x W x C else, or
    each flattened), the class index of each out."""

    def load_context(self, context):
        self.path = context.artifacts["tflite"]
        self.shape = image_shape(self.path)

    def predict(self, context, model_input, params=None):
        if isinstance(model_input, dict):  # a named tensor: the only one
            (model_input,) = model_input.values()
        x = np.asarray(model_input, dtype=np.float32)
        h, w, c = self.shape
        if x.ndim == 2 and x.shape[1] == h * w * c:
            x = x.reshape(-1, h, w, c)
        if x.shape[1:] not in ((h, w, c),) + (((h, w),) if c == 1 else ()):
            expected = f"(n, {h}, {w}) grayscale" if c == 1 else f"(n, {h}, {w}, {c})"
            raise ValueError(f"inputs of shape {x.shape}: expected {expected} pixels 0-255")
        return np.argmax(predict(self.path, x.reshape(-1, h, w, c) / 255.0), axis=1).astype(np.int64)


def input_shape(shape: tuple[int, int, int]) -> tuple[int, ...]:
    """The served input: (n, H, W) for grayscale (as Fashion-MNIST's always was), (n, H, W, C) else."""
    h, w, c = shape
    return (-1, h, w) if c == 1 else (-1, h, w, c)


def signature(shape: tuple[int, int, int] = (28, 28, 1)):
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    return ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), input_shape(shape))]),
                          outputs=Schema([TensorSpec(np.dtype(np.int64), (-1,))]))


def requirements() -> list[str]:
    """What the served model imports, pinned to the versions it was logged with (given, so that
    MLflow need not load the model in a subprocess to guess them)."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlflow", "numpy", "ai-edge-litert", "tensorflow")]


def register_winner(tracking_cfg, run_id: str | None, tflite: Path, images: np.ndarray, summary: dict) -> dict:
    """Log the winner as a pyfunc model on its finalist's run (a new run `winner` when that run is not in
    this store: the finalists' table may come from another machine's), register it under
    `tracking.registered_model` and point the `champion` alias at that version. `images` (float,
    [0, 1]) give the input example. Returns what names the model in any store (its name, alias and
    URI); the version and run, which belong to this store alone, are logged."""
    import mlflow
    from mlflow.tracking import MlflowClient

    experiment_id = tracking.connect(tracking_cfg)
    name = str(tracking_cfg.registered_model)
    client = MlflowClient()
    digest = sha256_of(tflite)
    registered = {"name": name, "alias": ALIAS, "uri": f"models:/{name}@{ALIAS}"}
    try:
        current = client.get_model_version_by_alias(name, ALIAS)
    except Exception:  # noqa: BLE001 - no such model or alias yet
        current = None
    if current is not None and current.tags.get("sha256") == digest:
        log.info("%s@%s (version %s) is already this file: not registered again", name, ALIAS, current.version)
        return registered
    if run_id and not tracking.run_in_store(run_id):
        log.info("the winner's finalist run %s is not in the store %s (the finalists' table came from another "
                 "store): the winner is logged in a new run 'winner'", run_id, tracking_cfg.uri)
        run_id = None
    shape = tuple(int(v) for v in images.shape[1:])
    example = arrays.to_pixels(images[:2]).reshape(input_shape(shape)).astype(np.float32)  # 0-255, as served
    with mlflow.start_run(run_id=run_id) if run_id else mlflow.start_run(experiment_id=experiment_id,
                                                                         run_name="winner") as run:
        info = mlflow.pyfunc.log_model(
            name="winner", python_model=str(Path(__file__).with_name("serving_model.py")), artifacts={"tflite": str(tflite)},
            signature=signature(shape), input_example=example, registered_model_name=name,
            code_paths=[str(Path(__file__).resolve().parents[1])], pip_requirements=requirements(),  # the package
            metadata={k: summary[k] for k in ("study", "trial", "seed", "size_bytes", "test_accuracy", "encoding")})
        run_id = run.info.run_id
    version = str(info.registered_model_version)
    client.set_model_version_tag(name, version, "sha256", digest)
    client.set_registered_model_alias(name, ALIAS, version)
    for key in ("study", "trial", "seed", "size_bytes", "test_accuracy", "encoding", "policy"):
        client.set_model_version_tag(name, version, key, str(summary[key]))
    log.info("registered %s version %s as models:/%s@%s (run %s)", name, version, name, ALIAS, run_id)
    return registered
