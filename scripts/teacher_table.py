"""The side-by-side table of docs/teachers.md: each recipe of the finalists' tables (trial, width, epochs,
distillation temperature and weight, who taught) with its seeds' shipped int8 files, validation and test
accuracy, and the test mean over its seeds, as markdown.

    python scripts/teacher_table.py                       # report/finalists.csv and report/teachers/finalists.csv
    python scripts/teacher_table.py --trials 62 --max-bytes 16384
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ["trial", "arch", "width", "epochs", "distill.temperature", "distill.alpha", "augment", "teacher"]


def read(paths: list[Path]) -> pd.DataFrame:
    tables = [pd.read_csv(p) for p in paths if p.is_file()]
    table = pd.concat(tables, ignore_index=True)
    table["teacher"] = table.get("teacher", pd.Series(dtype=str)).fillna("user")
    # one row per recipe and seed: the newest (a recipe retrained after a change that kept its visible keys)
    return table.drop_duplicates(subset=[*RECIPE, "seed"], keep="last")


def rows(table: pd.DataFrame) -> list[str]:
    lines = ["| recipe | teacher | seeds | shipped int8 bytes | validation | test | test mean |",
             "|---|---|---|---|---|---|---|"]
    for key, group in table.groupby(RECIPE, sort=False, dropna=False):
        recipe = dict(zip(RECIPE, key))
        group = group.sort_values("seed")
        val, test = group["ship_val_accuracy"].astype(float), group["ship_test_accuracy"].astype(float)
        name = (f"trial {recipe['trial']} ({recipe['arch']} {float(recipe['width']):.3f}, {recipe['epochs']} epochs, "
                f"T {float(recipe['distill.temperature']):.3g}, alpha {float(recipe['distill.alpha']):.3g}, "
                f"augment {recipe['augment']})")
        lines.append(f"| {name} | {recipe['teacher']} | {' / '.join(str(int(s)) for s in group['seed'])} | "
                     f"{' / '.join(f'{int(b):,}' for b in group['ship_size_bytes'])} | "
                     f"{' / '.join(f'{100 * v:.2f}%' for v in val)} | {' / '.join(f'{100 * v:.2f}%' for v in test)} | "
                     f"{100 * test.mean():.2f}% |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tables", nargs="*", type=Path,
                        default=[ROOT / "report" / "finalists.csv", ROOT / "report" / "teachers" / "finalists.csv"])
    parser.add_argument("--trials", nargs="+", type=int, help="only these search trials")
    parser.add_argument("--max-bytes", type=int, help="only shipped files at most this size")
    args = parser.parse_args()
    table = read(args.tables)
    if args.trials:
        table = table[table["trial"].astype(int).isin(args.trials)]
    if args.max_bytes:
        table = table[table["ship_size_bytes"].astype(int) <= args.max_bytes]
    print("\n".join(rows(table)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
