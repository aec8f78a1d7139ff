"""The one place that decides which TensorFlow and Keras the project uses.

tensorflow-model-optimization does not support Keras 3, so the project runs on the
legacy Keras 2 (``tf_keras``).  The switch has to be set before TensorFlow is first
imported, and TensorFlow's start-up log spam is silenced here for the same reason.
Every other module imports ``tf``, ``keras`` and ``tfmot`` from here.
"""

from __future__ import annotations

import logging
import os
import warnings

from compress.core.quiet import native_quiet

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter.*")
warnings.filterwarnings("ignore", message=".*Statistics for quantized inputs.*")
warnings.filterwarnings("ignore", category=UserWarning, module="tensorflow.lite")


def _import_quietly():
    with native_quiet():
        import tensorflow
        import tf_keras
    return tensorflow, tf_keras


tf, keras = _import_quietly()
if os.environ.get("COMPRESS_THREADS"):  # parallel sweep workers share the cores
    _threads = int(os.environ["COMPRESS_THREADS"])
    tf.config.threading.set_intra_op_parallelism_threads(_threads)
    tf.config.threading.set_inter_op_parallelism_threads(_threads)

tf.get_logger().setLevel(logging.ERROR)
logging.getLogger("absl").setLevel(logging.ERROR)
try:  # absl prints a warning on first use unless its handler is told to be quiet
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
except ImportError:  # pragma: no cover - absl ships with tensorflow
    pass


def tflite_converter(model, folder: str):
    """A TFLite converter for the Keras `model`, through a SavedModel written to `folder` (which must
    live until `convert()` returns) that holds only the serving signature, traced as the converter's
    `from_keras_model` traces it, and not every layer's own functions, which the converter never reads:
    the same flatbuffer, byte for byte, in less than half the time for a trained student. A model that Keras
    cannot save this way goes the converter's own way."""
    from tensorflow.lite.python import conversion_metadata_schema_py_generated as metadata
    from tf_keras.src.saving.legacy import saving_utils

    optimizer = getattr(model, "optimizer", None)
    try:
        with native_quiet():
            keras.models.save_model(model, folder, save_format="tf", include_optimizer=False, save_traces=False,
                                    signatures=saving_utils.trace_model_call(model))
    except Exception:  # noqa: BLE001 - a model Keras cannot save this way (a custom layer without get_config)
        if optimizer is not None and getattr(model, "optimizer", None) is None:
            model.optimizer = optimizer  # a failed save leaves it detached
        return tf.lite.TFLiteConverter.from_keras_model(model)  # the converter's own way, slower
    converter = tf.lite.TFLiteConverter.from_saved_model(folder)
    converter._metadata.environment.modelType = metadata.ModelType.KERAS_MODEL  # what from_keras_model records
    return converter


def tfmot():
    """Import tensorflow-model-optimization lazily: it is slow to import and only
    the prune and quantize steps need it."""
    import tensorflow_model_optimization as _tfmot

    return _tfmot


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow in one call."""
    keras.utils.set_random_seed(int(seed))


__all__ = ["keras", "set_seed", "tf", "tflite_converter", "tfmot"]
