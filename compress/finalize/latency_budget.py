"""The winner's latency budget: at most a fraction of the teacher's single-image latency, set per
instruction set of the CPU each file was measured on (finalize.max_latency_ratio and
finalize.latency_ratio_by_isa, from conf/targets/)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class LatencyBudget:
    """At most `default` of the teacher's latency, or `by_isa[isa]` for a file measured on a CPU whose best
    int8 instruction set is `isa` (the row's `isa` column, measure/machine.py): int8 kernels run 2 to 4
    times slower against the float teacher without VNNI, so one ratio would pick the winner by the machine
    a session happened to get. A row measured before machines were recorded has the default."""

    default: float
    by_isa: tuple = ()  # ((isa, ratio), ...): hashable, in config order

    def limit(self, isa: str | None) -> float:
        """The budget of a file measured on a CPU whose best int8 instruction set is `isa` (None: not recorded)."""
        return float(dict(self.by_isa).get(isa, self.default))

    def limits(self, rows: pd.DataFrame) -> pd.Series:
        isa = rows["isa"] if "isa" in rows else pd.Series([None] * len(rows), index=rows.index)
        return pd.Series([self.limit(None if pd.isna(v) else str(v)) for v in isa], index=rows.index, dtype=float)

    def words(self) -> str:
        text = f", at most {self.default:g} of the teacher's latency ({1 / self.default:.3g}x faster)"
        if self.by_isa:
            text += " (" + ", ".join(f"{ratio:g} on {isa}" for isa, ratio in self.by_isa) + ")"
        return text


def latency_budget(f) -> LatencyBudget | None:
    """`finalize.max_latency_ratio` with `finalize.latency_ratio_by_isa`, or None (no latency budget)."""
    value = f.get("max_latency_ratio")
    if value is None:
        return None
    by_isa = f.get("latency_ratio_by_isa") or {}
    return LatencyBudget(float(value), tuple((str(k), float(v)) for k, v in by_isa.items()))


def _budget(value: LatencyBudget | float | None) -> LatencyBudget | None:
    return LatencyBudget(float(value)) if isinstance(value, (int, float)) else value
