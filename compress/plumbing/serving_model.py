"""The winner's MLflow model, logged from code (no pickled object): see compress/plumbing/serving.py."""

import mlflow

from compress.plumbing.serving import TFLiteClassifier

mlflow.models.set_model(TFLiteClassifier())
