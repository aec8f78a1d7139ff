"""The finalize stage: choosing the finalists, training each the long way (side by side in workers),
picking the winner and exporting it with its app contract; `python -m compress.finalize` (__main__.py)."""
