"""Reads the study's stores (MLflow runs) and never trains: the front, the winner, its export."""

import os

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
