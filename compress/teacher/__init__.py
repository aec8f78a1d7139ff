"""The teacher stage: the user's network (build, train, load in safe mode, its logits), and
`python -m compress.teacher` (__main__.py)."""
