"""Reads the study's stores and committed tables through the library and draws: the trials table,
the report and its figures, the notebook's data. It never trains, converts or rewrites a store; the
commands that do (`compress.pareto`, `compress.search_quality`) live in `compress/`."""

import os

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
