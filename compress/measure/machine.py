"""The machine a latency was measured on: its CPU model and the instruction set its int8 kernels can use.

Latency, and the int8 files' most of all, moves with the CPU: the same files measured 22x faster than
the teacher on a CPU with AVX-512 VNNI and 10x on one with AVX2 only. So every latency figure is stored
with the machine it ran on (`record()`), and a figure stored without one is read as "machine not
recorded" (`describe`)."""

from __future__ import annotations

import platform
from functools import lru_cache

from compress.core.options import ISA_FLAGS

NOT_RECORDED = "machine not recorded"
# the instruction sets that matter to XNNPACK's int8 kernels, best first: (name, /proc/cpuinfo flags any of)
ISA_LEVELS = tuple(ISA_FLAGS.items())


def isa_of(flags: set[str], arch: str = "x86_64") -> str:
    """The best level of ISA_LEVELS that `flags` hold; on 64-bit ARM, NEON (with dot products where said)."""
    if arch in ("aarch64", "arm64"):
        return "arm64_dotprod" if {"asimddp", "dotprod"} & flags else "arm64_neon"
    for name, needed in ISA_LEVELS:
        if set(needed) & flags:
            return name
    return "baseline"


@lru_cache(maxsize=1)
def record() -> dict:
    """{"cpu": the CPU model, "isa": its best int8 instruction set level} of this machine."""
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:  # the first CPU's model and flags stand for all
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:  # not Linux: the platform's own words, no flags
        pass
    return {"cpu": model or platform.processor() or platform.machine() or "unknown",
            "isa": isa_of(flags, platform.machine())}


def describe(cpu: object, isa: object) -> str:
    """"<cpu> (<isa>)" for a stored figure, or NOT_RECORDED where it was stored without its machine."""
    missing = [v for v in (cpu, isa) if v is None or (isinstance(v, float) and v != v) or str(v) in ("", "nan")]
    return NOT_RECORDED if missing else f"{cpu} ({isa})"
