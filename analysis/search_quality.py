"""Retired name: the command is `python -m compress.search_quality` (it writes to the stores, so it lives in compress/)."""

import sys

sys.exit("error: python -m analysis.search_quality is retired; run python -m compress.search_quality")
