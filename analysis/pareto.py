"""`python -m analysis.pareto`: the command's earlier name, kept working. The command writes (it tags
runs, converts models, runs studies or rewrites metrics), so it lives in compress/: `python -m compress.pareto`."""

from compress.pareto import main

if __name__ == "__main__":
    main()
