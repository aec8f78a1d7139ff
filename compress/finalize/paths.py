"""Where a study's finalize stage reads and writes, and what each finalist's folders are named."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compress.config import paths as study_paths


@dataclass(frozen=True)
class Paths:
    """Where a study's finalize stage reads and writes."""

    trials: Path  # the study's trials table (candidates)
    table: Path  # the finalists' table
    summary: Path  # rank agreement and the winner's seeds
    export: Path  # winner.tflite, winner.mlpackage, winner.json, README.md, finalists/
    work: Path  # every finalist's working files (not committed)
    study_table: Path  # the study's own committed table (python -m analysis.table)

    @classmethod
    def of(cls, cfg) -> "Paths":
        """The folders of `paths.study` (compress/config/paths.py: the default study's deliverables are the
        committed report/ and winner/, any other study's go under sweeps/<study>/);
        `finalize.trials_table`, `out_dir`, `export_dir` and `work_dir` override."""
        sp = study_paths.of(cfg)
        f = cfg.finalize
        base = Path(sp.check_writable(Path(f.out_dir), "finalize.out_dir") if f.out_dir else sp.report_dir)
        export = Path(sp.check_writable(Path(f.export_dir), "finalize.export_dir") if f.export_dir else sp.winner_dir)
        work = Path(f.work_dir or Path(str(cfg.paths.sweeps_dir)) / sp.study / "finalists")
        return cls(Path(f.trials_table or base / "trials.csv"), base / "finalists.csv", base / "finalists.json",
                   export, work, sp.study_table)



def work_name(trial: int, seed: int, recipe: str) -> str:
    """A finalist's work folder: one per recipe, so that training a trial again under another
    recipe (finalize.augment=flip_shift beside the default) never overwrites the files of the first."""
    return f"trial_{int(trial)}_seed{int(seed)}_{recipe}"
