"""Where a study's stores and outputs live, from its name alone (`conf/paths/`).

One rule for every command that writes files: the default study (`paths.default_study`) writes
the committed deliverables (`report/`, `winner/`, `report.md`); any other study writes the same
files under `<sweeps_dir>/<study>/`, which is not committed, and logs to an MLflow experiment of
its own (`<experiment>-<study>`). Analysis commands take `--study` and resolve it here, through
the same composed config as the sweep, so that a smoke study can never overwrite the shipped
winner or the report.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from compress.config import study_data as record
from compress.config.cli import CONF_DIR, compose
from compress.config.validate import check_tracking
from compress.core.errors import ConfigError, StoreError

SWEEPS_DIR = "sweeps"  # conf/paths/default.yaml's sweeps_dir, where a study's data record is looked for


@dataclass(frozen=True)
class StudyPaths:
    """A study's stores and output folders, resolved from the composed config."""

    study: str
    default_study: str
    tracking_uri: str
    experiment: str
    storage: str
    report_dir: Path  # trials.csv, finalists.csv, bench.json, figures
    winner_dir: Path  # the exported winner
    report_md: Path
    analysis_dir: Path  # front tables and trial exports: never committed
    study_table: Path  # the study's own table, committed for the default study (the sweeper resumes from it)

    @property
    def is_default(self) -> bool:
        return self.study == self.default_study

    @property
    def committed(self) -> tuple[Path, ...]:
        """The committed deliverables: only the default study may write here."""
        return (Path("report"), Path("winner"), Path("report.md"))

    def check_writable(self, path: Path, flag: str) -> Path:
        """`path` itself, or a one-line refusal when a study other than the default would write
        a committed deliverable (a smoke run must never overwrite the shipped winner). A study's
        own table (`report/trials_<study>.csv`, which its sweeper resumes from) is named for it
        and overwrites nothing of another study: any study may write it, so that a long study
        that is not yet the default can commit its table as it grows."""
        resolved = Path(path).resolve()
        if self.is_default or resolved == self.study_table.resolve():
            return path
        for base in self.committed:
            base = base.resolve()
            if resolved == base or base in resolved.parents:
                raise ConfigError(f"{flag}={path}: study {self.study!r} may not write the default study's "
                                  f"committed {base.name}; leave {flag} out to write under {self.report_dir.parent}")
        return path


def of(cfg) -> StudyPaths:
    """The StudyPaths of a composed config (with its `hydra` node when one is there)."""
    p = cfg.paths
    sweeper = cfg.get("hydra", {}).get("sweeper", {}) if "hydra" in cfg else {}
    storage = str(sweeper.get("storage") or f"sqlite:///{p.sweeps_dir}/{p.study}.db")
    return StudyPaths(
        study=str(p.study), default_study=str(p.default_study), tracking_uri=str(cfg.tracking.uri),
        experiment=str(cfg.tracking.experiment), storage=storage, report_dir=Path(str(p.report_dir)),
        winner_dir=Path(str(p.winner_dir)), report_md=Path(str(p.report_md)),
        analysis_dir=Path(str(p.analysis_dir)), study_table=Path("report") / f"trials_{p.study}.csv")


def study_overrides(study: str | None) -> list[str]:
    """The overrides that compose `study`: a study named like a preset (`conf/experiment/smoke.yaml`
    names the study `smoke`) is composed with that preset, so that its data and recipe are the
    ones its trials ran with; any other name sets `paths.study`. A study on data other than
    Fashion-MNIST adds the data options it ran with (its record, compress/config/study_data.py)."""
    if not study:
        return []
    preset = Path(CONF_DIR) / "experiment" / f"{study}.yaml"
    if preset.is_file() and str(OmegaConf.load(preset).get("paths", {}).get("study")) == study:
        return [f"experiment={study}", *record.overrides(SWEEPS_DIR, study)]
    return [f"paths.study={study}", *record.overrides(SWEEPS_DIR, study)]


