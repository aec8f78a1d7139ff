"""How report.md writes a figure: percentages, bytes, ratios to the teacher, and tables."""

from __future__ import annotations


def pct(v: float, digits: int = 2) -> str:
    return f"{100 * float(v):.{digits}f}%"


def nbytes(v: float) -> str:
    return f"{int(round(float(v))):,} B"


def ratio(v: float) -> str:
    return f"{float(v):.4f}x"


def md_table(rows: list[dict]) -> str:
    if not rows:
        return "_(none)_\n"
    heads = list(rows[0])
    out = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
    out += ["| " + " | ".join(str(r[h]) for h in heads) + " |" for r in rows]
    return "\n".join(out) + "\n"
