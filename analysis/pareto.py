"""Retired name: the command is `python -m compress.pareto` (it writes to the stores, so it lives in compress/)."""

import sys

sys.exit("error: python -m analysis.pareto is retired; run python -m compress.pareto")