def compose_for(study: str | None, overrides: list[str] | tuple[str, ...] = ()):
    """The project's config (with its hydra node) for `study` (None: the default study)."""
    return compose([*study_overrides(study), *overrides], return_hydra_config=True)


def resolve(study: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> StudyPaths:
    """Compose the project's config for `study` (None: the default study) and return its paths."""
    return of(compose_for(study, overrides))


def add_study_arguments(parser: argparse.ArgumentParser, tracking: bool = True) -> None:
    """`--study` (and `--tracking-uri`) for an analysis command, with help that names the default."""
    default = default_study()
    parser.add_argument("--study", default=None,
                        help=f"the study to read (default: the default study, {default}); any other study reads "
                             f"and writes under sweeps/<study>/ and never touches report/ or winner/, "
                             f"e.g. --study smoke after `python -m compress.sweep -m experiment=smoke`")
    if tracking:
        parser.add_argument("--tracking-uri", default=None,
                            help="the MLflow store (default: tracking.uri of the config, sqlite:///mlruns/mlflow.db)")


def config_from_args(args: argparse.Namespace):
    """The config an analysis command's `--study` / `--tracking-uri` name (its targets, its paths)."""
    overrides = [f"tracking.uri={args.tracking_uri}"] if getattr(args, "tracking_uri", None) else []
    return compose_for(args.study, overrides)


def from_args(args: argparse.Namespace, needs_store: bool = False) -> StudyPaths:
    """Resolve `--study` / `--tracking-uri` of an analysis command; with `needs_store`, stop with
    one line when the MLflow store cannot be read (nothing is created by a command that reads)."""
    sp = of(config_from_args(args))
    if needs_store:
        require_store(sp)
    return sp


def require_store(sp: StudyPaths) -> None:
    """SystemExit with one line unless the study's MLflow store exists and answers: a server must
    answer its health check, a SQLite file must already be there (reading never creates one)."""
    uri = sp.tracking_uri
    if uri.startswith(("http://", "https://")):
        try:
            check_tracking(uri)
        except StoreError as exc:
            raise SystemExit(f"error: {exc}") from None
    elif uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():
        raise SystemExit(f"error: tracking.uri={uri}: no MLflow store there (a SQLite file); {next_step(sp)}")


def write_or_exit(path: Path, write) -> None:
    """`write(path)`, or one line naming the path when it cannot be written."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write(path)
    except OSError as exc:
        raise SystemExit(f"error: {path}: cannot write ({exc.strerror or type(exc).__name__})") from None


def default_study() -> str:
    """The default study's name, as conf/paths/default.yaml sets it."""
    return str(OmegaConf.load(Path(CONF_DIR) / "paths" / "default.yaml").default_study)


def next_step(sp: StudyPaths) -> str:
    """What a user with no runs of the study should do."""
    run = "python -m compress.sweep -m" + ("" if sp.is_default else f" {study_overrides(sp.study)[0]}")
    hint = (f"; a fresh clone has no stores: the committed {sp.study_table} is read by python -m analysis.report "
            f"and the notebook" if sp.study_table.is_file() else "")
    return f"run the study first ({run}){hint}"


def no_trials_message(sp: StudyPaths) -> str:
    """The one line for a study with no trial runs in its MLflow store, with what to do."""
    return (f"error: no finished trial runs of study {sp.study!r} in MLflow experiment {sp.experiment!r} at "
            f"{sp.tracking_uri}: {next_step(sp)}")


def refuse_foreign_export(folder: Path, study: str) -> None:
    """One line instead of overwriting a winner that another study exported into `folder`."""
    found = Path(folder) / "winner.json"
    if found.is_file():
        other = json.loads(found.read_text()).get("study")
        if other and other != study:
            raise ConfigError(f"{folder}: holds the winner of study {other!r}; study {study!r} exports "
                              f"under its own folder (leave the export folder out) or into an empty one")
