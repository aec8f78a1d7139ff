"""Reads the study's stores and committed tables and draws: the trials table, the front, the
report and its figures. It never trains, converts or rewrites a store; the commands that do
(`compress.pareto`, `compress.export`, `compress.search_quality`, `compress.remeasure_coreml`)
live in `compress/`."""

import os

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
