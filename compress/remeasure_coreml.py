"""Retired: the one-off migration that re-measured the Core ML packages of runs logged before a fix.
Every trial and finalist measures its package as it makes it; runs older than that are retrained."""

import sys

sys.exit("error: python -m compress.remeasure_coreml is retired; the study and finalize measure every Core ML "
         "package as they make it: rerun them (python -m compress.sweep -m, python -m compress.finalize)")
