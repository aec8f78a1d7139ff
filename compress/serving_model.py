"""The winner's MLflow model, logged from code (no pickled object): see compress/serving.py."""

import mlflow

from compress.serving import TFLiteClassifier

mlflow.models.set_model(TFLiteClassifier())
