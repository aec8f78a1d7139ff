"""The winner's MLflow model, logged from code (no pickled object): see compress/tracking/serving.py."""

import mlflow

from compress.tracking.serving import TFLiteClassifier

mlflow.models.set_model(TFLiteClassifier())
