"""The search stage: one trial (built from its config, it trains a student by its recipe, converts,
measures and logs it), its early stopping, what a process loads once (the context) and the preflight
that runs before any store is written."""
