"""MLflow: a run per trial and per finalist under the study's run, the study as a live run, the trials
table read back from the store, and the winner registered as a served model."""
