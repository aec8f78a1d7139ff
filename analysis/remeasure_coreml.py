"""`python -m analysis.remeasure_coreml`: the command's earlier name, kept working. The command writes (it tags
runs, converts models, runs studies or rewrites metrics), so it lives in compress/: `python -m compress.remeasure_coreml`."""

from compress.remeasure_coreml import main

if __name__ == "__main__":
    main()
