"""The search stage: one trial (train, convert, measure, log), its early stopping, what a process
loads once (the context) and the preflight that runs before any store is written."""
