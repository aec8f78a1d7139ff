"""`python -m analysis.table --study NAME --out PATH`: a study's trials table from MLflow (the table
itself: compress/tracking/trials_table.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from compress.config import paths
from compress.tracking.trials_table import from_mlflow, with_committed, write


def main(argv: list[str] | None = None) -> None:
    """`python -m analysis.table --study NAME --out PATH`: write a study's trials table from MLflow
    (commit it as the study grows: a fresh machine resumes the study from it)."""
    parser = argparse.ArgumentParser(prog="python -m analysis.table",
                                     description="Write a study's trials table (every run, its curves) from MLflow.")
    paths.add_study_arguments(parser)
    parser.add_argument("--out", type=Path, default=None,
                        help="the CSV to write (default: report/trials_<study>.csv for the default study, which "
                             "is committed and resumes the study on a fresh machine; sweeps/<study>/report/ "
                             "trials_<study>.csv for any other)")
    args = parser.parse_args(argv)
    sp = paths.from_args(args)
    try:
        out = sp.check_writable(args.out, "--out") if args.out else (
            sp.study_table if sp.is_default else sp.report_dir / sp.study_table.name)
    except paths.ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    paths.require_store(sp)
    table = from_mlflow(sp.tracking_uri, sp.experiment, sp.study)
    if table.empty:
        raise SystemExit(paths.no_trials_message(sp))
    table = with_committed(table, out, sp.study)
    paths.write_or_exit(out, lambda p: write(table, p))
    print(f"{out}: {len(table)} runs of study {sp.study} "
          f"({int((table['status'] == 'FINISHED').sum())} finished)")


if __name__ == "__main__":
    main()
