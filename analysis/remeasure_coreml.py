"""Retired: the one-off migration of Core ML figures logged before a fix (see compress/remeasure_coreml.py)."""

import sys

sys.exit("error: python -m analysis.remeasure_coreml is retired; the study and finalize measure every Core ML "
         "package as they make it: rerun them (python -m compress.sweep -m, python -m compress.finalize)")
