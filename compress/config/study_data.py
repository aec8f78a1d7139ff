"""A study's data, recorded once: `<sweeps_dir>/<study>/data.json` names the source, where it was read,
its digest and the data options the study ran with. The sweep writes it before its first trial;
finalize refuses data whose digest differs; the analysis commands and verify compose the study's
config with its data options from it, so that `--study NAME` alone reads the right data (and the
MLflow names that follow from it). Fashion-MNIST studies need no record and write none."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from compress.core.atomic import write_whole
from compress.core.errors import DataError

NAME = "data.json"


def path_for(sweeps_dir: str | Path, study: str) -> Path:
    return Path(sweeps_dir) / study / NAME


def read(sweeps_dir: str | Path, study: str) -> dict | None:
    path = path_for(sweeps_dir, study)
    return json.loads(path.read_text()) if path.is_file() else None


def check(sweeps_dir: str | Path, study: str, kind: str, fingerprint: str, source: str) -> None:
    """One line when `study` was run on other data than `fingerprint` names."""
    known = read(sweeps_dir, study)
    if known and known["fingerprint"] != fingerprint:
        raise DataError(f"study {study} ran on {known['kind']} at {known['source']} "
                        f"(digest {known['fingerprint'][:12]}); this data, {kind} at {source}, reads as digest "
                        f"{fingerprint[:12]}: name another study (paths.study=NAME) or restore the data")


def check_source(sweeps_dir: str | Path, study: str, source: str) -> None:
    """One line when `study` ran on another kind of data than the command was given."""
    known = read(sweeps_dir, study)
    if known and known["kind"] != source:
        raise DataError(f"study {study} ran on {known['kind']} at {known['source']}, not {source}: add "
                        + " ".join(overrides(sweeps_dir, study)))


def entry(data_cfg, kind: str, fingerprint: str, source: str) -> dict:
    """What names a study's data: its kind, where it was read, its digest and the options that read it
    again (the study's record; winner.json's `data` block adds the image shape and class names)."""
    return {"kind": kind, "source": source, "fingerprint": fingerprint,
            "config": OmegaConf.to_container(data_cfg, resolve=True)}


def remember(data_cfg, sweeps_dir: str | Path, study: str, kind: str, fingerprint: str, source: str) -> None:
    """Write the record (checking it first when there is one)."""
    check(sweeps_dir, study, kind, fingerprint, source)
    path = path_for(sweeps_dir, study)
    body = entry(data_cfg, kind, fingerprint, source)
    write_whole(path, lambda tmp: tmp.write_text(json.dumps(body, indent=2) + "\n"))


def overrides(sweeps_dir: str | Path, study: str) -> list[str]:
    """The command-line overrides that compose `study` with the data it ran on (none without a record)."""
    known = read(sweeps_dir, study)
    if not known:
        return []
    config = dict(known["config"])
    out = [f"data={config.pop('source')}"]
    for key, value in config.items():
        text = value if isinstance(value, str) else "null" if value is None else json.dumps(value)
        out.append(f"data.{key}={text}")
    return out
