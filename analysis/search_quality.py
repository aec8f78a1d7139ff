"""`python -m analysis.search_quality`: the command's earlier name, kept working. The command writes (it tags
runs, converts models, runs studies or rewrites metrics), so it lives in compress/: `python -m compress.search_quality`."""

from compress.search_quality import main

if __name__ == "__main__":
    main()
